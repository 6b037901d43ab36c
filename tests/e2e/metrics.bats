#!/usr/bin/env bats
# Metrics for node_exporter's textfile collector: <metrics_dir>/loto.prom, rewritten after
# every run that gets as far as trying its locks (issue 12, part 2).
#
# The file is read back with a strict parser of the text format (metrics_helpers.bash),
# with `promtool check metrics` (Debian package prometheus) and served by a real
# prometheus-node-exporter. Warnings for a metrics_dir loto cannot write are read back from
# a private rsyslogd (syslog_helpers.bash). Synchronisation is on files, pids and
# /proc/locks; no fixed sleeps.
#
# Needs promtool, prometheus-node-exporter and curl (a missing one is a failure); the
# syslog tests need rsyslogd and unshare (skipped without them, as in syslog.bats).

# Scripts given to sh -c / bash -c are single-quoted on purpose; $status, $stderr and
# $STATUS are set by bats' run and helpers.bash's wait_exit.
# shellcheck disable=SC2016,SC2030,SC2031,SC2153,SC2154

load helpers
load syslog_helpers
load metrics_helpers

setup() {
  common_setup
  MD="$T/metrics"
  PROM="$MD/loto.prom"
  mkdir -m 0755 "$MD"
  CFG="$(metrics_config)"
  export MD PROM CFG
  command -v promtool >/dev/null || {
    echo "promtool is not installed (apt-get install prometheus)" >&2
    return 1
  }
}

teardown() {
  stop_node_exporter
  common_teardown
}

# HELP and TYPE lines of every family with samples: exactly once each.
help_type_once() {
  local f n
  for f in $MD_FAMILIES; do
    grep -q "^$f{" "$1" || continue
    for n in HELP TYPE; do
      [ "$(grep -c "^# $n $f " "$1")" -eq 1 ] || {
        echo "expected one '# $n $f' line in $1:" >&2
        cat "$1" >&2
        return 1
      }
    done
  done
}

# absent_or_zero FILE METRIC LABELS...
absent_or_zero() {
  local v
  v="$(pv "$@")"
  [[ "$v" == absent ]] || awk -v v="$v" 'BEGIN { exit !(v + 0 == 0) }' || {
    echo "expected $2 ${*:3} absent or 0, got $v" >&2
    return 1
  }
}

mode_of() { stat -c %a "$1"; }

@test "ran, busy, timeout, failing command, command not found: exact counts and values, a clean file" {
  local lock="$T/loto.backup" t0 t1 dur start succ wait start2

  # ran: a job of ~200 ms that exits 0
  t0="$(now_s)"
  run --separate-stderr lotoc -L backup -- sleep 0.2
  t1="$(now_s)"
  [ "$status" -eq 0 ]
  [ -f "$PROM" ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 1
  pv_is "$PROM" loto_last_exit_status resource=backup 0
  dur="$(pv "$PROM" loto_last_run_duration_seconds resource=backup)"
  in_range "$dur" 0.2 2
  start="$(pv "$PROM" loto_last_run_start_timestamp_seconds resource=backup)"
  in_range "$start" "$(fadd "$t0" -0.005)" "$(fadd "$t1" 0.005)"
  succ="$(pv "$PROM" loto_last_success_timestamp_seconds resource=backup)"
  in_range "$succ" "$(fadd "$t0" -0.005)" "$(fadd "$t1" 0.005)"
  # the success is when the command exited: ~200 ms after it started
  in_range "$(fadd "$succ" "-$start")" 0.19 2
  wait="$(pv "$PROM" loto_last_wait_seconds resource=backup)"
  in_range "$wait" 0 0.5

  # busy: given up at once, nothing run
  hold_lock "$lock"
  run --separate-stderr lotoc -L backup -- touch "$T/busy.ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/busy.ran" ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=busy 1
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 1
  pv_is "$PROM" loto_last_exit_status resource=backup 75
  pv_is "$PROM" loto_last_wait_seconds resource=backup 0
  # the last command run's gauges are the first run's still
  pv_is "$PROM" loto_last_run_start_timestamp_seconds resource=backup "$start"
  pv_is "$PROM" loto_last_run_duration_seconds resource=backup "$dur"
  pv_is "$PROM" loto_last_success_timestamp_seconds resource=backup "$succ"

  # timeout: waited 300 ms, nothing run
  run --separate-stderr lotoc -t 300ms -L backup -- touch "$T/timeout.ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/timeout.ran" ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=timeout 1
  pv_is "$PROM" loto_last_exit_status resource=backup 75
  in_range "$(pv "$PROM" loto_last_wait_seconds resource=backup)" 0.29 2
  pv_is "$PROM" loto_last_success_timestamp_seconds resource=backup "$succ"
  release_lock

  # the command runs and fails: outcome ran, status 3, no new success
  t0="$(now_s)"
  run --separate-stderr lotoc -L backup -- sh -c 'exit 3'
  t1="$(now_s)"
  [ "$status" -eq 3 ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 2
  pv_is "$PROM" loto_last_exit_status resource=backup 3
  pv_is "$PROM" loto_last_success_timestamp_seconds resource=backup "$succ"
  start2="$(pv "$PROM" loto_last_run_start_timestamp_seconds resource=backup)"
  in_range "$start2" "$(fadd "$t0" -0.005)" "$(fadd "$t1" 0.005)"
  in_range "$(pv "$PROM" loto_last_run_duration_seconds resource=backup)" 0 0.5
  in_range "$(pv "$PROM" loto_last_wait_seconds resource=backup)" 0 0.5

  # command not found: 127, outcome error (run under umask 077: the file stays 0644)
  run -127 --separate-stderr bash -c 'umask 077; exec "$@"' _ "$LOTO" --config "$CFG" -L backup -- "no-such-command-$$"
  [ "$status" -eq 127 ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=error 1
  pv_is "$PROM" loto_last_exit_status resource=backup 127
  # start timestamp: ran/lost only
  pv_is "$PROM" loto_last_run_start_timestamp_seconds resource=backup "$start2"
  pv_is "$PROM" loto_last_success_timestamp_seconds resource=backup "$succ"

  # the whole file: exact counts, nothing else counted, clean for promtool
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 2
  pv_is "$PROM" loto_runs_total resource=backup outcome=busy 1
  pv_is "$PROM" loto_runs_total resource=backup outcome=timeout 1
  pv_is "$PROM" loto_runs_total resource=backup outcome=error 1
  absent_or_zero "$PROM" loto_runs_total resource=backup outcome=interrupted
  absent_or_zero "$PROM" loto_runs_total resource=backup outcome=lost
  [ "$(grep -c -v -e '^#' -e 'resource="backup"' "$PROM")" -eq 0 ]
  promtool_clean "$PROM"
  help_type_once "$PROM"
  local f
  for f in $MD_FAMILIES; do
    grep -q "^$f{" "$PROM" || {
      echo "no $f series in:" >&2
      cat "$PROM" >&2
      return 1
    }
  done
  [ "$(mode_of "$PROM")" = 644 ] || {
    echo "loto.prom has mode $(mode_of "$PROM") after a run under umask 077, not 644" >&2
    return 1
  }
  prom_files_only "$MD"
}

@test "a run that waited for the lock records how long it waited" {
  local lock="$T/loto.backup"
  hold_lock "$lock"
  spawn -n w lotoc -w -L backup -- true
  wait_for_waiters "$lock" 1
  # loto has been waiting since before now: release 300 ms from now
  wait_until 5 past_ms $(($(now_ms) + 300))
  release_lock
  wait_exit "$SPAWNED" 5
  [ "$STATUS" -eq 0 ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 1
  in_range "$(pv "$PROM" loto_last_wait_seconds resource=backup)" 0.3 5
}

@test "a real prometheus-node-exporter serves loto.prom: counts, success time, no scrape error" {
  command -v curl >/dev/null || {
    echo "curl is not installed" >&2
    return 1
  }
  start_node_exporter "$MD"
  local t0 t1 i scrape="$T/scrape.txt" file_succ ne_succ
  t0="$(now_s)"
  for i in 1 2 3; do
    run --separate-stderr lotoc -L backup -- true
    [ "$status" -eq 0 ]
  done
  t1="$(now_s)"
  hold_lock "$T/loto.backup"
  run --separate-stderr lotoc -L backup -- true
  [ "$status" -eq 75 ]
  release_lock

  curl -sf "$NE_URL/metrics" >"$scrape"
  echo "scrape of $NE_URL/metrics: $(grep -c '' "$scrape") lines" >&2
  grep '^loto_\|^# .* loto_\|^node_textfile' "$scrape" >&2 || true
  # node_exporter sorts labels by name
  grep -qxF 'loto_runs_total{outcome="ran",resource="backup"} 3' "$scrape"
  grep -qxF 'loto_runs_total{outcome="busy",resource="backup"} 1' "$scrape"
  grep -qxF '# TYPE loto_runs_total counter' "$scrape"
  grep -qxF 'node_textfile_scrape_error 0' "$scrape"
  not grep -q '^node_textfile_scrape_error 1' "$scrape"
  grep -qF "node_textfile_mtime_seconds{file=\"$PROM\"}" "$scrape" ||
    grep -qF 'node_textfile_mtime_seconds{file="loto.prom"}' "$scrape"
  ne_succ="$(sed -n 's/^loto_last_success_timestamp_seconds{resource="backup"} //p' "$scrape")"
  [ -n "$ne_succ" ]
  file_succ="$(pv "$PROM" loto_last_success_timestamp_seconds resource=backup)"
  in_range "$ne_succ" "$(fadd "$t0" -0.005)" "$(fadd "$t1" 0.005)"
  # the value served is the file's (node_exporter prints it in Go's %g form)
  in_range "$ne_succ" "$(fadd "$file_succ" -0.001)" "$(fadd "$file_succ" 0.001)"
  grep -qE '^loto_last_exit_status\{resource="backup"\} 75$' "$scrape"
}

@test "16 concurrent runs on two resources: no lost update, never a torn file" {
  local pids=() i r snaps="$T/snaps" f
  mkdir "$snaps"
  spawn -n watch "${PROM_WATCH[@]}" "$PROM" "$T/stop" "$snaps"
  local watcher=$SPAWNED
  wait_for_file "$snaps/ready"
  # a starting gate: all 16 block on a shared flock of $T/gate, held exclusively until
  # every one of them waits there, and all wake up together when it is let go
  hold_lock "$T/gate" gate
  for r in a b; do
    for i in 1 2 3 4 5 6 7 8; do
      spawn -n "run.$r.$i" sh -c 'flock -s "$0" true && exec "$@"' "$T/gate" \
        "$LOTO" --config "$CFG" -w -L "$r" -- true
      pids+=("$SPAWNED")
    done
  done
  wait_for_waiters "$T/gate" 16 10
  release_lock
  for i in "${pids[@]}"; do
    wait_exit "$i" 20
    [ "$STATUS" -eq 0 ]
  done
  touch "$T/stop"
  wait_exit "$watcher" 10
  echo "watcher: $(cat "$snaps/summary" 2>/dev/null)" >&2
  if [ "$STATUS" -ne 0 ]; then
    for f in "$snaps"/bad.*; do
      echo "--- torn or broken content ($f):" >&2
      cat "$f" "$snaps/snap.${f##*.}" >&2
    done
    return 1
  fi
  # every content the reader saw is clean for promtool too
  for f in "$snaps"/snap.*; do
    [ -e "$f" ] || continue
    promtool_clean "$f"
  done
  # at most one new content per run
  (($(find "$snaps" -name 'snap.*' | wc -l) <= 16))

  prom_check "$PROM"
  promtool_clean "$PROM"
  help_type_once "$PROM"
  pv_is "$PROM" loto_runs_total resource=a outcome=ran 8
  pv_is "$PROM" loto_runs_total resource=b outcome=ran 8
  for r in a b; do
    absent_or_zero "$PROM" loto_runs_total resource=$r outcome=busy
    absent_or_zero "$PROM" loto_runs_total resource=$r outcome=error
    pv_is "$PROM" loto_last_exit_status resource=$r 0
  done
  [ "$(mode_of "$PROM")" = 644 ]
  prom_files_only "$MD"
}

# --- a metrics_dir loto cannot write: the job as without metrics, a syslog warning -------


# sys_config LOCK_DIR [METRICS_DIR]: syslog on at local3, resource backup.
sys_config() {
  local m=""
  [[ -z "${2:-}" ]] || m="metrics_dir: $2"$'\n'
  write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: true\n  facility: local3\n%sresources:\n  backup: {}\n' "$1" "$m")"
}

# job NAME CONF [WRAPPER...] [-- LOTO_OPTIONS]: in the private syslog namespace, runs
# [WRAPPER...] loto --config CONF -L backup -- sh -c 'echo ...; exit 3', stdout to
# $T/NAME.out and stderr to $T/NAME.err; $status is loto's.
job() {
  local name="$1" conf="$2" opts=()
  shift 2
  local wrap=()
  while [[ $# -gt 0 && "$1" != -- ]]; do
    wrap+=("$1")
    shift
  done
  [[ "${1:-}" != -- ]] || {
    shift
    opts=("$@")
  }
  run in_syslog bash -c 'o=$1 e=$2; shift 2; "$@" >"$o" 2>"$e"' _ "$T/$name.out" "$T/$name.err" \
    "${wrap[@]}" "$LOTO" --config "$conf" "${opts[@]}" -L backup -- sh -c 'echo "job output: $LOTO_RESOURCE"; exit 3'
  echo "job $name: status=$status stdout=[$(cat "$T/$name.out")] stderr=[$(cat "$T/$name.err")]" >&2
}

# metrics_failed_records: the warning records (facility local3, severity warning)
failed_records() { loto_lines | grep -aE '^local3\.warning loto\[[0-9]+\]: event=metrics_failed( |$)' || true; }

# assert_as_without NAME BASE: status 3, the same stdout as the run without metrics,
# nothing on stderr, one event=metrics_failed warning with a message, and the job's own
# records as usual.
assert_as_without() {
  local name="$1" base="$2" rec
  [ "$status" -eq 3 ]
  [ "$(cat "$T/$name.out")" = "job output: backup" ]
  cmp "$T/$name.out" "$T/$base.out"
  [ ! -s "$T/$name.err" ] || {
    echo "expected nothing on stderr, got: $(cat "$T/$name.err")" >&2
    return 1
  }
  synced
  rec="$(failed_records)"
  echo "records: $(loto_lines)" >&2
  [ -n "$rec" ] || {
    echo "no 'local3.warning loto[PID]: event=metrics_failed' record in $MSG" >&2
    return 1
  }
  [ "$(printf '%s\n' "$rec" | wc -l)" -eq 1 ]
  [[ "$rec" == *' message="'?*'"'* ]] || {
    echo "no message=\"...\" in: $rec" >&2
    return 1
  }
  loto_lines | grep -qaE 'loto\[[0-9]+\]: event=acquired '
  loto_lines | grep -qaE 'loto\[[0-9]+\]: event=finished .*status=3'
}

@test "missing metrics_dir: the job runs as without metrics, nothing on stderr, a syslog warning" {
  syslog_setup
  local base_conf conf
  base_conf="$(sys_config "$T")"
  conf="$(sys_config "$T" "$T/nope")"

  job base "$base_conf"
  [ "$status" -eq 3 ]
  synced
  [ -z "$(failed_records)" ]

  job missing "$conf"
  assert_as_without missing base
  [ ! -e "$T/nope" ]

  # with -v the failure is reported on stderr too
  job verbose "$conf" -- -v
  [ "$status" -eq 3 ]
  cmp "$T/verbose.out" "$T/base.out"
  grep -qi 'metrics' "$T/verbose.err" || {
    echo "-v: expected a line about the metrics on stderr, got: $(cat "$T/verbose.err")" >&2
    return 1
  }
}

@test "read-only metrics_dir (mode 555, loto run as nobody): as without metrics, a syslog warning" {
  syslog_setup
  local nb=(setpriv --reuid=nobody --regid=nogroup --clear-groups --) base_conf conf
  make_traversable "$T"
  mkdir -m 0755 "$T/nblocks"
  chown nobody:nogroup "$T/nblocks"
  mkdir -m 0755 "$T/ro"
  chown nobody:nogroup "$T/ro"
  chmod 0555 "$T/ro"
  # nobody can read the configs (owned by root, not writable by others: trusted)
  base_conf="$(sys_config "$T/nblocks")"
  conf="$(sys_config "$T/nblocks" "$T/ro")"
  chmod 0644 "$base_conf" "$conf"
  # nobody may not reach the checkout's build/loto: job runs a copy it can (this test only)
  make_shared_loto
  LOTO="$SHARED_LOTO"

  job base "$base_conf" "${nb[@]}"
  [ "$status" -eq 3 ]
  synced
  [ -z "$(failed_records)" ]

  job ro "$conf" "${nb[@]}"
  assert_as_without ro base
  [ -z "$(ls -A "$T/ro")" ] || {
    echo "something was written in the read-only $T/ro:" >&2
    ls -la "$T/ro" >&2
    return 1
  }

  # the same with the metrics lock file already there (nobody's own): the failure comes after the
  # metrics lock is taken, when the temp file cannot be created
  mkdir -m 0755 "$T/ro2"
  touch "$T/ro2/.loto.prom.lock"
  chown -R nobody:nogroup "$T/ro2"
  chmod 0555 "$T/ro2"
  conf="$(sys_config "$T/nblocks" "$T/ro2")"
  chmod 0644 "$conf"
  job ro2 "$conf" "${nb[@]}"
  assert_as_without ro2 base
  [ "$(ls -A "$T/ro2")" = .loto.prom.lock ] || {
    echo "something was written in the read-only $T/ro2:" >&2
    ls -la "$T/ro2" >&2
    return 1
  }
}

@test "metrics_dir is a regular file (root cannot write in it): as without metrics, a syslog warning" {
  syslog_setup
  local base_conf conf
  printf 'not a directory\n' >"$T/notadir"
  base_conf="$(sys_config "$T")"
  conf="$(sys_config "$T" "$T/notadir")"

  job base "$base_conf"
  [ "$status" -eq 3 ]

  job notadir "$conf"
  assert_as_without notadir base
  [ -f "$T/notadir" ]
  [ "$(cat "$T/notadir")" = "not a directory" ]
}

@test "--show-config shows metrics_dir and its origin; a relative or '..' metrics_dir is 78 with its position" {
  run --separate-stderr "$LOTO" --config "$CFG" --show-config
  [ "$status" -eq 0 ]
  grep -qxF "($CFG:4) metrics_dir = $MD" <<<"$output" || {
    echo "no line '($CFG:4) metrics_dir = $MD' in:" >&2
    printf '%s\n' "$output" >&2
    return 1
  }
  run --separate-stderr "$LOTO" --config "$CFG" --show-config -L backup
  [ "$status" -eq 0 ]
  grep -qxF "($CFG:4) metrics_dir = $MD" <<<"$output"

  # off by default
  local plain
  plain="$(write_config "$(base_config)")"
  run --separate-stderr "$LOTO" --config "$plain" --show-config
  [ "$status" -eq 0 ]
  grep -qxF "(built-in) metrics_dir = none" <<<"$output" || {
    echo "no line '(built-in) metrics_dir = none' in:" >&2
    printf '%s\n' "$output" >&2
    return 1
  }

  local f value
  for value in metrics "/tmp/../etc"; do
    f="$(write_config "$(printf '%s\nmetrics_dir: %s\nresources:\n  backup: {}\n' "$(base_config)" "$value")")"
    run --separate-stderr "$LOTO" --config "$f" -L backup -- touch "$T/ran"
    echo "metrics_dir: $value -> status=$status stderr=[$stderr]" >&2
    [ "$status" -eq 78 ]
    [ -z "$output" ]
    [[ "$stderr" == "loto: error: $f:4:14: "* ]]
    [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
    [ ! -e "$T/ran" ]
    [ ! -e "$T/loto.backup" ]
    run --separate-stderr "$LOTO" --config "$f" --check-config
    [ "$status" -eq 78 ]
    [[ "$stderr" == "loto: error: $f:4:14: "* ]]
  done
  [[ "$stderr" == *"'..'"* ]]
}

@test "a run with several -L records each resource (a path lock as given); others are kept" {
  local p="$T/p.lock"
  run --separate-stderr lotoc -L backup -L "$p" -- true
  [ "$status" -eq 0 ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 1
  pv_is "$PROM" loto_runs_total resource="$p" outcome=ran 1
  pv_is "$PROM" loto_last_exit_status resource="$p" 0
  [ "$(pv "$PROM" loto_last_success_timestamp_seconds resource="$p")" != absent ]
  [ "$(pv "$PROM" loto_last_success_timestamp_seconds resource=backup)" != absent ]

  # a run on db alone leaves the others' series as they were
  run --separate-stderr lotoc -L db -- false
  [ "$status" -eq 1 ]
  pv_is "$PROM" loto_runs_total resource=db outcome=ran 1
  pv_is "$PROM" loto_last_exit_status resource=db 1
  pv_is "$PROM" loto_last_success_timestamp_seconds resource=db absent
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 1
  pv_is "$PROM" loto_runs_total resource="$p" outcome=ran 1

  run --separate-stderr lotoc -w -L db -L backup -- true
  [ "$status" -eq 0 ]
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 2
  pv_is "$PROM" loto_runs_total resource=db outcome=ran 2
  pv_is "$PROM" loto_runs_total resource="$p" outcome=ran 1
  pv_is "$PROM" loto_last_exit_status resource=db 0
  prom_check "$PROM"
  promtool_clean "$PROM"
  help_type_once "$PROM"
}

@test "--list, --check-config, --show-config, --help, --version and usage errors do not touch the metrics" {
  # _no_run: none of these writes anything in $MD
  _no_run() {
    local args
    for args in --list --check-config --show-config "--show-config -L backup" --help --version; do
      # shellcheck disable=SC2086
      run --separate-stderr "$LOTO" --config "$CFG" $args
      [ "$status" -eq 0 ] || {
        echo "$args: status $status, stderr: $stderr" >&2
        return 1
      }
    done
    run --separate-stderr lotoc -L no-such-resource -- true
    [ "$status" -eq 64 ]
    run --separate-stderr lotoc -L backup
    [ "$status" -eq 64 ]
  }
  _no_run
  [ -z "$(ls -A "$MD")" ] || {
    echo "written in $MD:" >&2
    ls -la "$MD" >&2
    return 1
  }

  run --separate-stderr lotoc -L backup -- true
  [ "$status" -eq 0 ]
  [ -f "$PROM" ]
  local before after
  before="$(stat -c '%i %s %y' "$PROM") $(sha256sum <"$PROM") $(find "$MD" -mindepth 1 -printf '%P\n' | sort | tr '\n' ' ')"
  _no_run
  after="$(stat -c '%i %s %y' "$PROM") $(sha256sum <"$PROM") $(find "$MD" -mindepth 1 -printf '%P\n' | sort | tr '\n' ' ')"
  [ "$before" = "$after" ] || {
    echo "loto.prom changed: before [$before] after [$after]" >&2
    return 1
  }
  pv_is "$PROM" loto_runs_total resource=backup outcome=ran 1
}

@test "outcomes interrupted and error (unsafe lock file, etcd unreachable) are counted" {
  local lock="$T/loto.backup"
  # interrupted: SIGTERM while waiting
  hold_lock "$lock"
  spawn -n waiter lotoc -w -L backup -- touch "$T/waiter.ran"
  local waiter=$SPAWNED
  wait_for_waiters "$lock" 1
  kill -TERM "$waiter"
  wait_exit "$waiter" 5
  [ "$STATUS" -eq 143 ]
  release_lock
  [ ! -e "$T/waiter.ran" ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=backup outcome=interrupted 1
  pv_is "$PROM" loto_last_exit_status resource=backup 143
  in_range "$(pv "$PROM" loto_last_wait_seconds resource=backup)" 0.000001 5
  pv_is "$PROM" loto_last_success_timestamp_seconds resource=backup absent

  # a symlink at the lock path: refused (77), outcome error
  ln -s "$T/elsewhere" "$T/sym.lock"
  run --separate-stderr lotoc -L "$T/sym.lock" -- touch "$T/sym.ran"
  [ "$status" -eq 77 ]
  [ ! -e "$T/sym.ran" ]
  pv_is "$PROM" loto_runs_total resource="$T/sym.lock" outcome=error 1
  pv_is "$PROM" loto_last_exit_status resource="$T/sym.lock" 77

  # etcd unreachable (a refused port): 69, outcome error
  local conf port
  port="$(free_port)"
  conf="$(metrics_config "$(printf '  fleet:\n    backend: etcd\netcd:\n  endpoints: [http://127.0.0.1:%s]\n' "$port")")"
  run --separate-stderr timeout 20 "$LOTO" --config "$conf" -L fleet -- touch "$T/fleet.ran"
  echo "etcd: status=$status stderr=[$stderr]" >&2
  [ "$status" -eq 69 ]
  [ ! -e "$T/fleet.ran" ]
  prom_check "$PROM"
  pv_is "$PROM" loto_runs_total resource=fleet outcome=error 1
  pv_is "$PROM" loto_last_exit_status resource=fleet 69
  # the earlier resources' series are still there
  pv_is "$PROM" loto_runs_total resource=backup outcome=interrupted 1
  promtool_clean "$PROM"
}
