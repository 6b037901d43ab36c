# Shared helpers for loto's end-to-end tests (bats >= 1.5).
#
# Use from a .bats file with:   load helpers
#
# What you get:
#   $LOTO            absolute path of the binary under test (env LOTO, else build/loto)
#   $T               a fresh private temp dir per test (mode 0700), removed by bats
#   $CFG             a default config: lock_dir: $T, syslog off (written by common_setup)
#   loto ARGS...     runs "$LOTO" ARGS... (no implicit config)
#   lotoc ARGS...    runs "$LOTO" --config "$CFG" ARGS... (never reads /etc)
#   write_config [-n NAME] [TEXT]   writes TEXT (or stdin) to a 0600 file in $T; prints its path
#   base_config      prints the default config text (lock_dir: $T, syslog off)
#   wait_for_file PATH [TIMEOUT_S]            poll until PATH exists (default 5 s)
#   wait_for_lines PATH N [TIMEOUT_S]         poll until PATH has >= N lines
#   wait_until TIMEOUT_S CMD...               poll until CMD succeeds
#   await PATH       prints sh/bash code that waits (bounded, ~10 s) for PATH to appear, for
#                    scripts loto runs:  sh -c 'touch "$T/ready"; '"$(await "$T/go")"
#                    (PATH is quoted: any characters are safe)
#   now_ms / now_us                           fork-free clock (bash $EPOCHREALTIME; the
#                                             wall clock: compare stamps as intervals only)
#   $STAMP_SNIPPET   bash code printing now in ms, for scripts loto runs:
#                    bash -c "$STAMP_SNIPPET"' >"$T/start"'
#   $PY              /usr/bin/python3 (fast start, no pyenv shim)
#   spawn [-n NAME] CMD...   start CMD in the background, in its own session/process
#                            group; stdout/stderr -> $T/NAME.out / $T/NAME.err;
#                            sets $SPAWNED to its pid; teardown kills the whole group
#   wait_exit PID [TIMEOUT_S]  wait (bounded) for a spawned child; sets $STATUS
#   lock_is_held PATH / lock_is_free PATH     probe with flock(1) -n
#   proc_gone PID            true when PID no longer runs (gone or zombie)
#   proc_state PID / proc_stopped PID / proc_sleeping PID   its state letter (T, S)
#   blocked PID              PID is blocked in flock() (from /proc/locks)
#   tickets PATH / wait_for_tickets PATH N [TIMEOUT_S]   fifo queue ticket files of PATH
#   hold_lock PATH [NAME] / release_lock      a flock(1) holder in the background ($HOLDER)
#   lock_waiters PATH / wait_for_waiters PATH [N] [TIMEOUT_S]
#                            processes blocked in flock() on PATH (from /proc/locks):
#                            synchronise on "loto is now waiting" without sleeping
#   not CMD...               succeeds when CMD fails (`! CMD` never fails a bats test)
#   lock_swap_check HOW PATH [ARG]
#                            the "lock file deleted (HOW=rm), replaced (HOW=replace) or
#                            renamed away (HOW=rename) while a waiter waits" procedure:
#                            fails the test if the waiter runs beside the new file's
#                            holder (ARG: what -L gets)
#   signal_storm PID SIG...  sends each SIG to PID over and over (fork-free) until PID is
#                            gone, 5 s at most; $STORM_ROUNDS counts the rounds
#   as_nobody CMD...         runs CMD as nobody:nogroup without supplementary groups
#   make_traversable DIR     DIR and its parents searchable by others (for `nobody`);
#                            changes only directories the test run made (under $T or
#                            bats' run directory), fails for any other
#   make_shared_loto         sets $SHARED_LOTO: a copy of the binary under test (and the
#                            loto-etcd beside it) in a fresh mktemp -d under /tmp that
#                            any user can run, wherever the checkout is (a clone in /root,
#                            mode 0700, is out of other users' reach); removed by
#                            common_teardown. For every test that runs loto as another user
#
# setup()/teardown() default to common_setup/common_teardown; a file that needs its own
# setup should call them.

bats_require_minimum_version 1.5.0

# --- binary under test -----------------------------------------------------------------
_helpers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
if [[ -z "${LOTO:-}" ]]; then
  LOTO="$_helpers_dir/../../build/loto"
fi
if [[ "$LOTO" != /* ]]; then
  # relative to where bats was started (normally the repo root)
  LOTO="$PWD/$LOTO"
fi
export LOTO
# Never let a caller's environment point loto at another config.
unset LOTO_CONFIG LOTO_RESOURCE LOTO_LOCKFILE

# A python3 that starts fast and does not depend on pyenv shims.
if [[ -x /usr/bin/python3 ]]; then PY=/usr/bin/python3; else PY=python3; fi
export PY

# Upper time bounds in the tests are for a normal build; they multiply them by SCALE, as a
# sanitizer build (LOTO_SANITIZER set) may take three times as long.
SCALE=1
[[ -z "${LOTO_SANITIZER:-}" ]] || SCALE=3

loto() { "$LOTO" "$@"; }
lotoc() { "$LOTO" --config "$CFG" "$@"; }

# --- time --------------------------------------------------------------------------------
# $EPOCHREALTIME needs no fork (bash >= 5); falls back to date(1).
now_us() {
  if [[ -n "${EPOCHREALTIME:-}" ]]; then
    local t=${EPOCHREALTIME/[.,]/}
    echo $((10#$t))
  else
    echo $(($(date +%s%N) / 1000))
  fi
}
now_ms() { echo $(($(now_us) / 1000)); }
# past_ms T: whether the clock has reached T (ms, as now_ms): for wait_until, where a test
# needs an interval to have passed.
past_ms() { (($(now_ms) >= $1)); }

# For scripts loto runs: inside `bash -c`, $STAMP_SNIPPET expands to a fork-free
# "now in ms" expression, e.g.  bash -c "$STAMP_SNIPPET > \$T/start; ..."
STAMP_SNIPPET='echo $(( ${EPOCHREALTIME/[.,]/} / 1000 ))'
export STAMP_SNIPPET

# --- temp dir and config -----------------------------------------------------------------
base_config() {
  printf 'lock_dir: %s\nlogging:\n  syslog: false\n' "$T"
}

# write_config [-n NAME] [TEXT]  -> prints the path of a 0600 file holding TEXT (or stdin)
write_config() {
  local name=""
  if [[ "${1:-}" == "-n" ]]; then
    name="$2"
    shift 2
  fi
  local path
  if [[ -n "$name" ]]; then
    path="$T/$name"
  else
    path="$(mktemp "$T/config.XXXXXX")"
    mv "$path" "$path.yaml"
    path="$path.yaml"
  fi
  (
    umask 077
    if [[ $# -gt 0 ]]; then
      printf '%s' "$1" >"$path"
    else
      cat >"$path"
    fi
  )
  chmod 0600 "$path"
  echo "$path"
}

# as_nobody CMD...: runs CMD as the user nobody (setpriv, from util-linux).
as_nobody() {
  setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$@"
}

# make_traversable DIR: makes DIR and every parent searchable by others, so that `nobody`
# can reach what is inside. Only directories of this test run are changed ($T and what
# lies under bats' run directory): a parent such as /root (mode 0700) is the machine's,
# and a test that needed it opened would pass only where the checkout happens to be.
make_traversable() {
  local d="$1" ours
  while [[ -n "$d" && "$d" != / ]]; do
    if ! as_nobody test -x "$d" 2>/dev/null; then
      ours=0
      [[ -n "${T:-}" && ("$d" == "$T" || "$d" == "$T"/*) ]] && ours=1
      [[ -n "${BATS_RUN_TMPDIR:-}" && ("$d" == "$BATS_RUN_TMPDIR" || "$d" == "$BATS_RUN_TMPDIR"/*) ]] && ours=1
      if ((!ours)); then
        echo "make_traversable: $d is out of nobody's reach and not the test's own; run the tests with TMPDIR=/tmp" >&2
        return 1
      fi
      chmod o+x "$d"
    fi
    d="$(dirname "$d")"
  done
}

# make_shared_loto: $SHARED_LOTO, a copy of $LOTO that other users can run (see above).
# A $LOTO that is a script (valgrind-e2e.sh's wrapper) is copied as it is: it still names
# the binary it runs.
make_shared_loto() {
  if [[ -n "${SHARED_LOTO:-}" && -x "$SHARED_LOTO" ]]; then
    return 0
  fi
  local dir
  dir="$(mktemp -d /tmp/loto-bin.XXXXXX)" || return 1
  echo "$dir" >>"$T/.shared_dirs"
  chmod 0755 "$dir"
  cp "$LOTO" "$dir/loto"
  if [[ -x "$(dirname "$LOTO")/loto-etcd" ]]; then
    cp "$(dirname "$LOTO")/loto-etcd" "$dir/loto-etcd"
  fi
  chmod 0755 "$dir"/*
  SHARED_LOTO="$dir/loto"
  export SHARED_LOTO
  as_nobody test -x "$SHARED_LOTO" || {
    echo "make_shared_loto: nobody cannot run $SHARED_LOTO" >&2
    return 1
  }
}

common_setup() {
  local base="${BATS_TEST_TMPDIR:-${TMPDIR:-/tmp}}"
  T="$(mktemp -d "$base/loto.XXXXXX")"
  export T
  : >"$T/.bgpids"
  CFG="$(write_config -n loto.yaml "$(base_config)")"
  export CFG
  [[ -x "$LOTO" ]] || {
    echo "loto binary not found or not executable: $LOTO" >&2
    return 1
  }
}

common_teardown() {
  [[ -n "${T:-}" && -f "$T/.bgpids" ]] || return 0
  local pid
  # SIGKILL every background process group we started (loto and its command).
  while read -r pid; do
    [[ -n "$pid" ]] || continue
    kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
  done <"$T/.bgpids"
  # Reap them so nothing lingers between tests.
  while read -r pid; do
    [[ -n "$pid" ]] || continue
    wait "$pid" 2>/dev/null || true
  done <"$T/.bgpids"
  : >"$T/.bgpids"
  _remove_shared_dirs
}

# The directories make_shared_loto made, once the test's processes are gone.
_remove_shared_dirs() {
  [[ -f "$T/.shared_dirs" ]] || return 0
  local dir
  while read -r dir; do
    if [[ "$dir" == /tmp/loto-bin.* ]]; then
      rm -rf -- "$dir"
    fi
  done <"$T/.shared_dirs"
  : >"$T/.shared_dirs"
}

setup() { common_setup; }
teardown() { common_teardown; }

# --- polling -----------------------------------------------------------------------------
# wait_until TIMEOUT_S CMD...   (polls every 5 ms)
wait_until() {
  local timeout="$1"
  shift
  local deadline=$(($(now_us) + ${timeout%.*} * 1000000))
  if [[ "$timeout" == *.* ]]; then
    local frac="${timeout#*.}000000"
    deadline=$((deadline + 10#${frac:0:6}))
  fi
  until "$@"; do
    if (($(now_us) > deadline)); then
      echo "wait_until: timed out after ${timeout}s waiting for: $*" >&2
      return 1
    fi
    sleep 0.005
  done
}

wait_for_file() {
  wait_until "${2:-5}" test -e "$1" || {
    echo "wait_for_file: $1 did not appear within ${2:-5}s" >&2
    return 1
  }
}

# wait_for_content PATH [TIMEOUT_S]: until PATH is non-empty. For files such as pid files
# that appear (created by ">") an instant before they are written.
wait_for_content() {
  wait_until "${2:-5}" test -s "$1" || {
    echo "wait_for_content: $1 stayed empty or absent for ${2:-5}s" >&2
    return 1
  }
}

# await PATH: shell code (POSIX sh and bash) that polls every 5 ms, 2000 times (10-12 s), until
# PATH exists. PATH is single-quoted (each ' as '\''), which both shells read back
# unchanged whatever it holds ($, quotes, spaces, newlines).
await() {
  local q
  q=${1//\'/\'\\\'\'}
  printf "_await_n=0; while [ ! -e '%s' ] && [ \$_await_n -lt 2000 ]; do sleep 0.005; _await_n=\$((_await_n+1)); done" "$q"
}

_has_lines() { [[ -f "$1" ]] && (($(wc -l <"$1") >= $2)); }
wait_for_lines() { wait_until "${3:-5}" _has_lines "$1" "$2"; }

# --- processes ---------------------------------------------------------------------------
# proc_state PID: the one-letter state of PID (R, S, T, Z ...), nothing if it is gone.
# Fork-free: /proc/PID/stat is "pid (comm) S ...".
proc_state() {
  local stat
  { read -r stat <"/proc/$1/stat"; } 2>/dev/null || return 0
  stat="${stat##*) }"
  echo "${stat:0:1}"
}
proc_gone() {
  local state
  state="$(proc_state "$1")"
  [[ -z "$state" || "$state" == Z || "$state" == X ]] # gone or zombie counts as gone
}
# context_switches PID: how many times PID has given up the CPU so far (voluntary and not).
context_switches() { awk '/ctxt_switches/ { n += $2 } END { print n }' "/proc/$1/status"; }
proc_stopped() { [[ "$(proc_state "$1")" == T ]]; }
# cpu_ticks PID: PID's utime + stime so far, in ticks of 1/100 s (fields 14 and 15 of
# /proc/PID/stat, counted after the command name, which may hold spaces).
cpu_ticks() {
  local stat fields
  read -r stat <"/proc/$1/stat"
  read -r -a fields <<<"${stat##*) }"
  echo $((fields[11] + fields[12]))
}
# cpu_ticks_in PID SECONDS: the ticks PID uses over the next SECONDS (how long a scenario
# lasts, not a wait for an event).
cpu_ticks_in() {
  local before
  before="$(cpu_ticks "$1")"
  sleep "$2"
  echo $(($(cpu_ticks "$1") - before))
}
proc_sleeping() { [[ "$(proc_state "$1")" == S ]]; }
# writing_to_pipe PID: PID sleeps in a write to a full pipe or FIFO.
writing_to_pipe() { [[ "$(cat "/proc/$1/wchan" 2>/dev/null)" == *pipe_write ]]; }

# blocked PID: PID is blocked in flock() (a "->" line of /proc/locks), on a lock or a ticket.
blocked() {
  awk -v pid="$1" '$2 == "->" && $3 == "FLOCK" && $6 == pid { found = 1 } END { exit !found }' /proc/locks
}

# tickets LOCKFILE: how many ticket files ("LOCKFILE.q<20 digits>", live or dead) it has;
# wait_for_tickets LOCKFILE N [TIMEOUT_S]: until exactly N are there.
tickets() {
  local f n=0
  for f in "$1".q[0-9]*; do
    [[ -e "$f" ]] && n=$((n + 1))
  done
  echo "$n"
}
_has_tickets() { (($(tickets "$1") == $2)); }
wait_for_tickets() { wait_until "${3:-5}" _has_tickets "$1" "$2"; }

# spawn [-n NAME] CMD...  -> $SPAWNED. Runs in a new session (setsid does not fork: the
# background child of a non-interactive shell is never a group leader), so $SPAWNED is
# also the process group id. fd 3 (bats' output) is closed so bats never hangs on it.
# SIGINT/SIGQUIT are reset to default (bash makes them ignored in background jobs), so
# the process starts like one launched from a terminal.
spawn() {
  local name=""
  if [[ "${1:-}" == "-n" ]]; then
    name="$2"
    shift 2
  fi
  [[ -n "$name" ]] || name="bg.$RANDOM$RANDOM"
  # setsid cannot run shell functions: expand the two wrappers.
  case "$1" in
  loto) set -- "$LOTO" "${@:2}" ;;
  lotoc) set -- "$LOTO" --config "$CFG" "${@:2}" ;;
  esac
  setsid env --default-signal=INT,QUIT "$@" </dev/null >"$T/$name.out" 2>"$T/$name.err" 3>&- &
  SPAWNED=$!
  echo "$SPAWNED" >>"$T/.bgpids"
}

# wait_exit PID [TIMEOUT_S]  -> $STATUS (exit status of a child of this shell).
# Fails (STATUS=timeout) if it does not exit in time.
wait_exit() {
  local pid="$1" timeout="${2:-10}"
  STATUS=""
  if ! wait_until "$timeout" proc_gone "$pid"; then
    STATUS=timeout
    echo "wait_exit: pid $pid still running after ${timeout}s" >&2
    return 1
  fi
  local rc=0
  wait "$pid" || rc=$?
  STATUS=$rc
}

# flock(1) probes that never create the file: open it read-only without O_CREAT, then
# try LOCK_EX|LOCK_NB on that descriptor (99 = busy), and close it again at once.
lock_probe() {
  local fd rc=0
  exec {fd}<"$1" || return 2
  flock -n -E 99 "$fd" || rc=$?
  exec {fd}<&-
  return "$rc"
}
lock_is_held() {
  local rc=0
  lock_probe "$1" 2>/dev/null || rc=$?
  ((rc == 99))
}
lock_is_free() { lock_probe "$1"; }

# hold_lock PATH [NAME]: flock(1) takes PATH (creating it if absent) and keeps it until
# teardown or release_lock; returns once the lock is held. Sets $HOLDER (pid = pgid).
hold_lock() {
  local path="$1" name="${2:-holder}"
  rm -f "$T/$name.ready"
  spawn -n "$name" flock -x "$path" sh -c 'touch "$1"; exec sleep 60' sh "$T/$name.ready"
  HOLDER=$SPAWNED
  wait_for_file "$T/$name.ready"
}
# release_lock [PID]: ends a holder started by hold_lock (its whole process group).
release_lock() {
  local pid="${1:-$HOLDER}"
  kill -TERM -- "-$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

# lock_waiters PATH: how many processes are blocked in flock() on PATH's inode
# (/proc/locks lines with "->").
lock_waiters() {
  local ino
  ino="$(stat -c %i "$1" 2>/dev/null)" || {
    echo 0
    return
  }
  awk -v ino="$ino" '$2 == "->" && $3 == "FLOCK" { n = split($7, a, ":"); if (a[n] == ino) c++ }
    END { print c + 0 }' /proc/locks
}
_has_waiters() { (($(lock_waiters "$1") >= ${2:-1})); }
# wait_for_waiters PATH [N] [TIMEOUT_S]: until N processes are blocked on PATH.
wait_for_waiters() { wait_until "${3:-5}" _has_waiters "$1" "${2:-1}"; }

# not CMD...: succeeds when CMD fails. Use it instead of `! CMD`, which never fails a
# bats test (bash's errexit ignores negated commands).
not() {
  if "$@"; then
    echo "not: this unexpectedly succeeded: $*" >&2
    return 1
  fi
  return 0
}

# signal_storm PID SIG...: every round sends each SIG to PID, with builtins only, until
# PID is gone (or 5 s have passed), so the storm lasts whatever PID is waiting for.
signal_storm() {
  local pid="$1" start=$((${EPOCHREALTIME/[.,]/} / 1000)) sig
  shift
  STORM_ROUNDS=0
  while ! proc_gone "$pid" && ((${EPOCHREALTIME/[.,]/} / 1000 - start < 5000)); do
    for sig in "$@"; do
      kill "-$sig" "$pid" 2>/dev/null || true
    done
    STORM_ROUNDS=$((STORM_ROUNDS + 1))
  done
}

# lock_swap_check HOW PATH [ARG]: one run of "the lock file is deleted, replaced or renamed
# away while a waiter waits". loto A (lotoc -L ARG; ARG defaults to PATH, it must name
# PATH) holds PATH; B (lotoc -w -L ARG) waits on it; PATH is then removed (HOW=rm),
# replaced by a new file (HOW=replace: the old one is unlinked) or renamed to PATH.away
# and a new file created at PATH (HOW=rename: the old one keeps its one link, so only
# its device and inode tell it from the file at PATH), and C (lotoc -L ARG) takes the new
# PATH. When A lets go, B wakes up on the old file: it must notice, wait for C, and start
# only after C ended.
# Fails the test otherwise. Markers: $T/swap.HOW.{A,B,C}.*
# (single-quoted scripts are for loto to run; the nested function is wait_until's)
# shellcheck disable=SC2016,SC2317
lock_swap_check() {
  local how="$1" lock="$2" arg="${3:-$2}" S="$STAMP_SNIPPET" p="$T/swap.$1"
  [[ "$how" == rm || "$how" == replace || "$how" == rename ]] || {
    echo "lock_swap_check: HOW is rm, replace or rename, not '$how'" >&2
    return 1
  }
  rm -f "$lock" "$lock.away"
  # queue: none, so that C may take the new file while B still waits on the old one (a
  # fifo queue would rightly keep C behind B); what is checked is that B never runs
  # beside C. A drop-in, so that the test's own config stays as it is.
  mkdir -p "${CFG%.yaml}.d"
  printf 'defaults:\n  queue: none\n' >"${CFG%.yaml}.d/zz-queue-none.yaml"
  spawn -n "swap.$how.A" lotoc -L "$arg" bash -c 'touch "$0.A.ready"; '"$(await "$p.A.go")" "$p"
  local A=$SPAWNED
  wait_for_file "$p.A.ready"
  spawn -n "swap.$how.B" lotoc -w -L "$arg" bash -c "$S"' >"$0.B.start"' "$p"
  local B=$SPAWNED
  wait_for_waiters "$lock" 1
  case $how in
  rm) rm "$lock" ;;
  replace)
    : >"$lock.swap"
    mv "$lock.swap" "$lock"
    ;;
  rename)
    mv "$lock" "$lock.away"
    : >"$lock"
    chmod 0644 "$lock"
    ;;
  esac
  spawn -n "swap.$how.C" lotoc -L "$arg" bash -c "$S"' >"$0.C.start"; touch "$0.C.ready"; '"$(await "$p.C.go")"'; '"$S"' >"$0.C.end"' "$p"
  local C=$SPAWNED
  wait_for_file "$p.C.ready"
  # A lets go of the old file: B wakes up on it
  touch "$p.A.go"
  wait_exit "$A" 5
  [ "$STATUS" -eq 0 ]
  # B either (wrongly) runs now, or goes back to wait on the new file
  _swap_b_started_or_waiting() { [[ -e "$p.B.start" ]] || _has_waiters "$lock" 1; }
  wait_until 5 _swap_b_started_or_waiting
  if [[ "$how" == rename ]]; then
    # B let go of the old file before it went back to wait on the new one
    lock_is_free "$lock.away"
  fi
  touch "$p.C.go"
  wait_exit "$C" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$B" 5
  [ "$STATUS" -eq 0 ]
  echo "$how: B started $(cat "$p.B.start"), C ran $(cat "$p.C.start")..$(cat "$p.C.end")" >&2
  # the two never overlap: B started after C ended
  (($(cat "$p.B.start") >= $(cat "$p.C.end")))
}
