#!/usr/bin/env bats
# Lock file creation and safety, flock(1) interop, waiting, several locks, inheritance.

load helpers

@test "lock file is created mode 0644 whatever the umask (077, 000, 022)" {
  local u
  for u in 077 000 022 777; do
    (umask "$u" && "$LOTO" --config "$CFG" -L "$T/m$u" true)
    run stat -c '%a %s %F' "$T/m$u"
    echo "umask $u: $output"
    [ "$output" = "644 0 regular empty file" ]
  done
}

@test "an existing lock file keeps its mode" {
  touch "$T/l"
  chmod 0600 "$T/l"
  lotoc -L "$T/l" true
  [ "$(stat -c %a "$T/l")" = 600 ]
}

@test "a data file used as the lock keeps its exact bytes and mtime" {
  head -c 4096 /dev/urandom >"$T/db.bin"
  printf 'line without newline' >>"$T/db.bin"
  touch -d '2001-02-03 04:05:06.123456789' "$T/db.bin"
  local before_sum before_stat
  before_sum="$(sha256sum <"$T/db.bin")"
  before_stat="$(stat -c '%s %y %a %i' "$T/db.bin")"

  # plain, -o, waiting behind a holder, and a command that only reads it
  lotoc -L "$T/db.bin" true
  lotoc -o -L "$T/db.bin" true
  run lotoc -L "$T/db.bin" sha256sum
  [ "$status" -eq 0 ]
  hold_lock "$T/db.bin"
  spawn -n w lotoc -w -L "$T/db.bin" true
  wait_for_waiters "$T/db.bin" 1
  release_lock
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  run lotoc -L "$T/db.bin" sh -c 'cat "$LOTO_LOCKFILE" | sha256sum'
  [ "$output" = "$before_sum" ]

  [ "$(sha256sum <"$T/db.bin")" = "$before_sum" ]
  [ "$(stat -c '%s %y %a %i' "$T/db.bin")" = "$before_stat" ]
}

@test "flock(1) holding the lock: loto is busy (75); loto -w runs once flock(1) lets go" {
  hold_lock "$T/l"
  run --separate-stderr lotoc -L "$T/l" sh -c 'touch "$T/ran"'
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  spawn -n w lotoc -w -L "$T/l" sh -c 'touch "$T/ran"'
  wait_for_waiters "$T/l" 1
  [ ! -e "$T/ran" ]
  release_lock
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  [ -e "$T/ran" ]
}

@test "loto holding the lock: flock(1) -n fails, and succeeds after loto exits" {
  spawn -n h lotoc -L "$T/l" sh -c 'touch "$T/ready"; '"$(await "$T/go")"
  wait_for_file "$T/ready"
  run flock -n "$T/l" true
  [ "$status" -eq 1 ]
  run flock -w 0.1 "$T/l" true
  [ "$status" -eq 1 ]
  touch "$T/go"
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  run flock -n "$T/l" true
  [ "$status" -eq 0 ]
}

@test "-w handoff: the waiter's command starts within 100 ms of the holder's release" {
  local round latency all="" worst=0
  for round in 1 2 3 4 5; do
    rm -f "$T/go" "$T/h.ready" "$T/h.end" "$T/w.start"
    spawn -n h lotoc -L "$T/l" bash -c 'touch "$T/h.ready"; '"$(await "$T/go")"'; '"$STAMP_SNIPPET"' >"$T/h.end"'
    local holder=$SPAWNED
    wait_for_file "$T/h.ready"
    spawn -n w lotoc -w -L "$T/l" bash -c "$STAMP_SNIPPET"' >"$T/w.start"'
    local waiter=$SPAWNED
    wait_for_waiters "$T/l" 1
    touch "$T/go"
    wait_exit "$holder" 5
    [ "$STATUS" -eq 0 ]
    wait_exit "$waiter" 5
    [ "$STATUS" -eq 0 ]
    latency=$(($(cat "$T/w.start") - $(cat "$T/h.end")))
    all="$all $latency"
    ((latency > worst)) && worst=$latency
  done
  echo "handoff latencies (ms):$all; worst $worst" >&3
  ((worst < 100))
  # and the waiter never started before the holder's end
  for latency in $all; do ((latency >= 0)); done
}

@test "-t 0.5 returns 75 after 0.5..0.8 s; -t 0 does not wait" {
  hold_lock "$T/l"
  local t0 t1 all=""
  for _ in 1 2; do
    t0=$(now_ms)
    run --separate-stderr lotoc -t 0.5 -L "$T/l" sh -c 'touch "$T/ran"'
    t1=$(now_ms)
    all="$all $((t1 - t0))"
    [ "$status" -eq 75 ]
    ((t1 - t0 >= 495 && t1 - t0 <= 800))
    [[ "$stderr" == *"timed out"* ]]
  done
  t0=$(now_ms)
  run --separate-stderr lotoc -t 0 -L "$T/l" sh -c 'touch "$T/ran"'
  t1=$(now_ms)
  echo "-t 0.5 intervals (ms):$all; -t 0: $((t1 - t0))" >&3
  [ "$status" -eq 75 ]
  ((t1 - t0 < 300))
  [ ! -e "$T/ran" ]
}

@test "-t: a lock released during the wait is taken and the command runs" {
  hold_lock "$T/l"
  spawn -n w lotoc -t 5 -L "$T/l" sh -c 'touch "$T/ran"'
  wait_for_waiters "$T/l" 1
  release_lock
  wait_exit "$SPAWNED" 3
  [ "$STATUS" -eq 0 ]
  [ -e "$T/ran" ]
}

@test "-t: a command still running at the wait's deadline runs to its end (the wait's timer is gone)" {
  hold_lock "$T/l"
  spawn -n w lotoc -t 1 -L "$T/l" sh -c 'touch "$0.start"; sleep 1.5; touch "$0.end"' "$T/cmd"
  wait_for_waiters "$T/l" 1
  release_lock
  wait_for_file "$T/cmd.start"
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  [ -e "$T/cmd.end" ]
}

@test "several -L: all are held while the command runs" {
  spawn -n h lotoc -L "$T/a" -L "$T/b" -L cpu sh -c 'touch "$T/ready"; '"$(await "$T/go")"
  wait_for_file "$T/ready"
  run lotoc -L "$T/a" true
  [ "$status" -eq 75 ]
  run lotoc -L "$T/b" true
  [ "$status" -eq 75 ]
  run lotoc -L cpu true
  [ "$status" -eq 75 ]
  lock_is_held "$T/a"
  lock_is_held "$T/b"
  lock_is_held "$T/loto.cpu"
  touch "$T/go"
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  lock_is_free "$T/a"
  lock_is_free "$T/b"
  lock_is_free "$T/loto.cpu"
}

@test "several -L, one busy, no wait: 75, nothing run, the others released" {
  touch "$T/a" "$T/c"
  hold_lock "$T/b"
  run --separate-stderr lotoc -L "$T/a" -L "$T/b" -L "$T/c" sh -c 'touch "$T/ran"'
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  [[ "$stderr" == *"$T/b"* ]]
  lock_is_free "$T/a"
  lock_is_free "$T/c"
  # the same in the other order on the command line
  run --separate-stderr lotoc -L "$T/c" -L "$T/b" -L "$T/a" sh -c 'touch "$T/ran"'
  [ "$status" -eq 75 ]
  lock_is_free "$T/a"
  lock_is_free "$T/c"
}

@test "several -L, one busy: the ones taken are free before loto reports (stuck on a full stderr pipe)" {
  hold_lock "$T/b"
  mkfifo "$T/err"
  exec 7<>"$T/err" # a reader that reads only when told
  dd if=/dev/zero of="$T/err" bs=4096 count=64 oflag=nonblock 2>/dev/null || true
  setsid "$LOTO" --config "$CFG" -L "$T/a" -L "$T/b" touch "$T/ran" </dev/null >/dev/null 2>"$T/err" &
  local pid=$!
  echo "$pid" >>"$T/.bgpids"
  # loto took a, found b busy and is writing the message: a must be free already
  wait_until 10 writing_to_pipe "$pid"
  lock_is_free "$T/a"
  timeout 10 cat "$T/err" >/dev/null &
  exec 7>&-
  wait_exit "$pid" 10
  [ "$STATUS" -eq 75 ]
  [ ! -e "$T/ran" ]
}

@test "several -L with -t: one deadline covers all; the taken ones are released" {
  hold_lock "$T/b"
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr lotoc -t 0.3 -L "$T/a" -L "$T/b" sh -c 'touch "$T/ran"'
  t1=$(now_ms)
  echo "status $status after $((t1 - t0)) ms"
  [ "$status" -eq 75 ]
  ((t1 - t0 >= 295 && t1 - t0 <= 600))
  lock_is_free "$T/a"
  [ ! -e "$T/ran" ]
}

@test "several -L: while loto waits for one, the one it took stays held; then it runs and frees both" {
  hold_lock "$T/b"
  spawn -n w lotoc -w -L "$T/a" -L "$T/b" sh -c 'touch "$T/ran"'
  wait_for_waiters "$T/b" 1
  # a sorts first: taken; b busy: waiting
  lock_is_held "$T/a"
  release_lock
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  [ -e "$T/ran" ]
  lock_is_free "$T/a"
  lock_is_free "$T/b"
}

@test "the same lock named twice works (path twice, name and its path)" {
  run lotoc -L "$T/a" -L "$T/a" sh -c 'echo ok'
  [ "$status" -eq 0 ]
  [ "$output" = ok ]
  run lotoc -L cpu -L "$T/loto.cpu" sh -c 'echo ok'
  [ "$status" -eq 0 ]
  [ "$output" = ok ]
  run lotoc -L "$T/a" -L "$T/./a" true
  [ "$status" -eq 0 ]
}

@test "several -L in opposite orders never deadlock" {
  local i pids=()
  for i in $(seq 1 12); do
    if ((i % 2)); then
      spawn lotoc -w -L "$T/a" -L "$T/b" -L "$T/c" sh -c 'echo x >>"$T/count"'
    else
      spawn lotoc -w -L "$T/c" -L "$T/b" -L "$T/a" sh -c 'echo x >>"$T/count"'
    fi
    pids+=("$SPAWNED")
  done
  for i in "${pids[@]}"; do
    wait_exit "$i" 10
    [ "$STATUS" -eq 0 ]
  done
  [ "$(wc -l <"$T/count")" -eq 12 ]
}

@test "LOTO_RESOURCE and LOTO_LOCKFILE are in the command's environment" {
  LOTO_RESOURCE=stale LOTO_LOCKFILE=stale run lotoc -L cpu sh -c 'echo "$LOTO_RESOURCE|$LOTO_LOCKFILE"'
  [ "$status" -eq 0 ]
  [ "$output" = "cpu|$T/loto.cpu" ]
  run lotoc -L "$T/p" sh -c 'echo "$LOTO_RESOURCE|$LOTO_LOCKFILE"'
  [ "$output" = "$T/p|$T/p" ]
  # several: names comma-separated, every path listed
  run lotoc -L net -L cpu sh -c 'echo "$LOTO_RESOURCE"; echo "$LOTO_LOCKFILE"'
  echo "$output"
  [ "$status" -eq 0 ]
  local names="${lines[0]}" paths="${lines[1]}"
  [ "$names" = "cpu,net" ] || [ "$names" = "net,cpu" ]
  [[ "$paths" == *"$T/loto.cpu"* ]]
  [[ "$paths" == *"$T/loto.net"* ]]
}

# Lists the files the command's shell has open.
fd_lister='for f in /proc/$$/fd/*; do readlink "$f"; done; true'

@test "default: the command inherits the lock descriptor" {
  run lotoc -L "$T/l" bash -c "$fd_lister"
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qx "$T/l" <<<"$output"
}

@test "-o/--close: the command does not hold the lock descriptor" {
  local opt
  for opt in -o --close; do
    run lotoc "$opt" -L "$T/l" bash -c "$fd_lister"
    echo "$output"
    [ "$status" -eq 0 ]
    not grep -qx "$T/l" <<<"$output"
  done
  # nor any other descriptor loto opened (only 0-2 and the lister's own)
  run lotoc -o -L "$T/l" bash -c "$fd_lister"
  echo "$output"
  [ "$status" -eq 0 ]
  not grep -q "$T" <<<"$output"
}

@test "the lock is free before loto writes its last lines: a loto stuck on a full stderr pipe holds nothing" {
  mkfifo "$T/err"
  exec 7<>"$T/err" # a reader that reads only when told: loto's stderr can fill up
  # The job waits until loto's first lines are read, fills the pipe (dd gives up when it
  # is full) and exits: loto's "exited" line then cannot be written.
  setsid "$LOTO" --config "$CFG" -v -L "$T/l" sh -c '
    while [ ! -e "$1.go" ]; do sleep 0.01; done
    dd if=/dev/zero of="$1" bs=4096 count=64 oflag=nonblock 2>/dev/null
    exit 0' sh "$T/err" </dev/null >/dev/null 2>"$T/err" &
  local pid=$!
  echo "$pid" >>"$T/.bgpids"
  local line="" n
  for n in 1 2 3 4 5; do
    read -r -t 10 -u 7 line
    [[ "$line" != *"started pid "* ]] || break
  done
  [[ "$line" == *"started pid "* ]]
  touch "$T/err.go"
  wait_until 10 writing_to_pipe "$pid"
  lock_is_free "$T/l"
  timeout 10 cat "$T/err" >/dev/null &
  exec 7>&-
  wait_exit "$pid" 10
  [ "$STATUS" -eq 0 ]
}

@test "kill -KILL of loto while the job runs: the lock stays held until the job ends" {
  spawn -n h lotoc -L "$T/l" bash -c 'echo $$ >"$T/cmd.pid"; '"$(await "$T/go")"'; touch "$T/done"'
  wait_for_content "$T/cmd.pid"
  local cmd_pid
  cmd_pid="$(cat "$T/cmd.pid")"
  kill -KILL "$SPAWNED"
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 137 ]
  # loto is gone, the job is not: the lock is still held
  not proc_gone "$cmd_pid"
  lock_is_held "$T/l"
  run lotoc -L "$T/l" true
  [ "$status" -eq 75 ]
  touch "$T/go"
  wait_for_file "$T/done"
  wait_until 5 proc_gone "$cmd_pid"
  wait_until 2 lock_is_free "$T/l"
}

@test "-o: kill -KILL of loto frees the lock although the command still runs" {
  spawn -n h lotoc -o -L "$T/l" bash -c 'echo $$ >"$T/cmd.pid"; '"$(await "$T/go")"
  wait_for_content "$T/cmd.pid"
  local cmd_pid
  cmd_pid="$(cat "$T/cmd.pid")"
  lock_is_held "$T/l"
  kill -KILL "$SPAWNED"
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 137 ]
  not proc_gone "$cmd_pid"
  lock_is_free "$T/l"
  touch "$T/go"
}

@test "atomic append: 8 concurrent writers, 160 lines, each batch contiguous, none lost" {
  local id pids=()
  for id in 1 2 3 4 5 6 7 8; do
    spawn lotoc -w -L "$T/db.txt" -- sh -c \
      'i=1; while [ $i -le 20 ]; do echo "$1 $i" >>"$T/db.txt"; sleep 0.002; i=$((i+1)); done' sh "$id"
    pids+=("$SPAWNED")
  done
  for id in "${pids[@]}"; do
    wait_exit "$id" 20
    [ "$STATUS" -eq 0 ]
  done
  [ "$(wc -l <"$T/db.txt")" -eq 160 ]
  # block k (20 lines) must be one writer's lines 1..20 in order; 8 distinct writers
  run awk '{ blk = int((NR - 1) / 20); want = (NR - 1) % 20 + 1
             if (want == 1) { owner = $1; if (seen[owner]++) { print "writer " owner " twice at line " NR; bad = 1 } }
             if ($1 != owner || $2 != want) { print "interleaved at line " NR ": " $0; bad = 1 } }
           END { if (length(seen) != 8) { print "writers: " length(seen); bad = 1 }; exit bad }' "$T/db.txt"
  echo "$output"
  [ "$status" -eq 0 ]
}

@test "the lock path is re-validated: a waiter on a deleted file does not run beside the new holder" {
  lock_swap_check rm "$T/l"
}
