#!/usr/bin/env bats
# Runtime limits (--max-runtime / max_runtime:, --kill-after / kill_after:), the overdue
# warning (warn_after:) and what loto does with processes the job leaves behind
# (--leftovers / leftovers: leave|wait|kill).
#
# The jobs write their pids and time stamps to files; the tests wait on those files and on
# pids, and compare times as intervals. The `sleep`s are inside the jobs being locked.

# Scripts given to sh -c / bash -c are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load syslog_helpers

setup() {
  common_setup
  CFG="$(write_config -n loto.yaml "$(printf '%s\nresources:\n  job:\n    path: %s\n  capped:\n    path: %s\n    max_runtime: 0.4\n    kill_after: 0.3\n' \
    "$(base_config)" "$T/job.lock" "$T/capped.lock")")"
  export CFG

  # stubborn.sh: ignores SIGTERM, and so do its child, grandchild and an orphan (SIG_IGN is
  # inherited); writes their pids, then its start time (ms) once they are all there.
  cat >"$T/stubborn.sh" <<'EOF'
#!/bin/bash
# nothing of the job may hold the caller's output open (bats' `run` waits for its end)
exec >/dev/null 2>&1
trap '' TERM
echo $$ >"$T/main.pid"
bash -c 'bash -c '\''echo $$ >"$T/gc.pid.tmp"; mv "$T/gc.pid.tmp" "$T/gc.pid"; while :; do sleep 0.05; done'\'' & echo $$ >"$T/child.pid"; wait' &
bash -c 'sleep 60 & echo $! >"$T/orphan.pid"'
while [ ! -e "$T/gc.pid" ]; do sleep 0.005; done
echo $((${EPOCHREALTIME/[.,]/} / 1000)) >"$T/start.tmp"
mv "$T/start.tmp" "$T/start"
while :; do sleep 0.05; done
EOF
  # lingering.sh: the main process dies of SIGTERM, its child ignores it.
  cat >"$T/lingering.sh" <<'EOF'
#!/bin/bash
exec >/dev/null 2>&1
echo $$ >"$T/main.pid"
bash -c 'trap "" TERM; echo $$ >"$T/gc.pid.tmp"; mv "$T/gc.pid.tmp" "$T/gc.pid"; while :; do sleep 0.05; done' &
while [ ! -e "$T/gc.pid" ]; do sleep 0.005; done
echo $((${EPOCHREALTIME/[.,]/} / 1000)) >"$T/start.tmp"
mv "$T/start.tmp" "$T/start"
while :; do sleep 0.05; done
EOF
  # leaves.sh MODE: exits 4 at once, leaving one process behind that ignores SIGTERM
  # (MODE stubborn), or dies of it (MODE meek), or exits once $T/lo.go exists (MODE go).
  # Its pid is in $T/lo.pid before the main process exits; the time of that exit (ms) in
  # $T/main.end.
  cat >"$T/leaves.sh" <<'EOF'
#!/bin/bash
# The leftover writes its pid with a builtin (one write: the file is complete once it is
# not empty) so that it has no child of its own when the main process exits.
case "$1" in
stubborn) bash -c 'trap "" TERM; echo $$ >"$T/lo.pid"; while :; do sleep 0.05; done' >/dev/null 2>&1 & ;;
meek) bash -c 'echo $$ >"$T/lo.pid"; exec sleep 60' >/dev/null 2>&1 & ;;
go) bash -c 'echo $$ >"$T/lo.pid"; while [ ! -e "$T/lo.go" ]; do sleep 0.005; done; echo $((${EPOCHREALTIME/[.,]/} / 1000)) >"$T/lo.end"' >/dev/null 2>&1 & ;;
esac
while [ ! -s "$T/lo.pid" ]; do sleep 0.005; done
echo $((${EPOCHREALTIME/[.,]/} / 1000)) >"$T/main.end"
exit 4
EOF
  chmod +x "$T/stubborn.sh" "$T/lingering.sh" "$T/leaves.sh"
}

# Kills what the jobs left behind (the pids they wrote, if they still run with this
# test's $T in their environment: never a reused pid), then the spawned groups.
teardown() {
  local f pid
  for f in "$T"/*.pid; do
    [[ -f "$f" ]] || continue
    pid="$(cat "$f" 2>/dev/null)"
    [[ "$pid" =~ ^[0-9]+$ ]] || continue
    if { tr '\0' '\n' <"/proc/$pid/environ"; } 2>/dev/null | grep -qxF "T=$T"; then
      kill -KILL "$pid" 2>/dev/null || true
    fi
  done
  common_teardown
}

pid_of() { cat "$T/$1.pid"; }
alive() { not proc_gone "$1"; }

# record_field RECORD KEY: the value of " KEY=" in RECORD (up to the next space).
record_field() { grep -oE " $2=[^ ]*" <<<"$1" | head -n 1 | cut -d= -f2-; }

syslog_conf() {
  write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: true\n  facility: local3\nresources:\n  job:\n    path: %s\n%s' "$T" "$T/job.lock" "${1:-}")"
}

# ---------------------------------------------------------------------------------------
# Maximum runtime

@test "--max-runtime: a job ignoring SIGTERM, with a grandchild and an orphan doing the same, is gone within kill_after + 1 s; exit 124; lock free" {
  local t0
  t0=$(now_ms) # before loto starts the job: the deadline is after t0 + 500 ms
  spawn -n job lotoc --max-runtime 0.5 --kill-after 0.5 -L job "$T/stubborn.sh"
  local loto_pid=$SPAWNED
  wait_for_file "$T/start"
  wait_for_content "$T/orphan.pid"
  local p pids
  pids="$(pid_of main) $(pid_of child) $(pid_of gc) $(pid_of orphan)"
  for p in $pids; do alive "$p"; done
  # the orphan's parent is gone: loto (the subreaper) adopted it
  wait_until 2 test "$(awk '{ print $4 }' "/proc/$(pid_of orphan)/stat")" = "$loto_pid"

  wait_exit "$loto_pid" 6
  local end
  end=$(now_ms)
  [ "$STATUS" -eq 124 ]
  # right after loto exits: every process of the job is gone and the lock is free
  for p in $pids; do proc_gone "$p"; done
  lock_is_free "$T/job.lock"
  local ran=$((end - t0))
  echo "job killed after $ran ms (deadline 500 ms, SIGKILL at 1000 ms)" >&3
  # nothing died of SIGTERM: SIGKILL came kill_after past the deadline, all gone by +1 s
  # (+100 ms for starting loto)
  ((ran >= 1000 && ran <= 2100 * SCALE))
  grep -q "maximum runtime of 500ms" "$T/job.err"
  grep -q "SIGKILL" "$T/job.err"
}

@test "--max-runtime: SIGTERM reaches a grandchild while its parent still runs (not only once it is orphaned)" {
  # main shrugs SIGTERM off (a trap, so its children may trap it themselves); its child
  # notes its SIGTERM and exits.
  spawn -n job lotoc --max-runtime 0.3 --kill-after 2 -L job bash -c '
    trap true TERM
    bash -c '\''trap "touch \"\$T/gc.term\"; exit 0" TERM; echo $$ >"$T/gc.pid"; while :; do sleep 0.05; done'\'' &
    while [ ! -s "$T/gc.pid" ]; do sleep 0.005; done
    touch "$T/start"
    while :; do sleep 0.05; done'
  local loto_pid=$SPAWNED
  wait_for_file "$T/start"
  # SIGTERM at 0.3 s; SIGKILL only at 2.3 s
  wait_for_file "$T/gc.term" 1.5
  wait_exit "$loto_pid" 5
  [ "$STATUS" -eq 124 ]
}

@test "--max-runtime within 16 descriptors: the same stubborn job is gone in full (nothing kept open per process)" {
  spawn -n job bash -c 'ulimit -n 16 && exec "$0" "$@"' "$LOTO" --config "$CFG" \
    --max-runtime 0.3 --kill-after 0.3 -L job "$T/stubborn.sh"
  local loto_pid=$SPAWNED
  wait_for_file "$T/start"
  wait_for_content "$T/orphan.pid"
  local p pids
  pids="$(pid_of main) $(pid_of child) $(pid_of gc) $(pid_of orphan)"
  wait_exit "$loto_pid" 6
  [ "$STATUS" -eq 124 ]
  for p in $pids; do proc_gone "$p"; done
  lock_is_free "$T/job.lock"
}

@test "--max-runtime: the lock stays held (even with -o) until the last process of the job is gone" {
  local t0
  t0=$(now_ms)
  spawn -n job lotoc -o --max-runtime 0.4 --kill-after 0.8 -L job "$T/lingering.sh"
  local loto_pid=$SPAWNED
  wait_for_file "$T/start"
  local main gc
  main="$(pid_of main)"
  gc="$(pid_of gc)"
  # at the deadline the main process dies of SIGTERM; its child ignores it
  wait_until 3 proc_gone "$main"
  local t_main
  t_main=$(now_ms)
  alive "$gc"
  alive "$loto_pid"
  # loto (only loto: -o) still holds the lock while the child lives
  lock_is_held "$T/job.lock"
  run --separate-stderr lotoc -L job true
  [ "$status" -eq 75 ]
  echo "main died $((t_main - t0)) ms in" >&2
  ((t_main - t0 >= 400))
  wait_exit "$loto_pid" 5
  local end
  end=$(now_ms)
  [ "$STATUS" -eq 124 ]
  proc_gone "$gc"
  lock_is_free "$T/job.lock"
  local ran=$((end - t0))
  echo "loto exited $ran ms in (deadline 400 ms, SIGKILL at 1200 ms)" >&3
  ((ran >= 1200 && ran <= 2300 * SCALE))
}

@test "--max-runtime: a job that exits on SIGTERM ends at the deadline (124); one that finishes in time passes its status" {
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr lotoc --max-runtime 0.4 -L job sleep 30
  t1=$(now_ms)
  echo "status $status after $((t1 - t0)) ms: $stderr"
  [ "$status" -eq 124 ]
  # SIGTERM was enough: long before the default kill_after (10 s)
  ((t1 - t0 >= 400 && t1 - t0 < 1400 * SCALE))
  [[ "$stderr" == *"maximum runtime of 400ms"*"SIGTERM"* ]]
  lock_is_free "$T/job.lock"

  t0=$(now_ms)
  run --separate-stderr lotoc --max-runtime 5 -L job sh -c 'echo done; exit 3'
  t1=$(now_ms)
  [ "$status" -eq 3 ]
  [ "$output" = "done" ]
  [ -z "$stderr" ]
  ((t1 - t0 < 1500 * SCALE))
  run --separate-stderr lotoc --max-runtime 5 -L job true
  [ "$status" -eq 0 ]
}

@test "while the job runs loto sleeps: at most 5 CPU ticks and 1 context switch over 1 s, without and with a runtime limit and a warning" {
  # warn_after comes from the config only
  write_config -n warn.yaml "$(printf '%s\nresources:\n  w:\n    path: %s\n    warn_after: 60\n' "$(base_config)" "$T/w.lock")" >/dev/null
  local run ticks switches
  for run in "--config $CFG -L job" "--config $CFG --max-runtime 60 -L job" \
    "--config $CFG --leftovers kill -L job" "--config $T/warn.yaml -L w"; do
    rm -f "$T/started"
    # shellcheck disable=SC2086 # the options are words
    spawn -n job loto $run sh -c 'touch "$0"; sleep 1.5' "$T/started"
    wait_for_file "$T/started"
    switches="$(context_switches "$SPAWNED")"
    ticks="$(cpu_ticks_in "$SPAWNED" 1)"
    switches=$(($(context_switches "$SPAWNED") - switches))
    echo "loto $run: $ticks CPU ticks and $switches context switches over 1 s of the job" >&2
    ((ticks <= 5))
    ((switches <= 1)) # never woken up: no timer while nothing is due
    wait_exit "$SPAWNED" 5
    [ "$STATUS" -eq 0 ]
  done
}

@test "--max-runtime counts from the start of the job: time spent waiting for the lock does not count" {
  # the holder keeps the lock 1 s (a sleep inside the locked job)
  spawn -n h lotoc -L job sh -c 'touch "$T/h.in"; sleep 1'
  local holder=$SPAWNED
  wait_for_file "$T/h.in"
  # the waiter waits most of that second, then runs 0.3 s under a 0.6 s limit
  spawn -n w lotoc -v -w --max-runtime 0.6 -L job sh -c 'sleep 0.3; echo "ran in time" >"$T/w.out"'
  local waiter=$SPAWNED
  wait_exit "$holder" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$waiter" 5
  cat "$T/w.err"
  [ "$STATUS" -eq 0 ]
  # it did wait longer than its limit (loto's own count)
  local waited
  waited="$(grep -oE 'acquired .* after [0-9]+ ms' "$T/w.err" | grep -oE '[0-9]+ ms' | cut -d' ' -f1)"
  ((waited >= 600))
  [ "$(cat "$T/w.out")" = "ran in time" ]
}

@test "max_runtime and kill_after from the resource's config: 124 within kill_after + 1 s; the command line overrides them" {
  run --separate-stderr lotoc --show-config -L capped
  echo "$output"
  grep -qE "^\($CFG:[0-9]+\) max_runtime = 400ms\$" <<<"$output"
  grep -qE "^\($CFG:[0-9]+\) kill_after = 300ms\$" <<<"$output"
  grep -qxF "(built-in) warn_after = none" <<<"$output"
  grep -qxF "(built-in) leftovers = leave" <<<"$output"
  run --separate-stderr lotoc --show-config --max-runtime 2m --kill-after 5 --leftovers kill -L capped
  echo "$output"
  grep -qxF "(command line) max_runtime = 2m" <<<"$output"
  grep -qxF "(command line) kill_after = 5s" <<<"$output"
  grep -qxF "(command line) leftovers = kill" <<<"$output"
  run --separate-stderr lotoc --show-config -L job
  grep -qxF "(built-in) max_runtime = none" <<<"$output"
  grep -qxF "(built-in) kill_after = 10s" <<<"$output"

  local t0
  t0=$(now_ms)
  spawn -n job lotoc -L capped "$T/stubborn.sh"
  wait_for_file "$T/start"
  wait_exit "$SPAWNED" 5
  local ran=$(($(now_ms) - t0))
  [ "$STATUS" -eq 124 ]
  echo "stopped after $ran ms (deadline 400, SIGKILL at 700)" >&3
  ((ran >= 700 && ran <= 1800 * SCALE))
  proc_gone "$(pid_of gc)"
  proc_gone "$(pid_of orphan)"
  lock_is_free "$T/capped.lock"
}

@test "records: event=overrun (err) with stopped_with and max_runtime_ms; no finished record" {
  syslog_setup
  local conf
  conf="$(syslog_conf)"
  run in_syslog bash -c '
    "$1" --config "$2" --max-runtime 0.3 --kill-after 0.3 -L job -- "$T/stubborn.sh"; echo $? >"$T/rc.1"
    "$1" --config "$2" --max-runtime 0.3 -L job -- sleep 30; echo $? >"$T/rc.2"
  ' _ "$LOTO" "$conf"
  [ "$status" -eq 0 ]
  synced
  [ "$(cat "$T/rc.1")" -eq 124 ]
  [ "$(cat "$T/rc.2")" -eq 124 ]
  local overrun
  overrun="$(event_lines overrun)"
  echo "$overrun"
  [ "$(grep -c . <<<"$overrun")" -eq 2 ]
  [ "$(grep -c '^local3\.err loto\[[0-9]*\]: event=overrun resource=job ' <<<"$overrun")" -eq 2 ]
  local first second
  first="$(sed -n 1p <<<"$overrun")"
  second="$(sed -n 2p <<<"$overrun")"
  [ "$(record_field "$first" stopped_with)" = SIGKILL ]
  [ "$(record_field "$second" stopped_with)" = SIGTERM ]
  [ "$(record_field "$first" max_runtime_ms)" = 300 ]
  [ "$(record_field "$second" status)" = 143 ]
  [ -z "$(event_lines finished)" ]
  [ "$(event_lines acquired | grep -c .)" -eq 2 ]
}

# ---------------------------------------------------------------------------------------
# warn_after

@test "warn_after: one event=overdue warning while the job runs on; its status passes; none when it ends in time" {
  syslog_setup
  local conf
  conf="$(syslog_conf "$(printf '    warn_after: 0.2\n')")"
  run --separate-stderr "$LOTO" --config "$conf" --show-config -L job
  grep -qE "^\($conf:[0-9]+\) warn_after = 200ms\$" <<<"$output"
  run in_syslog bash -c '
    "$1" --config "$2" -v -L job -- sh -c "echo \$\$ >\"\$T/slow.pid\"; sleep 0.9; exit 5" 2>"$T/slow.err"; echo $? >"$T/rc.slow"
    "$1" --config "$2" -L job -- sh -c "exit 6"; echo $? >"$T/rc.quick"
  ' _ "$LOTO" "$conf"
  [ "$status" -eq 0 ]
  synced
  [ "$(cat "$T/rc.slow")" -eq 5 ]
  [ "$(cat "$T/rc.quick")" -eq 6 ]
  grep -q "held the lock for over 200ms and runs on" "$T/slow.err"
  local overdue
  overdue="$(event_lines overdue)"
  echo "$overdue"
  [ "$(grep -c . <<<"$overdue")" -eq 1 ]
  [[ "$overdue" == "local3.warning loto["*"]: event=overdue resource=job "* ]]
  [ "$(record_field "$overdue" pid)" = "$(cat "$T/slow.pid")" ]
  [ "$(record_field "$overdue" warn_after)" = 200ms ]
  local held
  held="$(record_field "$overdue" held_ms)"
  ((held >= 200 && held < 900))
  # both ran to their end: two finished records with their statuses
  local finished
  finished="$(event_lines finished)"
  [ "$(grep -c . <<<"$finished")" -eq 2 ]
  grep -q ' status=5 ' <<<"$finished"
  grep -q ' status=6 ' <<<"$finished"
  [ -z "$(event_lines overrun)" ]
}

# ---------------------------------------------------------------------------------------
# Leftovers

@test "leftovers leave (default): loto exits with the main status while the leftover runs on, holding the inherited lock" {
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr lotoc -v -L job "$T/leaves.sh" meek
  t1=$(now_ms)
  echo "$stderr"
  [ "$status" -eq 4 ]
  ((t1 - t0 < 2000 * SCALE))
  local lo
  lo="$(pid_of lo)"
  alive "$lo"
  [[ "$stderr" == *"left 1 process(es) running (left running): pid $lo: "* ]]
  # it inherited the lock (inherit_lock: true): still held
  lock_is_held "$T/job.lock"
  kill -KILL "$lo"
  wait_until 2 lock_is_free "$T/job.lock"

  # --leftovers leave with -o: loto exits and the lock is free though the leftover runs
  rm -f "$T/lo.pid"
  run --separate-stderr lotoc -o --leftovers leave -L job "$T/leaves.sh" meek
  [ "$status" -eq 4 ]
  lo="$(pid_of lo)"
  alive "$lo"
  lock_is_free "$T/job.lock"
}

@test "leftovers wait: loto holds the lock until the leftover exits, then exits with the main status" {
  spawn -n job lotoc -v -o --leftovers wait -L job "$T/leaves.sh" go
  local loto_pid=$SPAWNED
  wait_until 5 test -s "$T/lo.pid"
  local lo
  lo="$(pid_of lo)"
  # loto has seen the main process exit and the leftover
  wait_until 5 grep -qE "left [0-9]+ process\(es\) running \(loto holds the lock until they exit\): pid $lo: " "$T/job.err"
  alive "$loto_pid"
  alive "$lo"
  # -o: only loto holds the lock, and it still does
  lock_is_held "$T/job.lock"
  run --separate-stderr lotoc -L job true
  [ "$status" -eq 75 ]
  touch "$T/lo.go"
  wait_exit "$loto_pid" 5
  [ "$STATUS" -eq 4 ]
  [ -e "$T/lo.end" ]
  proc_gone "$lo"
  lock_is_free "$T/job.lock"
  echo "loto waited $(($(cat "$T/lo.end") - $(cat "$T/main.end"))) ms for the leftover" >&3
}

@test "leftovers wait: of two leftovers, the first to exit changes nothing: one leftover line, the lock held until the last" {
  # Each leftover writes its pid, then runs until its file $T/NAME.go exists.
  local leave='bash -c "echo \$\$ >$T/$1.pid; while [ ! -e $T/$1.go ]; do sleep 0.005; done" >/dev/null 2>&1 &'
  spawn -n job lotoc -v -o --leftovers wait -L job bash -c "
    set -- a; $leave
    set -- b; $leave
    while [ ! -s $T/a.pid ] || [ ! -s $T/b.pid ]; do sleep 0.005; done
    exit 4"
  local loto_pid=$SPAWNED
  # (2 and their sleeps of the moment)
  wait_until 5 grep -qE "left [0-9]+ process\(es\) running \(loto holds the lock until they exit\)" "$T/job.err"
  local a b
  a="$(pid_of a)"
  b="$(pid_of b)"
  touch "$T/a.go"
  wait_until 5 test ! -e "/proc/$a" # reaped by loto, which has looked at what is left
  alive "$loto_pid"
  lock_is_held "$T/job.lock"
  touch "$T/b.go"
  wait_exit "$loto_pid" 5
  [ "$STATUS" -eq 4 ]
  proc_gone "$b"
  lock_is_free "$T/job.lock"
  cat "$T/job.err"
  [ "$(grep -c "process(es) running" "$T/job.err")" -eq 1 ]
}

@test "leftovers wait: SIGTERM to loto while it waits reaches the leftover; loto exits with the main status" {
  spawn -n job lotoc -v --leftovers wait -L job "$T/leaves.sh" meek
  local loto_pid=$SPAWNED
  wait_until 5 grep -qF "left 1 process(es) running" "$T/job.err"
  local lo
  lo="$(pid_of lo)"
  alive "$lo"
  kill -TERM "$loto_pid"
  wait_exit "$loto_pid" 5
  [ "$STATUS" -eq 4 ]
  proc_gone "$lo"
  lock_is_free "$T/job.lock"
}

# run_leaving COUNT SCRIPT: loto -v --leftovers kill runs `sh -c SCRIPT`, which must exit 0
# and leave COUNT processes behind; loto's line about them goes to $LEFTOVERS.
run_leaving() {
  run --separate-stderr lotoc -v --leftovers kill --kill-after 0.2 -L job sh -c "$2"
  echo "$stderr"
  [ "$status" -eq 0 ]
  LEFTOVERS="$(grep -F "left $1 process(es) running" <<<"$stderr")"
}

@test "leftovers: of 12 processes left behind the first 10 by pid are listed and the rest counted" {
  run_leaving 12 'for i in 1 2 3 4 5 6 7 8 9 10 11 12; do sleep 60 >/dev/null 2>&1 & done; exit 0'
  [[ "$LEFTOVERS" == *"): pid "*", and 2 more" ]]
  local pids
  pids="$(grep -oE '(: |, )pid [0-9]+: ' <<<"$LEFTOVERS" | grep -oE '[0-9]+')"
  [ "$(wc -l <<<"$pids")" -eq 10 ]
  sort -n -c <<<"$pids" # lowest first
}

@test "leftovers: a leftover's own children are listed too" {
  # The leftover (bash, loto's child once orphaned) runs a sleep of its own: loto's
  # grandchild, which the record must name as well.
  run_leaving 2 'bash -c "sleep 60 & echo \$! >$T/gc.pid; wait" >/dev/null 2>&1 & while [ ! -s "$T/gc.pid" ]; do sleep 0.005; done; exit 0'
  # (its command line may still be bash's: the fork may not have reached exec yet)
  [[ "$LEFTOVERS" == *"pid $(cat "$T/gc.pid"): "* ]]
}

@test "leftovers kill: a leftover ignoring SIGTERM is killed after kill_after; loto exits with the main status" {
  spawn -n job lotoc -v --leftovers kill --kill-after 0.5 -L job "$T/leaves.sh" stubborn
  local loto_pid=$SPAWNED
  wait_for_file "$T/main.end"
  local lo
  lo="$(pid_of lo)"
  wait_exit "$loto_pid" 5
  local end
  end=$(now_ms)
  [ "$STATUS" -eq 4 ]
  proc_gone "$lo"
  lock_is_free "$T/job.lock"
  local took=$((end - $(cat "$T/main.end")))
  echo "leftover killed $took ms after the main exit (kill_after 500 ms)" >&3
  ((took >= 450 && took <= 1500 * SCALE))
  grep -qE "left [0-9]+ process\(es\) running \(loto stops them\): pid $lo: " "$T/job.err"

  # one that dies of SIGTERM goes at once, long before kill_after
  rm -f "$T/lo.pid" "$T/main.end"
  spawn -n meek lotoc --leftovers kill --kill-after 5 -L job "$T/leaves.sh" meek
  loto_pid=$SPAWNED
  wait_for_file "$T/main.end"
  lo="$(pid_of lo)"
  wait_exit "$loto_pid" 5
  end=$(now_ms)
  [ "$STATUS" -eq 4 ]
  proc_gone "$lo"
  ((end - $(cat "$T/main.end") < 1500 * SCALE))
}

@test "leftovers: config key per resource; nothing left behind means no leftover message and no wait" {
  local cfg
  cfg="$(write_config "$(printf '%s\nresources:\n  job:\n    path: %s\n    leftovers: wait\n' "$(base_config)" "$T/job.lock")")"
  run --separate-stderr "$LOTO" --config "$cfg" --show-config -L job
  grep -qE "^\($cfg:[0-9]+\) leftovers = wait\$" <<<"$output"
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr "$LOTO" --config "$cfg" -v -L job sh -c 'sleep 0.1; exit 7'
  t1=$(now_ms)
  [ "$status" -eq 7 ]
  [[ "$stderr" != *"left "* ]]
  ((t1 - t0 < 1500 * SCALE))
  # a child that was waited for is no leftover either
  run --separate-stderr "$LOTO" --config "$cfg" -v -L job sh -c 'sleep 0.1 & wait; exit 0'
  [ "$status" -eq 0 ]
  [[ "$stderr" != *"left "* ]]
}

@test "records: event=leftover (warning) with pids, processes and the mode; finished gains leftovers_stopped_with; none without leftovers" {
  syslog_setup
  local conf
  conf="$(syslog_conf)"
  run in_syslog bash -c '
    "$1" --config "$2" -L job -- "$T/leaves.sh" meek; echo $? >"$T/rc.leave"
    # the leftover holds the inherited lock until it is gone: the next runs wait (-w)
    mv "$T/lo.pid" "$T/leave.pid"; kill "$(cat "$T/leave.pid")"
    "$1" --config "$2" -w --leftovers kill --kill-after 0.3 -L job -- "$T/leaves.sh" stubborn; echo $? >"$T/rc.kill"
    mv "$T/lo.pid" "$T/kill.pid"
    "$1" --config "$2" -w --leftovers wait -L job -- sh -c "exit 0"; echo $? >"$T/rc.none"
  ' _ "$LOTO" "$conf"
  [ "$status" -eq 0 ]
  synced
  [ "$(cat "$T/rc.leave")" -eq 4 ]
  [ "$(cat "$T/rc.kill")" -eq 4 ]
  [ "$(cat "$T/rc.none")" -eq 0 ]
  local leftover
  leftover="$(event_lines leftover)"
  echo "$leftover"
  [ "$(grep -c . <<<"$leftover")" -eq 2 ]
  local leave kill
  leave="$(sed -n 1p <<<"$leftover")"
  kill="$(sed -n 2p <<<"$leftover")"
  [[ "$leave" == "local3.warning loto["*"]: event=leftover resource=job "* ]]
  [ "$(record_field "$leave" pids)" = "$(cat "$T/leave.pid")" ]
  [[ "$leave" == *" processes=\"pid $(cat "$T/leave.pid"): "* ]]
  [ "$(record_field "$leave" leftovers)" = leave ]
  # the stubborn leftover, and maybe the sleep it runs now and then
  [[ ",$(record_field "$kill" pids)," == *",$(cat "$T/kill.pid"),"* ]]
  [[ "$kill" == *" processes=\"pid $(cat "$T/kill.pid"): "* || "$kill" == *", pid $(cat "$T/kill.pid"): "* ]]
  [ "$(record_field "$kill" leftovers)" = kill ]
  local finished
  finished="$(event_lines finished)"
  echo "$finished"
  [ "$(grep -c . <<<"$finished")" -eq 3 ]
  [ "$(record_field "$(sed -n 1p <<<"$finished")" leftovers_stopped_with)" = "" ]
  [ "$(record_field "$(sed -n 2p <<<"$finished")" leftovers_stopped_with)" = SIGKILL ]
  [ "$(record_field "$(sed -n 2p <<<"$finished")" status)" = 4 ]
  [ "$(record_field "$(sed -n 3p <<<"$finished")" leftovers_stopped_with)" = "" ]
}

# ---------------------------------------------------------------------------------------
# Invalid settings

# conf_error TEXT POS REGEX: a config holding TEXT is refused with 78 at FILE:POS.
conf_error() {
  local f
  f="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: false\n%b' "$T" "$1")")"
  run --separate-stderr "$LOTO" --config "$f" -L job touch "$T/ran"
  echo "status=$status stderr=$stderr" >&2
  [ "$status" -eq 78 ]
  [[ "$stderr" == "loto: error: $f:$2: "* ]]
  [[ "$stderr" =~ $3 ]]
  [ ! -e "$T/ran" ]
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 78 ]
}

@test "config errors: bad max_runtime, kill_after, warn_after, leftovers give 78 at FILE:LINE:COL" {
  conf_error 'resources:\n  job:\n    max_runtime: 0\n' 6:18 "max_runtime"
  conf_error 'resources:\n  job:\n    max_runtime: soon\n' 6:18 "soon"
  conf_error 'defaults:\n  kill_after: -1\n' 5:15 "kill_after|-1"
  conf_error 'resources:\n  job:\n    warn_after: [1]\n' 6:17 "warn_after"
  conf_error 'defaults:\n  leftovers: abandon\n' 5:14 "abandon.*(leave|wait|kill)"
  conf_error 'resources:\n  job:\n    leftover: kill\n' 6:5 "did you mean 'leftovers'"
}

@test "config errors: bad slots and queue give 78 at FILE:LINE:COL; slots only per resource" {
  conf_error 'resources:\n  job:\n    slots: 0\n' 6:12 "slots"
  conf_error 'resources:\n  job:\n    slots: 129\n' 6:12 "129"
  conf_error 'resources:\n  job:\n    slots: many\n' 6:12 "many"
  conf_error 'resources:\n  job:\n    queue: lifo\n' 6:12 "lifo.*(fifo|none)"
  conf_error 'defaults:\n  slots: 2\n' 5:3 "per resource"
}

@test "command line errors give 64: --max-runtime, --kill-after, --leftovers" {
  local args
  for args in "--max-runtime 0" "--max-runtime abc" "--max-runtime" "--kill-after x" "--leftovers bogus" "--leftovers"; do
    # shellcheck disable=SC2086 # the words are the options
    run --separate-stderr lotoc $args -L job touch "$T/ran"
    echo "$args: status=$status stderr=$stderr"
    [ "$status" -eq 64 ]
    [ -n "$stderr" ]
    [ ! -e "$T/ran" ]
  done
  # kill_after 0 is allowed (SIGKILL with the SIGTERM)
  run --separate-stderr lotoc --max-runtime 0.2 --kill-after 0 -L job "$T/stubborn.sh"
  [ "$status" -eq 124 ]
}
