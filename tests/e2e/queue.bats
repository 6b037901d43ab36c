#!/usr/bin/env bats
# Shared locks (-s), slots (at most N at once, LOTO_SLOT) and fair queues (queue: fifo).
#
# Synchronisation: marker files the jobs write, lock and ticket files ("<lock>.q<20
# digits>", one per waiting loto) and /proc/locks. Orders are read from log files the jobs
# append to (O_APPEND: each line lands whole, in the order the writes happened); times are
# only compared as intervals.

# Scripts given to sh -c / bash -c are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load syslog_helpers

setup() {
  common_setup
  # rw: a plain lock for readers and writers (queue: none); pool: 3 slots; cores: one per CPU;
  # line: a fair queue.
  CFG="$(write_config -n loto.yaml "$(printf '%s\nresources:\n  rw:\n    path: %s\n    queue: none\n  pool:\n    path: %s\n    slots: 3\n  cores:\n    path: %s\n    slots: auto\n  line:\n    path: %s\n    queue: fifo\n' \
    "$(base_config)" "$T/rw.lock" "$T/pool.lock" "$T/cores.lock" "$T/line.lock")")"
  export CFG
}

teardown() { common_teardown; }

# in_queue PID LOCKFILE: PID holds the flock of one of LOCKFILE's ticket files: its place
# in the queue is taken and named, so a waiter started after this one queues behind it.
in_queue() {
  local f inodes=" "
  for f in "$2".q[0-9]*; do
    [[ -e "$f" ]] && inodes+="$(stat -c %i "$f" 2>/dev/null) "
  done
  awk -v pid="$1" -v inodes="$inodes" '$2 == "FLOCK" && $5 == pid {
      n = split($6, a, ":"); if (index(inodes, " " a[n] " ")) found = 1 }
    END { exit !found }' /proc/locks
}

# requeue_in_kernel PID...: stops and continues each waiter in turn, so that its flock()
# call is interrupted and made again: the kernel now has it behind every other process
# blocked on the same file. A queue that is only the kernel's would now serve these last,
# in the order given here.
requeue_in_kernel() {
  local pid
  for pid in "$@"; do
    kill -STOP "$pid"
    wait_until 5 proc_stopped "$pid"
    kill -CONT "$pid"
    wait_until 5 blocked "$pid"
  done
}

# holds_flock PID: PID holds (not waits for) some flock: loto either has its lock or, while
# it waits, its ticket; either way it has "arrived".
holds_flock() {
  awk -v pid="$1" '$2 != "->" && $2 == "FLOCK" && $5 == pid { found = 1 } END { exit !found }' /proc/locks
}

# line_of LOG TEXT: the number of the line that is exactly TEXT's first word pair, e.g.
# line_of log "S w" matches "S w 1234".
line_of() {
  local n
  n="$(awk -v want="$2" '($1 " " $2) == want { print NR; exit }' "$1")"
  [[ -n "$n" ]] || {
    echo "no '$2' line in $1:" >&2
    cat "$1" >&2
    return 1
  }
  echo "$n"
}
# stamp_of LOG TEXT: the time (us) on that line.
stamp_of() { awk -v want="$2" '($1 " " $2) == want { print $3; exit }' "$1"; }

# A job that logs "S NAME us" when it starts and "E NAME us" when it ends, and holds
# $1 seconds in between (a sleep inside the job being locked).
# usage: ... bash -c "$LOGGED_JOB" _ LOG NAME SECONDS
LOGGED_JOB='echo "S $2 ${EPOCHREALTIME/[.,]/}" >>"$1"; touch "$1.$2.run"; sleep "$3"; echo "E $2 ${EPOCHREALTIME/[.,]/}" >>"$1"'

# ---------------------------------------------------------------------------------------
# Shared locks

@test "-s: two readers hold the lock at once (each waits for the other's marker)" {
  # Each reader says it runs, then needs the other's marker to succeed: only possible
  # if both hold the lock together. The second one does not wait (-w): it must get in.
  local r1_job r2_job
  r1_job='touch "$T/r1.in"; '"$(await "$T/r2.in")"'; test -e "$T/r2.in"'
  r2_job='touch "$T/r2.in"; '"$(await "$T/r1.in")"'; test -e "$T/r1.in"'
  spawn -n r1 lotoc -s -L rw bash -c "$r1_job"
  local r1=$SPAWNED
  wait_for_file "$T/r1.in"
  run --separate-stderr lotoc -s -L rw bash -c "$r2_job"
  echo "r2: status $status, stderr $stderr"
  [ "$status" -eq 0 ]
  wait_exit "$r1" 5
  [ "$STATUS" -eq 0 ]
  lock_is_free "$T/rw.lock"
}

@test "-s: a writer is busy while a reader holds; a reader is busy while a writer holds" {
  spawn -n r lotoc -s -L rw sh -c 'touch "$T/r.in"; '"$(await "$T/r.go")"
  local reader=$SPAWNED
  wait_for_file "$T/r.in"
  # the reader holds it: exclusive lockers are refused, -t waits out its time
  run --separate-stderr lotoc -L rw touch "$T/w.ran"
  [ "$status" -eq 75 ]
  [[ "$stderr" == *busy* ]]
  run --separate-stderr lotoc -t 0.2 -L rw touch "$T/w.ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/w.ran" ]
  # a flock(1) probe sees it held (exclusive), and shared flock(1) gets in beside it
  lock_is_held "$T/rw.lock"
  run flock -n -s "$T/rw.lock" true
  [ "$status" -eq 0 ]
  touch "$T/r.go"
  wait_exit "$reader" 5
  [ "$STATUS" -eq 0 ]

  # now a writer holds: readers are refused
  spawn -n w lotoc -L rw sh -c 'touch "$T/w.in"; '"$(await "$T/w.go")"'; echo "$EPOCHREALTIME" >/dev/null'
  local writer=$SPAWNED
  wait_for_file "$T/w.in"
  run --separate-stderr lotoc -s -L rw touch "$T/r.ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/r.ran" ]
  run flock -n -s "$T/rw.lock" true
  [ "$status" -eq 1 ]
  # a waiting reader runs only after the writer has ended
  spawn -n r2 lotoc -s -w -L rw bash -c 'touch "$T/r2.ran"'
  local r2=$SPAWNED
  wait_for_waiters "$T/rw.lock" 1
  [ ! -e "$T/r2.ran" ]
  touch "$T/w.go"
  wait_exit "$writer" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$r2" 5
  [ "$STATUS" -eq 0 ]
  [ -e "$T/r2.ran" ]
  lock_is_free "$T/rw.lock"
}

@test "-s and flock(1): flock -s shares with loto -s; flock -x excludes loto -s, and loto -s excludes flock -x" {
  # flock(1) shared holder: loto -s runs beside it, loto exclusive does not
  spawn -n fs flock -s "$T/rw.lock" sh -c 'touch "$T/fs.in"; exec sleep 60'
  local fs=$SPAWNED
  wait_for_file "$T/fs.in"
  run --separate-stderr lotoc -s -L rw sh -c 'echo shared-ok'
  [ "$status" -eq 0 ]
  [ "$output" = shared-ok ]
  run --separate-stderr lotoc -L rw true
  [ "$status" -eq 75 ]
  release_lock "$fs"

  # flock(1) exclusive holder: loto -s is busy, and -w waits for it
  hold_lock "$T/rw.lock" fx
  run --separate-stderr lotoc -s -L rw touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  spawn -n sw lotoc -s -w -L rw touch "$T/ran"
  local waiter=$SPAWNED
  wait_for_waiters "$T/rw.lock" 1
  [ ! -e "$T/ran" ]
  release_lock
  wait_exit "$waiter" 5
  [ "$STATUS" -eq 0 ]
  [ -e "$T/ran" ]

  # loto -s holding: flock -x cannot get in, flock -s can
  spawn -n ls lotoc -s -L rw sh -c 'touch "$T/ls.in"; '"$(await "$T/ls.go")"
  local holder=$SPAWNED
  wait_for_file "$T/ls.in"
  run flock -n -x "$T/rw.lock" true
  [ "$status" -eq 1 ]
  run flock -n -s "$T/rw.lock" true
  [ "$status" -eq 0 ]
  touch "$T/ls.go"
  wait_exit "$holder" 5
  [ "$STATUS" -eq 0 ]
  run flock -n -x "$T/rw.lock" true
  [ "$status" -eq 0 ]
}

@test "no writer starvation: a writer waiting behind a stream of readers runs before the later readers" {
  local log="$T/rw.log" i pid
  local -a readers=()
  # The stream: each reader starts while the one before holds the lock (it has said it
  # runs) and holds it 0.6 s. Without a guard, readers that keep overlapping never leave
  # the writer a gap.
  for i in 1 2 3; do
    spawn -n "r$i" lotoc -s -w -L rw bash -c "$LOGGED_JOB" _ "$log" "r$i" 0.6
    readers+=("$SPAWNED")
    wait_for_file "$log.r$i.run"
  done
  # The writer arrives while r1..r3 hold: it waits (it holds its ticket)
  spawn -n w lotoc -w -L rw bash -c "$LOGGED_JOB" _ "$log" w 0.2
  local writer=$SPAWNED
  wait_until 5 in_queue "$writer" "$T/rw.lock"
  # The stream goes on: r4..r8 arrive one after another, each once the one before has
  # arrived (runs, or holds its place in the queue)
  for i in 4 5 6 7 8; do
    spawn -n "r$i" lotoc -s -w -L rw bash -c "$LOGGED_JOB" _ "$log" "r$i" 0.3
    pid=$SPAWNED
    readers+=("$pid")
    wait_until 5 holds_flock "$pid"
  done
  wait_exit "$writer" 10
  [ "$STATUS" -eq 0 ]
  for pid in "${readers[@]}"; do
    wait_exit "$pid" 10
    [ "$STATUS" -eq 0 ]
  done
  cat "$log" >&2
  [ "$(wc -l <"$log")" -eq 18 ]

  local ws we
  ws="$(line_of "$log" "S w")"
  we="$(line_of "$log" "E w")"
  # the readers present when the writer arrived ran together (the stream overlapped) ...
  (($(line_of "$log" "S r2") < $(line_of "$log" "E r1")))
  (($(line_of "$log" "S r3") < $(line_of "$log" "E r2")))
  # ... and were all done before it started
  for i in 1 2 3; do
    (($(line_of "$log" "E r$i") < ws))
  done
  # the readers that came after it waited for its end
  for i in 4 5 6 7 8; do
    (($(line_of "$log" "S r$i") > we))
  done
  # no later than the readers present at its arrival were done: within 300 ms of the last
  local last_end=0 e
  for i in 1 2 3; do
    e="$(stamp_of "$log" "E r$i")"
    ((e > last_end)) && last_end=$e
  done
  local gap=$(($(stamp_of "$log" "S w") - last_end))
  echo "writer started $((gap / 1000)) ms after the last early reader ended" >&3
  ((gap >= 0 && gap < 300000 * SCALE))
  # and the later readers still share among themselves once it is done
  (($(line_of "$log" "S r5") < $(line_of "$log" "E r4")))
}

@test "-s: a reader without -w is busy while a writer waits (it does not pass it); with -w it runs after the writer" {
  spawn -n r1 lotoc -s -L rw sh -c 'touch "$T/r1.in"; '"$(await "$T/r1.go")"
  local r1=$SPAWNED
  wait_for_file "$T/r1.in"
  spawn -n w lotoc -w -L rw bash -c "$STAMP_SNIPPET"' >"$T/w.start"'
  local writer=$SPAWNED
  wait_until 5 in_queue "$writer" "$T/rw.lock"
  [ "$(tickets "$T/rw.lock")" -eq 1 ]
  run --separate-stderr lotoc -s -L rw touch "$T/r2.ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/r2.ran" ]
  spawn -n r3 lotoc -s -w -L rw bash -c "$STAMP_SNIPPET"' >"$T/r3.start"'
  local r3=$SPAWNED
  wait_for_tickets "$T/rw.lock" 2
  [ ! -e "$T/r3.start" ]
  touch "$T/r1.go"
  wait_exit "$r1" 5
  wait_exit "$writer" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$r3" 5
  [ "$STATUS" -eq 0 ]
  (($(cat "$T/r3.start") >= $(cat "$T/w.start")))
  # everyone has left the queue
  [ "$(tickets "$T/rw.lock")" -eq 0 ]
}

@test "-s: a writer killed (SIGKILL) while waiting leaves a dead ticket that keeps no reader out" {
  spawn -n r1 lotoc -s -L rw sh -c 'touch "$T/r1.in"; '"$(await "$T/r1.go")"
  local r1=$SPAWNED
  wait_for_file "$T/r1.in"
  spawn -n w lotoc -w -L rw touch "$T/w.ran"
  local writer=$SPAWNED
  wait_until 5 in_queue "$writer" "$T/rw.lock"
  # while it waits, readers do not pass it
  run --separate-stderr lotoc -s -L rw true
  [ "$status" -eq 75 ]
  kill -KILL "$writer"
  wait_exit "$writer" 5
  [ "$STATUS" -eq 137 ]
  [ ! -e "$T/w.ran" ]
  # its ticket file is left behind, unlocked ...
  [ "$(tickets "$T/rw.lock")" -eq 1 ]
  # ... and a reader gets in beside r1 again, and clears it away
  run --separate-stderr lotoc -s -L rw sh -c 'echo in'
  [ "$status" -eq 0 ]
  [ "$output" = in ]
  [ "$(tickets "$T/rw.lock")" -eq 0 ]
  touch "$T/r1.go"
  wait_exit "$r1" 5
  [ "$STATUS" -eq 0 ]
}

# ---------------------------------------------------------------------------------------
# Slots

@test "slots 3, 10 waiting jobs: never more than 3 at once, all run, LOTO_SLOT in 0..2 and unique among holders" {
  local log="$T/slots.log" i pid
  local -a jobs=()
  for i in $(seq 1 10); do
    spawn -n "j$i" lotoc -w -L pool bash -c \
      'echo "S $1 ${LOTO_SLOT-unset} ${EPOCHREALTIME/[.,]/}" >>"$T/slots.log"; sleep 0.2; echo "E $1 ${LOTO_SLOT-unset} ${EPOCHREALTIME/[.,]/}" >>"$T/slots.log"' _ "j$i"
    jobs+=("$SPAWNED")
  done
  for pid in "${jobs[@]}"; do
    wait_exit "$pid" 15
    [ "$STATUS" -eq 0 ]
  done
  cat "$log" >&2
  [ "$(wc -l <"$log")" -eq 20 ]
  # each job started and ended once
  [ "$(awk '$1 == "S" { print $2 }' "$log" | sort -u | wc -l)" -eq 10 ]
  [ "$(awk '$1 == "E" { print $2 }' "$log" | sort -u | wc -l)" -eq 10 ]

  # In the order the lines were written: at most 3 holders, each on a slot 0..2 that no
  # other current holder has; and 3 at once was reached (the slots were used).
  run awk '
    $3 !~ /^[012]$/ { print "bad LOTO_SLOT " $3 " in: " $0; bad = 1 }
    $1 == "S" { n++; if (n > max) max = n
                if ($3 in busy) { print "slot " $3 " given twice at line " NR; bad = 1 }
                busy[$3] = $2 }
    $1 == "E" { n--; if (busy[$3] != $2) { print "slot " $3 " ended by " $2 " at line " NR; bad = 1 }
                delete busy[$3] }
    END { print "max at once: " max; if (max != 3) bad = 1; exit bad }' "$log"
  echo "$output"
  [ "$status" -eq 0 ]

  # The same from the times as intervals: at each start, how many [start, end) contain it
  run awk '
    $1 == "S" { s[$2] = $4 } $1 == "E" { e[$2] = $4 }
    END { for (j in s) { c = 0; for (k in s) if (s[k] <= s[j] && s[j] < e[k]) c++
                         if (c > 3) { print j " started with " c " holders"; bad = 1 } }
          exit bad }' "$log"
  echo "$output"
  [ "$status" -eq 0 ]
  lock_is_free "$T/pool.lock"
  lock_is_free "$T/pool.lock.1"
  lock_is_free "$T/pool.lock.2"
  [ ! -e "$T/pool.lock.3" ]
}

@test "slots 3: a 4th without -w is busy (75), -t times out, and takes the slot freed by a holder" {
  local i pid
  local -a holders=()
  for i in 1 2 3; do
    spawn -n "h$i" lotoc -L pool sh -c 'echo "$LOTO_SLOT" >"$T/h$1.slot"; '"$(await "$T/go.h$i")" _ "$i"
    holders+=("$SPAWNED")
    wait_for_file "$T/h$i.slot"
  done
  # three distinct slots, one lock file each
  [ "$(cat "$T"/h?.slot | sort -u | tr '\n' ' ')" = "0 1 2 " ]
  lock_is_held "$T/pool.lock"
  lock_is_held "$T/pool.lock.1"
  lock_is_held "$T/pool.lock.2"
  run --separate-stderr lotoc -L pool touch "$T/ran"
  [ "$status" -eq 75 ]
  [[ "$stderr" == *busy* ]]
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr lotoc -t 0.3 -L pool touch "$T/ran"
  t1=$(now_ms)
  [ "$status" -eq 75 ]
  ((t1 - t0 >= 295 && t1 - t0 < 1500 * SCALE))
  # -q: busy is quiet and exits 0 (as for a mutex)
  run --separate-stderr lotoc -q -L pool touch "$T/ran"
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [ ! -e "$T/ran" ]

  # a waiter gets the slot h2 lets go of, promptly
  spawn -n w lotoc -w -L pool bash -c "$STAMP_SNIPPET"' >"$T/w.start"; echo "$LOTO_SLOT" >"$T/w.slot"'
  local waiter=$SPAWNED
  wait_until 5 holds_flock "$waiter" # its ticket: it is waiting
  local freed
  freed="$(cat "$T/h2.slot")"
  t0=$(now_ms)
  touch "$T/go.h2"
  wait_exit "${holders[1]}" 5
  wait_exit "$waiter" 5
  [ "$STATUS" -eq 0 ]
  [ "$(cat "$T/w.slot")" = "$freed" ]
  echo "handoff of a freed slot: $(($(cat "$T/w.start") - t0)) ms" >&3
  (($(cat "$T/w.start") - t0 < 500 * SCALE))
  touch "$T/go.h1" "$T/go.h3"
  for pid in "${holders[0]}" "${holders[2]}"; do
    wait_exit "$pid" 5
    [ "$STATUS" -eq 0 ]
  done
}

@test "slots: LOTO_SLOT only with more than one slot; a stale LOTO_SLOT from outside is dropped" {
  LOTO_SLOT=7 run --separate-stderr lotoc -L rw sh -c 'echo "${LOTO_SLOT-unset}"'
  [ "$status" -eq 0 ]
  [ "$output" = unset ]
  LOTO_SLOT=7 run --separate-stderr lotoc -L pool sh -c 'echo "${LOTO_SLOT-unset}"'
  [ "$status" -eq 0 ]
  [ "$output" = 0 ]
}

@test "slots: auto is the number of online CPUs: that many hold at once, one more is busy" {
  local n i pid
  n="$(nproc)"
  run --separate-stderr lotoc --show-config -L cores
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qE "^\($CFG:[0-9]+\) slots cores = $n\$" <<<"$output"
  local -a holders=()
  for i in $(seq 1 "$n"); do
    spawn -n "c$i" lotoc -L cores sh -c 'echo "${LOTO_SLOT-unset}" >"$T/c$1.slot"; '"$(await "$T/cores.go")" _ "$i"
    holders+=("$SPAWNED")
    wait_for_file "$T/c$i.slot"
  done
  run --separate-stderr lotoc -L cores touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  touch "$T/cores.go"
  for pid in "${holders[@]}"; do
    wait_exit "$pid" 5
    [ "$STATUS" -eq 0 ]
  done
  # n distinct slots (LOTO_SLOT is set only when n > 1)
  if ((n > 1)); then
    [ "$(cat "$T"/c*.slot | sort -un | wc -l)" -eq "$n" ]
    [ "$(cat "$T"/c*.slot | sort -n | tail -1)" -eq $((n - 1)) ]
  fi
}

@test "slots: -s is a usage error (64); --list and --show-config show slots and queue" {
  run --separate-stderr lotoc -s -L pool touch "$T/ran"
  echo "$stderr"
  [ "$status" -eq 64 ]
  [[ "$stderr" == *slots* ]]
  [ ! -e "$T/ran" ]
  [ ! -e "$T/pool.lock" ]

  run --separate-stderr lotoc --list
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qE "^pool +$T/pool\.lock +.*3 slots" <<<"$output"
  # fifo is the default and goes without saying; queue: none shows as "unordered"
  grep -qE "^line +$T/line\.lock +no wait +" <<<"$output"
  not grep -qE "^line +.*unordered" <<<"$output"
  grep -qE "^rw +.*unordered" <<<"$output"
  not grep -qE "^rw +.*slots" <<<"$output"

  run --separate-stderr lotoc --show-config -s -L rw
  echo "$output"
  [ "$status" -eq 0 ]
  grep -qxF "(command line) mode = shared" <<<"$output"
  grep -qxF "(built-in) slots rw = 1" <<<"$output"
  grep -qE "^\($CFG:[0-9]+\) queue rw = none\$" <<<"$output"
  run --separate-stderr lotoc --show-config -L pool -L line
  echo "$output"
  grep -qxF "(built-in) mode = exclusive" <<<"$output"
  grep -qE "^\($CFG:[0-9]+\) slots pool = 3\$" <<<"$output"
  grep -qE "^\($CFG:[0-9]+\) queue line = fifo\$" <<<"$output"
}

# ---------------------------------------------------------------------------------------
# First come, first served

# start_queue N [OPTS...]: with line.lock held, starts N waiters one after another, each
# once the one before holds its (named) ticket; waiter i appends i to $T/order. Pids in $WAITERS
# (index i-1). OPTS go to every waiter; QUEUE_OPTS_<i> (if set) only to waiter i.
start_queue() {
  local n="$1" i opts
  shift
  WAITERS=()
  for i in $(seq 1 "$n"); do
    opts="QUEUE_OPTS_$i"
    # shellcheck disable=SC2086 # the per-waiter options are words
    spawn -n "q$i" lotoc -w ${!opts:-} "$@" -L line sh -c 'echo "$1" >>"$T/order"' _ "$i"
    WAITERS+=("$SPAWNED")
    wait_until 5 in_queue "$SPAWNED" "$T/line.lock"
  done
}

# queue_ran_in_order ORDER...: every waiter of start_queue ($WAITERS) exits 0 within 10 s,
# and the jobs ran in ORDER (their $T/order lines).
queue_ran_in_order() {
  local pid
  for pid in "${WAITERS[@]}"; do
    wait_exit "$pid" 10
    [ "$STATUS" -eq 0 ] || return 1
  done
  echo "order: $(tr '\n' ' ' <"$T/order")"
  [ "$(tr '\n' ' ' <"$T/order")" = "$* " ]
}

@test "fifo: 20 waiters started one after another run in that order" {
  spawn -n h lotoc -L line sh -c 'touch "$T/h.in"; '"$(await "$T/h.go")"
  local holder=$SPAWNED
  wait_for_file "$T/h.in"
  start_queue 20
  # the first three make their flock() call again, last first: the kernel's order is now
  # 4..20, 3, 2, 1; the queue's order is still 1..20
  requeue_in_kernel "${WAITERS[2]}" "${WAITERS[1]}" "${WAITERS[0]}"
  [ ! -e "$T/order" ]
  touch "$T/h.go"
  wait_exit "$holder" 5
  queue_ran_in_order $(seq 1 20)
  # everyone left the queue
  [ "$(tickets "$T/line.lock")" -eq 0 ]
  lock_is_free "$T/line.lock"
}

@test "fifo: waiters killed (SIGKILL), stopped (SIGTERM) or timed out (-t) while waiting hold nobody up" {
  spawn -n h lotoc -L line sh -c 'touch "$T/h.in"; '"$(await "$T/h.go")"
  local holder=$SPAWNED
  wait_for_file "$T/h.in"
  # waiter 10 gives up after 1.5 s; the rest wait
  QUEUE_OPTS_10="-t 1.5" start_queue 20
  local -a kill9=(1 7 13 20) kill15=(4 16) gone=(1 4 7 10 13 16 20) i
  # the head (1), some in the middle and the tail (20) die without a word
  for i in "${kill9[@]}"; do
    kill -KILL "${WAITERS[i - 1]}"
    wait_exit "${WAITERS[i - 1]}" 5
    [ "$STATUS" -eq 137 ]
  done
  for i in "${kill15[@]}"; do
    kill -TERM "${WAITERS[i - 1]}"
    wait_exit "${WAITERS[i - 1]}" 5
    [ "$STATUS" -eq 143 ]
  done
  wait_exit "${WAITERS[9]}" 5
  [ "$STATUS" -eq 75 ]
  [ ! -e "$T/order" ]
  # and two of the survivors near the front go to the back of the kernel's list
  requeue_in_kernel "${WAITERS[2]}" "${WAITERS[1]}"
  # the dead waiters' tickets may still lie there; the living ones certainly do
  (($(tickets "$T/line.lock") >= 13))

  local t0
  t0=$(now_ms)
  touch "$T/h.go"
  wait_exit "$holder" 5
  for i in $(seq 1 20); do
    [[ " ${gone[*]} " == *" $i "* ]] && continue
    wait_exit "${WAITERS[i - 1]}" 5
    [ "$STATUS" -eq 0 ]
  done
  echo "the 13 survivors ran in $(($(now_ms) - t0)) ms: $(tr '\n' ' ' <"$T/order")" >&3
  local want=""
  for i in $(seq 1 20); do
    [[ " ${gone[*]} " == *" $i "* ]] || want="$want$i "
  done
  [ "$(tr '\n' ' ' <"$T/order")" = "$want" ]
  # each dead ticket with a waiter behind it was removed by that waiter as it passed;
  # only the tail's is left
  [ "$(tickets "$T/line.lock")" -eq 1 ]

  # The tail's dead ticket is left (nobody came after it): a new queue passes it and
  # removes it, and nothing of the queue is left behind afterwards.
  spawn -n h2 lotoc -L line sh -c 'touch "$T/h2.in"; '"$(await "$T/h2.go")"
  local h2=$SPAWNED
  wait_for_file "$T/h2.in"
  spawn -n late lotoc -w -L line sh -c 'echo late >>"$T/order"'
  local late=$SPAWNED
  wait_until 5 holds_flock "$late"
  touch "$T/h2.go"
  wait_exit "$h2" 5
  wait_exit "$late" 5
  [ "$STATUS" -eq 0 ]
  [ "$(tail -n 1 "$T/order")" = late ]
  [ "$(tickets "$T/line.lock")" -eq 0 ]
  run ls -A "$T"
  echo "$output"
  not grep -E '^line\.lock\.[qt]' <<<"$output"
  lock_is_free "$T/line.lock"
}

@test "fifo: a newcomer does not pass a queued waiter while the lock changes hands" {
  # The head of the queue is slow to take the freed lock (here: stopped, as a waiter the
  # scheduler has not run yet). The lock is free for that moment, but the queue is not
  # empty: a newcomer with -w must queue behind the head, and one without -w is busy.
  spawn -n h lotoc -L line sh -c 'touch "$T/h.in"; '"$(await "$T/h.go")"
  local holder=$SPAWNED
  wait_for_file "$T/h.in"
  start_queue 2
  kill -STOP "${WAITERS[0]}"
  # stopped for real (state T): a waiter that has not yet acted on SIGSTOP when the lock
  # is released still takes it before it stops
  wait_until 5 proc_stopped "${WAITERS[0]}"
  touch "$T/h.go"
  wait_exit "$holder" 5
  [ "$STATUS" -eq 0 ]
  # the lock is free now, and waiter 1 (stopped) has not taken it
  lock_is_free "$T/line.lock"
  spawn -n late lotoc -w -L line sh -c 'echo late >>"$T/order"'
  local late=$SPAWNED
  _late_ran_or_queued() { [[ -e "$T/order" ]] || in_queue "$late" "$T/line.lock"; }
  wait_until 5 _late_ran_or_queued
  run --separate-stderr lotoc -L line sh -c 'echo nowait >>"$T/order"'
  echo "no -w: $status $stderr"
  kill -CONT "${WAITERS[0]}"
  local pid
  for pid in "${WAITERS[@]}" "$late"; do
    wait_exit "$pid" 5
    [ "$STATUS" -eq 0 ]
  done
  echo "order: $(tr '\n' ' ' <"$T/order")"
  [ "$(tr '\n' ' ' <"$T/order")" = "1 2 late " ]
  [ "$status" -eq 75 ]
}

@test "fifo: behind a flock(1) holder, loto waiters wait and then run in order; loto excludes flock(1)" {
  hold_lock "$T/line.lock"
  start_queue 10
  requeue_in_kernel "${WAITERS[1]}" "${WAITERS[0]}"
  [ ! -e "$T/order" ]
  release_lock
  queue_ran_in_order $(seq 1 10)
  # and a fifo loto holder keeps flock(1) out
  spawn -n h lotoc -L line sh -c 'touch "$T/h.in"; '"$(await "$T/h.go")"
  local holder=$SPAWNED
  wait_for_file "$T/h.in"
  run flock -n "$T/line.lock" true
  [ "$status" -eq 1 ]
  touch "$T/h.go"
  wait_exit "$holder" 5
  [ "$STATUS" -eq 0 ]
  run flock -n "$T/line.lock" true
  [ "$status" -eq 0 ]
}

@test "queue: fifo under defaults: applies to a plain -L path" {
  local cfg
  cfg="$(write_config "$(printf '%s\ndefaults:\n  queue: fifo\n' "$(base_config)")")"
  run --separate-stderr "$LOTO" --config "$cfg" --show-config -L "$T/p.lock"
  echo "$output"
  grep -qE "^\($cfg:[0-9]+\) queue $T/p\.lock = fifo\$" <<<"$output"
  spawn -n h "$LOTO" --config "$cfg" -L "$T/p.lock" sh -c 'touch "$T/h.in"; '"$(await "$T/h.go")"
  local holder=$SPAWNED i pid
  wait_for_file "$T/h.in"
  local -a waiters=()
  for i in 1 2 3 4 5 6; do
    spawn -n "p$i" "$LOTO" --config "$cfg" -w -L "$T/p.lock" sh -c 'echo "$1" >>"$T/order"' _ "$i"
    waiters+=("$SPAWNED")
    wait_until 5 in_queue "$SPAWNED" "$T/p.lock"
  done
  requeue_in_kernel "${waiters[1]}" "${waiters[0]}"
  touch "$T/h.go"
  wait_exit "$holder" 5
  for pid in "${waiters[@]}"; do
    wait_exit "$pid" 10
    [ "$STATUS" -eq 0 ]
  done
  [ "$(tr '\n' ' ' <"$T/order")" = "1 2 3 4 5 6 " ]
}

# ---------------------------------------------------------------------------------------
# Audit records (a private rsyslogd)

@test "records: mode=shared on a shared run, slot= on a slot, neither on a plain run" {
  syslog_setup
  local conf
  conf="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: true\n  facility: local3\nresources:\n  rw:\n    path: %s\n  pool:\n    path: %s\n    slots: 3\n' "$T" "$T/rw.lock" "$T/pool.lock")")"
  # pool: slot 0 is taken by a holder outside, so the run gets another slot
  spawn -n h0 "$LOTO" --config "$conf" -L pool sh -c 'echo "$LOTO_SLOT" >"$T/h0.slot"; '"$(await "$T/h0.go")"
  local h0=$SPAWNED
  wait_for_file "$T/h0.slot"
  run in_syslog bash -c '
    "$1" --config "$2" -s -L rw -- sh -c "exit 3"; [ $? -eq 3 ] || exit 91
    "$1" --config "$2" -L pool -- sh -c "echo \$LOTO_SLOT >\"\$T/run.slot\"" || exit 92
    "$1" --config "$2" -L rw -- true || exit 93
  ' _ "$LOTO" "$conf"
  touch "$T/h0.go"
  wait_exit "$h0" 5
  [ "$status" -eq 0 ]
  synced
  local acquired finished slot
  acquired="$(event_lines acquired)"
  finished="$(event_lines finished)"
  echo "$acquired"
  echo "$finished"
  [ "$(grep -c . <<<"$acquired")" -eq 3 ]
  [ "$(grep -c . <<<"$finished")" -eq 3 ]
  slot="$(cat "$T/run.slot")"
  [[ "$slot" == [12] ]]
  # the shared run
  grep -qE "^local3\.info loto\[[0-9]+\]: event=acquired resource=rw .*\bmode=shared( |$)" <<<"$acquired"
  grep -qE "^local3\.info loto\[[0-9]+\]: event=finished resource=rw .*\bstatus=3( |$)" <<<"$finished"
  grep -E "event=finished resource=rw .*\bstatus=3( |$)" <<<"$finished" | grep -qE "\bmode=shared( |$)"
  # the slot run: slot= in both records, no mode=
  grep -qE "event=acquired resource=pool .*\bslot=$slot( |$)" <<<"$acquired"
  grep -qE "event=finished resource=pool .*\bslot=$slot( |$)" <<<"$finished"
  not grep -qE "resource=pool .*mode=" <<<"$acquired"
  # the plain exclusive run: neither
  [ "$(grep -cE 'resource=rw ' <<<"$acquired")" -eq 2 ]
  [ "$(grep -E 'resource=rw ' <<<"$acquired" | grep -cv 'mode=shared')" -eq 1 ]
  not grep -qE "resource=rw .*slot=" <<<"$acquired$finished"
}

@test "fifo and slots: a run that waited in the queue hands the command its stdin, stdout and stderr" {
  printf 'line one\nline two\n' >"$T/in"
  local resource path
  for resource in line pool; do
    path="$T/$resource.lock"
    hold_lock "$path" "holder.$resource"
    # pool has 3 slots: hold the other two as well, so that the run waits
    if [[ "$resource" == pool ]]; then
      hold_lock "$path.1" pool.1
      hold_lock "$path.2" pool.2
    fi
    setsid "$LOTO" --config "$CFG" -w -L "$resource" -- sh -c 'cat; echo to-stderr >&2' \
      <"$T/in" >"$T/$resource.out" 2>"$T/$resource.err" &
    local waiter=$!
    echo "$waiter" >>"$T/.bgpids"
    # it waits with a ticket: its place in the queue
    wait_for_tickets "$path" 1
    wait_until 5 in_queue "$waiter" "$path"
    release_lock "$HOLDER"
    wait_exit "$waiter" 10
    [ "$STATUS" -eq 0 ]
    diff "$T/in" "$T/$resource.out"
    [ "$(cat "$T/$resource.err")" = to-stderr ]
    wait_for_tickets "$path" 0
  done
}

@test "fifo: things named like tickets that are not (a directory, a FIFO, a symlink, a number over 2^64, 21 digits) hold nobody up" {
  local lock="$T/line.lock" digits=00000000000000000001
  mkdir "$lock.q$digits"
  mkfifo "$lock.q${digits%1}2"
  ln -s /etc/passwd "$lock.q${digits%1}3"
  : >"$lock.q99999999999999999999" # 20 digits, no uint64: once "internal error: stoull"
  : >"$lock.q${digits}0"             # 21 digits: not a ticket either
  run --separate-stderr lotoc --list --json
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  # a free lock is taken at once, without -w (a run that saw a waiter would be busy: 75)
  run --separate-stderr lotoc -L line -- touch "$T/ran"
  [ "$status" -eq 0 ]
  [ -e "$T/ran" ]
  # a waiter behind a holder does not wait for them either once the holder is gone
  hold_lock "$lock"
  spawn -n w lotoc -w -L line -- touch "$T/ran2"
  wait_until 5 blocked "$SPAWNED"
  release_lock
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  [ -e "$T/ran2" ]
  # and they are left where they are (not loto's to remove)
  [ -d "$lock.q$digits" ]
  [ -p "$lock.q${digits%1}2" ]
  [ -L "$lock.q${digits%1}3" ]
  [ -f "$lock.q99999999999999999999" ]
  [ -f "$lock.q${digits}0" ] # an unlocked ticket would have been removed as dead
}

@test "slots: --list shows the holders of the N slot files only (a held pool.lock.3 of a pool of 3 is not a slot)" {
  hold_lock "$T/pool.lock.3" stray
  hold_lock "$T/pool.lock.2" slot2
  run --separate-stderr lotoc --list --json
  [ "$status" -eq 0 ]
  "$PY" -c '
import json, sys
pool = {r["name"]: r for r in json.load(sys.stdin)["resources"]}["pool"]
print(pool, file=sys.stderr)
assert [(h["pid"], h["slot"]) for h in pool["holders"]] == [(int(sys.argv[1]), 2)], pool
' "$HOLDER" <<<"$output"
}

@test "fifo: a non-ticket named between two waiters' tickets does not let the later one pass" {
  spawn -n h lotoc -L line sh -c 'touch "$T/h.in"; '"$(await "$T/h.go")"
  local holder=$SPAWNED
  wait_for_file "$T/h.in"
  start_queue 1
  local first=("$T"/line.lock.q[0-9]*)
  [ "${#first[@]}" -eq 1 ]
  # a directory numbered right after the first waiter's ticket: the second waiter's ticket
  # comes after it, so the second must look past it to find the first waiter
  local seq=${first[0]##*.q}
  mkdir "$T/line.lock.q$(printf '%020d' $((10#$seq + 1)))"
  spawn -n q2 lotoc -w -L line sh -c 'echo "$1" >>"$T/order"' _ 2
  WAITERS+=("$SPAWNED")
  wait_until 5 in_queue "$SPAWNED" "$T/line.lock"
  wait_until 5 blocked "$SPAWNED"
  # the first waiter makes its flock() call again: the kernel alone would now serve it last
  requeue_in_kernel "${WAITERS[0]}"
  touch "$T/h.go"
  wait_exit "$holder" 5
  queue_ran_in_order 1 2
}

# blocked_on PID: the inode PID waits for in flock(); held_by PID: the inode of the (one)
# flock PID holds.
blocked_on() { awk -v pid="$1" '$2 == "->" && $3 == "FLOCK" && $6 == pid { n = split($7, a, ":"); print a[n] }' /proc/locks; }
held_by() { awk -v pid="$1" '$2 == "FLOCK" && $5 == pid { n = split($6, a, ":"); print a[n] }' /proc/locks; }

@test "fifo: each waiter sleeps on the ticket of the one just ahead (a turn wakes one waiter, not all)" {
  spawn -n h lotoc -L line sh -c 'touch "$T/h.in"; '"$(await "$T/h.go")"
  local holder=$SPAWNED
  wait_for_file "$T/h.in"
  start_queue 5
  local i
  for i in 0 1 2 3 4; do
    wait_until 5 blocked "${WAITERS[i]}"
  done
  # the head waits for the lock itself
  [ "$(blocked_on "${WAITERS[0]}")" = "$(stat -c %i "$T/line.lock")" ]
  for i in 1 2 3 4; do
    echo "waiter $((i + 1)) waits for inode $(blocked_on "${WAITERS[i]}"), waiter $i holds $(held_by "${WAITERS[i - 1]}")"
    [ "$(blocked_on "${WAITERS[i]}")" = "$(held_by "${WAITERS[i - 1]}")" ]
  done
  touch "$T/h.go"
  wait_exit "$holder" 5
  queue_ran_in_order 1 2 3 4 5
}

@test "slots: a waiter stopped by SIGTERM or SIGINT exits 128+N, and its command never runs" {
  hold_lock "$T/pool.lock" p0
  hold_lock "$T/pool.lock.1" p1
  hold_lock "$T/pool.lock.2" p2
  local sig code
  for sig in TERM INT; do
    rm -f "$T/ran"
    spawn -n "w$sig" lotoc -w -L pool -- touch "$T/ran"
    wait_until 5 holds_flock "$SPAWNED" # its ticket: it waits
    wait_until 5 proc_sleeping "$SPAWNED" # in read() on its slots' inotify watch
    kill "-$sig" "$SPAWNED"
    wait_exit "$SPAWNED" 5
    code=$((128 + $(kill -l "$sig")))
    echo "SIG$sig: status $STATUS, want $code; $(cat "$T/w$sig.err")" >&2
    [ "$STATUS" -eq "$code" ]
    [ ! -e "$T/ran" ]
    grep -q "interrupted by SIG$sig while waiting for" "$T/w$sig.err"
  done
  wait_for_tickets "$T/pool.lock" 0
}


@test "slots: two slot resources in one run: LOTO_SLOT lists both slots, in -L order" {
  local cfg
  cfg="$(write_config "$(printf '%s\nlogging:\n  syslog: false\nresources:\n  a:\n    path: %s\n    slots: 3\n  b:\n    path: %s\n    slots: 2\n' \
    "lock_dir: $T" "$T/a.lock" "$T/b.lock")")"
  hold_lock "$T/a.lock" a0
  hold_lock "$T/a.lock.1" a1
  hold_lock "$T/b.lock" b0
  run --separate-stderr "$LOTO" --config "$cfg" -v -L a -L b -- sh -c 'echo "$LOTO_SLOT"'
  echo "$stderr" >&2
  [ "$status" -eq 0 ]
  [ "$output" = "2,1" ]
}
