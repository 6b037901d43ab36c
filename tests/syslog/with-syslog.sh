#!/bin/bash
# Runs a command inside a private mount namespace whose /dev is a private tmpfs (the usual
# device nodes bind-mounted in), with a syslog socket at /dev/log there. The host's /dev
# is never touched, so this works on machines with or without a system /dev/log.
#
# Usage: with-syslog.sh [--rsyslog | --stuck | --no-log] COMMAND [ARGS...]
#   --rsyslog  (default) a private rsyslogd listens on /dev/log and writes every record to
#              $LOTO_SYSLOG_MESSAGES as "FACILITY.SEVERITY TAG MSG" (rsyslog-test.conf).
#   --stuck    stuck-reader.py is bound at /dev/log: a daemon whose queue is full and who
#              never reads.
#   --no-log   there is no /dev/log at all.
#
# Environment:
#   LOTO_SYSLOG_DIR       working directory, kept afterwards so the caller can read
#                         $LOTO_SYSLOG_DIR/messages; without it a fresh mktemp -d is used
#                         and removed at the end.
#   LOTO_SYSLOG_MESSAGES  exported to COMMAND: the path of the messages file.
#
# With --rsyslog, once COMMAND has finished a unique marker is sent to /dev/log and the
# messages file is polled (bounded) until the marker is in it; the daemon keeps arrival
# order, so every record sent before the marker is then in the file. Exit status: the
# command's, or 70 if the syslog set-up failed.
set -euo pipefail

mode=rsyslog
case "${1:-}" in
--rsyslog) shift ;;
--stuck) mode=stuck; shift ;;
--no-log) mode=none; shift ;;
esac
if [ $# -eq 0 ]; then
  sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//' >&2
  exit 64
fi

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ -n "${LOTO_SYSLOG_DIR:-}" ]; then
  DIR=$LOTO_SYSLOG_DIR
else
  DIR=$(mktemp -d /tmp/loto-syslog.XXXXXX)
  trap 'rm -rf -- "$DIR"' EXIT
fi
mkdir -p "$DIR/work" "$DIR/realdev"
DIR=$(cd "$DIR" && pwd)
: >"$DIR/messages"
sed -e "s#@DIR@#$DIR#g" -e "s#@SOCK@#/dev/log#g" "$HERE/rsyslog-test.conf" >"$DIR/rsyslog.conf"
export LOTO_SYSLOG_DIR=$DIR LOTO_SYSLOG_MESSAGES=$DIR/messages LOTO_SYSLOG_MODE=$mode
export LOTO_SYSLOG_HERE=$HERE

ns=(unshare --mount --propagation private)
if [ "$(id -u)" -ne 0 ]; then
  ns=(unshare --user --map-root-user --mount --propagation private)
fi

rc=0
# shellcheck disable=SC2016  # the script runs in the namespace, with its own expansions
"${ns[@]}" bash -euo pipefail -c '
  DIR=$LOTO_SYSLOG_DIR
  fail() { echo "with-syslog.sh: $*" >&2; exit 70; }
  # A private /dev: a tmpfs with the usual nodes bind-mounted from the real one.
  mount --rbind /dev "$DIR/realdev"
  mount -t tmpfs -o mode=755 tmpfs /dev
  for n in null zero full random urandom tty ptmx console; do
    [ -e "$DIR/realdev/$n" ] || continue
    touch "/dev/$n"; mount --bind "$DIR/realdev/$n" "/dev/$n"
  done
  mkdir /dev/pts /dev/shm
  mount --rbind "$DIR/realdev/pts" /dev/pts
  mount --rbind "$DIR/realdev/shm" /dev/shm
  ln -s /proc/self/fd /dev/fd; ln -s /proc/self/fd/0 /dev/stdin
  ln -s /proc/self/fd/1 /dev/stdout; ln -s /proc/self/fd/2 /dev/stderr

  daemon=
  stop_daemon() {
    if [ -n "$daemon" ]; then kill "$daemon" 2>/dev/null || true; wait "$daemon" 2>/dev/null || true; fi
  }
  trap stop_daemon EXIT
  wait_for() { # wait_for TEST ARG: up to 10 s
    for _ in $(seq 200); do test "$1" "$2" && return 0; sleep 0.05; done
    return 1
  }
  case "$LOTO_SYSLOG_MODE" in
  rsyslog)
    rsyslogd -N1 -f "$DIR/rsyslog.conf" >"$DIR/rsyslogd-check.log" 2>&1 ||
      fail "rsyslogd rejected $DIR/rsyslog.conf: $(cat "$DIR/rsyslogd-check.log")"
    rsyslogd -n -i "$DIR/rsyslogd.pid" -f "$DIR/rsyslog.conf" >"$DIR/rsyslogd.log" 2>&1 &
    daemon=$!
    wait_for -S /dev/log || fail "rsyslogd did not create /dev/log: $(cat "$DIR/rsyslogd.log")"
    ;;
  stuck)
    py=python3; [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    "$py" "$LOTO_SYSLOG_HERE/stuck-reader.py" /dev/log "$DIR/stuck.ready" >/dev/null &
    daemon=$!
    wait_for -e "$DIR/stuck.ready" || fail "stuck-reader.py did not get ready"
    ;;
  none)
    [ ! -e /dev/log ] || fail "/dev/log exists in the namespace"
    ;;
  esac

  set +e; "$@"; rc=$?; set -e

  if [ "$LOTO_SYSLOG_MODE" = rsyslog ]; then
    marker="loto-syslog-sync-$$-$RANDOM$RANDOM"
    logger -u /dev/log -t loto-syslog-sync -- "$marker"
    synced=
    for _ in $(seq 400); do
      if grep -qF -- "$marker" "$DIR/messages"; then synced=1; break; fi
      sleep 0.025
    done
    [ -n "$synced" ] || echo "with-syslog.sh: warning: the sync marker did not reach $DIR/messages" >&2
  fi
  exit "$rc"
' with-syslog "$@" || rc=$?
exit "$rc"
