# Helpers for the end-to-end tests of etcd-backed locks (etcd.bats, etcd_cluster.bats):
# a throwaway etcd (one member or a cluster) on loopback, on ports picked at run time.
#
# Load after helpers.bash:   load helpers; load etcd_helpers
#
# In a .bats file:
#   setup_file()    { start_etcd; }              # or: start_etcd_cluster 3
#   teardown_file() { stop_etcd; }
# A missing etcd/etcdctl is a failure, never a skip.
#
# What you get:
#   start_etcd                  one member; start_etcd_cluster N: N members (1..N)
#   stop_etcd                   stops every member by pid (TERM, then KILL) and removes the
#                               data under $ETCD_DIR
#   $ETCD_DIR                   private temp dir (mktemp -d, under $TMPDIR or /tmp) holding
#                               each member's data dir, log (mI.log), pid (mI.pid), args
#   $ETCD_N                     number of members
#   $ETCD_URLS                  client URLs, space-separated (member 1 first)
#   $ETCD_ENDPOINTS             the same, comma-separated (etcdctl --endpoints)
#   $ETCD_URL1 .. $ETCD_URLn    client URL of each member
#   etcd_url I / etcd_pid I     client URL / current pid of member I
#   etcd_member_stop I [SIG]    stops member I (default SIGKILL) and waits until it is gone
#   etcd_member_start I         starts member I again on its data dir; waits until healthy
#   etcd_member_healthy I       /health of member I says true
#   etcd_wait_healthy [TIMEOUT_S] [I...]   until those members (default: all) are healthy
#   etcd_leader                 prints the index I of the current leader (fails if none)
#   etcd_wait_leader [TIMEOUT_S] [I...]    until one of those members is leader; prints it
#   ectl ARGS...                etcdctl (API 3) against every member ($ETCD_ENDPOINTS)
#   etcd_keys PREFIX            the keys under PREFIX, one a line, by create revision
#   etcd_key_count PREFIX       how many keys are under PREFIX
#   etcd_wait_keys PREFIX N [TIMEOUT_S]    until exactly N keys are under PREFIX
#   etcd_dump PREFIX            one line per key under PREFIX, by create revision:
#                               KEY<TAB>CREATE_REVISION<TAB>LEASE_HEX<TAB>VALUE
#   etcd_lease_alive HEX        the lease exists (timetolive TTL > 0)
#   write_etcd_config [options] RESOURCE...   a 0600 config in $T; prints its path
#       --ttl D          etcd.ttl (default: none written, loto's default applies)
#       --endpoints "U..."  endpoints (default $ETCD_URLS); one URL is written as a string
#                        with --scalar, else as a flow list
#       --prefix P       etcd.prefix
#       --syslog         logging: syslog true, facility local3 (else syslog false)
#       --etcd-lines T   more lines of the etcd: section, each indented two spaces
#                        ("  ca_file: /x/ca.pem\n  user: loto\n")
#       -n NAME          file name in $T (default: a fresh config.XXXXXX.yaml)
#     RESOURCE is NAME (backend: etcd) or "NAME: YAML-FLOW-PAIRS" such as
#     "job: conflict_exit_code: 3, timeout: 30m" (backend: etcd is added)
#   free_port                   a loopback TCP port nobody listens on (for refused ports)
#   start_proxy TARGET_URL      tcp_proxy.py forwarding a new loopback port to TARGET_URL's
#                               host:port; sets $PROXY_PID and $PROXY_URL (spawned: the
#                               test's teardown kills it). freeze_proxy / thaw_proxy [PID]
#   start_blackhole             a port that accepts connections and never answers;
#                               sets $BLACKHOLE_PID and $BLACKHOLE_URL
#   mono_ns                     CLOCK_MONOTONIC in ns (python3; the clock every process on
#                               the host shares: stamps from several processes compare)
#   $MONO_STAMP_PY              python3 code for scripts: appends monotonic ns to argv[1]
#
# TLS and authentication (etcd_tls.bats): set these (space-separated words, no spaces
# inside one) before start_etcd*; they are read whenever a helper runs.
#   $ETCD_SCHEME         client URL scheme, http (default) or https
#   $ETCD_EXTRA_FLAGS    more flags for every member (--client-cert-auth --cert-file ...)
#   $ETCD_CURL_FLAGS     more flags for the health checks' curl (--cacert ... --cert ...)
#   $ETCDCTL_FLAGS       more flags for ectl (--cacert ... --user root:PASSWORD)
#
# Each test should use its own lock name (etcd_test_name gives one per test) so that a
# test that leaves a key behind (a killed holder's lease that has to expire) cannot hold up
# the next one.

: "${PY:=python3}"
export ETCDCTL_API=3

_etcd_helpers_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
TCP_PROXY="$_etcd_helpers_dir/tcp_proxy.py"

# Flags every test member gets: fast elections (TTL 1 allowed, healthy in ~100 ms),
# quiet logs.
ETCD_FLAGS=(--heartbeat-interval=10 --election-timeout=100 --logger=zap --log-level=warn
  --snapshot-count=100000)

ectl() {
  local extra=()
  read -r -a extra <<<"${ETCDCTL_FLAGS:-}"
  etcdctl --endpoints="$ETCD_ENDPOINTS" --dial-timeout=2s --command-timeout=5s "${extra[@]}" "$@"
}

etcd_url() { local v="ETCD_URL$1"; echo "${!v}"; }
etcd_pid() { cat "$ETCD_DIR/m$1.pid" 2>/dev/null; }

# _etcd_free_ports N: N distinct loopback ports the kernel considers free right now (all
# bound at once so they differ, then released; a race with another program is caught by
# start_etcd_cluster, which retries on a bind error).
_etcd_free_ports() {
  "$PY" -c '
import socket, sys
socks = []
for _ in range(int(sys.argv[1])):
    s = socket.socket(); s.bind(("127.0.0.1", 0)); socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
' "$1"
}
free_port() { _etcd_free_ports 1; }

_etcd_require() {
  local b
  for b in etcd etcdctl curl "$PY"; do
    command -v "$b" >/dev/null || {
      echo "etcd tests: '$b' is not installed (apt-get install etcd-server etcd-client curl python3)" >&2
      return 1
    }
  done
}

# _etcd_launch I: starts member I from its saved arguments, in its own session, with
# bats' fd 3 closed (bats would otherwise wait for etcd to exit).
_etcd_launch() {
  local i="$1" args=()
  mapfile -d '' -t args <"$ETCD_DIR/m$i.args"
  setsid etcd "${args[@]}" </dev/null >>"$ETCD_DIR/m$i.log" 2>&1 3>&- &
  echo $! >"$ETCD_DIR/m$i.pid"
  # out of the job table: no "Killed" notice from bash when a test kills it
  disown $! 2>/dev/null || true
}

etcd_member_healthy() {
  local out extra=()
  read -r -a extra <<<"${ETCD_CURL_FLAGS:-}"
  out="$(curl -sS --max-time 1 "${extra[@]}" "$(etcd_url "$1")/health" 2>/dev/null)" || return 1
  [[ "$out" == *'"health":"true"'* ]]
}

_etcd_member_alive() {
  local pid
  pid="$(etcd_pid "$1")" || return 1
  [[ -n "$pid" ]] && ! proc_gone "$pid"
}

# etcd_wait_healthy [TIMEOUT_S] [I...]: fails at once if one of the members died.
etcd_wait_healthy() {
  local timeout="${1:-10}" i all=()
  shift || true
  if (($# == 0)); then
    for ((i = 1; i <= ETCD_N; i++)); do all+=("$i"); done
  else
    all=("$@")
  fi
  local deadline=$(($(now_ms) + ${timeout%.*} * 1000))
  while :; do
    local ok=1
    for i in "${all[@]}"; do
      if ! _etcd_member_alive "$i"; then
        echo "etcd member $i (pid $(etcd_pid "$i")) exited; its log:" >&2
        cat "$ETCD_DIR/m$i.log" >&2
        return 2
      fi
      etcd_member_healthy "$i" || ok=0
    done
    ((ok)) && return 0
    if (($(now_ms) > deadline)); then
      echo "etcd members ${all[*]} not healthy within ${timeout}s" >&2
      for i in "${all[@]}"; do tail -n 5 "$ETCD_DIR/m$i.log" >&2; done
      return 1
    fi
    sleep 0.02
  done
}

# start_etcd_cluster N: N members on fresh ports; retried (new ports) if a member could
# not bind its ports.
start_etcd_cluster() {
  local n="${1:-3}" attempt i
  _etcd_require || return 1
  ETCD_DIR="$(mktemp -d "${TMPDIR:-/tmp}/loto-etcd.XXXXXX")"
  ETCD_N="$n"
  export ETCD_DIR ETCD_N
  for attempt in 1 2 3 4 5; do
    local cluster="" p=() urls=() extra=()
    read -r -a extra <<<"${ETCD_EXTRA_FLAGS:-}"
    read -r -a p <<<"$(_etcd_free_ports $((2 * n)))"
    for ((i = 1; i <= n; i++)); do
      cluster+="${cluster:+,}m$i=http://127.0.0.1:${p[2 * i - 1]}"
    done
    for ((i = 1; i <= n; i++)); do
      local cu="${ETCD_SCHEME:-http}://127.0.0.1:${p[2 * i - 2]}" pu="http://127.0.0.1:${p[2 * i - 1]}"
      urls+=("$cu")
      export "ETCD_URL$i=$cu"
      rm -rf "$ETCD_DIR/m$i.data"
      : >"$ETCD_DIR/m$i.log"
      printf '%s\0' --name "m$i" --data-dir "$ETCD_DIR/m$i.data" \
        --listen-client-urls "$cu" --advertise-client-urls "$cu" \
        --listen-peer-urls "$pu" --initial-advertise-peer-urls "$pu" \
        --initial-cluster "$cluster" --initial-cluster-state new \
        --initial-cluster-token "loto-test-$$-$attempt" \
        "${ETCD_FLAGS[@]}" "${extra[@]}" >"$ETCD_DIR/m$i.args"
    done
    ETCD_URLS="${urls[*]}"
    ETCD_ENDPOINTS="${ETCD_URLS// /,}"
    export ETCD_URLS ETCD_ENDPOINTS
    for ((i = 1; i <= n; i++)); do _etcd_launch "$i"; done
    local rc=0
    etcd_wait_healthy 20 || rc=$?
    if ((rc == 0)); then
      return 0
    fi
    # a port was taken (bind: address already in use): stop the rest, try new ports
    if grep -qs 'address already in use' "$ETCD_DIR"/m*.log; then
      echo "start_etcd_cluster: a picked port was taken; retrying (attempt $attempt)" >&2
      _etcd_stop_members
      continue
    fi
    _etcd_stop_members
    rm -rf -- "$ETCD_DIR"
    return 1
  done
  echo "start_etcd_cluster: gave up after 5 attempts" >&2
  rm -rf -- "$ETCD_DIR"
  return 1
}

start_etcd() { start_etcd_cluster 1; }

# etcd_member_stop I [SIG]: signals member I (default KILL) and waits (10 s) until gone.
etcd_member_stop() {
  local i="$1" sig="${2:-KILL}" pid
  pid="$(etcd_pid "$i")" || return 0
  [[ -n "$pid" ]] || return 0
  # only our etcd: the pid file could be stale and the pid reused
  if [[ "$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)" == *"$ETCD_DIR/m$i.data"* ]]; then
    kill "-$sig" "$pid" 2>/dev/null || true
    if ! wait_until 10 proc_gone "$pid"; then
      kill -KILL "$pid" 2>/dev/null || true
      wait_until 5 proc_gone "$pid" || true
    fi
  fi
  wait "$pid" 2>/dev/null || true
  : >"$ETCD_DIR/m$i.pid"
}

etcd_member_start() {
  local i="$1"
  _etcd_member_alive "$i" && return 0
  _etcd_launch "$i"
  etcd_wait_healthy 20 "$i"
}

_etcd_stop_members() {
  local i
  for ((i = 1; i <= ${ETCD_N:-0}; i++)); do etcd_member_stop "$i" TERM; done
}

stop_etcd() {
  [[ -n "${ETCD_DIR:-}" && -d "$ETCD_DIR" ]] || return 0
  _etcd_stop_members
  rm -rf -- "$ETCD_DIR"
}

# --- etcd state ---------------------------------------------------------------------------
# etcd_leader: index of the member that is leader (asks every live member).
etcd_leader() {
  local urls=() i
  for ((i = 1; i <= ETCD_N; i++)); do
    _etcd_member_alive "$i" && urls+=("$(etcd_url "$i")")
  done
  ((${#urls[@]})) || return 1
  local json
  json="$(etcdctl --endpoints="$(
    IFS=,
    echo "${urls[*]}"
  )" --dial-timeout=1s --command-timeout=2s endpoint status -w json 2>/dev/null)" || true
  [[ -n "$json" ]] || return 1
  "$PY" -c '
import json, sys
urls = sys.argv[1].split()
for st in json.loads(sys.stdin.read() or "[]"):
    s = st.get("Status", {})
    if s.get("leader") and s.get("leader") == s.get("header", {}).get("member_id"):
        print(urls.index(st["Endpoint"]) + 1)
        sys.exit(0)
sys.exit(1)
' "$ETCD_URLS" <<<"$json"
}

# etcd_wait_leader [TIMEOUT_S] [I...]: until one of members I... (default any) is leader;
# prints its index.
etcd_wait_leader() {
  local timeout="${1:-10}" l
  shift || true
  local deadline=$(($(now_ms) + ${timeout%.*} * 1000))
  while :; do
    if l="$(etcd_leader)"; then
      if (($# == 0)) || [[ " $* " == *" $l "* ]]; then
        echo "$l"
        return 0
      fi
    fi
    if (($(now_ms) > deadline)); then
      echo "etcd_wait_leader: no leader within ${timeout}s" >&2
      return 1
    fi
    sleep 0.05
  done
}

etcd_keys() {
  ectl get --prefix --keys-only --sort-by=CREATE --order=ASCEND -- "$1" | sed '/^$/d'
}
etcd_key_count() {
  local k
  k="$(etcd_keys "$1")" || return 1
  if [[ -z "$k" ]]; then echo 0; else wc -l <<<"$k"; fi
}
_etcd_has_n_keys() { [[ "$(etcd_key_count "$1")" == "$2" ]]; }
etcd_wait_keys() { wait_until "${3:-5}" _etcd_has_n_keys "$1" "$2"; }

etcd_dump() {
  ectl get --prefix -w json -- "$1" | "$PY" -c '
import base64, json, sys
d = json.load(sys.stdin)
kvs = sorted(d.get("kvs", []), key=lambda kv: int(kv.get("create_revision", 0)))
for kv in kvs:
    k = base64.b64decode(kv["key"]).decode("utf-8", "replace")
    v = base64.b64decode(kv.get("value", "")).decode("utf-8", "replace").replace("\n", " ")
    lease = "%x" % int(kv.get("lease", 0))
    print("%s\t%s\t%s\t%s" % (k, kv.get("create_revision", 0), lease, v))
'
}

etcd_lease_alive() {
  local out
  out="$(ectl lease timetolive "$1" 2>&1)" || return 1
  # "lease 694d... already expired" / "lease 694d... granted with TTL(2s), remaining(1s)"
  [[ "$out" == *"remaining("* && "$out" != *"remaining(-1s)"* ]]
}

# --- config ---------------------------------------------------------------------------------
write_etcd_config() {
  local ttl="" endpoints="$ETCD_URLS" prefix="" syslog=0 scalar=0 name=() etcd_lines=""
  while (($#)); do
    case "$1" in
    --ttl) ttl="$2"; shift 2 ;;
    --endpoints) endpoints="$2"; shift 2 ;;
    --prefix) prefix="$2"; shift 2 ;;
    --syslog) syslog=1; shift ;;
    --etcd-lines) etcd_lines="$2"; shift 2 ;;
    --scalar) scalar=1; shift ;;
    -n) name=(-n "$2"); shift 2 ;;
    *) break ;;
    esac
  done
  local text ep r
  text="lock_dir: $T"$'\n'
  if ((syslog)); then
    text+=$'logging:\n  syslog: true\n  facility: local3\n'
  else
    text+=$'logging:\n  syslog: false\n'
  fi
  text+=$'etcd:\n'
  read -r -a ep <<<"$endpoints"
  if ((scalar)) && ((${#ep[@]} == 1)); then
    text+="  endpoints: ${ep[0]}"$'\n'
  else
    local list="" u
    for u in "${ep[@]}"; do list+="${list:+, }$u"; done
    text+="  endpoints: [$list]"$'\n'
  fi
  [[ -z "$ttl" ]] || text+="  ttl: $ttl"$'\n'
  [[ -z "$prefix" ]] || text+="  prefix: $prefix"$'\n'
  [[ -z "$etcd_lines" || "$etcd_lines" == *$'\n' ]] || etcd_lines+=$'\n'
  text+="$etcd_lines"
  text+=$'resources:\n'
  for r in "$@"; do
    if [[ "$r" == *:* ]]; then
      text+="  ${r%%:*}: {backend: etcd, ${r#*: }}"$'\n'
    else
      text+="  $r:"$'\n'"    backend: etcd"$'\n'
    fi
  done
  write_config "${name[@]}" "$text"
}

# A lock name of this test's own: t<test number> (bats numbers tests from 1 per file).
etcd_test_name() { echo "t${BATS_TEST_NUMBER:-0}"; }

# The variables the proxy helpers set are for the caller.
# shellcheck disable=SC2034
# --- proxy ------------------------------------------------------------------------------------
start_proxy() {
  local target="${1#http://}" pf
  target="${target%%/*}"
  pf="$T/proxy.$RANDOM$RANDOM.port"
  spawn -n "proxy.$RANDOM" "$PY" "$TCP_PROXY" --target "$target" --port-file "$pf"
  PROXY_PID=$SPAWNED
  wait_for_file "$pf" 5 || return 1
  PROXY_URL="http://127.0.0.1:$(cat "$pf")"
}
freeze_proxy() { kill -STOP "${1:-$PROXY_PID}"; }
thaw_proxy() { kill -CONT "${1:-$PROXY_PID}"; }

# shellcheck disable=SC2034
start_blackhole() {
  local pf="$T/blackhole.$RANDOM$RANDOM.port"
  spawn -n "blackhole.$RANDOM" "$PY" "$TCP_PROXY" --blackhole --port-file "$pf"
  BLACKHOLE_PID=$SPAWNED
  wait_for_file "$pf" 5 || return 1
  BLACKHOLE_URL="http://127.0.0.1:$(cat "$pf")"
}

# --- clocks -----------------------------------------------------------------------------------
mono_ns() { "$PY" -c 'import time; print(time.monotonic_ns())'; }
# shellcheck disable=SC2089,SC2090  # python code, not shell words
MONO_STAMP_PY='import sys, time
with open(sys.argv[1], "a") as f: f.write("%d\n" % time.monotonic_ns())'
# shellcheck disable=SC2090
export MONO_STAMP_PY

# wait_ready PATH NAME [TIMEOUT_S]: wait_for_file PATH; when it does not appear, show what
# the process spawned as NAME said ($T/NAME.err, .out) and whether it still runs.
wait_ready() {
  wait_for_file "$1" "${3:-10}" && return 0
  echo "--- $2 stderr:" >&2
  cat "$T/$2.err" >&2 2>/dev/null
  echo "--- $2 stdout:" >&2
  cat "$T/$2.out" >&2 2>/dev/null
  return 1
}

# etcd_setup: a test's common set-up, plus R (a resource name of its own) and PFX (the
# etcd prefix its keys live under).
etcd_setup() {
  common_setup
  R="$(etcd_test_name)"
  PFX="loto/$R/"
  export R PFX
}
