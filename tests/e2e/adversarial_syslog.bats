#!/usr/bin/env bats
# Adversarial syslog cases S01-S04 (../shared/research/reliability-anchors.md, section b):
# no /dev/log, a /dev/log whose reader never reads, hostile arguments and a huge argv[0].
# Each runs through tests/syslog/with-syslog.sh (a private mount namespace with its own
# /dev/log: a real rsyslogd, a stuck reader or nothing); the host's /dev is never touched.

# Scripts run inside the namespace are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load adversarial_helpers
load syslog_helpers

setup() {
  adv_setup
  command -v unshare >/dev/null || skip "unshare is not installed"
  LOCK="$SHARED/loto.cpu"
  SLDIR="$T/syslog"
  MSG="$SLDIR/messages"
  printf 'lock_dir: %s\nlogging:\n  syslog: true\n  facility: local3\n' "$SHARED" >"$CFG"
  export SLDIR MSG
}

teardown() { adv_teardown; }

need_rsyslogd() { command -v rsyslogd >/dev/null || skip "rsyslogd is not installed"; }

@test "S01 no /dev/log: 100 runs all exit 0 at full speed, nothing on stderr" {
  run --separate-stderr timeout 60 "$WITH_SYSLOG" --no-log bash -c '
    [ ! -e /dev/log ] || exit 90
    for i in $(seq 100); do
      t0=${EPOCHREALTIME/[.,]/}
      rc=0; timeout 5 "$1" --config "$2" -L cpu -- true 2>>"$3/err" || rc=$?
      echo "$rc $(( (${EPOCHREALTIME/[.,]/} - t0) / 1000 ))" >>"$3/runs"
    done
  ' _ "$LOTO" "$CFG" "$T"
  assert_status 0
  [ "$(wc -l <"$T/runs")" -eq 100 ]
  [ "$(awk '$1 != 0' "$T/runs" | wc -l)" -eq 0 ]
  [ ! -s "$T/err" ]
  local total max
  total=$(awk '{ s += $2 } END { print s }' "$T/runs")
  max=$(sort -n -k2 "$T/runs" | tail -n1 | cut -d' ' -f2)
  echo "100 runs: ${total} ms in all, slowest ${max} ms" >&3
  # under 50 ms a run on average (a blocking logger would cost seconds)
  # an ASan build starts slower (~80 ms a run); a blocking logger would still blow this
  if [[ -n "${LOTO_SANITIZER:-}" ]]; then ((total < 20000)); else ((total < 5000)); fi
  ((max < 1000))
  lock_is_free "$LOCK"
}

@test "S02 a stuck /dev/log reader: 30 -v runs outlive their command by under 100 ms on average, 500 ms at most" {
  command -v python3 >/dev/null || skip "python3 is not installed"
  local S="$STAMP_SNIPPET"
  run --separate-stderr timeout 60 "$WITH_SYSLOG" --stuck bash -c '
    test -S /dev/log || exit 90
    for i in $(seq 30); do
      rc=0
      timeout 10 "$1" --config "$2" -v -L cpu -- bash -c "$4"" >\"$3/end\"" 2>/dev/null || rc=$?
      now=$(( ${EPOCHREALTIME/[.,]/} / 1000 ))
      echo "$rc $(( now - $(cat "$3/end") ))" >>"$3/runs"
    done
  ' _ "$LOTO" "$CFG" "$T" "$S"
  assert_status 0
  tr '\n' ' ' <"$T/runs" >&2
  [ "$(wc -l <"$T/runs")" -eq 30 ]
  [ "$(awk '$1 != 0' "$T/runs" | wc -l)" -eq 0 ]
  local total max
  total=$(awk '{ s += $2 } END { print s }' "$T/runs")
  max=$(sort -n -k2 "$T/runs" | tail -n1 | cut -d' ' -f2)
  echo "30 runs: loto outlived its command by ${total} ms in all, at most ${max} ms" >&3
  ((total < 30 * 100))
  ((max < 500))
  lock_is_free "$LOCK"
}

@test "S03 hostile arguments: one record per event, nothing forged in syslog or on stderr" {
  need_rsyslogd
  local long
  long="$(head -c 100000 /dev/zero | tr '\0' A)"
  run --separate-stderr in_syslog "$LOTO" --config "$CFG" -v -L cpu -- \
    printf %s $'a\nFAKE sshd: Accepted root\x1b[31m' '%n%s{}' $'\xff' "$long"
  assert_status 0
  synced
  local records
  records="$(loto_lines)"
  # exactly one acquired and one finished (-v adds play-by-play records, each one line)
  [ "$(grep -c ': event=acquired ' <<<"$records")" -eq 1 ]
  [ "$(grep -c ': event=finished ' <<<"$records")" -eq 1 ]
  # no record of anyone but loto and the sync marker: nothing forged
  not grep -avE '^[a-z0-9]+\.[a-z]+ (loto\[[0-9]+\]|loto-syslog-sync|rsyslogd): ' "$MSG"
  not grep -aqE '#0(12|33)' "$MSG"
  not env LC_ALL=C grep -q $'[\x1b\xff]' "$MSG"
  grep -qF 'a\nFAKE sshd: Accepted root\x1b[31m' <<<"$records"
  grep -qF '%n%s{}' <<<"$records"
  # capped, with the mark
  local rec
  while IFS= read -r rec; do
    rec="${rec#*]: }"
    (($(printf '%s' "$rec" | wc -c) <= 2048))
  done <<<"$records"
  grep -qF '...[truncated]' <<<"$records"
  # on stderr too (-v): every line is loto's own and escaped, no forged line
  not grep -avE '^loto: ' <<<"$stderr"
  not env LC_ALL=C grep -q $'[\x1b\xff]' <<<"$stderr"
}

@test "S04 a 128000-character, empty or %-laden argv[0]: exit 0, ident stays loto" {
  need_rsyslogd
  local huge
  huge="$(printf '%0128000x' 1)"
  run --separate-stderr in_syslog bash -c '
    rc=0
    (exec -a "$1" "$2" --config "$3" -L cpu -- sh -c "echo \$PPID >>\"\$0/pids\"" "$4") || rc=$((rc + $?))
    (exec -a "" "$2" --config "$3" -L cpu -- sh -c "echo \$PPID >>\"\$0/pids\"" "$4") || rc=$((rc + $?))
    (exec -a "%n%s%s%s{}" "$2" --config "$3" -L cpu -- sh -c "echo \$PPID >>\"\$0/pids\"" "$4") || rc=$((rc + $?))
    exit "$rc"
  ' _ "$huge" "$LOTO" "$CFG" "$T"
  assert_status 0
  synced
  [ "$(wc -l <"$T/pids")" -eq 3 ]
  local pid
  while read -r pid; do
    [ "$(grep -c "^local3\.info loto\[$pid\]: event=" "$MSG")" -eq 2 ]
  done <"$T/pids"
  # every record is tagged loto[PID]; argv[0] appears nowhere
  not grep -avE '^[a-z0-9]+\.[a-z]+ (loto\[[0-9]+\]|loto-syslog-sync|rsyslogd): ' "$MSG"
  not grep -aqF '00000000000000000000000000000001' "$MSG"
  not grep -aqF '%n%s%s%s' "$MSG"
  lock_is_free "$LOCK"
}
