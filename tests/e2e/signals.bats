#!/usr/bin/env bats
# Signal forwarding while the command runs, signals while waiting, deadline robustness.

load helpers

setup() {
  common_setup
  # The command under test: records each delivery of a signal (one line each) in $T/sigs.
  # Python's C-level handler writes one byte per delivery to the wakeup fd, so a second
  # copy is counted even if it arrives before the first was handled. After the first
  # signal it "cleans up" for 150 ms (more deliveries are still counted), stamps
  # $T/cmd.end (ms), then re-raises the first signal (mode "die") or exits N (mode
  # "exitN"). Without a signal it ends when $T/go appears (at most 10 s).
  cat >"$T/victim.py" <<'EOF'
import os, select, signal, sys, time
T = os.environ["T"]
mode = sys.argv[1] if len(sys.argv) > 1 else "exit0"
names = {signal.SIGTERM: "TERM", signal.SIGHUP: "HUP", signal.SIGUSR1: "USR1",
         signal.SIGUSR2: "USR2", signal.SIGINT: "INT", signal.SIGQUIT: "QUIT"}
r, w = os.pipe()
os.set_blocking(w, False)
signal.set_wakeup_fd(w, warn_on_full_buffer=False)
for s in names:
    signal.signal(s, lambda *_: None)
with open(T + "/cmd.pid", "w") as f:
    f.write("%d\n" % os.getpid())
open(T + "/ready", "w").close()
got = None
end = time.monotonic() + 10
while time.monotonic() < end:
    ready, _, _ = select.select([r], [], [], 0.01)
    if ready:
        for b in os.read(r, 100):
            with open(T + "/sigs", "a") as f:
                f.write(names.get(b, str(b)) + "\n")
            if got is None:
                got = b
                end = time.monotonic() + 0.15
    elif got is None and os.path.exists(T + "/go"):
        break
with open(T + "/cmd.end", "w") as f:
    f.write("%d\n" % (time.time_ns() // 1000000))
if got is not None and mode == "die":
    signal.signal(got, signal.SIG_DFL)
    os.kill(os.getpid(), got)
    time.sleep(1)
sys.exit(int(mode[4:]))
EOF
}

# start_victim MODE [LOTO OPTIONS...]: loto runs victim.py under $T/l; waits until ready.
start_victim() {
  local mode="$1"
  shift
  spawn -n loto lotoc "$@" -L "$T/l" "$PY" "$T/victim.py" "$mode"
  LOTO_PID=$SPAWNED
  wait_for_file "$T/ready"
  CMD_PID="$(cat "$T/cmd.pid")"
}

# signals the command got, one per line
sigs() { cat "$T/sigs" 2>/dev/null || true; }

@test "SIGTERM to loto: the command sees it, loto exits 143 only after the command exited" {
  start_victim die
  kill -TERM "$LOTO_PID"
  wait_exit "$LOTO_PID" 5
  echo "status $STATUS, command got: $(sigs)"
  # at the moment loto's exit is observed, the command is already gone
  proc_gone "$CMD_PID"
  [ -e "$T/cmd.end" ]
  [ "$STATUS" -eq 143 ]
  [ "$(sigs)" = TERM ]
  lock_is_free "$T/l"
}

@test "SIGTERM to loto, command catches it and exits 0: loto passes 0 through" {
  start_victim exit0
  kill -TERM "$LOTO_PID"
  wait_exit "$LOTO_PID" 5
  [ "$(sigs)" = TERM ]
  [ "$STATUS" -eq 0 ]
  proc_gone "$CMD_PID"
}

@test "SIGHUP, SIGUSR1 and SIGUSR2 to loto are forwarded to the command" {
  local sig
  for sig in HUP USR1 USR2; do
    rm -f "$T/ready" "$T/sigs" "$T/cmd.end"
    start_victim exit7
    kill -s "$sig" "$LOTO_PID"
    wait_exit "$LOTO_PID" 5
    echo "$sig: status $STATUS, command got: $(sigs)"
    [ "$(sigs)" = "$sig" ]
    [ "$STATUS" -eq 7 ]
    proc_gone "$CMD_PID"
  done
}

# SIGINT and SIGQUIT are not passed on (system(3) semantics): loto cannot tell a kill
# aimed at it alone from one aimed at its process group, which the command already got.
@test "SIGINT and SIGQUIT sent by kill to loto alone: loto neither dies nor passes them on" {
  start_victim exit5
  kill -INT "$LOTO_PID"
  kill -QUIT "$LOTO_PID"
  # loto still supervises: a SIGTERM after the two reaches the command and ends the run
  kill -TERM "$LOTO_PID"
  wait_exit "$LOTO_PID" 5
  echo "status $STATUS, command got: $(sigs | tr '\n' ' ')"
  [ "$(sigs)" = TERM ]
  [ "$STATUS" -eq 5 ]
}

# group_signal SIG: sends SIG to loto's whole process group (loto and the command).
# A second copy forwarded by loto would land within microseconds and could merge with
# the first in the kernel (standard signals do not queue), hiding the bug. So loto is
# stopped while the group signal is sent: the command handles its copy first, then loto
# is continued and handles its own (still pending) copy. The order of deliveries is then
# fixed and any copy loto forwards is counted separately.
group_signal() {
  local sig="$1"
  kill -STOP "$LOTO_PID"
  wait_until 2 proc_stopped "$LOTO_PID"
  kill -s "$sig" -- "-$LOTO_PID"
  wait_for_lines "$T/sigs" 1
  kill -CONT "$LOTO_PID"
  wait_exit "$LOTO_PID" 5
}

# CONTRACT (Running the command): "A terminal's Ctrl-C (SIGINT/SIGQUIT to the process
# group) reaches the command directly; loto neither dies nor sends a second copy."
# Here the group signal is sent with kill(1) to a setsid group.
@test "SIGINT to the whole process group: the command gets exactly one, loto returns its status" {
  start_victim exit3
  # spawn used setsid: loto leads its own process group, the command is in it
  [ "$(ps -o pgid= -p "$CMD_PID" | tr -d ' ')" = "$LOTO_PID" ]
  group_signal INT
  echo "status $STATUS, command got: $(sigs | tr '\n' ' ')"
  [ -e "$T/cmd.end" ]
  proc_gone "$CMD_PID"
  [ "$STATUS" -eq 3 ]
  [ "$(sigs)" = INT ]
}

@test "SIGQUIT to the whole process group: the command gets exactly one" {
  start_victim exit3
  group_signal QUIT
  echo "status $STATUS, command got: $(sigs | tr '\n' ' ')"
  [ "$STATUS" -eq 3 ]
  [ "$(sigs)" = QUIT ]
}

@test "terminal Ctrl-C (a real pty): the command gets exactly one SIGINT, loto returns its status" {
  run "$PY" - "$LOTO" "$CFG" "$T" <<'EOF'
import os, pty, select, signal, sys, time
loto, cfg, tdir = sys.argv[1:4]
pid, master = pty.fork()
if pid == 0:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGQUIT, signal.SIG_DFL)
    os.execv(loto, [loto, "--config", cfg, "-L", tdir + "/l", sys.executable, tdir + "/victim.py", "exit3"])
deadline = time.monotonic() + 10
sent = False
status = None
while time.monotonic() < deadline:
    if not sent and os.path.exists(tdir + "/ready"):
        # Stop loto first (see group_signal), so the command's copy is handled before
        # any copy loto might forward.
        os.kill(pid, signal.SIGSTOP)
        os.waitpid(pid, os.WUNTRACED)
        os.write(master, b"\x03")  # the line discipline sends SIGINT to the foreground group
        while not os.path.exists(tdir + "/sigs") and time.monotonic() < deadline:
            time.sleep(0.005)
        os.kill(pid, signal.SIGCONT)
        sent = True
    r, _, _ = select.select([master], [], [], 0.01)
    if r:
        try:
            os.read(master, 4096)
        except OSError:
            pass
    done, st = os.waitpid(pid, os.WNOHANG)
    if done:
        status = os.waitstatus_to_exitcode(st)
        break
print(status)
EOF
  echo "python says: $output; command got: $(sigs | tr '\n' ' ')"
  [ "$status" -eq 0 ]
  [ "$output" = 3 ]
  [ "$(sigs)" = INT ]
}

_no_waiters() { (($(lock_waiters "$1") == 0)); }

@test "SIGTERM, SIGINT, SIGHUP while waiting for a busy lock: exit 128+N at once, nothing run" {
  hold_lock "$T/l"
  local sig num t0 t1 opts
  for sig in TERM INT HUP; do
    for opts in -w "-t 10"; do
      # shellcheck disable=SC2086
      spawn -n "w$sig" lotoc $opts -L "$T/l" sh -c 'touch "$T/ran"'
      wait_for_waiters "$T/l" 1
      num=$(kill -l "$sig")
      t0=$(now_ms)
      kill -s "$sig" "$SPAWNED"
      wait_exit "$SPAWNED" 5
      t1=$(now_ms)
      echo "$sig ($opts): status $STATUS after $((t1 - t0)) ms"
      cat "$T/w$sig.err"
      [ "$STATUS" -eq $((128 + num)) ]
      ((t1 - t0 < 300))
      [ ! -e "$T/ran" ]
      # the holder was not disturbed
      lock_is_held "$T/l"
      not proc_gone "$HOLDER"
      wait_until 2 _no_waiters "$T/l"
    done
  done
}

@test "a storm of SIGWINCH/SIGCONT neither shortens nor extends the -t deadline" {
  hold_lock "$T/l"
  local t0 t1
  t0=$(now_ms)
  spawn -n w lotoc -t 1 -L "$T/l" sh -c 'touch "$T/ran"'
  local pid=$SPAWNED
  signal_storm "$pid" WINCH CONT
  t1=$(now_ms)
  wait_exit "$pid" 1
  echo "-t 1 under $((2 * STORM_ROUNDS)) signals: status $STATUS after $((t1 - t0)) ms" >&3
  [ "$STATUS" -eq 75 ]
  ((STORM_ROUNDS >= 20)) # a storm even on a busy machine (43 to 48 rounds at nice 19 under load)
  ((t1 - t0 >= 995 && t1 - t0 <= 1300))
  [ ! -e "$T/ran" ]
}

@test "-t still times out when loto starts with SIGALRM blocked" {
  # the wrapper really blocks it (bit 14 -> 0x2000 in SigBlk)
  run "$PY" -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
os.execv(sys.argv[1], sys.argv[1:])' /bin/grep SigBlk /proc/self/status
  echo "$output"
  local blk="${output##*[[:space:]]}"
  (((16#$blk & 16#2000) != 0))

  hold_lock "$T/l"
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr timeout 10 "$PY" -c 'import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGALRM})
os.execv(sys.argv[1], sys.argv[1:])' "$LOTO" --config "$CFG" -t 0.3 -L "$T/l" sh -c 'touch "$T/ran"'
  t1=$(now_ms)
  echo "blocked SIGALRM, -t 0.3: status $status after $((t1 - t0)) ms" >&3
  [ "$status" -eq 75 ]
  ((t1 - t0 >= 295 && t1 - t0 <= 1000))
  [ ! -e "$T/ran" ]
}

@test "-t still times out when loto starts with SIGALRM ignored" {
  hold_lock "$T/l"
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr timeout 10 "$PY" -c 'import os, signal, sys
signal.signal(signal.SIGALRM, signal.SIG_IGN)
os.execv(sys.argv[1], sys.argv[1:])' "$LOTO" --config "$CFG" -t 0.3 -L "$T/l" true
  t1=$(now_ms)
  echo "status $status after $((t1 - t0)) ms"
  [ "$status" -eq 75 ]
  ((t1 - t0 >= 295 && t1 - t0 <= 1000))
}

@test "the command dies of a signal while loto supervises: 128+N and the lock is released" {
  start_victim exit0
  kill -KILL "$CMD_PID"
  wait_exit "$LOTO_PID" 5
  [ "$STATUS" -eq 137 ]
  lock_is_free "$T/l"
}
