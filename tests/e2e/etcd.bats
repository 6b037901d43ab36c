#!/usr/bin/env bats
# Fleet-wide locks through etcd (resources with `backend: etcd`), against a real
# single-member etcd that setup_file starts on loopback on ports picked at run time
# (etcd_helpers.bash); teardown_file stops it by pid and removes its data.
#
# Every test uses a lock name of its own (t<test number>, key prefix loto/t<N>/), so a key
# that one test leaves to expire cannot hold up another. Synchronisation is on files,
# pids and the keys visible in etcd (etcd_wait_keys), never on fixed sleeps; the few
# sleeps below set how long a scenario lasts (a holder outliving its TTL), not how long
# a check waits.
#
# Needs etcd and etcdctl (etcd-server, etcd-client), curl, python3; the syslog tests also
# rsyslogd and unshare as syslog.bats does. A missing etcd fails the file.

# Scripts for loto to run are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load etcd_helpers
load syslog_helpers

setup_file() { start_etcd; }
teardown_file() { stop_etcd; }

setup() {
  etcd_setup
  TTL_MS=2000
  CFG="$(write_etcd_config -n etcd.yaml --ttl 2s "$R")"
  HOST="$(hostname)"
  ME="$(id -un)"
  export CFG
}

teardown() {
  common_teardown
  etcd_member_start 1 || true # after a test that stopped it
}

# --- helpers of this file -----------------------------------------------------------------

# hold: a loto holding $R (config $CFG) whose command writes its environment to $T/h.env,
# its pid to $T/h.main, then waits for $T/h.go and stamps $T/h.end (ms). Returns once the
# command runs. Sets $HOLDER (loto's pid) and $HOLDER_KEY (its key in etcd).
hold() {
  spawn -n h lotoc -L "$R" bash -c 'env >"$0.env"; echo $$ >"$0.main"; touch "$0.ready"; '"$(await "$T/h.go")"'; '"$STAMP_SNIPPET"' >"$0.end"' "$T/h"
  HOLDER=$SPAWNED
  wait_ready "$T/h.ready" h
  HOLDER_KEY="$(etcd_keys "$PFX" | head -n 1)"
  [[ -n "$HOLDER_KEY" ]]
}

# release: lets hold's command end; loto must exit 0.
release() {
  touch "$T/h.go"
  wait_exit "$HOLDER" 10
  [ "$STATUS" -eq 0 ]
}

# envvar FILE NAME: the value of NAME in an `env` dump.
envvar() { sed -n "s/^$2=//p" "$1"; }

# timed_run CMD...: runs CMD with `run --separate-stderr`, sets $ELAPSED (ms).
timed_run() {
  local t0
  t0=$(now_ms)
  run --separate-stderr "$@"
  ELAPSED=$(($(now_ms) - t0))
  echo "status=$status elapsed=${ELAPSED}ms stderr=[$stderr] stdout=[$output]" >&2
}

# one_line TEXT: TEXT is exactly one non-empty line.
one_line() {
  [[ -n "$1" && "$1" != *$'\n'* ]] || {
    echo "expected exactly one line, got: [$1]" >&2
    return 1
  }
}

# between VALUE LOW HIGH NAME: LOW <= VALUE <= HIGH (integers), with a message.
between() {
  if (($1 < $2 || $1 > $3)); then
    echo "$4 = $1, expected within [$2, $3]" >&2
    return 1
  fi
}

report() { echo "# $*" >&3; }

# --- configuration ------------------------------------------------------------------------

@test "config: the etcd section is accepted (list or one URL); loto-etcd sits beside loto" {
  [[ -x "$(dirname "$LOTO")/loto-etcd" ]] || {
    echo "the helper $(dirname "$LOTO")/loto-etcd is missing" >&2
    return 1
  }
  run --separate-stderr lotoc --check-config
  [ "$status" -eq 0 ]
  f="$(write_etcd_config --scalar --endpoints "$ETCD_URL1" --prefix fleet/ "$R")"
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 0 ]
  run --separate-stderr "$LOTO" --config "$f" -L "$R" sh -c 'echo "$LOTO_LOCKFILE"'
  [ "$status" -eq 0 ]
  [ "$output" = "etcd:fleet/$R" ]
  [ "$(etcd_key_count "fleet/$R/")" -eq 0 ]
}

# conf_error FILE LINE:COL REGEX: loto exits 78 with "loto: error: FILE:LINE:COL: ..."
# (one line), before running anything, and --check-config agrees.
conf_error() {
  local f="$1" where="$2" re="$3"
  run --separate-stderr "$LOTO" --config "$f" -L job -- touch "$T/ran"
  echo "status=$status stderr=[$stderr]" >&2
  [ "$status" -eq 78 ]
  [ ! -e "$T/ran" ]
  one_line "$stderr"
  [[ "$stderr" =~ ^loto:\ error:\ $f:$where:\ (.*)$ ]] || {
    echo "expected 'loto: error: $f:$where: ...'" >&2
    return 1
  }
  [[ "${BASH_REMATCH[-1]}" =~ $re ]] || {
    echo "message does not match /$re/" >&2
    return 1
  }
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 78 ]
  [[ "$stderr" =~ ^loto:\ error:\ $f:$where:\  ]]
}

@test "config error: backend etcd without etcd.endpoints -> 78 at the backend line (FILE:LINE:COL)" {
  # at the backend line (key or value column)
  f="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: false\nresources:\n  job:\n    backend: etcd\n' "$T")")"
  conf_error "$f" "6:(5|14)" "endpoints"
  f="$(write_config "$(printf 'etcd:\n  ttl: 2s\nresources:\n  job:\n    backend: etcd\n')")"
  conf_error "$f" "5:(5|14)" "endpoints"
}

@test "config error: unknown key under etcd: -> 78 with position and did-you-mean" {
  f="$(write_config "$(printf 'etcd:\n  endpoints: [%s]\n  tll: 2s\nresources:\n  job: {backend: etcd}\n' "$ETCD_URL1")")"
  conf_error "$f" "3:3" "unknown key 'tll'.*did you mean 'ttl'"
  f="$(write_config "$(printf 'etcd:\n  endpiont: [%s]\nresources:\n  job: {backend: etcd}\n' "$ETCD_URL1")")"
  conf_error "$f" "2:3" "unknown key 'endpiont'.*did you mean 'endpoints'"
}

@test "config error: bad etcd.ttl (banana, -1, a list) -> 78 at the value" {
  for bad in banana -1 '[2]'; do
    f="$(write_config "$(printf 'etcd:\n  endpoints: [%s]\n  ttl: %s\nresources:\n  job: {backend: etcd}\n' "$ETCD_URL1" "$bad")")"
    conf_error "$f" "3:8" "ttl"
  done
}

@test "config error: bad backend value -> 78 at the value" {
  f="$(write_config "$(printf 'etcd:\n  endpoints: [%s]\nresources:\n  job:\n    backend: zookeeper\n' "$ETCD_URL1")")"
  conf_error "$f" "5:14" "zookeeper|etcd|flock"
}

@test "config error: an endpoint not starting with http:// or https:// -> 78 at the endpoint" {
  f="$(write_config "$(printf 'etcd:\n  endpoints:\n    - %s\n    - 127.0.0.1:2379\nresources:\n  job: {backend: etcd}\n' "$ETCD_URL1")")"
  conf_error "$f" "4:7" "http"
  f="$(write_config "$(printf 'etcd:\n  endpoints: ftp://127.0.0.1:2379\nresources:\n  job: {backend: etcd}\n')")"
  conf_error "$f" "2:14" "http"
}

@test "without loto-etcd beside it, loto looks where the package installs it: 69 and what to do" {
  local installed=/usr/libexec/loto/loto-etcd
  [[ ! -e "$installed" ]] || skip "$installed exists (the package is installed)"
  mkdir "$T/solo"
  cp "$LOTO" "$T/solo/loto"
  run --separate-stderr "$T/solo/loto" --config "$CFG" -L "$R" touch "$T/ran"
  [ "$status" -eq 69 ]
  [ ! -e "$T/ran" ]
  [[ "$stderr" =~ ^"loto: error: cannot run the etcd helper '"/[^\']*/loto/loto-etcd"': No such file or directory (reinstall loto; etcd resources need it)"$ ]]
}

@test "a loto-etcd beside loto that cannot be executed (not a program): 69 at once, nothing run" {
  mkdir "$T/solo"
  cp "$LOTO" "$T/solo/loto"
  printf 'not a program\n' >"$T/solo/loto-etcd"
  chmod 0755 "$T/solo/loto-etcd"
  timed_run timeout 10 "$T/solo/loto" --config "$CFG" -L "$R" touch "$T/ran"
  [ "$status" -eq 69 ]
  [ ! -e "$T/ran" ]
  ((ELAPSED < 2000))
  [ "$stderr" = "loto: error: the etcd helper ended without an answer while taking resource '$R' (etcd lock 'loto/$R'); the command was not run" ]
}

@test "--show-config: etcd.endpoints, etcd.ttl, etcd.prefix with their origins; lock R = etcd:PREFIX/R" {
  f="$(write_config "$(printf 'lock_dir: %s\nlogging:\n  syslog: false\netcd:\n  endpoints: [%s, %s]\n  ttl: 3s\nresources:\n  %s:\n    backend: etcd\n' \
    "$T" "$ETCD_URL1" "http://127.0.0.1:1" "$R")")"
  run --separate-stderr "$LOTO" --config "$f" --show-config -L "$R"
  echo "$output" >&2
  [ "$status" -eq 0 ]
  grep -qE "^\($f:5\) etcd\.endpoints = .*$ETCD_URL1.*http://127\.0\.0\.1:1" <<<"$output"
  grep -qxF "($f:6) etcd.ttl = 3s" <<<"$output"
  grep -qxF "(built-in) etcd.prefix = loto/" <<<"$output"
  grep -qE "^\([^)]*\) lock $R = etcd:loto/$R$" <<<"$output"

  # a prefix from the file; the default ttl is built in
  f="$(write_config "$(printf 'etcd:\n  endpoints: %s\n  prefix: fleet/\nresources:\n  %s: {backend: etcd}\n' "$ETCD_URL1" "$R")")"
  run --separate-stderr "$LOTO" --config "$f" --show-config -L "$R"
  echo "$output" >&2
  [ "$status" -eq 0 ]
  grep -qxF "($f:3) etcd.prefix = fleet/" <<<"$output"
  grep -qxF "(built-in) etcd.ttl = 10s" <<<"$output"
  grep -qE "^\($f:2\) etcd\.endpoints = \[?$ETCD_URL1\]?$" <<<"$output"
  grep -qE "^\([^)]*\) lock $R = etcd:fleet/$R$" <<<"$output"
}

@test "--list: the etcd resource, free, then held by whom and how many wait" {
  run --separate-stderr lotoc --list
  echo "$output" >&2
  [ "$status" -eq 0 ]
  grep -qE "^$R +etcd:loto/$R .*free$" <<<"$output"
  grep -qE "^cpu +$T/loto\.cpu .*free$" <<<"$output"

  hold
  spawn -n w1 lotoc -w -L "$R" true
  local w1=$SPAWNED
  etcd_wait_keys "$PFX" 2
  spawn -n w2 lotoc -w -L "$R" true
  local w2=$SPAWNED
  etcd_wait_keys "$PFX" 3
  run --separate-stderr lotoc --list
  echo "$output" >&2
  [ "$status" -eq 0 ]
  row="$(grep -E "^$R " <<<"$output")"
  [[ "$row" =~ held\ by\ pid\ ${HOLDER}[^0-9] ]]
  [[ "$row" == *"$HOST"* ]]
  [[ "$row" =~ [^0-9]2\ wait|wait[a-z]*[:=]?\ ?2([^0-9]|$) ]]
  release
  wait_exit "$w1" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$w2" 5
  [ "$STATUS" -eq 0 ]
}

@test "--list of 30 etcd resources within 16 descriptors: each answered, no descriptor kept per resource" {
  local names=() i many
  for i in $(seq 1 30); do names+=("${R}_$i"); done
  many="$(write_etcd_config -n many.yaml --ttl 2s "${names[@]}")"
  run --separate-stderr bash -c 'ulimit -n 16 && exec "$0" --config "$1" --list' "$LOTO" "$many"
  echo "status=$status stderr=[$stderr]" >&2
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [ "$(grep -cE "^${R}_[0-9]+ +etcd:loto/${R}_[0-9]+ .*free$" <<<"$output")" -eq 30 ]
}

@test "--list --json: the etcd holder and its waiters in queue order, each with host, user, command, since" {
  local before after w1 w2
  before="$(now_ms)"
  hold
  after="$(now_ms)"
  spawn -n w1 lotoc -w -L "$R" true first
  w1=$SPAWNED
  etcd_wait_keys "$PFX" 2
  spawn -n w2 lotoc -w -L "$R" true second
  w2=$SPAWNED
  etcd_wait_keys "$PFX" 3
  run --separate-stderr lotoc --list --json
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  "$PY" -c '
import datetime, json, sys
doc = json.loads(sys.stdin.read())
r, holder, w1, w2, host, me, before, after = sys.argv[1:]
res = {x["name"]: x for x in doc["resources"]}
f = res[r]
assert (f["backend"], f["lock"], f["state"]) == ("etcd", "loto/" + r, "held"), f
assert len(f["holders"]) == 1 and f["waiting"] == 2, f
h = f["holders"][0]
assert (h["pid"], h["host"], h["user"], h["mode"]) == (int(holder), host, me, "exclusive"), h
assert h["command"].startswith("bash -c "), h
assert h["description"].startswith("pid %s on %s (%s) since " % (holder, host, me)), h
# the holder record says when the key was written, in whole seconds
since = datetime.datetime.fromisoformat(h["since"].replace("Z", "+00:00")).timestamp() * 1000
assert int(before) - 1000 <= since <= int(after) + 1000, (h, before, after)
assert [(w["pid"], w["command"]) for w in f["waiters"]] == [(int(w1), "true first"), (int(w2), "true second")], f
assert all(w["host"] == host and w["user"] == me for w in f["waiters"]), f
assert res["cpu"]["state"] == "free", res
' "$R" "$HOLDER" "$w1" "$w2" "$HOST" "$ME" "$before" "$after" <<<"$output"
  release
  wait_exit "$w1" 5
  [ "$STATUS" -eq 0 ]
  wait_exit "$w2" 5
  [ "$STATUS" -eq 0 ]
  run --separate-stderr lotoc --list --json
  [ "$status" -eq 0 ]
  "$PY" -c '
import json, sys
f = {x["name"]: x for x in json.load(sys.stdin)["resources"]}[sys.argv[1]]
assert (f["state"], f["holders"], f["waiters"], f["waiting"]) == ("free", [], [], 0), f
' "$R" <<<"$output"
}

# --- acquiring ----------------------------------------------------------------------------

@test "free lock: the command runs with LOTO_FENCING_TOKEN, LOTO_ETCD_LEASE, LOTO_RESOURCE, LOTO_LOCKFILE; key and holder record; nothing left" {
  hold
  local env="$T/h.env" token lease
  token="$(envvar "$env" LOTO_FENCING_TOKEN)"
  lease="$(envvar "$env" LOTO_ETCD_LEASE)"
  [[ "$token" =~ ^[1-9][0-9]*$ ]]
  [[ "$lease" =~ ^[0-9a-f]+$ ]]
  [ "$(envvar "$env" LOTO_RESOURCE)" = "$R" ]
  [ "$(envvar "$env" LOTO_LOCKFILE)" = "etcd:loto/$R" ]

  # one key: loto/R/<lease hex>, created at the token's revision, on that lease
  run etcd_dump "$PFX"
  echo "$output" >&2
  [ "${#lines[@]}" -eq 1 ]
  IFS=$'\t' read -r key rev klease value <<<"${lines[0]}"
  [ "$key" = "loto/$R/$lease" ]
  [ "$key" = "$HOLDER_KEY" ]
  [ "$rev" = "$token" ]
  [ "$klease" = "$lease" ]
  # the value is the holder record
  "$PY" - "$value" "$HOST" "$HOLDER" "$ME" <<'EOF'
import json, sys
rec = json.loads(sys.argv[1])
assert rec["host"] == sys.argv[2], rec
assert int(rec["pid"]) == int(sys.argv[3]), rec
assert rec["user"] == sys.argv[4], rec
assert "bash -c" in rec["command"], rec
assert rec["since"], rec
EOF
  # the lease has the configured TTL
  run ectl lease timetolive "$lease"
  echo "$output" >&2
  [[ "$output" == *"granted with TTL(2s)"* ]]
  # loto's only child is the command: the helper's starter was reaped (no defunct process
  # beside a job that may run all night), and the helper itself is not loto's child.
  [ "$(cat "/proc/$HOLDER/task/"*/children | xargs)" = "$(cat "$T/h.main")" ]

  release
  # released at once: key and lease gone
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
  not etcd_lease_alive "$lease"
}

@test "fencing tokens strictly increase over 3 successive holders" {
  local prev=0 tok i
  for i in 1 2 3; do
    ectl put "loto/other/$R" "$i" >/dev/null # unrelated writes in between move the revision
    run --separate-stderr lotoc -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN"'
    [ "$status" -eq 0 ]
    tok="$output"
    echo "run $i: token $tok" >&2
    [[ "$tok" =~ ^[0-9]+$ ]]
    ((tok > prev))
    prev=$tok
  done
  ectl del "loto/other/$R" >/dev/null
}

@test "a local and an etcd lock in one run: one global order (paths first), both held, none kept on failure" {
  local local_lock="$T/local.lock"
  run --separate-stderr lotoc -L "$R" -L "$local_lock" sh -c \
    'echo "$LOTO_RESOURCE|$LOTO_LOCKFILE"; flock -n "$1" true && echo local-free; etcdctl --endpoints="$2" get --prefix --keys-only "$3" | grep -c .' \
    sh "$local_lock" "${ETCD_URLS%% *}" "$PFX"
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "$local_lock,$R|$local_lock,etcd:loto/$R" ]
  [ "${lines[1]}" = "1" ] # the local lock was held (no local-free), one etcd key
  # The local lock busy: the etcd lock (taken second) is never requested; nothing left.
  hold_lock "$local_lock"
  run --separate-stderr lotoc -L "$R" -L "$local_lock" touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  [ -z "$(etcd_keys "$PFX")" ]
  release_lock
  # The etcd lock busy: the local lock taken first is released before loto exits.
  hold
  run --separate-stderr lotoc -L "$R" -L "$local_lock" touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  lock_is_free "$local_lock"
  release
}

@test "-w on a terminal: a local lock waited for (the line's ticks interrupt that wait), then the etcd lock: the command runs" {
  local local_lock="$T/local.lock" out="$T/pty.out"
  hold_lock "$local_lock"
  spawn -n ptywaiter env TERM=xterm "$PY" "$BATS_TEST_DIRNAME/pty_run.py" "$out" -- \
    "$LOTO" --config "$CFG" -w -L "$R" -L "$local_lock" -- touch "$T/ran"
  wait_until 10 grep -qs "waiting 1s" "$out"
  release_lock
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  [ -e "$T/ran" ]
  [ -z "$(etcd_keys "$PFX")" ]
}

@test "busy: 75 at once, nothing run, the message names the holder; the loser leaves no key" {
  hold
  timed_run lotoc -L "$R" touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  ((ELAPSED < 1000))
  one_line "$stderr"
  [[ "$stderr" =~ is\ busy,\ held\ by\ pid\ $HOLDER\ on\ $HOST\ \($ME\)\ since\ .+:\ bash\ -c ]]
  [ "$(etcd_keys "$PFX")" = "$HOLDER_KEY" ]
  release
}

@test "busy: -q exits 0 silently; -E and conflict_exit_code set the code, also with -q" {
  hold
  run --separate-stderr lotoc -q -L "$R" touch "$T/ran"
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [ -z "$output" ]
  run --separate-stderr lotoc -E 3 -L "$R" touch "$T/ran"
  [ "$status" -eq 3 ]
  f="$(write_etcd_config --ttl 2s "$R: conflict_exit_code: 9")"
  run --separate-stderr "$LOTO" --config "$f" -L "$R" touch "$T/ran"
  [ "$status" -eq 9 ]
  run --separate-stderr "$LOTO" --config "$f" -q -L "$R" touch "$T/ran"
  [ "$status" -eq 9 ]
  [ -z "$stderr" ]
  [ ! -e "$T/ran" ]
  [ "$(etcd_keys "$PFX")" = "$HOLDER_KEY" ]
  release
}

@test "-w: the waiter queues (its key shows) and starts only after the holder's command ended" {
  local round all=""
  for round in 1 2 3; do
    rm -f "$T"/h.* "$T/w.start"
    hold
    spawn -n w lotoc -w -L "$R" bash -c "$STAMP_SNIPPET"' >"$T/w.start"'
    local w=$SPAWNED
    etcd_wait_keys "$PFX" 2
    [ ! -e "$T/w.start" ]
    release
    wait_exit "$w" 10
    [ "$STATUS" -eq 0 ]
    local end start
    end="$(cat "$T/h.end")"
    start="$(cat "$T/w.start")"
    echo "round $round: holder's command ended $end, waiter's started $start" >&2
    ((start >= end))
    ((start - end < 1000))
    all+=" $((start - end))"
  done
  report "handoff (holder's command end -> waiter's command start), ms:$all"
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

@test "a queued waiter sleeps: at most 5 CPU ticks (50 ms) over one second of waiting" {
  hold
  spawn -n w lotoc -w -L "$R" touch "$T/ran"
  local w=$SPAWNED ticks
  etcd_wait_keys "$PFX" 2
  ticks="$(cpu_ticks_in "$w" 1)" # loto itself, not its helper
  echo "CPU ticks over 1 s of waiting: $ticks" >&2
  ((ticks <= 5))
  [ ! -e "$T/ran" ]
  release
  wait_exit "$w" 10
  [ "$STATUS" -eq 0 ]
  [ -e "$T/ran" ]
}

@test "-w on a terminal: the live waiting line names the etcd holder and the queue place, and is erased before the command" {
  hold
  local out="$T/pty.out"
  spawn -n ptywaiter env TERM=xterm "$PY" "$BATS_TEST_DIRNAME/pty_run.py" "$out" -- \
    "$LOTO" --config "$CFG" -w -L "$R" -- echo RAN
  wait_until 10 grep -qs "waiting 1s" "$out"
  release
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  grep -q "loto: waiting 0s for resource '$R' (etcd lock 'loto/$R'), held by pid $HOLDER on $HOST ($ME)" "$out"
  grep -q "loto: waiting 1s, next in line for resource '$R'" "$out" # its place in the queue
  run "$PY" -c 'import sys
data = open(sys.argv[1], "rb").read()
tail = data[data.rindex(b"loto: waiting "):]
print(repr(tail[tail.index(b"\r"):]))' "$out"
  [ "$output" = "b'\\r\\x1b[KRAN\\r\\n'" ]
}

@test "-t: 75 within [t, t+0.5 s]; the waiter's key is gone right after; the holder keeps the lock" {
  hold
  timed_run lotoc -t 1 -L "$R" touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  between "$ELAPSED" 1000 1500 "-t 1 took (ms)"
  [ "$(etcd_keys "$PFX")" = "$HOLDER_KEY" ]
  timed_run lotoc -t 250ms -L "$R" touch "$T/ran"
  [ "$status" -eq 75 ]
  between "$ELAPSED" 250 750 "-t 250ms took (ms)"
  [ "$(etcd_keys "$PFX")" = "$HOLDER_KEY" ]
  release
}

# _key_count_is N: exactly N keys under the prefix (for wait_until)
_key_count_is() { [ "$(etcd_key_count "$PFX")" = "$1" ]; }

@test "-t with a stalled helper: loto waits up to 3 s for its queue key to be revoked before it exits" {
  hold
  spawn -n w lotoc -t 0.5 -L "$R" touch "$T/ran"
  local w=$SPAWNED
  wait_until 5 _key_count_is 2
  local helper
  helper="$(pgrep -f -- "loto-etcd .*--pid $w --user")"
  [[ "$helper" =~ ^[0-9]+$ ]]
  kill -STOP "$helper"
  local t0 t1
  t0="$(now_ms)"
  wait_exit "$w" 10
  t1="$(now_ms)"
  kill -CONT "$helper"
  [ "$STATUS" -eq 75 ]
  [ ! -e "$T/ran" ]
  # what is left of -t 0.5, then 3 s for the "released" that a stopped helper never sends
  between $((t1 - t0)) 2900 4500 "stalled helper: loto's exit after (ms)"
  # let go, the helper revokes the waiter's key
  wait_until 5 _key_count_is 1
  release
}

@test "the waiter's lease revoked while it waits: 69 at once, nothing run, and why" {
  hold
  spawn -n w lotoc -w -L "$R" touch "$T/ran"
  local w=$SPAWNED
  wait_until 5 _key_count_is 2
  local key
  key="$(etcd_keys "$PFX" | grep -vxF "$HOLDER_KEY")"
  ectl lease revoke "${key##*/}" >&2
  wait_exit "$w" 5
  [ "$STATUS" -eq 69 ]
  [ ! -e "$T/ran" ]
  cat "$T/w.err" >&2
  [[ "$(cat "$T/w.err")" == "loto: error: lost the etcd lease while waiting for resource '$R' (etcd lock 'loto/$R'): "@(the lease expired or was revoked|the lock key $key was deleted while waiting)"; the command was not run" ]]
  release
}

@test "SIGTERM / SIGINT while waiting: 128+N, nothing run, the waiter's key removed at once" {
  hold
  local sig n
  for sig in TERM INT; do
    n=$(kill -l "$sig")
    spawn -n "w$sig" lotoc -w -L "$R" touch "$T/ran"
    local w=$SPAWNED
    etcd_wait_keys "$PFX" 2
    kill "-$sig" "$w"
    wait_exit "$w" 5
    echo "SIG$sig: status $STATUS" >&2
    [ "$STATUS" -eq $((128 + n)) ]
    [ "$(etcd_keys "$PFX")" = "$HOLDER_KEY" ]
  done
  [ ! -e "$T/ran" ]
  release
}

@test "FIFO: 10 waiters started one after another run in arrival order, one at a time" {
  hold
  local i pids=()
  for i in 1 2 3 4 5 6 7 8 9 10; do
    spawn -n "w$i" lotoc -w -L "$R" sh -c 'mkdir "$T/in" || echo "$0" >>"$T/overlap"; echo "$0" >>"$T/order"; echo "$LOTO_FENCING_TOKEN" >>"$T/tokens"; rmdir "$T/in"' "$i"
    pids+=("$SPAWNED")
    etcd_wait_keys "$PFX" $((i + 1)) 5
  done
  [ ! -e "$T/order" ]
  release
  for i in "${pids[@]}"; do
    wait_exit "$i" 20
    [ "$STATUS" -eq 0 ]
  done
  echo "order: $(tr '\n' ' ' <"$T/order")" >&2
  [ "$(tr '\n' ' ' <"$T/order")" = "1 2 3 4 5 6 7 8 9 10 " ]
  [ ! -e "$T/overlap" ]
  # tokens strictly increasing, all above the holder's
  local prev tok
  prev="$(envvar "$T/h.env" LOTO_FENCING_TOKEN)"
  while read -r tok; do
    ((tok > prev))
    prev=$tok
  done <"$T/tokens"
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

@test "a waiter queued longer than the TTL keeps its place (lease renewed while waiting)" {
  CFG="$(write_etcd_config --ttl 1s "$R")"
  hold
  spawn -n w lotoc -w -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN" >"$T/w.token"'
  local w=$SPAWNED
  etcd_wait_keys "$PFX" 2
  local wkey
  wkey="$(etcd_keys "$PFX" | tail -n 1)"
  # the scenario: both outlive their 1 s lease twice over
  sleep 2.5
  [ "$(etcd_keys "$PFX" | tr '\n' ' ')" = "$HOLDER_KEY $wkey " ]
  etcd_lease_alive "${wkey##*/}"
  release
  wait_exit "$w" 10
  [ "$STATUS" -eq 0 ]
  (($(cat "$T/w.token") > $(envvar "$T/h.env" LOTO_FENCING_TOKEN)))
}

# --- the command --------------------------------------------------------------------------

@test "exit status passes through (0 1 2 42 126 127 128 255); killed by signal N: 128+N" {
  local c
  for c in 0 1 2 42 126 127 128 255; do
    run "-$c" --separate-stderr lotoc -L "$R" sh -c "exit $c"
    echo "exit $c -> $status" >&2
    [ "$status" -eq "$c" ]
  done
  run --separate-stderr lotoc -L "$R" sh -c 'kill -KILL $$'
  [ "$status" -eq 137 ]
  run --separate-stderr lotoc -L "$R" sh -c 'kill -TERM $$'
  [ "$status" -eq 143 ]
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

@test "signals to loto reach the command: SIGTERM -> 143; SIGUSR1, SIGUSR2, SIGHUP handled by it; lock released" {
  spawn -n t lotoc -L "$R" sh -c 'touch "$T/t.ready"; exec sleep 60'
  local pid=$SPAWNED
  wait_ready "$T/t.ready" t
  kill -TERM "$pid"
  wait_exit "$pid" 5
  [ "$STATUS" -eq 143 ]
  [ "$(etcd_key_count "$PFX")" -eq 0 ]

  spawn -n u lotoc -L "$R" bash -c 'trap "echo USR1 >>\"\$T/got\"" USR1; trap "echo USR2 >>\"\$T/got\"" USR2; trap "echo HUP >>\"\$T/got\"; exit 7" HUP; touch "$T/u.ready"; while :; do sleep 0.01; done'
  pid=$SPAWNED
  wait_ready "$T/u.ready" u
  kill -USR1 "$pid"
  wait_for_lines "$T/got" 1
  kill -USR2 "$pid"
  wait_for_lines "$T/got" 2
  kill -HUP "$pid"
  wait_exit "$pid" 5
  [ "$STATUS" -eq 7 ]
  [ "$(tr '\n' ' ' <"$T/got")" = "USR1 USR2 HUP " ]
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

# --- etcdctl lock interop -------------------------------------------------------------------

@test "etcdctl lock holding: loto is busy (75); loto -w runs once etcdctl lets go" {
  spawn -n ctl etcdctl --endpoints="$ETCD_ENDPOINTS" lock "loto/$R" -- bash -c 'touch "$0.ready"; '"$(await "$T/ctl.go")"'; '"$STAMP_SNIPPET"' >"$0.end"' "$T/ctl"
  local ctl=$SPAWNED
  wait_ready "$T/ctl.ready" ctl
  run --separate-stderr lotoc -L "$R" touch "$T/ran"
  echo "stderr=[$stderr]" >&2
  [ "$status" -eq 75 ]
  [[ "$stderr" == *"is busy"* ]]
  [ ! -e "$T/ran" ]

  spawn -n w lotoc -w -L "$R" bash -c "$STAMP_SNIPPET"' >"$T/w.start"'
  local w=$SPAWNED
  etcd_wait_keys "$PFX" 2
  [ ! -e "$T/w.start" ]
  touch "$T/ctl.go"
  wait_exit "$ctl" 10
  [ "$STATUS" -eq 0 ]
  wait_exit "$w" 10
  [ "$STATUS" -eq 0 ]
  (($(cat "$T/w.start") >= $(cat "$T/ctl.end")))
}

@test "loto holding: etcdctl lock does not get it; etcdctl and loto waiters are served in arrival order" {
  hold
  run timeout -k 1 1 etcdctl --endpoints="$ETCD_ENDPOINTS" lock --ttl=1 "loto/$R" -- touch "$T/ctl.ran"
  echo "timeout etcdctl lock: $status" >&2
  [ "$status" -ne 0 ]
  [ ! -e "$T/ctl.ran" ]
  # the killed etcdctl's key goes with its lease (at once, or after its 1 s TTL)
  etcd_wait_keys "$PFX" 1 5
  [ "$(etcd_keys "$PFX")" = "$HOLDER_KEY" ]

  # queue: etcdctl first, then a loto waiter
  spawn -n ctl etcdctl --endpoints="$ETCD_ENDPOINTS" lock "loto/$R" -- bash -c "$STAMP_SNIPPET"' >"$0.start"; touch "$0.ready"; '"$(await "$T/ctl.go")"'; '"$STAMP_SNIPPET"' >"$0.end"' "$T/ctl"
  local ctl=$SPAWNED
  etcd_wait_keys "$PFX" 2
  spawn -n w lotoc -w -L "$R" bash -c "$STAMP_SNIPPET"' >"$T/w.start"'
  local w=$SPAWNED
  etcd_wait_keys "$PFX" 3
  release
  wait_ready "$T/ctl.ready" ctl
  (($(cat "$T/ctl.start") >= $(cat "$T/h.end")))
  [ ! -e "$T/w.start" ]
  touch "$T/ctl.go"
  wait_exit "$ctl" 10
  [ "$STATUS" -eq 0 ]
  wait_exit "$w" 10
  [ "$STATUS" -eq 0 ]
  (($(cat "$T/w.start") >= $(cat "$T/ctl.end")))
}

# --- etcd unreachable -----------------------------------------------------------------------

@test "unreachable (refused ports): 69 at once, nothing run, one-line error naming the endpoints" {
  local p1 p2 u1 u2
  read -r p1 p2 <<<"$(_etcd_free_ports 2)"
  u1="http://127.0.0.1:$p1"
  u2="http://127.0.0.1:$p2"
  f="$(write_etcd_config --endpoints "$u1 $u2" "$R")"
  for opt in --lock --wait; do
    [ "$opt" = --lock ] || opt="-w -L"
    # shellcheck disable=SC2086  # $opt is one or two words
    timed_run "$LOTO" --config "$f" $opt "$R" touch "$T/ran"
    [ "$status" -eq 69 ]
    [ ! -e "$T/ran" ]
    ((ELAPSED < 1000))
    one_line "$stderr"
    [[ "$stderr" == "loto: error: cannot reach etcd at $u1, $u2: "* ]]
  done
  # --list does not guess "free" for a lock it cannot see.
  run --separate-stderr "$LOTO" --config "$f" --list
  [ "$status" -eq 0 ]
  [[ "$(grep "^$R " <<<"$output")" == *" unknown: cannot reach etcd at $u1, $u2: "* ]]
  [[ "$(grep "^cpu " <<<"$output")" == *" free" ]]
}

@test "black-holed endpoint: 69 after about 1-2 s, nothing run, one-line error naming it" {
  start_blackhole
  f="$(write_etcd_config --endpoints "$BLACKHOLE_URL" "$R")"
  timed_run "$LOTO" --config "$f" -L "$R" touch "$T/ran"
  report "black-holed endpoint: exit $status after $ELAPSED ms"
  [ "$status" -eq 69 ]
  [ ! -e "$T/ran" ]
  ((ELAPSED <= 2500))
  one_line "$stderr"
  [[ "$stderr" == "loto: error: cannot reach etcd at $BLACKHOLE_URL: "* ]]
}

@test "-t bounds the connection too: black-holed endpoint with -t 0.5 -> 75 within [0.5, 1.0] s" {
  start_blackhole
  f="$(write_etcd_config --endpoints "$BLACKHOLE_URL" "$R")"
  timed_run "$LOTO" --config "$f" -t 0.5 -L "$R" touch "$T/ran"
  [ "$status" -eq 75 ]
  [ ! -e "$T/ran" ]
  between "$ELAPSED" 500 1000 "-t 0.5 with a black-holed endpoint took (ms)"
}

@test "first endpoint dead (refused, or black-holed), second alive: it works" {
  local dead
  dead="http://127.0.0.1:$(free_port)"
  f="$(write_etcd_config --ttl 2s --endpoints "$dead $ETCD_URL1" "$R")"
  timed_run "$LOTO" --config "$f" -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN"'
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^[0-9]+$ ]]
  ((ELAPSED < 1000))

  start_blackhole
  f="$(write_etcd_config --ttl 2s --endpoints "$BLACKHOLE_URL $ETCD_URL1" "$R")"
  timed_run "$LOTO" --config "$f" -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN"'
  report "black-holed first endpoint: exit $status after $ELAPSED ms"
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^[0-9]+$ ]]
  ((ELAPSED < 5000))
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
}

# --- losing the lock --------------------------------------------------------------------------

# A job for loto, run by python3 (argv[1] = $T): the main process stamps CLOCK_MONOTONIC
# into $T/alive every 10 ms, stamps $T/term on SIGTERM and keeps going (so only SIGKILL
# ends it); it starts a child sh with a grandchild sleep (both die of SIGTERM) and a child
# sh that ignores SIGTERM with a grandchild sleep that inherits that (only SIGKILL ends
# those). Their pids go to $T/pids; $T/ready appears when all run.
LOSS_JOB_PY='
import os, signal, subprocess, sys, time
T = sys.argv[1]
def stamp(name):
    with open(os.path.join(T, name), "a") as f:
        f.write("%d\n" % time.monotonic_ns())
signal.signal(signal.SIGTERM, lambda *a: stamp("term"))
a = subprocess.Popen(["sh", "-c", "sleep 100 & echo $! >\"$0/gc\"; wait", T])
b = subprocess.Popen(["sh", "-c", "trap \"\" TERM; sleep 100 & echo $! >\"$0/gc_ign\"; wait", T])
while not (os.path.exists(os.path.join(T, "gc")) and os.path.exists(os.path.join(T, "gc_ign"))):
    time.sleep(0.005)
time.sleep(0.01)
with open(os.path.join(T, "pids"), "w") as f:
    f.write("%d %d %d %s %s\n" % (os.getpid(), a.pid, b.pid,
            open(os.path.join(T, "gc")).read().strip(), open(os.path.join(T, "gc_ign")).read().strip()))
open(os.path.join(T, "ready"), "w").close()
while True:
    stamp("alive")
    time.sleep(0.01)
'

# lease_loss_check HOW: loto holds $R (TTL 2 s) running LOSS_JOB_PY; then the lease is
# revoked (HOW=revoke) or the key deleted (HOW=del). Every process of the job gets SIGTERM
# within about T/4 (the next renewal), then SIGKILL 0.2*T later; loto exits 69 with one
# error line; nothing is left in etcd.
lease_loss_check() {
  local how="$1"
  spawn -n h lotoc -L "$R" "$PY" -c "$LOSS_JOB_PY" "$T"
  local h=$SPAWNED
  wait_ready "$T/ready" h
  local key lease
  key="$(etcd_keys "$PFX")"
  lease="${key##*/}"
  [ "$key" = "loto/$R/$lease" ]
  local t0
  t0="$(mono_ns)"
  case $how in
  revoke) ectl lease revoke "$lease" >&2 ;;
  del) ectl del "$key" >&2 ;;
  esac
  wait_exit "$h" 5
  echo "loto: status $STATUS stderr: $(cat "$T/h.err")" >&2
  [ "$STATUS" -eq 69 ]
  local err
  err="$(cat "$T/h.err")"
  one_line "$err"
  # what etcd said, as the helper reported it
  local lost="loto: error: lost resource '$R' (etcd lock 'loto/$R'): "
  case $how in
  revoke) [[ "$err" == "$lost"@(the lease expired or was revoked|the lock key $key was deleted)"; the command was stopped with SIG"* ]] ;;
  del) [[ "$err" == "${lost}the lock key $key was deleted; the command was stopped with SIG"* ]] ;;
  esac
  # every process of the job is gone by the time loto exits
  local p pids
  read -r -a pids <"$T/pids"
  for p in "${pids[@]}"; do
    proc_gone "$p" || {
      echo "job process $p survived: $(tr '\0' ' ' <"/proc/$p/cmdline")" >&2
      return 1
    }
  done
  # timing: SIGTERM within T/4 (+ slack) of the loss, SIGKILL 0.2*T after it
  [ -s "$T/term" ]
  local term death term_ms kill_ms
  term="$(head -n 1 "$T/term")"
  death="$(tail -n 1 "$T/alive")"
  term_ms=$(((term - t0) / 1000000))
  kill_ms=$(((death - term) / 1000000))
  report "$how: loss -> SIGTERM ${term_ms} ms, SIGTERM -> SIGKILL (last sign of life) ${kill_ms} ms (TTL $TTL_MS ms)"
  between "$term_ms" 0 $((TTL_MS / 4 + 150)) "loss -> SIGTERM (ms)"
  between "$kill_ms" $((TTL_MS * 2 / 10 - 60)) $((TTL_MS * 2 / 10 + 150)) "SIGTERM -> SIGKILL (ms)"
  [ "$(etcd_key_count "$PFX")" -eq 0 ]
  not etcd_lease_alive "$lease"
}

@test "lease revoked while the command runs: job and grandchildren get SIGTERM then SIGKILL; 69" {
  lease_loss_check revoke
}

@test "key deleted while the command runs: job and grandchildren get SIGTERM then SIGKILL; 69" {
  lease_loss_check del
}

@test "loto-etcd runs detached: stdin, stdout and stderr on /dev/null, no signal blocked, no environment" {
  # loto starts with SIGUSR1 blocked, a variable of its own and a file as stdin: the
  # helper gets none of them
  : >"$T/in"
  spawn -n h env LOTO_TEST_MARK=1 "$PY" -c '
import os, signal, sys
signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})
os.dup2(os.open(os.path.join(os.environ["T"], "in"), os.O_RDONLY), 0)
os.execv(sys.argv[1], sys.argv[1:])' "$LOTO" --config "$CFG" -L "$R" sh -c 'touch "$0.ready"; exec sleep 60' "$T/h"
  local h=$SPAWNED
  wait_ready "$T/h.ready" h
  grep -q '^SigBlk:.*[1-9a-f]' "/proc/$h/status" # loto itself has it blocked
  local helper fd
  helper="$(pgrep -f -- "loto-etcd .*--pid $h --user")"
  [[ "$helper" =~ ^[0-9]+$ ]]
  for fd in 0 1 2; do
    [ "$(readlink "/proc/$helper/fd/$fd")" = /dev/null ]
  done
  grep -qx 'SigBlk:[[:space:]]*0*' "/proc/$helper/status"
  [ -z "$(tr -d '\0' <"/proc/$helper/environ")" ]
  kill -TERM "$h"
  wait_exit "$h" 5
  [ "$STATUS" -eq 143 ]
}

@test "the etcd helper killed while the command runs: the job gets SIGTERM at once, not at 0.6*T; loto sleeps until its SIGKILL; 69 and why" {
  f="$(write_etcd_config --ttl 4s "$R")"
  spawn -n h "$LOTO" --config "$f" -L "$R" "$PY" -c "$LOSS_JOB_PY" "$T"
  local h=$SPAWNED
  wait_ready "$T/ready" h
  local helper
  helper="$(pgrep -f -- "loto-etcd .*--pid $h --user")"
  [[ "$helper" =~ ^[0-9]+$ ]]
  local t0
  t0="$(mono_ns)"
  kill -KILL "$helper"
  # The job ignores SIGTERM, so loto waits 0.2*T = 800 ms before its SIGKILL: asleep, not
  # polling the dead helper's descriptor (or anything in its place) over and over.
  wait_for_file "$T/term"
  local ticks
  ticks="$(cpu_ticks_in "$h" 0.3)"
  echo "loto's CPU ticks over 300 ms of waiting to kill: $ticks" >&2
  ((ticks <= 3))
  wait_exit "$h" 5
  [ "$STATUS" -eq 69 ]
  [[ "$(cat "$T/h.err")" == "loto: error: lost resource '$R' (etcd lock 'loto/$R'): the etcd helper stopped renewing the lease; the command was stopped with SIG"* ]]
  # with renewals every T/4 = 1 s, waiting for 0.6*T after the last one would take 1.4 s or more
  local term_ms=$((($(head -n 1 "$T/term") - t0) / 1000000))
  report "helper killed -> SIGTERM ${term_ms} ms (TTL 4000 ms)"
  between "$term_ms" 0 700 "helper killed -> SIGTERM (ms)"
}

@test "a job longer than the TTL runs to its end whatever loto's stdin is (here an idle pipe)" {
  f="$(write_etcd_config --ttl 2s "$R")"
  local idle
  exec {idle}< <(exec sleep 60 2>/dev/null)
  local feeder=$!
  # the renewals reach loto over the helper's socket, not stdin: 2.5 s is past 0.6 * TTL
  run --separate-stderr "$LOTO" --config "$f" -L "$R" sh -c 'sleep 2.5; echo done' <&"$idle"
  kill "$feeder"
  exec {idle}<&-
  [ "$status" -eq 0 ]
  [ "$output" = done ]
  [ -z "$stderr" ]
}

@test "etcd killed while the command runs: the job is stopped within 0.6*T / 0.8*T of the last renewal; 69" {
  spawn -n h lotoc -L "$R" "$PY" -c "$LOSS_JOB_PY" "$T"
  local h=$SPAWNED
  wait_ready "$T/ready" h
  local t0
  t0="$(mono_ns)"
  etcd_member_stop 1 KILL
  wait_exit "$h" 5
  echo "loto: status $STATUS stderr: $(cat "$T/h.err")" >&2
  local status_h=$STATUS
  etcd_member_start 1
  [ "$status_h" -eq 69 ]
  one_line "$(cat "$T/h.err")"
  local term death
  term="$(head -n 1 "$T/term")"
  death="$(tail -n 1 "$T/alive")"
  local term_ms=$(((term - t0) / 1000000)) death_ms=$(((death - t0) / 1000000))
  report "etcd killed: -> SIGTERM ${term_ms} ms, -> job dead (last sign of life) ${death_ms} ms (TTL $TTL_MS ms)"
  # counted from the kill, which comes after the last successful renewal
  between "$term_ms" 0 $((TTL_MS * 6 / 10 + 100)) "etcd killed -> SIGTERM (ms)"
  between "$death_ms" 0 $((TTL_MS * 8 / 10 + 100)) "etcd killed -> job dead (ms)"
  local p pids
  read -r -a pids <"$T/pids"
  for p in "${pids[@]}"; do proc_gone "$p"; done
}

@test "loto SIGKILLed while holding: its command dies, the lease is not revoked, the next waiter runs after it expired" {
  spawn -n h lotoc -L "$R" sh -c 'echo $$ >"$T/h.main"; touch "$T/h.ready"; exec sleep 60'
  local h=$SPAWNED
  wait_ready "$T/h.ready" h
  local main hkey
  main="$(cat "$T/h.main")"
  hkey="$(etcd_keys "$PFX")"
  spawn -n w lotoc -w -L "$R" bash -c "$STAMP_SNIPPET"' >"$T/w.start"'
  local w=$SPAWNED
  etcd_wait_keys "$PFX" 2
  local tk
  tk=$(now_ms)
  kill -KILL "$h"
  wait_exit "$h" 5
  [ "$STATUS" -eq 137 ]
  # the job's main process follows loto (PR_SET_PDEATHSIG)
  wait_until 2 proc_gone "$main"
  # not revoked: the key is still there right after
  [ "$(etcd_keys "$PFX" | head -n 1)" = "$hkey" ]
  wait_exit "$w" 10
  [ "$STATUS" -eq 0 ]
  local after=$(($(cat "$T/w.start") - tk))
  report "holder SIGKILLed -> next waiter's command: $after ms (TTL $TTL_MS ms)"
  between "$after" $((TTL_MS * 7 / 10)) $((TTL_MS + 1500)) "kill -> next waiter (ms)"
}

# --- syslog audit records -----------------------------------------------------------------

has_field() {
  [[ " $1 " == *" $2 "* ]] || {
    echo "missing '$2' in: $1" >&2
    return 1
  }
}

@test "syslog: acquired and finished carry token= and lease=" {
  syslog_setup
  f="$(write_etcd_config --syslog --ttl 2s "$R")"
  run in_syslog "$LOTO" --config "$f" -L "$R" sh -c 'echo "$LOTO_FENCING_TOKEN $LOTO_ETCD_LEASE" >"$T/env"; exit 4'
  [ "$status" -eq 4 ]
  synced
  loto_lines >&2
  read -r token lease <"$T/env"
  acquired="$(event_lines acquired)"
  finished="$(event_lines finished)"
  one_line "$acquired"
  one_line "$finished"
  has_field "$acquired" "resource=$R"
  has_field "$acquired" "token=$token"
  has_field "$acquired" "lease=$lease"
  has_field "$finished" "token=$token"
  has_field "$finished" "lease=$lease"
  has_field "$finished" "status=4"
}

@test "syslog: busy and timeout records name the etcd holder (holder=, no local holder_pid)" {
  syslog_setup
  f="$(write_etcd_config --syslog "$R")"
  hold
  # one private syslog for both runs
  run in_syslog bash -c '
    "$1" --config "$2" -L "$3" touch "$4" 2>"$4.busy.err"; echo $? >"$4.busy"
    "$1" --config "$2" -t 0.3 -L "$3" touch "$4" 2>"$4.timeout.err"; echo $? >"$4.timeout"
  ' _ "$LOTO" "$f" "$R" "$T/ran"
  [ "$status" -eq 0 ]
  [ "$(cat "$T/ran.busy")" -eq 75 ]
  [ "$(cat "$T/ran.timeout")" -eq 75 ]
  [ ! -e "$T/ran" ]
  # the messages name the holder and nothing more (no count of waiters etcd did not give)
  [[ "$(cat "$T/ran.busy.err")" == *" on $HOST ($ME) since "*" $T/h; the command was not run (use -w to wait, or -t to wait a while)" ]]
  [[ "$(cat "$T/ran.timeout.err")" == "loto: timed out after 300ms waiting for "*" on $HOST ($ME) since "*" $T/h; the command was not run" ]]
  release
  synced
  loto_lines >&2
  local busy timeout
  busy="$(event_lines busy)"
  timeout="$(event_lines timeout)"
  one_line "$busy"
  one_line "$timeout"
  for record in "$busy" "$timeout"; do
    [[ "$record" =~ \ holder=\"pid\ $HOLDER\ on\ $HOST\ \($ME\)\ since\ [^\"]+:\ bash\ -c ]]
    [[ "$record" != *holder_pid=* ]]
  done
}

@test "syslog: event=unavailable when etcd cannot be reached" {
  syslog_setup
  f="$(write_etcd_config --syslog --endpoints "http://127.0.0.1:$(free_port)" "$R")"
  run in_syslog "$LOTO" --config "$f" -L "$R" touch "$T/ran"
  [ "$status" -eq 69 ]
  [ ! -e "$T/ran" ]
  synced
  loto_lines >&2
  one_line "$(event_lines unavailable)"
  has_field "$(event_lines unavailable)" "resource=$R"
  [ -z "$(event_lines acquired)" ]
}

@test "syslog: event=lost when the lease is revoked under the command" {
  syslog_setup
  f="$(write_etcd_config --syslog --ttl 2s "$R")"
  spawn -n h env LOTO_SYSLOG_DIR="$SLDIR" "$WITH_SYSLOG" "$LOTO" --config "$f" -L "$R" sh -c 'touch "$T/ready"; exec sleep 60'
  local h=$SPAWNED
  wait_ready "$T/ready" h
  local key
  key="$(etcd_keys "$PFX")"
  ectl lease revoke "${key##*/}" >&2
  wait_exit "$h" 10
  [ "$STATUS" -eq 69 ]
  synced
  loto_lines >&2
  lost="$(event_lines lost)"
  one_line "$lost"
  has_field "$lost" "resource=$R"
  has_field "$lost" "lease=${key##*/}"
  has_field "$lost" "stopped_with=SIGTERM" # sleep ends at the first signal
  [ -z "$(event_lines finished)" ] || has_field "$(event_lines finished)" "lease=${key##*/}"
}
