#!/usr/bin/env bats
# Syslog audit records, read back from a real rsyslogd.
#
# Each test runs loto through tests/syslog/with-syslog.sh, which gives the command a
# private mount namespace with its own /dev, where /dev/log is a private rsyslogd (or a
# reader that never reads, or nothing at all). The host's /dev is never touched. When the
# command has finished, with-syslog.sh sends a marker through /dev/log and waits (bounded)
# until rsyslogd has written it, so every record loto sent before is in the messages file
# by the time `run` returns: no fixed sleeps.
#
# Needs root (or unprivileged user namespaces), rsyslogd, unshare, logger and python3.

# Scripts run inside the namespace are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load syslog_helpers

setup() {
  common_setup
  command -v rsyslogd >/dev/null || skip "rsyslogd is not installed"
  command -v unshare >/dev/null || skip "unshare is not installed"
  SLDIR="$T/syslog"
  MSG="$SLDIR/messages"
  UID_NOW="$(id -u)"
  USER_NOW="$(id -un)"
  export SLDIR MSG
}

teardown() { common_teardown; }

# syslog_config [EXTRA_YAML]: lock_dir $T, syslog on at local3, plus EXTRA_YAML lines.
syslog_config() {
  write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: true\n  facility: local3\n%s' "$T" "${1:-}")"
}

# Records of one event.
count_lines() { if [[ -z "$1" ]]; then echo 0; else printf '%s\n' "$1" | wc -l; fi; }

# assert_fields RECORD KEY=VALUE...: each " KEY=VALUE" word is in RECORD (VALUE may be a
# glob like '[0-9]*'; a word ends at a space or at the end of the record).
assert_fields() {
  local record="$1" kv
  shift
  for kv in "$@"; do
    # $kv unquoted on purpose: its value may be a glob
    # shellcheck disable=SC2027
    if [[ " $record " != *" "$kv" "* ]]; then
      echo "missing field '$kv' in record: $record" >&2
      return 1
    fi
  done
}

# The fields every record carries: pid (= the tag's pid), uid, user, command.
assert_common_fields() {
  local record="$1" pid="$2"
  [[ "$record" =~ ^[a-z0-9]+\.[a-z]+\ loto\[$pid\]:\  ]] || {
    echo "expected tag loto[$pid] in: $record" >&2
    return 1
  }
  assert_fields "$record" "pid=$pid" "uid=$UID_NOW" "user=$USER_NOW"
  [[ "$record" == *" command="* ]] || {
    echo "no command= in: $record" >&2
    return 1
  }
}

# refute CMD...: CMD must fail (a bare `! CMD` never fails a bats test).
refute() {
  if "$@"; then
    echo "unexpectedly succeeded: $*" >&2
    return 1
  fi
}

# has / lacks RECORD TEXT: a literal substring check that shows the record when it fails.
has() {
  [[ "$1" == *"$2"* ]] || {
    echo "expected '$2' in record: ${1:0:400}" >&2
    return 1
  }
}
lacks() {
  [[ "$1" != *"$2"* ]] || {
    echo "did not expect '$2' (escaped twice?) in record: ${1:0:400}" >&2
    return 1
  }
}

# The pid in a record's tag "loto[PID]:".
tag_pid() { sed -E 's/^[^[]*\[([0-9]+)\].*/\1/' <<<"$1"; }

# Byte length of a string.
bytes() { printf '%s' "$1" | wc -c; }

@test "with-syslog.sh: a private rsyslogd serves /dev/log inside, the host /dev is untouched" {
  # what the host's /dev/log is (nothing, a socket, a link), before and after
  host_log() { stat -c '%F %i %N' /dev/log 2>/dev/null || echo absent; }
  local before
  before="$(host_log)"
  run in_syslog bash -c 'test -S /dev/log && logger -t e2e-probe "hello from the namespace" && exit 7'
  [ "$status" -eq 7 ]
  synced
  grep -q '^user.notice e2e-probe: hello from the namespace$' "$MSG"
  [ "$(host_log)" = "$before" ]
}

@test "acquired and finished: one record each, facility from config, all fields" {
  conf="$(syslog_config)"
  run in_syslog "$LOTO" --config "$conf" -L cpu -- sh -c 'echo $PPID >"$1"; exit 3' sh "$T/loto.pid"
  [ "$status" -eq 3 ]
  synced
  pid="$(cat "$T/loto.pid")"

  acquired="$(event_lines acquired)"
  finished="$(event_lines finished)"
  [ "$(count_lines "$acquired")" -eq 1 ]
  [ "$(count_lines "$finished")" -eq 1 ]
  [ "$(count_lines "$(loto_lines)")" -eq 2 ]

  [[ "$acquired" == "local3.info loto[$pid]: event=acquired "* ]]
  assert_fields "$acquired" "resource=cpu" "lock=$T/loto.cpu" "waited_ms=[0-9]*"
  assert_common_fields "$acquired" "$pid"
  [[ "$acquired" == *" command=\"sh -c "* ]]

  [[ "$finished" == "local3.info loto[$pid]: event=finished "* ]]
  assert_fields "$finished" "resource=cpu" "lock=$T/loto.cpu" "status=3" "held_ms=[0-9]*"
  assert_common_fields "$finished" "$pid"
}

@test "finished: a command killed by a signal gives status 128+N and signal=SIGNAME; a plain exit has no signal=" {
  conf="$(syslog_config)"
  run in_syslog bash -c '
    "$1" --config "$2" -L cpu -- sh -c "kill -USR1 \$\$"; echo $? >"$3/first.status"
    "$1" --config "$2" -L cpu -- sh -c "exit 138"; echo $? >"$3/second.status"' _ "$LOTO" "$conf" "$T"
  [ "$(cat "$T/first.status")" -eq 138 ]
  [ "$(cat "$T/second.status")" -eq 138 ]
  synced
  finished="$(event_lines finished)"
  echo "$finished"
  [ "$(count_lines "$finished")" -eq 2 ]
  first="$(head -1 <<<"$finished")"
  second="$(tail -1 <<<"$finished")"
  assert_fields "$first" "resource=cpu" "status=138" "signal=SIGUSR1"
  assert_fields "$second" "resource=cpu" "status=138"
  [[ "$second" != *" signal="* ]]
}

@test "ident is loto[pid] even when argv[0] is a long, different name" {
  conf="$(syslog_config)"
  name="definitely-not-loto-but-a-rather-long-argv0-name-0123456789abcdefghijklmnopqrstuvwxyz"
  run in_syslog bash -c 'exec -a "$1" "$LOTO" --config "$2" -v -L cpu -- sh -c "echo \$PPID >$3"' \
    _ "$name" "$conf" "$T/loto.pid"
  [ "$status" -eq 0 ]
  synced
  pid="$(cat "$T/loto.pid")"
  records="$(loto_lines)"
  [ "$(count_lines "$records")" -ge 2 ]
  # every record of that run is tagged loto[PID], none mentions the fake argv[0]
  refute grep -aF -- "$name" "$MSG"
  [ "$(printf '%s\n' "$records" | grep -cvF "loto[$pid]: ")" -eq 0 ]
  [ "$(event_lines acquired | grep -cF " pid=$pid ")" -eq 1 ]
}

@test "busy: a warning record with the holder's pid" {
  conf="$(syslog_config)"
  hold_lock "$T/loto.cpu"
  run in_syslog "$LOTO" --config "$conf" -L cpu -- touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  synced
  busy="$(event_lines busy)"
  [ "$(count_lines "$busy")" -eq 1 ]
  [[ "$busy" == "local3.warning loto["* ]]
  pid="$(tag_pid "$busy")"
  assert_fields "$busy" "resource=cpu" "lock=$T/loto.cpu" "holder_pid=$HOLDER"
  assert_common_fields "$busy" "$pid"
  [ -z "$(event_lines acquired)" ]
  [ -z "$(event_lines finished)" ]
}

@test "busy: a holder that is pid 1 (the init of a pid namespace) is named in the record too" {
  command -v unshare >/dev/null || skip "unshare is not installed"
  conf="$(syslog_config)"
  # flock(1) holds the lock as pid 1 of a new pid namespace and runs loto in it
  run in_syslog unshare --pid --fork --mount-proc flock -x "$T/loto.cpu" "$LOTO" --config "$conf" -L cpu -- touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  synced
  busy="$(event_lines busy)"
  [ "$(count_lines "$busy")" -eq 1 ]
  assert_fields "$busy" "resource=cpu" "lock=$T/loto.cpu" "holder_pid=1"
}

@test "timeout: a warning record after -t expires" {
  conf="$(syslog_config)"
  hold_lock "$T/loto.cpu"
  run in_syslog "$LOTO" --config "$conf" -t 0.2 -L cpu -- touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  synced
  timeout_line="$(event_lines timeout)"
  [ "$(count_lines "$timeout_line")" -eq 1 ]
  [[ "$timeout_line" == "local3.warning loto["* ]]
  pid="$(tag_pid "$timeout_line")"
  assert_fields "$timeout_line" "resource=cpu" "lock=$T/loto.cpu" "holder_pid=$HOLDER" "waited_ms=[0-9]*"
  assert_common_fields "$timeout_line" "$pid"
  waited="$(grep -oE ' waited_ms=[0-9]+' <<<"$timeout_line" | cut -d= -f2)"
  ((waited >= 150 && waited < 2000))
  [ -z "$(event_lines busy)" ]
}

@test "interrupted: SIGTERM while waiting gives exit 143 and a warning record" {
  conf="$(syslog_config)"
  hold_lock "$T/loto.cpu"
  run in_syslog bash -c '
    "$LOTO" --config "$1" -v -w -L cpu -- touch "$T/ran" 2>"$T/waiter.err" &
    p=$!
    for _ in $(seq 1000); do grep -q "waiting for" "$T/waiter.err" && break; sleep 0.005; done
    grep -q "waiting for" "$T/waiter.err" || { echo "loto never said it was waiting" >&2; exit 99; }
    echo "$p" >"$T/loto.pid"
    kill -TERM "$p"
    wait "$p"
  ' _ "$conf"
  [ "$status" -eq 143 ]
  [ ! -e "$T/ran" ]
  synced
  pid="$(cat "$T/loto.pid")"
  line="$(event_lines interrupted)"
  [ "$(count_lines "$line")" -eq 1 ]
  [[ "$line" == "local3.warning loto[$pid]: event=interrupted "* ]]
  assert_fields "$line" "resource=cpu" "lock=$T/loto.cpu" "signal=SIGTERM"
  assert_common_fields "$line" "$pid"
  [ -z "$(event_lines acquired)" ]
}

@test "error: an unsafe lock file (FIFO) gives exit 77 and an err record with the message" {
  conf="$(syslog_config)"
  mkfifo "$T/fifo.lock"
  run in_syslog "$LOTO" --config "$conf" -L "$T/fifo.lock" -- touch "$T/ran"
  [ "$status" -eq 77 ]
  [ ! -e "$T/ran" ]
  synced
  line="$(event_lines error)"
  [ "$(count_lines "$line")" -eq 1 ]
  [[ "$line" == "local3.err loto["* ]]
  pid="$(tag_pid "$line")"
  [[ "$line" == *" message=\""*fifo.lock* ]]
  assert_common_fields "$line" "$pid"
  [[ "$line" == *' command="touch '* ]]
}

@test "logging.syslog false sends nothing at all" {
  conf="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: false\n  facility: local3\n' "$T")")"
  mkfifo "$T/fifo.lock"
  hold_lock "$T/held.lock"
  run in_syslog bash -c '
    "$LOTO" --config "$1" -v -L cpu -- true 2>/dev/null || exit 1
    "$LOTO" --config "$1" -L "$T/held.lock" -- true 2>/dev/null; [ $? -eq 75 ] || exit 2
    "$LOTO" --config "$1" -L "$T/fifo.lock" -- true 2>/dev/null; [ $? -eq 77 ] || exit 3
    exit 0
  ' _ "$conf"
  [ "$status" -eq 0 ]
  synced
  [ -z "$(loto_lines)" ]
  refute grep -q '^local3\.' "$MSG"
}

@test "level warning drops info records and keeps warnings" {
  conf="$(syslog_config "$(printf '  level: warning\n')")"
  hold_lock "$T/held.lock"
  run in_syslog bash -c '
    "$LOTO" --config "$1" -v -L cpu -- true 2>/dev/null || exit 1
    "$LOTO" --config "$1" -L "$T/held.lock" -- true 2>/dev/null; [ $? -eq 75 ] || exit 2
    exit 0
  ' _ "$conf"
  [ "$status" -eq 0 ]
  synced
  [ -z "$(event_lines acquired)" ]
  [ -z "$(event_lines finished)" ]
  refute grep -qE '^[a-z0-9]+\.info ' <(loto_lines)
  busy="$(event_lines busy)"
  [ "$(count_lines "$busy")" -eq 1 ]
  [[ "$busy" == "local3.warning "* ]]
}

@test "-v also sends the play-by-play; without -v only the audit records" {
  conf="$(syslog_config)"
  run in_syslog bash -c '"$LOTO" --config "$1" -L cpu -- true && "$LOTO" --config "$1" -v -L net -- true' _ "$conf"
  [ "$status" -eq 0 ]
  synced
  quiet_pid="$(tag_pid "$(event_lines acquired | grep -F 'resource=cpu')")"
  verbose_pid="$(tag_pid "$(event_lines acquired | grep -F 'resource=net')")"
  [ -n "$quiet_pid" ]
  [ -n "$verbose_pid" ]
  # the run without -v: exactly its two audit records
  [ "$(loto_lines | grep -cF "loto[$quiet_pid]: ")" -eq 2 ]
  [ "$(loto_lines | grep -F "loto[$quiet_pid]: " | grep -cv ': event=')" -eq 0 ]
  # the -v run: the audit records plus acquired-after, started pid, exit status
  verbose="$(loto_lines | grep -F "loto[$verbose_pid]: " | grep -v ': event=')"
  grep -qE "^local3\.info loto\[$verbose_pid\]: .*acquired.* after [0-9]+ ms" <<<"$verbose"
  grep -qE "^local3\.info loto\[$verbose_pid\]: .*started pid [0-9]+" <<<"$verbose"
  grep -qE "^local3\.info loto\[$verbose_pid\]: .*exit(ed)? (with )?status 0" <<<"$verbose"
}

@test "hostile arguments: one record per event, control bytes escaped, capped with a mark" {
  conf="$(syslog_config)"
  long="$(head -c 100000 /dev/zero | tr '\0' 'x')"
  run in_syslog "$LOTO" --config "$conf" -L cpu -- true $'a\nb' $'\e[31mred' '%n%s{}' $'c\xffd' "$long"
  [ "$status" -eq 0 ]
  synced
  records="$(loto_lines)"
  [ "$(count_lines "$records")" -eq 2 ]
  [ "$(count_lines "$(event_lines acquired)")" -eq 1 ]
  [ "$(count_lines "$(event_lines finished)")" -eq 1 ]
  finished="$(event_lines finished)"
  assert_fields "$finished" "status=0"
  # no raw control byte or invalid UTF-8 reached the daemon (rsyslogd would show #012/#033)
  refute env LC_ALL=C grep -q $'\e' "$MSG"
  refute env LC_ALL=C grep -q $'\xff' "$MSG"
  refute grep -qE '#0(12|33)' "$MSG"
  # escaped once, as documented (\n, \x1b, \xff), as on stderr; format characters left alone
  for record in "$(event_lines acquired)" "$finished"; do
    has "$record" '%n%s{}'
    has "$record" '[31mred'
    lacks "$record" '\\n'
    lacks "$record" '\\x1b'
    lacks "$record" '\\xff'
    has "$record" 'a\nb'
    has "$record" '\x1b[31mred'
    has "$record" 'c\xffd'
    # capped: ends with the visible mark, the message part at most 2048 bytes
    has "$record" '...[truncated]'
    [[ "$record" == *'...[truncated]' ]]
    message="${record#*]: }"
    (($(bytes "$message") <= 2048))
  done
}

@test "hostile arguments with -v: the play-by-play is escaped and capped too" {
  conf="$(syslog_config)"
  long="$(head -c 100000 /dev/zero | tr '\0' 'x')"
  run in_syslog "$LOTO" --config "$conf" -v -L cpu -- true $'a\nb' $'\e[31mred' "$long"
  [ "$status" -eq 0 ]
  synced
  refute env LC_ALL=C grep -q $'\e' "$MSG"
  refute grep -qE '#0(12|33)' "$MSG"
  started="$(loto_lines | grep -E ': started pid [0-9]+' || true)"
  [ "$(count_lines "$started")" -eq 1 ]
  message="${started#*]: }"
  size="$(bytes "$message")"
  ((size <= 2048)) || {
    echo "play-by-play record not capped: $size bytes, ends '${message: -40}'" >&2
    return 1
  }
  [[ "$message" == *'...[truncated]' ]]
}

@test "a stuck /dev/log reader: 30 sequential -v runs all finish quickly" {
  command -v python3 >/dev/null || skip "python3 is not installed"
  conf="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: true\n' "$T")")"
  start="$(now_ms)"
  run timeout 20 "$WITH_SYSLOG" --stuck bash -c '
    test -S /dev/log || exit 90
    # the reader really is stuck: a blocking sender (logger) hangs
    timeout 1 logger -u /dev/log probe; echo "$?" >"$T/probe.rc"
    for i in $(seq 30); do
      rc=0; timeout 5 "$LOTO" --config "$1" -v -L cpu -- true 2>/dev/null || rc=$?
      echo "$rc" >>"$T/rcs"
    done
  ' _ "$conf"
  elapsed=$(($(now_ms) - start))
  [ "$status" -eq 0 ]
  [ "$(cat "$T/probe.rc")" -eq 124 ]
  [ "$(wc -l <"$T/rcs")" -eq 30 ]
  [ "$(grep -cx 0 "$T/rcs")" -eq 30 ]
  # the 1 s probe and the namespace set-up included; a hang would take 5 s per run
  ((elapsed < 10000)) || {
    echo "30 runs took ${elapsed} ms" >&2
    return 1
  }
  lock_is_free "$T/loto.cpu"
}

@test "no /dev/log at all: loto runs the command and exits 0" {
  conf="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: true\n' "$T")")"
  run timeout 20 "$WITH_SYSLOG" --no-log bash -c '
    [ ! -e /dev/log ] || exit 90
    timeout 5 "$LOTO" --config "$1" -v -L cpu -- sh -c "echo ran >\"\$0\"" "$T/ran"
  ' _ "$conf"
  [ "$status" -eq 0 ]
  [ "$(cat "$T/ran")" = ran ]
  lock_is_free "$T/loto.cpu"
}

@test "logging.ident from the config replaces the tag; the pid stays" {
  conf="$(syslog_config "$(printf '  ident: nightly-jobs\n')")"
  run in_syslog "$LOTO" --config "$conf" -L cpu -- sh -c 'echo $PPID >"$1"' sh "$T/loto.pid"
  [ "$status" -eq 0 ]
  synced
  pid="$(cat "$T/loto.pid")"
  [ -z "$(loto_lines)" ]
  [ "$(grep -c "^local3\.info nightly-jobs\[$pid\]: event=" "$MSG")" -eq 2 ]
}

@test "user= is the running user's name from /etc/passwd, or the uid when it has no name" {
  command -v setpriv >/dev/null || skip "setpriv is not installed"
  # a config and a lock directory that other users can reach
  make_traversable "$T"
  mkdir -m 1777 "$T/locks"
  conf="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: true\n' "$T/locks")")"
  chmod 0644 "$conf"
  local nobody_uid
  nobody_uid="$(id -u nobody)"
  make_shared_loto # the other users may not reach the checkout's build/loto
  # one lock each: a lock file another user owns in a shared directory is refused
  run in_syslog sh -c '
    "$1" --config "$2" -L cpu -- true
    setpriv --reuid="$3" --regid="$3" --clear-groups "$1" --config "$2" -L net -- true
    setpriv --reuid=4242 --regid=4242 --clear-groups "$1" --config "$2" -L "$4" -- true
  ' sh "$SHARED_LOTO" "$conf" "$nobody_uid" "$T/locks/uid4242.lock"
  echo "$output"
  [ "$status" -eq 0 ]
  synced
  finished="$(event_lines finished)"
  echo "$finished"
  [ "$(count_lines "$finished")" -eq 3 ]
  getent passwd 4242 && skip "uid 4242 has a name on this machine"
  [[ "$(sed -n 1p <<<"$finished")" == *" uid=$UID_NOW user=$USER_NOW "* ]]
  [[ "$(sed -n 2p <<<"$finished")" == *" uid=$nobody_uid user=nobody "* ]]
  [[ "$(sed -n 3p <<<"$finished")" == *" uid=4242 user=4242 "* ]]
}
