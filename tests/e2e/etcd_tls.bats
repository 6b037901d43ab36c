#!/usr/bin/env bats
# etcd resources in production dress: TLS with client certificates, and etcd's users and
# roles. setup_file makes a throwaway PKI with openssl (tests/tools/make-test-pki.sh) and
# starts two real single-member etcds on loopback, on ports picked at run time:
#   TLS   https, --client-cert-auth: only clients with a certificate of the test CA
#   AUTH  the same, plus etcd's authentication: root, and the user loto whose role may
#         read and write under loto/ only; simple tokens expire after 1 s of idleness
#         (--auth-token-ttl=1), so that a long hold outlives many tokens
# A few tests start a third member serving a certificate that must fail (another host
# name, expired). Everything is stopped by pid (etcd_helpers.bash).
#
# Needs etcd, etcdctl, openssl, curl, python3; the syslog test also rsyslogd and unshare.

# Scripts for loto to run are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load etcd_helpers
load syslog_helpers

MAKE_PKI="$BATS_TEST_DIRNAME/../tools/make-test-pki.sh"

# tls_flags CERT: an etcd member serving $PKI/CERT.pem that asks for client certificates.
tls_flags() {
  echo "--client-cert-auth --trusted-ca-file=$PKI/ca.pem --cert-file=$PKI/$1.pem --key-file=$PKI/$1.key"
}

setup_file() {
  PKI="$(mktemp -d "${TMPDIR:-/tmp}/loto-pki.XXXXXX")"
  # Other users may pass through (the key files inside keep their own modes): a test runs
  # loto as nobody against a key nobody may read.
  chmod 711 "$PKI"
  export PKI
  "$MAKE_PKI" "$PKI"
  export ETCD_SCHEME=https
  export ETCD_CURL_FLAGS="--cacert $PKI/ca.pem --cert $PKI/client.pem --key $PKI/client.key"
  export ETCDCTL_FLAGS="--cacert=$PKI/ca.pem --cert=$PKI/client.pem --key=$PKI/client.key"

  # AUTH first; its variables are kept aside as AUTH_*.
  export ETCD_EXTRA_FLAGS="$(tls_flags server) --auth-token-ttl=1 --bcrypt-cost=4"
  start_etcd
  ectl user add root:rootpw --interactive=false >/dev/null
  ectl user add loto:lotopw --interactive=false >/dev/null
  ectl role add loto-jobs >/dev/null
  ectl role grant-permission --prefix=true loto-jobs readwrite loto/ >/dev/null
  ectl user grant-role loto loto-jobs >/dev/null
  ectl auth enable >/dev/null
  export AUTH_DIR="$ETCD_DIR" AUTH_URL="$ETCD_URL1"
  export AUTH_CTL_FLAGS="$ETCDCTL_FLAGS --user=root:rootpw"

  export ETCD_EXTRA_FLAGS="$(tls_flags server)"
  start_etcd
}

teardown_file() {
  stop_etcd
  ETCD_DIR="$AUTH_DIR" ETCD_N=1 stop_etcd
  [[ -z "${PKI:-}" ]] || rm -rf -- "$PKI"
}

setup() { etcd_setup; }

teardown() {
  common_teardown
  if [[ -n "${SIDE_DIR:-}" ]]; then
    ETCD_DIR="$SIDE_DIR" ETCD_N=1 stop_etcd
  fi
}

# --- helpers of this file -----------------------------------------------------------------

# tls_lines [CA [CERT]]: the etcd: lines for TLS: ca_file $PKI/CA.pem (default ca), and
# cert_file/key_file $PKI/CERT.pem/.key (default client; "-" for none).
tls_lines() {
  local ca="${1:-ca}" cert="${2:-client}" text=""
  text+="  ca_file: $PKI/$ca.pem"$'\n'
  if [[ "$cert" != - ]]; then
    text+="  cert_file: $PKI/$cert.pem"$'\n'"  key_file: $PKI/$cert.key"$'\n'
  fi
  printf '%s' "$text"
}

# tls_config [write_etcd_config options] -- TLS_LINES_ARGS...: a config for $R on the
# TLS member.
tls_config() {
  local opts=()
  while (($#)) && [[ "$1" != -- ]]; do opts+=("$1"); shift; done
  shift || true
  write_etcd_config "${opts[@]}" --etcd-lines "$(tls_lines "$@")" "$R"
}

# run_loto CONFIG: loto locks $R and would touch $T/ran; sets status/stderr (one line).
run_loto() {
  run --separate-stderr "$LOTO" --config "$1" -L "$R" -- touch "$T/ran"
  echo "status=$status stderr=[$stderr] stdout=[$output]" >&2
}

# fails_with CODE REGEX: the last run_loto exited CODE with one line matching REGEX, and
# ran nothing.
fails_with() {
  [ "$status" -eq "$1" ]
  [ ! -e "$T/ran" ]
  [[ -n "$stderr" && "$stderr" != *$'\n'* ]] || {
    echo "expected one line on stderr" >&2
    return 1
  }
  [[ "$stderr" =~ $2 ]] || {
    echo "stderr does not match: $2" >&2
    return 1
  }
}

# side_etcd CERT: a third member serving $PKI/CERT.pem (its health checked with -k: its
# certificate is meant to fail); sets $SIDE_URL. teardown stops it.
side_etcd() {
  local keep_dir="$ETCD_DIR" keep_urls="$ETCD_URLS" keep_eps="$ETCD_ENDPOINTS" keep_u1="$ETCD_URL1"
  ETCD_EXTRA_FLAGS="$(tls_flags "$1")" \
    ETCD_CURL_FLAGS="-k --cert $PKI/client.pem --key $PKI/client.key" start_etcd
  SIDE_DIR="$ETCD_DIR"
  SIDE_URL="$ETCD_URL1"
  ETCD_DIR="$keep_dir" ETCD_URLS="$keep_urls" ETCD_ENDPOINTS="$keep_eps" ETCD_URL1="$keep_u1"
  export ETCD_DIR ETCD_URLS ETCD_ENDPOINTS ETCD_URL1
}

# --- TLS ----------------------------------------------------------------------------------

@test "tls: the right certificates work: run, --check-config, --list" {
  f="$(tls_config)"
  run --separate-stderr "$LOTO" --config "$f" -L "$R" -- sh -c 'echo "ran $LOTO_LOCKFILE $LOTO_FENCING_TOKEN"'
  echo "status=$status stderr=[$stderr]" >&2
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [[ "$output" =~ ^ran\ etcd:loto/$R\ [0-9]+$ ]]
  [ "$(etcd_key_count "$PFX")" -eq 0 ]

  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 0 ]
  run --separate-stderr "$LOTO" --config "$f" --list
  [ "$status" -eq 0 ]
  [[ "$output" == *"etcd:loto/$R"*free* ]]

  # the secrets stay off the command line: the helper gets paths
  spawn -n h "$LOTO" --config "$f" -L "$R" -- sh -c 'touch "$T/ready"; '"$(await "$T/go")"
  wait_ready "$T/ready" h
  local cmdline
  cmdline="$(for p in /proc/[0-9]*; do tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -a -- "--name loto/$R " || true; done)"
  echo "helper: $cmdline" >&2
  [[ "$cmdline" == *"--key-file $PKI/client.key"* ]]
  touch "$T/go"
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
}

@test "tls: a CA that did not sign the server's certificate: 69, unknown CA" {
  run_loto "$(tls_config -- ca2)"
  fails_with 69 "^loto: error: cannot reach etcd at https://127\.0\.0\.1:[0-9]+: TLS: the server's certificate is signed by an unknown CA \(set etcd\.ca_file to the cluster's CA\)"
}

@test "tls: no ca_file: the system's CAs do not know the test CA (69)" {
  f="$(write_etcd_config --etcd-lines "  cert_file: $PKI/client.pem"$'\n'"  key_file: $PKI/client.key"$'\n' "$R")"
  run_loto "$f"
  fails_with 69 "TLS: the server's certificate is signed by an unknown CA"
}

@test "tls: a server certificate for another host name: 69, name mismatch" {
  side_etcd other
  run_loto "$(tls_config --endpoints "$SIDE_URL" --)"
  fails_with 69 "^loto: error: cannot reach etcd at https://127\.0\.0\.1:[0-9]+: TLS: the server's certificate does not name 127\.0\.0\.1 \(host name mismatch\)"
}

@test "tls: an expired server certificate: 69, expired" {
  side_etcd expired
  run_loto "$(tls_config --endpoints "$SIDE_URL" --)"
  fails_with 69 "TLS: the server's certificate has expired"
}

@test "tls: no client certificate: 77, etcd requires one" {
  run_loto "$(tls_config -- ca -)"
  fails_with 77 "^loto: error: etcd at https://127\.0\.0\.1:[0-9]+ requires a client certificate \(TLS alert: [a-z ]+; set etcd\.cert_file and etcd\.key_file\)$"
}

@test "tls: a client certificate of another CA: 77, refused" {
  run_loto "$(tls_config -- ca client2)"
  fails_with 77 "^loto: error: etcd at https://127\.0\.0\.1:[0-9]+ refused our client certificate"
}

@test "tls: a group-readable key: 78 at the key_file setting, nothing run" {
  cp "$PKI/client.key" "$T/client.key"
  chmod 0640 "$T/client.key"
  f="$(write_etcd_config --etcd-lines "$(tls_lines ca -)"$'\n'"  cert_file: $PKI/client.pem
  key_file: $T/client.key
" "$R")"
  local line
  line="$(grep -n 'key_file:' "$f" | cut -d: -f1)"
  run_loto "$f"
  fails_with 78 "^loto: error: $f:$line:13: etcd\.key_file '$T/client\.key' is readable by group or others; run: chmod go-rw '$T/client\.key'$"
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 78 ]
  chmod 0600 "$T/client.key"
  run_loto "$f"
  [ "$status" -eq 0 ]
}

@test "tls: a key the caller cannot read: 78, cannot open" {
  # loto runs as nobody, the key is root's (mode 0600)
  local d="$T/nobody"
  mkdir -m 0755 "$d"
  make_traversable "$d"
  cp "$PKI/client.key" "$d/client.key"
  chmod 0600 "$d/client.key"
  f="$(write_etcd_config -n nobody/loto.yaml --etcd-lines "$(tls_lines ca -)"$'\n'"  cert_file: $PKI/client.pem
  key_file: $d/client.key
" "$R")"
  chmod 0644 "$f"
  make_traversable "$PKI"
  make_shared_loto # nobody may not reach the checkout's build/loto (a clone in /root)
  run --separate-stderr as_nobody "$SHARED_LOTO" --config "$f" -L "$R" -- touch "$T/ran"
  echo "status=$status stderr=[$stderr]" >&2
  fails_with 78 "^loto: error: $f:[0-9]+:13: cannot open etcd\.key_file '$d/client\.key': Permission denied$"
}

@test "tls: a key that is not the certificate's: 78 from the helper" {
  f="$(write_etcd_config --etcd-lines "$(tls_lines ca -)"$'\n'"  cert_file: $PKI/client.pem
  key_file: $PKI/client2.key
" "$R")"
  run_loto "$f"
  fails_with 78 "^loto: error: cannot load etcd\.key_file '$PKI/client2\.key': "
}

@test "tls: a certificate without its key, or TLS files with http endpoints: 78 with a position" {
  f="$(write_etcd_config --etcd-lines "  cert_file: $PKI/client.pem"$'\n' "$R")"
  run_loto "$f"
  fails_with 78 "^loto: error: $f:[0-9]+:14: etcd cert_file is set but key_file is not; a client certificate needs both \(or neither\)$"
  f="$(write_etcd_config --endpoints "http://127.0.0.1:$(free_port)" --etcd-lines "  ca_file: $PKI/ca.pem"$'\n' "$R")"
  run_loto "$f"
  fails_with 78 "^loto: error: $f:[0-9]+:12: etcd ca_file is set, but the endpoint 'http://127\.0\.0\.1:[0-9]+' is not https://"
}

# --- authentication -----------------------------------------------------------------------

# auth_config [write_etcd_config options]: a config for $R on the AUTH member, as the user
# loto with the password file $T/password (written here, mode 0600).
auth_config() {
  [[ -e "$T/password" ]] || (umask 077 && printf 'lotopw\n' >"$T/password")
  write_etcd_config --endpoints "$AUTH_URL" "$@" --etcd-lines "$(tls_lines ca nocn)"$'\n'"  user: loto
  password_file: $T/password
" "$R"
}

# actl ARGS...: etcdctl on the AUTH member as root.
actl() {
  local extra=()
  read -r -a extra <<<"$AUTH_CTL_FLAGS"
  etcdctl --endpoints="$AUTH_URL" --dial-timeout=2s --command-timeout=5s "${extra[@]}" "$@"
}

@test "auth: the user's own prefix works; the password stays in its file" {
  f="$(auth_config)"
  run --separate-stderr "$LOTO" --config "$f" -L "$R" -- sh -c 'echo "ran $LOTO_FENCING_TOKEN"'
  echo "status=$status stderr=[$stderr]" >&2
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [[ "$output" =~ ^ran\ [0-9]+$ ]]
  run --separate-stderr "$LOTO" --config "$f" --list
  [ "$status" -eq 0 ]
  [[ "$output" == *"etcd:loto/$R"*free* ]]

  spawn -n h "$LOTO" --config "$f" -L "$R" -- sh -c 'touch "$T/ready"; '"$(await "$T/go")"
  wait_ready "$T/ready" h
  [ "$(actl get --prefix --keys-only "loto/$R/" | sed '/^$/d' | wc -l)" -eq 1 ]
  local p
  for p in /proc/[0-9]*; do
    if tr '\0' ' ' <"$p/cmdline" 2>/dev/null | grep -aq -- "--name loto/$R "; then
      tr '\0' ' ' <"$p/cmdline" | grep -aq -- "--password-file $T/password"
      ! tr '\0' ' ' <"$p/cmdline" | grep -aq lotopw
    fi
  done
  touch "$T/go"
  wait_exit "$SPAWNED" 10
  [ "$STATUS" -eq 0 ]
  [ -z "$(actl get --prefix --keys-only "loto/$R/" | sed '/^$/d')" ]
}

@test "auth: a prefix outside the user's role: 77 naming the key and the user, event=error" {
  syslog_setup
  f="$(auth_config --prefix other/ --syslog)"
  run --separate-stderr in_syslog "$LOTO" --config "$f" -L "$R" -- touch "$T/ran"
  echo "status=$status stderr=[$stderr]" >&2
  fails_with 77 "^loto: error: etcd refused user 'loto': permission denied \(key other/$R/[0-9a-f]+\)$|^loto: error: etcd refused user 'loto': permission denied \(key other/$R/\)$"
  synced
  loto_lines >&2
  one_line() { [[ -n "$1" && "$1" != *$'\n'* ]]; }
  one_line "$(event_lines error)"
  [[ "$(event_lines error)" == *"etcd refused user 'loto': permission denied (key other/$R/"* ]]
}

@test "auth: a client certificate with a CommonName: 77, etcd says why" {
  f="$(write_etcd_config --endpoints "$AUTH_URL" --etcd-lines "$(tls_lines)" "$R")"
  run_loto "$f"
  fails_with 77 "^loto: error: etcd at https://127\.0\.0\.1:[0-9]+ refuses client certificates with a CommonName while authentication is on; use a certificate without CN"
}

@test "auth: a wrong password: 77, the user refused" {
  f="$(auth_config)"
  printf 'wrong\n' >"$T/password"
  run_loto "$f"
  fails_with 77 "^loto: error: etcd refused user 'loto': authentication failed, invalid user ID or password$"
}

@test "auth: a group-readable password file: 78 at its setting" {
  f="$(auth_config)"
  chmod 0640 "$T/password"
  run_loto "$f"
  fails_with 78 "^loto: error: $f:[0-9]+:18: etcd\.password_file '$T/password' is readable by group or others; run: chmod go-rw '$T/password'$"
}

@test "auth: tokens lapsing during a long hold and a wait disturb neither job" {
  # etcd forgets an idle token after 1 s; with a TTL of 8 s the renewals come every 2 s,
  # so each finds its token gone. The holder runs for 4 renewal periods, a waiter queues
  # behind it (its watch outlives its token too) and runs after it.
  syslog_setup
  f="$(auth_config --ttl 8s --syslog)"
  spawn -n h env LOTO_SYSLOG_DIR="$SLDIR" "$WITH_SYSLOG" "$LOTO" --config "$f" -L "$R" -- \
    bash -c 'touch "$T/h.ready"; sleep 8; '"$STAMP_SNIPPET"' >"$T/h.end"'
  local h=$SPAWNED
  wait_ready "$T/h.ready" h
  spawn -n w "$LOTO" --config "$f" -w -L "$R" -- bash -c "$STAMP_SNIPPET"' >"$T/w.start"'
  local w=$SPAWNED
  wait_exit "$h" 20
  [ "$STATUS" -eq 0 ]
  wait_exit "$w" 20
  echo "holder: $(cat "$T/h.err") waiter: $(cat "$T/w.err")" >&2
  [ "$STATUS" -eq 0 ]
  [ ! -s "$T/h.err" ]
  [ ! -s "$T/w.err" ]
  (($(cat "$T/w.start") >= $(cat "$T/h.end")))
  synced
  loto_lines >&2
  [ -z "$(event_lines lost)" ]
  [ -z "$(event_lines error)" ]
  [[ "$(event_lines finished)" == *"status=0"* ]]
}

# --- loto --check-config --online ----------------------------------------------------------

@test "online: --check-config --online: one line per etcd resource; 0, 69, 77" {
  f="$(tls_config)"
  run --separate-stderr "$LOTO" --config "$f" --check-config --online
  echo "status=$status stdout=[$output] stderr=[$stderr]" >&2
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "configuration OK: $f (3 resources)" ]
  [[ "${lines[1]}" =~ ^etcd\ resource\ \'$R\'\ \(lock\ \'loto/$R\'\):\ OK,\ etcd\ at\ https://127\.0\.0\.1:[0-9]+\ answered:\ free$ ]]
  [ "${#lines[@]}" -eq 2 ]

  f="$(auth_config)"
  run --separate-stderr "$LOTO" --config "$f" --check-config --online
  [ "$status" -eq 0 ]
  [[ "${lines[1]}" == *"OK, etcd at $AUTH_URL answered as user 'loto': free" ]]

  f="$(auth_config --prefix other/)"
  run --separate-stderr "$LOTO" --config "$f" --check-config --online
  echo "status=$status stdout=[$output]" >&2
  [ "$status" -eq 77 ]
  [[ "${lines[1]}" == *"FAILED (exit 77): etcd refused user 'loto': permission denied (key other/$R/)" ]]

  run --separate-stderr "$LOTO" --config "$(tls_config -- ca2)" --check-config --online
  [ "$status" -eq 69 ]
  [[ "${lines[1]}" == *"FAILED (exit 69): cannot reach etcd at "*"unknown CA"* ]]

  run --separate-stderr "$LOTO" --config "$(tls_config -- ca client2)" --check-config --online
  [ "$status" -eq 77 ]

  # without --online nothing is asked: an unreachable cluster is still a valid config
  f="$(write_etcd_config --endpoints "https://127.0.0.1:$(free_port)" "$R")"
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 0 ]
  [ "${#lines[@]}" -eq 1 ]
  run --separate-stderr "$LOTO" --config "$f" --check-config --online
  [ "$status" -eq 69 ]

  run --separate-stderr "$LOTO" --config "$CFG" --check-config --online
  [ "$status" -eq 0 ]
  [ "${lines[1]}" = "no etcd resources to check online" ]
  run --separate-stderr "$LOTO" --config "$CFG" --online --list
  [ "$status" -eq 64 ]
  [ "$stderr" = "loto: error: option --online goes with --check-config (see 'loto --help')" ]
}
