#!/usr/bin/env bats
# Adversarial lock-file cases L01-L14 (../shared/research/reliability-anchors.md, section b).
#
# loto runs as root with lock_dir = $SHARED, a root-owned sticky 1777 directory like
# /run/lock; the attacker is `nobody`. Every case runs with the kernel's fs.protected_*
# settings as the machine has them (here they boot with symlinks, regular and fifos off),
# and the key ones run again with the protections at 1/2/1/1: loto must give the same
# answer either way. Each case checks the exit status, the one-line message (naming the
# path and the reason), that the command did not run, and that nothing outside the lock
# directory ($VICTIM, the attacker's target) was created or changed.

# Scripts given to bash -c are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load adversarial_helpers

setup() {
  adv_setup
  LOCK="$SHARED/loto.cpu"
}

teardown() { adv_teardown; }

# strace_loto ARGS...: like run_loto, under strace when it is installed (trace in
# $T/trace); sets TRACED=1 if so.
strace_loto() {
  TRACED=0
  if command -v strace >/dev/null; then
    TRACED=1
    # LeakSanitizer cannot run under ptrace; ASan and UBSan still check this run
    ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0" \
      run --separate-stderr timeout -k 1 10 strace -f -qq -o "$T/trace" \
      -e trace=open,openat,openat2 "$LOTO" --config "$CFG" "$@"
  else
    run_loto "$@"
  fi
}

# --- the cases, as functions so that the protected variants can run them again ---------

l01_dangling_symlink() {
  as_nobody ln -s "$VICTIM/loto-victim" "$LOCK"
  snap_save outside "$VICTIM" "$SHARED"
  run_loto -L cpu -- touch "$T/ran"
  assert_status 77
  assert_error_line "refusing lock file '$LOCK': it is a symbolic link; remove it; loto never follows links for lock files"
  assert_not_ran
  [ ! -e "$VICTIM/loto-victim" ]
  snap_check outside
}

l02_symlink_to_secret() {
  as_nobody ln -s "$VICTIM/secret" "$LOCK"
  snap_save outside "$VICTIM" "$SHARED"
  strace_loto -L cpu -- touch "$T/ran"
  assert_status 77
  assert_error_line "'$LOCK'" "symbolic link"
  assert_not_ran
  snap_check outside
  lock_is_free "$VICTIM/secret"
  if ((TRACED)); then
    never_opened_trace "$T/trace" secret loto.cpu
  fi
}

l04_special_files() {
  local kind reason t0 t1
  for kind in fifo directory socket chardev blockdev; do
    rm -rf "$LOCK" "$T/ran"
    case $kind in
    fifo)
      as_nobody mkfifo -m 666 "$LOCK"
      reason="a FIFO"
      ;;
    directory)
      as_nobody mkdir -m 777 "$LOCK"
      reason="a directory"
      ;;
    socket)
      as_nobody "$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$LOCK"
      reason="a socket"
      ;;
    chardev)
      mknod -m 666 "$LOCK" c 1 3 # what /dev/null is
      reason="a character device"
      ;;
    blockdev)
      mknod -m 666 "$LOCK" b 7 0 # what /dev/loop0 is
      reason="a block device"
      ;;
    esac
    snap_save outside "$VICTIM" "$SHARED"
    t0=$(now_ms)
    strace_loto -t=1 -L cpu -- touch "$T/ran"
    t1=$(now_ms)
    echo "$kind: status $status after $((t1 - t0)) ms" >&2
    assert_status 77
    assert_error_line "'$LOCK'" "$reason"
    assert_not_ran
    # refused at once, not after waiting out -t=1 (a real run takes a few ms)
    ((t1 - t0 < 500))
    snap_check outside
    if ((TRACED)); then
      # the type is checked before any open: a FIFO or device is never opened
      never_opened_trace "$T/trace" loto.cpu
    fi
  done
}

l05_precreated_by_attacker() {
  as_nobody sh -c 'umask 0; printf "attacker data\n" >"$1"; chmod 666 "$1"' sh "$LOCK"
  touch -d '2001-02-03 04:05:06' "$LOCK"
  snap_save outside "$VICTIM" "$SHARED"
  run_loto -L cpu -- touch "$T/ran"
  assert_status 77
  assert_error_line "'$LOCK'" "owned by uid $(id -u nobody)"
  # never the raw EACCES an O_CREAT open gets under protected_regular=2
  [[ "$stderr" != *"Permission denied"* ]]
  assert_not_ran
  snap_check outside
}

l11_symlinked_directory() {
  # (a) in a directory the attacker owns, a component is a symlink to root's directory
  as_nobody mkdir -m 755 "$SHARED/evil"
  as_nobody ln -s "$VICTIM" "$SHARED/evil/sub"
  # (b) in the shared sticky directory itself, the attacker's symlink to root's directory
  as_nobody ln -s "$VICTIM" "$SHARED/vdir"
  snap_save outside "$VICTIM" "$SHARED"
  local path
  for path in "$SHARED/evil/sub/nologin" "$SHARED/vdir/nologin"; do
    run_loto -L "$path" -- touch "$T/ran"
    assert_status 77
    assert_error_line "'$path'"
    assert_not_ran
    [ ! -e "$VICTIM/nologin" ]
    snap_check outside
  done
}

l14_attacker_holds_lock() {
  # root's own lock file, created by a normal run
  run_loto -L cpu -- true
  assert_status 0
  [ "$(stat -c '%u %a' "$LOCK")" = "0 644" ]
  # the attacker opens it read-only and holds flock(LOCK_EX)
  spawn -n attacker setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$PY" -c '
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDONLY)
fcntl.flock(fd, fcntl.LOCK_EX)
print(os.getpid(), flush=True)
time.sleep(30)' "$LOCK"
  local attacker=$SPAWNED
  wait_until 5 lock_is_held "$LOCK"
  local t0 t1
  t0=$(now_ms)
  run_loto -t=1 -L cpu -- touch "$T/ran"
  t1=$(now_ms)
  echo "status $status after $((t1 - t0)) ms" >&2
  assert_status 75
  assert_notice_line "'cpu'" "'$LOCK'" "held by pid $attacker"
  ((t1 - t0 >= 700 && t1 - t0 <= 1300))
  assert_not_ran
}

# --- with the protections as the machine has them ----------------------------------------

@test "L01 dangling symlink planted by another user: 77, its target is not created" {
  echo "fs.protected_* (symlinks/regular/fifos/hardlinks): $PROTECTIONS" >&3
  l01_dangling_symlink
}

@test "L02 symlink to a root-only file: 77, the file is never opened nor changed" {
  l02_symlink_to_secret
}

@test "L03 another user's hard link to a root-owned file: 77, nothing runs" {
  # The attack needs fs.protected_hardlinks=0 (the attacker can neither read nor write
  # the file); with the protection on, only root itself could plant such a link.
  if ! as_nobody ln "$VICTIM/secret" "$LOCK" 2>/dev/null; then
    if protections_try - - - 0; then
      as_nobody ln "$VICTIM/secret" "$LOCK"
    else
      ln "$VICTIM/secret" "$LOCK"
    fi
  fi
  [ "$(stat -c %h "$VICTIM/secret")" -eq 2 ]
  snap_save outside "$VICTIM" "$SHARED"
  run_loto -L cpu -- touch "$T/ran"
  assert_status 77
  assert_error_line "'$LOCK'" "2 hard links"
  assert_not_ran
  snap_check outside
  lock_is_free "$VICTIM/secret"
}

@test "L04 FIFO, directory, socket or device (character or block) at the lock path: 77 at once, never opened" {
  l04_special_files
}

@test "L05 lock file pre-created by another user (0666): 77 owned by uid, never written" {
  l05_precreated_by_attacker
}

@test "L06 an existing lock file keeps content, size, mode, mtime, ctime and inode (x3)" {
  printf 'keep-me\n' >"$LOCK"
  chmod 0640 "$LOCK"
  touch -d '2001-02-03 04:05:06' "$LOCK"
  snap_save all "$VICTIM" "$SHARED"
  local round
  for round in 1 2 3; do
    echo "round $round" >&2
    run_loto -L cpu -- true
    assert_status 0
    [ -z "$stderr" ]
  done
  snap_check all
  [ "$(cat "$LOCK")" = keep-me ]
}

@test "L07 a new lock file is 0644, root-owned, one link, under umask 000 and 077" {
  local mask
  for mask in 000 077; do
    rm -f "$LOCK"
    run --separate-stderr bash -c 'umask "$1"; shift; exec "$@"' _ "$mask" \
      "$LOTO" --config "$CFG" -L cpu -- true
    assert_status 0
    [ "$(stat -c '%a %u %g %h %F %s' "$LOCK")" = "644 0 0 1 regular empty file 0" ]
  done
}

@test "L08 fds 0-2 closed: the command gets /dev/null there, the lock is fd >= 3, stays empty" {
  local rc=0
  exec_clean bash -c 'exec "$@" 0<&- 1>&- 2>&-' _ \
    "$LOTO" --config "$CFG" -L cpu -- "$PY" -c "$FD_REPORT_PY" "$T/fds" || rc=$?
  cat "$T/fds" >&2
  [ "$rc" -eq 0 ]
  [ "$(sed -n 1p "$T/fds")" = "0 /dev/null" ]
  [ "$(sed -n 2p "$T/fds")" = "1 /dev/null" ]
  [ "$(sed -n 3p "$T/fds")" = "2 /dev/null" ]
  # the only other descriptor is the inherited lock, at 3 or above
  [ "$(wc -l <"$T/fds")" -eq 4 ]
  local fd target
  read -r fd target < <(sed -n 4p "$T/fds")
  ((fd >= 3))
  [ "$target" = "$LOCK" ]
  # writes to the closed stdout/stderr go to /dev/null, never into the lock file
  rc=0
  exec_clean bash -c 'exec "$@" 0<&- 1>&- 2>&-' _ \
    "$LOTO" --config "$CFG" -v -L cpu -- sh -c 'echo out; echo err >&2; touch "$1"' sh "$T/ran2" || rc=$?
  [ "$rc" -eq 0 ]
  [ -e "$T/ran2" ]
  [ "$(stat -c %s "$LOCK")" -eq 0 ]
}

@test "L08 only fd 0 closed: the command runs and writes to the inherited stdout" {
  # errno stays EBADF after fd 0 is filled in: fd 1, which is open, must not be taken
  # for closed because of it.
  local rc=0
  exec_clean bash -c 'exec "$@" 0<&-' _ \
    "$LOTO" --config "$CFG" -L cpu -- sh -c 'echo ran' >"$T/out" || rc=$?
  [ "$rc" -eq 0 ]
  [ "$(cat "$T/out")" = ran ]
}

@test "L09 the command gets only fds 0-2 and the lock (no config, syslog or other fd)" {
  command -v rsyslogd >/dev/null || skip "rsyslogd is not installed"
  command -v unshare >/dev/null || skip "unshare is not installed"
  # syslog on, with a real daemon at /dev/log, so that loto has its socket open
  printf 'lock_dir: %s\nlogging:\n  syslog: true\n  facility: local3\n' "$SHARED" >"$CFG"
  local with_syslog="$BATS_TEST_DIRNAME/../syslog/with-syslog.sh" sldir="$T/syslog" rc=0
  LOTO_SYSLOG_DIR="$sldir" "$with_syslog" "$PY" -c 'import os, sys
os.closerange(3, 65536)
os.execv(sys.argv[1], sys.argv[1:])' "$LOTO" --config "$CFG" -v -L cpu -- \
    "$PY" -c "$FD_REPORT_PY" "$T/fds" 2>"$T/err" || rc=$?
  cat "$T/fds" "$T/err" >&2
  [ "$rc" -eq 0 ]
  # loto did log through its socket while the command ran
  grep -q 'loto\[[0-9]*\]: event=acquired' "$sldir/messages"
  [ "$(wc -l <"$T/fds")" -eq 4 ]
  [ "$(cut -d' ' -f1 "$T/fds" | tr '\n' ' ')" = "0 1 2 $(sed -n '4s/ .*//p' "$T/fds") " ]
  [ "$(sed -n '4s/^[0-9]* //p' "$T/fds")" = "$LOCK" ]
  not grep -qE 'socket:|loto\.yaml|/dev/log' "$T/fds"

  # with -o, not even the lock
  rc=0
  LOTO_SYSLOG_DIR="$sldir" "$with_syslog" "$PY" -c 'import os, sys
os.closerange(3, 65536)
os.execv(sys.argv[1], sys.argv[1:])' "$LOTO" --config "$CFG" -o -L cpu -- \
    "$PY" -c "$FD_REPORT_PY" "$T/fds" 2>"$T/err" || rc=$?
  [ "$rc" -eq 0 ]
  [ "$(cut -d' ' -f1 "$T/fds" | tr '\n' ' ')" = "0 1 2 " ]
}

@test "L10 lock file deleted or replaced while a waiter waits: the waiter never overlaps the new holder" {
  lock_swap_check rm "$LOCK" cpu
  lock_swap_check replace "$LOCK" cpu
}

@test "L10 lock file renamed away (still linked) while a waiter waits: the waiter never overlaps the new holder" {
  # the old file keeps one link (as $LOCK.away): only its device and inode differ from the
  # file the path names now, which C holds while B wakes up on the old one
  lock_swap_check rename "$LOCK" cpu
  [ "$(stat -c %h "$LOCK.away")" -eq 1 ]
}

@test "L11 root's own symlinks on the way: up to 40 followed (relative and absolute), a 41st is 73 ELOOP" {
  # a chain s40 -> s39 -> ... -> s2 -> s1 -> $T/links/d (s1 absolute, the rest relative)
  local links="$T/links" i
  mkdir -m 755 "$links" "$links/d"
  ln -s "$links/d" "$links/s1"
  for ((i = 2; i <= 41; i++)); do
    ln -s "s$((i - 1))" "$links/s$i"
  done
  run_loto -L "$links/s40/x.lock" -- touch "$T/ran"
  assert_status 0
  [ -f "$T/ran" ] && rm "$T/ran"
  [ -f "$links/d/x.lock" ]
  run_loto -L "$links/s41/x.lock" -- touch "$T/ran"
  assert_status 73
  assert_error_line "'$links/s41/x.lock'" "Too many levels of symbolic links"
  assert_not_ran
}

@test "L11 a root symlink to another user's directory (absolute, or relative through ..): 77 naming that directory" {
  mkdir -m 755 "$T/evil" "$T/links"
  chown nobody:nogroup "$T/evil"
  ln -s "$T/evil" "$T/links/abs"
  ln -s ../evil "$T/links/up"
  local link
  for link in abs up; do
    run_loto -L "$T/links/$link/x.lock" -- touch "$T/ran"
    assert_status 77
    # the directory is named as the walk resolved it, whichever way the link led there
    assert_error_line "'$T/links/$link/x.lock'" "directory '$T/evil' on its path" "owned by uid $(id -u nobody)"
    assert_not_ran
  done
  [ -z "$(ls -A "$T/evil")" ]
}

@test "L05 another user's lock file in a directory only root can write is used as it is (not a shared directory)" {
  mkdir -m 755 "$T/private"
  printf 'keep\n' >"$T/private/x.lock"
  chown nobody:nogroup "$T/private/x.lock"
  chmod 0644 "$T/private/x.lock"
  snap_save lockfile "$T/private"
  run_loto -L "$T/private/x.lock" -- touch "$T/ran"
  assert_status 0
  [ -f "$T/ran" ]
  snap_check lockfile
}

@test "L05 in a shared directory a user may use root's lock file, and not another user's" {
  make_shared_loto
  # root's own lock file (a normal root run made it): trusted by everyone
  run_loto -L "$SHARED/r.lock" -- true
  assert_status 0
  [ "$(stat -c %u "$SHARED/r.lock")" = 0 ]
  run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" \
    -L "$SHARED/r.lock" -- touch "$SHARED/ran"
  assert_status 0
  [ -e "$SHARED/ran" ]
  # one owned by a third user (daemon, uid 1): refused, as for root
  rm -f "$SHARED/ran"
  install -m 0644 -o daemon -g daemon /dev/null "$SHARED/d.lock"
  run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" \
    -L "$SHARED/d.lock" -- touch "$SHARED/ran"
  assert_status 77
  assert_error_line "'$SHARED/d.lock'" "owned by uid 1 in a shared directory"
  assert_not_ran "$SHARED/ran"
}

@test "L15 a user who may not create files beside the lock file (or list them) waits unqueued, then runs" {
  make_shared_loto
  local mode waiter
  # 0755: nobody may list root's directory but not write it; 0711: not even list it
  for mode in 0755 0711; do
    rm -rf "$T/rootdir" "$SHARED/ran"
    mkdir -m "$mode" "$T/rootdir"
    : >"$T/rootdir/x.lock"
    chmod 0644 "$T/rootdir/x.lock"
    # free: taken at once
    run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" \
      -L "$T/rootdir/x.lock" -- true
    assert_status 0
    [ -z "$stderr" ]
    hold_lock "$T/rootdir/x.lock"
    # queue: fifo is the default, but no ticket can be made in root's directory
    spawn -n w setpriv --reuid=nobody --regid=nogroup --clear-groups -- \
      "$SHARED_LOTO" --config "$CFG" -w -L "$T/rootdir/x.lock" -- touch "$SHARED/ran"
    waiter=$SPAWNED
    wait_for_waiters "$T/rootdir/x.lock" 1
    [ ! -e "$SHARED/ran" ]
    release_lock
    wait_exit "$waiter" 10
    cat "$T/w.err" >&2
    [ "$STATUS" -eq 0 ]
    [ -e "$SHARED/ran" ]
    [ ! -s "$T/w.err" ]
    [ "$(find "$T/rootdir" -mindepth 1 | wc -l)" -eq 1 ] # no ticket, no temporary file
  done
}

@test "L15 a user who may not open the lock file, or reach its directory: 73 at once, with the reason and advice" {
  make_shared_loto # nobody may not reach the checkout's build/loto (a clone in /root)
  # nobody's own directory (root's walk would refuse it: the answer must come from open)
  mkdir -m 755 "$T/nb"
  chown nobody:nogroup "$T/nb"
  : >"$T/nb/root-only.lock"
  chmod 0600 "$T/nb/root-only.lock"
  run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" -t 5 \
    -L "$T/nb/root-only.lock" -- touch "$T/nb/ran"
  assert_status 73
  assert_error_line "cannot open lock file '$T/nb/root-only.lock': Permission denied" \
    "(run as a user who may create it, or choose another path)"
  assert_not_ran "$T/nb/ran"
  # a directory nobody may read but not search: the lock file cannot even be looked at
  mkdir -m 0644 "$T/nb/unsearchable"
  chown nobody:nogroup "$T/nb/unsearchable"
  run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" \
    -L "$T/nb/unsearchable/x.lock" -- touch "$T/nb/ran"
  assert_status 73
  assert_error_line "cannot inspect lock file '$T/nb/unsearchable/x.lock': Permission denied" \
    "(run as a user who may create it, or choose another path)"
  assert_not_ran "$T/nb/ran"
  # a file name longer than the filesystem allows (255 bytes)
  local long
  long="$(printf 'n%.0s' {1..300})"
  run_loto -L "$T/$long" -- touch "$T/ran"
  assert_status 73
  assert_error_line "cannot inspect lock file '$T/$long': File name too long"
  [[ "$stderr" == *": File name too long" ]]
  assert_not_ran
  # a directory that does not exist
  run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" \
    -L "$T/nb/missing/x.lock" -- touch "$T/nb/ran"
  assert_status 73
  assert_error_line "cannot open the directory of lock file '$T/nb/missing/x.lock': No such file or directory" \
    "(create the directory, or set lock_dir or the resource's path)"
  assert_not_ran "$T/nb/ran"
  # a lock file directly under / (its directory is "/"), which nobody may not create
  local top="/loto-test-absent-$$.lock"
  [ ! -e "$top" ]
  run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" -L "$top" -- touch "$T/nb/ran"
  assert_status 73
  assert_error_line "cannot create lock file '$top': Permission denied"
  assert_not_ran "$T/nb/ran"
  [ ! -e "$top" ]
}

# The replacer for L10 "replaced 100 times": holds the lock file at argv[1]; each time the
# waiter (pid in argv[2]'s file) blocks on the file held, it replaces that file by a new
# one, which it locks, and lets go of the old one: the waiter wakes up on a stale file.
# Prints how many replacements it made before the waiter was gone (at most 150).
REPLACER_PY='
import fcntl, os, sys, time
path, pid_file = sys.argv[1], sys.argv[2]
def take():
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd
def waiting_on(st, pid):
    # "N: -> FLOCK ADVISORY WRITE PID MAJ:MIN:INO 0 EOF", device numbers in hex
    me = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    with open("/proc/locks") as f:
        return any(w[1] == "->" and w[5] == str(pid) and w[6] == me
                   for w in (l.split() for l in f) if len(w) > 6)
def gone(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] in "ZX"
    except FileNotFoundError:
        return True
fd = take()
open(path + ".ready", "w").close()
deadline = time.monotonic() + 10
while not os.path.exists(pid_file) and time.monotonic() < deadline:
    time.sleep(0.005)
pid = int(open(pid_file).read())  # written whole: renamed into place
rounds = 0
while rounds < 150:
    st = os.fstat(fd)
    deadline = time.monotonic() + 10
    while not waiting_on(st, pid) and not gone(pid) and time.monotonic() < deadline:
        time.sleep(0.002)
    if gone(pid) or time.monotonic() >= deadline:
        break
    os.unlink(path)
    new = take()
    os.close(fd)
    fd = new
    rounds += 1
print(rounds, flush=True)
'

@test "L10 lock file renamed away with nothing in its place while a waiter waits: the waiter locks a new file at the path" {
  hold_lock "$LOCK"
  spawn -n w lotoc -w -L cpu -- sh -c 'touch "$T/w.running"; '"$(await "$T/w.go")"
  local waiter=$SPAWNED
  wait_for_waiters "$LOCK" 1
  mv "$LOCK" "$LOCK.away"
  release_lock
  wait_for_file "$T/w.running"
  # the waiter holds the file the path names now, so a newcomer is busy
  [ -f "$LOCK" ]
  lock_is_held "$LOCK"
  run_loto -L cpu -- touch "$T/ran"
  assert_status 75
  assert_not_ran
  touch "$T/w.go"
  wait_exit "$waiter" 5
  [ "$STATUS" -eq 0 ]
}

@test "L10 lock file replaced 100 times while a waiter waits: 77 after exactly 100 tries, nothing ran" {
  spawn -n replacer "$PY" -c "$REPLACER_PY" "$LOCK" "$T/waiter.pid"
  local replacer=$SPAWNED
  wait_for_file "$LOCK.ready"
  spawn -n waiter lotoc -w -L cpu -- touch "$T/ran"
  local waiter=$SPAWNED
  # renamed into place, so that the replacer never reads a half-written pid
  echo "$waiter" >"$T/waiter.pid.new"
  mv "$T/waiter.pid.new" "$T/waiter.pid"
  wait_exit "$waiter" 20
  echo "waiter: status $STATUS, $(cat "$T/waiter.err")" >&2
  [ "$STATUS" -eq 77 ]
  grep -q "refusing lock file '$LOCK': it keeps being replaced while loto waits" "$T/waiter.err"
  wait_exit "$replacer" 10
  echo "replacements: $(cat "$T/replacer.out")" >&2
  [ "$(cat "$T/replacer.out")" -eq 100 ]
  assert_not_ran
}

@test "L15 a lock path through a regular file: 73 'Not a directory', as root and not" {
  make_shared_loto
  printf 'data\n' >"$T/plain"
  chmod 0644 "$T/plain"
  run_loto -L "$T/plain/x.lock" -- touch "$T/ran"
  assert_status 73
  assert_error_line "cannot open the directory of lock file '$T/plain/x.lock': Not a directory"
  [[ "$stderr" == *": Not a directory" ]]
  assert_not_ran
  run --separate-stderr as_nobody timeout -k 1 10 "$SHARED_LOTO" --config "$CFG" -L "$T/plain/x.lock" -- true
  assert_status 73
  assert_error_line "cannot open the directory of lock file '$T/plain/x.lock': Not a directory"
  [[ "$stderr" == *": Not a directory" ]]
  [ "$(cat "$T/plain")" = data ]
}

@test "L11 lock directory owned by another user, or writable and not sticky: 77, nothing created" {
  as_nobody mkdir -m 755 "$SHARED/evil"
  snap_save outside "$VICTIM" "$SHARED"
  run_loto -L "$SHARED/evil/x.lock" -- touch "$T/ran"
  assert_status 77
  assert_error_line "'$SHARED/evil/x.lock'" "'$SHARED/evil'" "owned by uid $(id -u nobody)"
  assert_not_ran
  snap_check outside
  [ -z "$(ls -A "$SHARED/evil")" ]

  mkdir -m 777 "$T/wdir"
  chmod 777 "$T/wdir" # whatever the umask
  run_loto -L "$T/wdir/x.lock" -- touch "$T/ran"
  assert_status 77
  assert_error_line "'$T/wdir/x.lock'" "'$T/wdir'" "not sticky"
  assert_not_ran
  [ -z "$(ls -A "$T/wdir")" ]
}

@test "L11 a symlinked directory component planted by another user: 77, nothing created" {
  l11_symlinked_directory
}

@test "L12 lock directory full (no inodes left) or read-only: 73, nothing ran" {
  unshare --mount --propagation private true 2>/dev/null || skip "cannot create a mount namespace"
  mkdir "$T/mnt"
  # a private mount namespace: the tmpfs disappears with it, whatever happens
  run --separate-stderr timeout 10 unshare --mount --propagation private bash -c '
    mount -t tmpfs -o size=64k,nr_inodes=4,mode=1777 tmpfs "$1" || exit 90
    touch "$1/a" "$1/b" "$1/c"
    if touch "$1/d" 2>/dev/null; then exit 91; fi
    exec "$2" --config "$3" -L "$1/x.lock" -- touch "$4"
  ' _ "$T/mnt" "$LOTO" "$CFG" "$T/ran"
  [ "$status" -ne 90 ] || skip "cannot mount a tmpfs"
  assert_status 73
  assert_error_line "'$T/mnt/x.lock'" "No space left on device"
  [[ "$stderr" == *"': No space left on device" ]] # no advice about users or paths
  assert_not_ran

  # the lock file exists but is held, and no inode is left for a waiting ticket: 73 at
  # once with the reason (a queue that cannot be joined is not silently skipped)
  run --separate-stderr timeout 10 unshare --mount --propagation private bash -c '
    mount -t tmpfs -o size=64k,nr_inodes=4,mode=1777 tmpfs "$1" || exit 90
    touch "$1/x.lock" "$1/a" "$1/b"
    if touch "$1/c" 2>/dev/null; then exit 91; fi
    exec 8<"$1/x.lock"
    flock -x 8 || exit 92
    exec "$2" --config "$3" -t 3 -L "$1/x.lock" -- touch "$4"
  ' _ "$T/mnt" "$LOTO" "$CFG" "$T/ran"
  assert_status 73
  assert_error_line "cannot create a waiting ticket next to '$T/mnt/x.lock': No space left on device"
  assert_not_ran

  run --separate-stderr timeout 10 unshare --mount --propagation private bash -c '
    mount -t tmpfs -o size=64k,mode=1777 tmpfs "$1" || exit 90
    mount -o remount,ro "$1" || exit 90
    exec "$2" --config "$3" -L "$1/x.lock" -- touch "$4"
  ' _ "$T/mnt" "$LOTO" "$CFG" "$T/ran"
  assert_status 73
  assert_error_line "'$T/mnt/x.lock'" "Read-only file system"
  [[ "$stderr" == *"': Read-only file system" ]]
  assert_not_ran

  # an existing lock file on a read-only filesystem is fine: loto never writes it
  run --separate-stderr timeout 10 unshare --mount --propagation private bash -c '
    mount -t tmpfs -o size=64k,mode=1777 tmpfs "$1" || exit 90
    touch "$1/x.lock"
    mount -o remount,ro "$1" || exit 90
    exec "$2" --config "$3" -L "$1/x.lock" -- touch "$4"
  ' _ "$T/mnt" "$LOTO" "$CFG" "$T/ran"
  assert_status 0
  [ -e "$T/ran" ]
  # the mounts never leaked out of their namespaces
  [ -z "$(ls -A "$T/mnt")" ]
}

@test "L13 bad resource names and paths: 64 with the value escaped, no file created anywhere" {
  mkdir "$T/cwd"
  cd "$T/cwd"
  snap_save outside "$VICTIM" "$SHARED" "$T/cwd"
  local long
  long="$(printf 'a%.0s' $(seq 300))"
  local -a values=("../../etc/passwd" "" "." ".." $'cpu\n' "cpu/x" "$long" "-cpu" "cpu x"
    "/tmp/../etc/passwd" $'/tmp/a\nb' "$SHARED/../victim/data")
  local -a shown=("'../../etc/passwd'" "''" "'.'" "'..'" "'cpu\\n'" "'cpu/x'" "'$long'" "'-cpu'"
    "'cpu x'" "'/tmp/../etc/passwd'" "'/tmp/a\\nb'" "'$SHARED/../victim/data'")
  local n # not "i": bats' run sets a global i
  for n in "${!values[@]}"; do
    run_loto -L "${values[$n]}" -- touch "$T/ran"
    assert_status 64
    assert_error_line "invalid" "${shown[$n]}"
    assert_not_ran
  done
  snap_check outside
}

@test "L14 the holder named is the one holding this lock file, whatever other flocks the machine holds" {
  local order real="" other=""
  for order in other-first real-first; do
    if [[ -n "$real" ]]; then
      release_lock "$real"
      release_lock "$other"
    fi
    if [[ $order == other-first ]]; then
      hold_lock "$T/other.lock" other
      other=$HOLDER
      hold_lock "$LOCK" real
      real=$HOLDER
    else
      hold_lock "$LOCK" real
      real=$HOLDER
      hold_lock "$T/other.lock" other
      other=$HOLDER
    fi
    run_loto -L cpu -- touch "$T/ran"
    assert_status 75
    # the holder's whole command line, and nothing after it (nobody waits: no "N waiting")
    assert_notice_line "'$LOCK'" "held by pid $real: flock -x $LOCK sh -c " \
      " sh $T/real.ready; the command was not run"
    assert_not_ran
  done
}

@test "L14 another user holds root's lock file read-only: 75 after the timeout, holder named" {
  l14_attacker_holds_lock
}

# --- again with fs.protected_{symlinks,regular,fifos,hardlinks} = 1/2/1/1 -----------------

@test "L01 [protected 1/2/1/1] dangling symlink: same answer, target not created" {
  protections_set 1 2 1 1
  l01_dangling_symlink
}

@test "L02 [protected 1/2/1/1] symlink to a root-only file: same answer" {
  protections_set 1 2 1 1
  l02_symlink_to_secret
}

@test "L04 [protected 1/2/1/1] FIFO, directory, socket, device: same answer" {
  protections_set 1 2 1 1
  l04_special_files
}

@test "L05 [protected 1/2/1/1] pre-created by another user: 77, not the kernel's EACCES" {
  protections_set 1 2 1 1
  l05_precreated_by_attacker
}

@test "L11 [protected 1/2/1/1] a symlinked directory component: same answer" {
  protections_set 1 2 1 1
  l11_symlinked_directory
}

@test "L14 [protected 1/2/1/1] another user holds root's lock file: same answer" {
  protections_set 1 2 1 1
  l14_attacker_holds_lock
}

@test "L16 few file descriptors (ulimit -n 4 to 9), lock free or held: a run, or one line naming 'Too many open files'" {
  # A sanitizer or valgrind needs descriptors of its own (UBSan's vptr check probes memory
  # through a pipe, and reports every check as failed without one).
  if [[ ! -f "$LOTO" ]] || [[ "$(head -c 2 "$LOTO")" == "#!" ]] || grep -qa __ubsan_handle "$LOTO"; then
    skip "the binary under test is instrumented: its runtime needs descriptors of its own"
  fi
  local n state errors=0
  for state in free held; do
    if [[ "$state" == held ]]; then
      hold_lock "$LOCK"
    fi
    for n in 4 5 6 7 8 9; do
      rm -f "$T/ran"
      # only fds 0-2 open (exec_clean), so n - 3 descriptors are left for loto
      run --separate-stderr exec_clean bash -c 'ulimit -n "$1"; shift; exec "$@"; exit 126' _ "$n" \
        "$LOTO" --config "$CFG" -t 0.2 -L cpu -- touch "$T/ran"
      echo "$state, ulimit -n $n: status $status, stderr: $stderr" >&2
      case $status in
      127) [[ "$stderr" == *"error while loading shared libraries"* ]] ;; # too few for ld.so
      0) [[ "$state" == free && -e "$T/ran" && -z "$stderr" ]] ;;
      75) [[ "$state" == held && ! -e "$T/ran" && "$stderr" == "loto: timed out after "* ]] ;;
      *)
        errors=$((errors + 1))
        assert_error_line "'$LOCK': Too many open files"
        [[ "$stderr" == *"': Too many open files" ]]
        assert_not_ran
        ;;
      esac
    done
  done
  # the limits above do reach loto's own opens, not only the dynamic loader's
  ((errors >= 2))
}
