#!/usr/bin/env bats
# The live waiting line: while loto waits for a lock and its stderr is a terminal, one line
# rewritten in place about once a second ("\r\e[K" + text), erased before anything else is
# written; nothing of it with -q, TERM=dumb, or stderr that is not a terminal. Runs loto on
# a real pseudo-terminal (pty_run.py), which records every byte loto and the command write.

load helpers

setup() {
  common_setup
  LOCK="$T/line.lock"
  OUT="$T/pty.out"
  PTY_RUN="$BATS_TEST_DIRNAME/pty_run.py"
}

teardown() {
  common_teardown
}

# status_lines: the texts the line showed, one a line, in order.
status_lines() {
  "$PY" - "$OUT" <<'PY'
import sys
data = open(sys.argv[1], "rb").read().decode("utf-8", "replace")
for part in data.split("\r\x1b[K")[1:]:
    if part.startswith("loto: waiting "):
        print(part)
PY
}

has_updates() { (($(status_lines | sort -u | wc -l) >= "$1")); }

@test "on a terminal: the line shows the lock, the holder, the wait and the time left, and updates" {
  hold_lock "$LOCK"
  spawn -n waiter env TERM=xterm "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" -t 30 -L "$LOCK" -- echo RAN
  wait_until 10 has_updates 3
  release_lock
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  run status_lines
  echo "$output" >&2
  [[ "${lines[0]}" == "loto: waiting 0s (30s left) for lock '$LOCK', held by pid $HOLDER: "* ]]
  [[ "$output" == *"loto: waiting 1s (29s left) for lock '$LOCK'"* ]]
  [[ "$output" == *"loto: waiting 2s (28s left) for lock '$LOCK'"* ]]
}

@test "the line is erased before the command's first byte and before loto's own messages" {
  hold_lock "$LOCK"
  spawn -n waiter env TERM=xterm "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" -w -L "$LOCK" -- echo RAN
  wait_until 10 has_updates 2
  release_lock
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  # Everything after the last status text: its erasure, then the command's output.
  run "$PY" -c 'import sys
data = open(sys.argv[1], "rb").read()
last = data.rindex(b"loto: waiting ")
tail = data[last:]
print(repr(tail[tail.index(b"\r"):]))' "$OUT"
  [ "$output" = "b'\\r\\x1b[KRAN\\r\\n'" ]

  # A timeout: the message starts on a clean line.
  : >"$OUT"
  hold_lock "$LOCK"
  run env TERM=xterm "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" -t 1.2 -L "$LOCK" -- echo RAN
  [ "$status" -eq 75 ]
  run "$PY" -c 'import sys
data = open(sys.argv[1], "rb").read()
i = data.index(b"loto: timed out")
print(repr(data[i - 4:i]))' "$OUT"
  [ "$output" = "b'\\r\\x1b[K'" ]
  release_lock
}

@test "no line with -q, with TERM=dumb, or when stderr is not a terminal" {
  hold_lock "$LOCK"
  run env TERM=xterm "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" -q -t 1.2 -L "$LOCK" -- echo RAN
  [ "$status" -eq 0 ]
  run env TERM=dumb "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" -t 1.2 -L "$LOCK" -- echo RAN
  [ "$status" -eq 75 ]
  run grep -c $'\e\\[K' "$OUT"
  [ "$output" = 0 ]
  grep -q "timed out" "$OUT" # loto did speak, on the dumb terminal
  run --separate-stderr env TERM=xterm "$LOTO" -t 1.2 -L "$LOCK" -- echo RAN
  [ "$status" -eq 75 ]
  [[ "$stderr" == "loto: timed out"* && "$stderr" != *$'\e'* && "$stderr" != *"loto: waiting "* ]]
  release_lock
}

@test "on a terminal, a command run after a wait is not disturbed by the line's timer (1.5 s, exit 0)" {
  hold_lock "$LOCK"
  spawn -n waiter env TERM=xterm "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" -w -L "$LOCK" -- \
    sh -c 'sleep 1.5; echo DONE'
  wait_until 10 has_updates 1
  release_lock
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  grep -q DONE "$OUT"
}

@test "without a terminal, a waiting loto is never woken up (-w, -t 30): at most 1 context switch in 2.5 s" {
  local wait pid before after
  for wait in -w "-t 30"; do
    hold_lock "$LOCK"
    # shellcheck disable=SC2086 # the option and its value are words
    spawn -n waiter "$LOTO" $wait -L "$LOCK" -- echo RAN
    pid=$SPAWNED
    wait_until 10 blocked "$pid"
    before="$(context_switches "$pid")"
    sleep 2.5 # how long the scenario lasts, not a wait for an event
    after="$(context_switches "$pid")"
    echo "$wait: context switches over 2.5 s of waiting: $((after - before))" >&2
    ((after - before <= 1))
    release_lock
    wait_exit "$pid" 10
    [ "$STATUS" -eq 0 ]
    [ "$(cat "$T/waiter.out")" = RAN ]
  done
}

@test "with the line on, the wait burns no CPU and -t stays exact" {
  hold_lock "$LOCK"
  # loto's own run time, measured by the shell that starts it on the terminal.
  spawn -n waiter env TERM=xterm "$PY" "$PTY_RUN" "$OUT" -- bash -c \
    't0=${EPOCHREALTIME/./}; "$@"; rc=$?; echo $((${EPOCHREALTIME/./} - t0)) >"$0"; exit $rc' \
    "$T/elapsed_us" "$LOTO" -t 1.5 -L "$LOCK" -- echo RAN
  wait_until 10 has_updates 1
  local loto_pid ticks elapsed
  loto_pid="$(pgrep -f -n -- "^$LOTO -t 1.5 -L $LOCK")"
  [ -n "$loto_pid" ]
  wait_until 10 has_updates 2
  # utime + stime in clock ticks (1/100 s) after a second of waiting and redrawing.
  ticks="$(cpu_ticks "$loto_pid")"
  echo "CPU ticks while waiting: $ticks" >&2
  ((ticks <= 3))
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 75 ]
  elapsed=$(($(cat "$T/elapsed_us") / 1000))
  echo "loto ran ${elapsed} ms" >&2
  # The line's once-a-second timer must not stand in for the deadline's (2000 ms).
  ((elapsed >= 1500 && elapsed < 1800))
  release_lock
}

@test "on a terminal, waiting for a slot: the line updates too, and the freed slot 0 is taken" {
  local cfg
  cfg="$(write_config "$(printf '%s\nresources:\n  pool:\n    path: %s\n    slots: 2\n' "$(base_config)" "$T/pool.lock")")"
  hold_lock "$T/pool.lock" s0
  local s0=$HOLDER
  hold_lock "$T/pool.lock.1" s1
  spawn -n waiter env TERM=xterm "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" --config "$cfg" -t 30 -L pool -- \
    sh -c 'echo "RAN in slot $LOTO_SLOT"'
  wait_until 10 has_updates 3
  release_lock "$s0"
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  run status_lines
  echo "$output" >&2
  [[ "$output" == *"loto: waiting 1s (29s left) for resource 'pool'"* ]]
  [[ "$output" == *"loto: waiting 2s (28s left) for resource 'pool'"* ]]
  grep -q "RAN in slot 0" "$OUT"
}

@test "a holder loto cannot see (a process of another PID namespace): the line names no holder and no place in line" {
  unshare --pid --fork --mount-proc true 2>/dev/null || skip "cannot create a PID namespace"
  hold_lock "$LOCK"
  # In a PID namespace of its own, loto cannot see the holder: /proc/locks leaves it out.
  spawn -n waiter env TERM=xterm unshare --pid --fork --mount-proc \
    "$PY" "$PTY_RUN" "$OUT" -- "$LOTO" -t 30 -L "$LOCK" -- echo RAN
  wait_until 10 has_updates 2
  release_lock
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  run status_lines
  echo "$output" >&2
  [ "${lines[0]}" = "loto: waiting 0s (30s left) for lock '$LOCK'" ]
  [ "${lines[1]}" = "loto: waiting 1s (29s left) for lock '$LOCK'" ]
  grep -q RAN "$OUT"
}
