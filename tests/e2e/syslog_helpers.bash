# Helpers for the tests that read loto's syslog records back (syslog.bats and
# adversarial_syslog.bats). Load after helpers.bash; the loading file sets $SLDIR (the
# with-syslog.sh working directory) and $MSG ($SLDIR/messages).
#
#   $WITH_SYSLOG     tests/syslog/with-syslog.sh
#   in_syslog [--stuck|--no-log] CMD...   with-syslog.sh in $SLDIR (use with `run`)
#   synced           the run reached rsyslogd: its sync marker is in $MSG, so records
#                    missing from $MSG really are missing
#   loto_lines       every record with ident loto: "FACILITY.SEVERITY loto[PID]: MESSAGE"
#   event_lines EVENT  loto's records of that event
#   syslog_setup     for files that test syslog in a few tests only: skips the test
#                    without rsyslogd or unshare, and sets $SLDIR and $MSG under $T

WITH_SYSLOG="$BATS_TEST_DIRNAME/../syslog/with-syslog.sh"

in_syslog() { LOTO_SYSLOG_DIR="$SLDIR" "$WITH_SYSLOG" "$@"; }

synced() {
  grep -q 'loto-syslog-sync: loto-syslog-sync-' "$MSG" || {
    echo "the sync marker is not in $MSG:" >&2
    cat "$MSG" >&2
    return 1
  }
}

loto_lines() { grep -aE '^[a-z0-9]+\.[a-z]+ loto\[[0-9]+\]: ' "$MSG" || true; }

event_lines() { loto_lines | grep -aE "^[a-z0-9]+\.[a-z]+ loto\[[0-9]+\]: event=$1( |$)" || true; }

syslog_setup() {
  command -v rsyslogd >/dev/null || skip "rsyslogd is not installed"
  command -v unshare >/dev/null || skip "unshare is not installed"
  SLDIR="$T/syslog"
  MSG="$SLDIR/messages"
  export SLDIR MSG
}
