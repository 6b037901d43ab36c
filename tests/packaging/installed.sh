#!/bin/bash
# Installed-system test of loto's packages. It changes the machine (dpkg -i, /etc/loto.yaml),
# so it needs root and runs only when asked: CTest runs it with -DLOTO_PACKAGE_TESTS=ON
# (tests/CMakeLists.txt), or run it by hand:
#
#   sudo tests/packaging/installed.sh
#
# What it does:
#  1. builds the .deb and .rpm with packaging/build-deb.sh into build-pkg/out/ (which also
#     fails on lintian errors or warnings); LOTO_PKG_SKIP_BUILD=1 reuses the packages
#     already there;
#  2. installs the .deb with `dpkg -i` (missing runtime dependencies first, with apt-get);
#  3. checks the installed files: /usr/bin/loto, the conffile /etc/loto.yaml, man pages
#     (`man --warnings` clean, every option of --help in loto(1)), bash and zsh completion;
#  4. edits /etc/loto.yaml (a named resource) and runs /usr/bin/loto against it: the
#     resource, a busy lock (exit 75), syslog records through tests/syslog/with-syslog.sh
#     when rsyslogd is installed;
#  5. `dpkg -r` keeps the edited conffile, `dpkg -P` removes it;
#  6. checks the .rpm's file list and its %config(noreplace) marking with `rpm -qp`.
# On exit, also after a failure or Ctrl-C, it purges the package, puts back any file the
# package would have overwritten (an existing /etc/loto.yaml, say) and /etc/loto.d, and
# removes what it installed with apt-get. It can be run again at once.
# Exit status: 0 all passed, 1 a check failed, 77 skipped (not root, not Debian).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
out=${LOTO_PKG_OUT:-$root/build-pkg/out}
export LC_ALL=C.UTF-8 DEBIAN_FRONTEND=noninteractive
unset LOTO_CONFIG LOTO_RESOURCE LOTO_LOCKFILE

skip() {
  echo "SKIP: $*"
  exit 77
}
[ "$(id -u)" -eq 0 ] || skip "needs root (it installs the package with dpkg)"
for tool in dpkg dpkg-deb dpkg-query apt-get rpm; do
  command -v "$tool" >/dev/null || skip "$tool is not installed"
done

# --- reporting -------------------------------------------------------------------------------
failures=0
checks=0
ok() {
  checks=$((checks + 1))
  echo "ok $checks - $*"
}
not_ok() {
  checks=$((checks + 1))
  failures=$((failures + 1))
  echo "not ok $checks - $*"
}
# check DESCRIPTION COMMAND...: runs COMMAND, reports ok / not ok with its output.
check() {
  local what=$1 output
  shift
  if output=$("$@" 2>&1); then
    ok "$what"
  else
    not_ok "$what"
    [ -z "$output" ] || printf '#   %s\n' "${output//$'\n'/$'\n'#   }"
  fi
}
# expect_status WANT DESCRIPTION COMMAND...: COMMAND must exit with WANT.
expect_status() {
  local want=$1 what=$2 got=0 output
  shift 2
  output=$("$@" 2>&1) || got=$?
  if [ "$got" -eq "$want" ]; then
    ok "$what (exit $got)"
  else
    not_ok "$what: exit $got, wanted $want"
    [ -z "$output" ] || printf '#   %s\n' "${output//$'\n'/$'\n'#   }"
  fi
}
fatal() {
  echo "Bail out! $*"
  exit 1
}

# --- the machine as it was, and putting it back ------------------------------------------------
pkg_state() { dpkg-query -W -f='${db:Status-Abbrev}' loto 2>/dev/null | tr -d ' ' || true; }
case $(pkg_state) in
'' | un | pn) ;;
*) fatal "the package loto is already on this machine ($(pkg_state)); remove it first: dpkg -P loto" ;;
esac

tmp=$(mktemp -d /tmp/loto-pkgtest.XXXXXX)
chmod 755 "$tmp"
mkdir "$tmp/saved"
saved=()         # paths moved aside before the install
apt_installed=() # runtime dependencies this test installed
holder=          # pid of a background lock holder
etcd_pid=        # pid of the test's etcd

restore() {
  local status=$? path
  set +e
  trap - EXIT INT TERM HUP
  if [ -n "$holder" ]; then
    kill "$holder" 2>/dev/null
    wait "$holder" 2>/dev/null
  fi
  if [ -n "$etcd_pid" ]; then
    kill "$etcd_pid" 2>/dev/null
    wait "$etcd_pid" 2>/dev/null
  fi
  case $(pkg_state) in
  '' | un | pn) ;;
  *) dpkg -P loto >/dev/null 2>&1 || echo "# cleanup: dpkg -P loto failed" >&2 ;;
  esac
  for path in "${saved[@]}"; do
    rm -rf "$path"
    mkdir -p "$(dirname "$path")"
    mv "$tmp/saved$path" "$path" || echo "# cleanup: could not put back $path" >&2
  done
  if [ "${#apt_installed[@]}" -gt 0 ]; then
    apt-get remove -y -q "${apt_installed[@]}" >/dev/null 2>&1 ||
      echo "# cleanup: apt-get remove ${apt_installed[*]} failed" >&2
  fi
  rm -rf "$tmp"
  exit "$status"
}
trap restore EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# save PATH: move an existing PATH aside (restore() puts it back).
save() {
  local path=$1
  [ -e "$path" ] || [ -L "$path" ] || return 0
  mkdir -p "$tmp/saved$(dirname "$path")"
  mv "$path" "$tmp/saved$path"
  saved+=("$path")
  echo "# moved aside for the test: $path"
}

# --- 1. build ------------------------------------------------------------------------------------
if [ "${LOTO_PKG_SKIP_BUILD:-0}" != 1 ]; then
  echo "# building the packages: packaging/build-deb.sh $out"
  if "$root/packaging/build-deb.sh" "$out" >"$tmp/build.log" 2>&1; then
    ok "packaging/build-deb.sh built the packages; lintian has no errors or warnings"
  else
    tail -40 "$tmp/build.log" | sed 's/^/#   /'
    fatal "packaging/build-deb.sh failed"
  fi
fi
version=$(sed -n 's/^project(loto VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")
arch=$(dpkg --print-architecture)
deb=$out/loto_${version}_${arch}.deb
rpmfile=
for f in "$out"/loto-"$version"-*.rpm; do [ -f "$f" ] && rpmfile=$f; done
[ -f "$deb" ] || fatal "no $deb (run packaging/build-deb.sh)"
[ -n "$rpmfile" ] || fatal "no loto-$version-*.rpm in $out (run packaging/build-deb.sh)"

# --- 2. install ----------------------------------------------------------------------------------
# Runtime dependencies: the first alternative of each, when missing.
missing=()
IFS=, read -ra deps <<<"$(dpkg-deb -f "$deb" Depends)"
for dep in "${deps[@]}"; do
  name=$(sed -e 's/|.*//' -e 's/(.*//' -e 's/:any//' <<<"$dep" | tr -d ' ')
  [ -n "$name" ] || continue
  if [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$name" 2>/dev/null | tr -d ' ')" != ii ]; then
    missing+=("$name")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "# installing runtime dependencies: ${missing[*]}"
  apt-get install -y -q --no-install-recommends "${missing[@]}" >"$tmp/apt.log" 2>&1 ||
    { cat "$tmp/apt.log"; fatal "apt-get install ${missing[*]} failed"; }
  apt_installed=("${missing[@]}")
fi

# Whatever the package would overwrite goes aside first (and comes back at the end), so
# dpkg meets a clean system and asks nothing; /etc/loto.d would add resources of its own.
while read -r path; do
  [ -d "$path" ] && [ ! -L "$path" ] && continue
  save "$path"
done < <(dpkg-deb --fsys-tarfile "$deb" | tar -t | sed -e 's|^\./|/|' -e '/\/$/d')
save /etc/loto.d

check "dpkg -i $(basename "$deb")" dpkg -i "$deb"
[ "$(pkg_state)" = ii ] || fatal "the package is not installed after dpkg -i (state: $(pkg_state))"

# --- 3. installed files --------------------------------------------------------------------------
loto=/usr/bin/loto
check "/usr/bin/loto is installed and executable" test -x $loto
check "loto --version prints loto $version" bash -c "[ \"\$($loto --version)\" = 'loto $version' ]"
check "/etc/loto.yaml is a conffile" bash -c "dpkg-query -W -f='\${Conffiles}\n' loto | grep -q '^ /etc/loto.yaml '"
check "/etc/loto.yaml is root's, mode 0644" bash -c "[ \"\$(stat -c '%U %a' /etc/loto.yaml)\" = 'root 644' ]"
check "the shipped /etc/loto.yaml is valid" $loto --check-config
check "loto reads /etc/loto.yaml by default" bash -c "[ \"\$($loto --check-config)\" = 'configuration OK: /etc/loto.yaml (2 resources)' ]"
files=$(dpkg-query -L loto)
for f in /usr/share/man/man1/loto.1.gz /usr/share/man/man5/loto.yaml.5.gz \
  /usr/share/bash-completion/completions/loto /usr/share/zsh/vendor-completions/_loto \
  /usr/share/doc/loto/copyright /usr/share/doc/loto/README.md.gz /usr/share/doc/loto/changelog.gz \
  /usr/share/doc/loto/examples/loto.yaml; do
  check "the package installs $f" bash -c "grep -qx '$f' <<<'$files' && test -f '$f'"
done
check "the annotated example config is valid" $loto --config /usr/share/doc/loto/examples/loto.yaml --check-config

check "man -w finds loto(1)" bash -c "[ \"\$(man -w loto)\" = /usr/share/man/man1/loto.1.gz ]"
check "man -w finds loto.yaml(5)" bash -c "[ \"\$(man -w 5 loto.yaml)\" = /usr/share/man/man5/loto.yaml.5.gz ]"
for page in loto.1 loto.yaml.5; do
  f=/usr/share/man/man${page##*.}/$page.gz
  check "man --warnings -l $f: no warnings" bash -c \
    "w=\$(MANWIDTH=80 man --warnings -l '$f' 2>&1 >/dev/null); [ -z \"\$w\" ] || { echo \"\$w\"; false; }"
done
# Every option that --help lists is documented in loto(1).
MANWIDTH=80 LC_ALL=C man -l /usr/share/man/man1/loto.1.gz >"$tmp/loto.1.txt" 2>/dev/null || true
man_text=$(cat "$tmp/loto.1.txt")
undocumented=()
for opt in $($loto --help | grep -oE -- '(^|[ ,])--?[A-Za-z][-a-z]*' | tr -d ' ,' | sort -u); do
  grep -qE -- "(^|[^-a-z])$opt([^-a-z]|$)" <<<"$man_text" || undocumented+=("$opt")
done
if [ "${#undocumented[@]}" -eq 0 ]; then
  ok "loto(1) documents every option of loto --help"
else
  not_ok "loto(1) lacks options of loto --help: ${undocumented[*]}"
fi
check "loto(1) has every exit status of the table" bash -c \
  "for code in 64 69 71 73 75 77 78 126 127 128+N; do grep -qwF \"\$code\" '$tmp/loto.1.txt' || { echo \"missing \$code\"; exit 1; }; done"

# --- 4. an edited /etc/loto.yaml and the installed binary ---------------------------------------------
locks=$tmp/locks
mkdir -m 755 "$locks"
cat >/etc/loto.yaml <<EOF
# /etc/loto.yaml, edited by tests/packaging/installed.sh
logging:
  facility: local3
resources:
  pkgtest:
    path: $locks/pkgtest.lock
    description: installed-system test
EOF
chmod 644 /etc/loto.yaml
cp /etc/loto.yaml "$tmp/edited.yaml"

check "the edited /etc/loto.yaml is valid" $loto --check-config
check "loto --list shows the resource pkgtest" bash -c "$loto --list | awk 'NR > 1 { print \$1 }' | grep -qx pkgtest"
check "loto -L pkgtest runs the command with LOTO_RESOURCE and LOTO_LOCKFILE" bash -c \
  "[ \"\$($loto -L pkgtest -- sh -c 'echo \"\$LOTO_RESOURCE \$LOTO_LOCKFILE\"')\" = 'pkgtest $locks/pkgtest.lock' ]"
expect_status 7 "the command's exit status passes through" $loto -L pkgtest -- sh -c 'exit 7'
expect_status 64 "an unknown resource is a usage error" $loto -L pkgtset -- true
check "the unknown resource's message suggests pkgtest" bash -c "$loto -L pkgtset -- true 2>&1 | grep -q pkgtest"

# hold RESOURCE: a background loto holding RESOURCE until it is killed ($holder).
hold() {
  local started=$tmp/held-$1
  $loto -L "$1" -- sh -c "echo held >'$started'; exec sleep 60" &
  holder=$!
  for _ in $(seq 100); do
    [ -e "$started" ] && return 0
    sleep 0.05
  done
  fatal "the holder of $1 did not start"
}

# A busy lock: a holder keeps pkgtest until it is killed.
hold pkgtest
expect_status 75 "a busy lock exits 75" $loto -L pkgtest -- true
check "the busy message names the resource and the lock file" bash -c \
  "$loto -L pkgtest -- true 2>&1 | grep -F 'pkgtest' | grep -qF '$locks/pkgtest.lock'"
expect_status 0 "a busy lock with -q exits 0" $loto -q -L pkgtest -- true
expect_status 9 "a busy lock with -E 9 exits 9" $loto -E 9 -L pkgtest -- true
expect_status 75 "-t 0.2 expires on the busy lock" $loto -t 0.2 -L pkgtest -- true

# Syslog records, from a private rsyslogd (tests/syslog/with-syslog.sh) while still busy.
syslog_harness=$root/tests/syslog/with-syslog.sh
if [ -x "$syslog_harness" ] || [ -f "$syslog_harness" ]; then
  if command -v rsyslogd >/dev/null && command -v unshare >/dev/null; then
    export LOTO_SYSLOG_DIR=$tmp/syslog
    mkdir -p "$LOTO_SYSLOG_DIR"
    bash "$syslog_harness" $loto -L pkgtest -- true >/dev/null 2>&1 || true
    check "syslog: a busy record (local3.warning, ident loto, holder pid)" grep -qE \
      "^local3\.warning loto\[[0-9]+\]: event=busy resource=pkgtest lock=$locks/pkgtest.lock .*holder_pid=$holder " \
      "$LOTO_SYSLOG_DIR/messages"
  else
    echo "# syslog checks skipped: rsyslogd or unshare is not installed"
  fi
fi
kill "$holder" 2>/dev/null || true
wait "$holder" 2>/dev/null || true
holder=
if [ -n "${LOTO_SYSLOG_DIR:-}" ]; then
  bash "$syslog_harness" $loto -L pkgtest -- true >/dev/null 2>&1 || true
  check "syslog: acquired and finished records" bash -c \
    "grep -qE '^local3\.info loto\[[0-9]+\]: event=acquired resource=pkgtest ' '$LOTO_SYSLOG_DIR/messages' &&
     grep -qE '^local3\.info loto\[[0-9]+\]: event=finished resource=pkgtest .*status=0 ' '$LOTO_SYSLOG_DIR/messages'"
fi
expect_status 0 "the lock is free again once the holder is gone" $loto -L pkgtest -- true

# A fleet lock through a real etcd on loopback, by the installed loto and its helper, over
# TLS with client certificates (a PKI made by tests/tools/make-test-pki.sh).
check "the etcd helper is installed in /usr/libexec/loto" test -x /usr/libexec/loto/loto-etcd
if command -v etcd >/dev/null && command -v etcdctl >/dev/null && command -v openssl >/dev/null; then
  pki="$tmp/pki"
  "$root/tests/tools/make-test-pki.sh" "$pki"
  tls_ctl=(--cacert="$pki/ca.pem" --cert="$pki/client.pem" --key="$pki/client.key")
  read -r client_port peer_port < <(python3 -c 'import socket
s=[socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')
  etcd_url=https://127.0.0.1:$client_port
  etcd --name pkgtest --data-dir "$tmp/etcd" --listen-client-urls "$etcd_url" \
    --advertise-client-urls "$etcd_url" --listen-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-advertise-peer-urls "http://127.0.0.1:$peer_port" \
    --initial-cluster "pkgtest=http://127.0.0.1:$peer_port" --heartbeat-interval=10 \
    --election-timeout=100 --logger=zap --log-level=warn --client-cert-auth \
    --trusted-ca-file="$pki/ca.pem" --cert-file="$pki/server.pem" --key-file="$pki/server.key" \
    >"$tmp/etcd.log" 2>&1 &
  etcd_pid=$!
  for _ in $(seq 200); do
    ETCDCTL_API=3 etcdctl --endpoints="$etcd_url" "${tls_ctl[@]}" endpoint health >/dev/null 2>&1 && break
    kill -0 "$etcd_pid" 2>/dev/null || break
    sleep 0.05
  done
  printf '  fleet:\n    backend: etcd\netcd:\n  endpoints: [%s]\n  ttl: 2s\n  ca_file: %s\n  cert_file: %s\n  key_file: %s\n' \
    "$etcd_url" "$pki/ca.pem" "$pki/client.pem" "$pki/client.key" >>/etc/loto.yaml
  check "loto --check-config --online: the cluster answers over TLS" bash -c \
    "$loto --check-config --online | grep -q \"^etcd resource 'fleet' (lock 'loto/fleet'): OK, etcd at $etcd_url answered: free\$\""
  check "loto -L fleet runs the command with a fencing token from etcd" bash -c \
    "$loto -L fleet -- sh -c 'echo \"\$LOTO_FENCING_TOKEN \$LOTO_LOCKFILE\"' | grep -qE '^[0-9]+ etcd:loto/fleet$'"
  hold fleet
  expect_status 75 "a busy fleet lock exits 75" $loto -L fleet -- true
  check "etcdctl sees loto's key under loto/fleet/" bash -c \
    "ETCDCTL_API=3 etcdctl --endpoints='$etcd_url' ${tls_ctl[*]} get --prefix --keys-only loto/fleet/ | grep -qE '^loto/fleet/[0-9a-f]+$'"
  kill "$holder" 2>/dev/null || true
  wait "$holder" 2>/dev/null || true
  holder=
  kill "$etcd_pid" 2>/dev/null || true
  wait "$etcd_pid" 2>/dev/null || true
  etcd_pid=
  expect_status 69 "etcd stopped: a fleet lock exits 69" $loto -L fleet -- true
  chmod 0644 "$pki/client.key"
  expect_status 78 "a client key readable by others: 78" $loto -L fleet -- true
  cp "$tmp/edited.yaml" /etc/loto.yaml
else
  echo "# etcd checks skipped: etcd-server, etcd-client or openssl is not installed"
fi

# Shell completion, from the installed files, with the edited configuration.
other=$tmp/other.yaml
printf 'resources:\n  fromother: {}\n' >"$other"
chmod 644 "$other"
if command -v bash >/dev/null && [ -f /usr/share/bash-completion/bash_completion ]; then
  check "bash: loto -L completes the configured resources" bash -c \
    "out=\$(bash '$here/bash-complete.sh' 'loto -L '); grep -qx pkgtest <<<\"\$out\" && grep -qx cpu <<<\"\$out\" || { echo \"\$out\"; false; }"
  check "bash: --config is passed on to loto --list" bash -c \
    "out=\$(bash '$here/bash-complete.sh' 'loto --config $other --lock='); grep -qx fromother <<<\"\$out\" && ! grep -qx pkgtest <<<\"\$out\" || { echo \"\$out\"; false; }"
  check "bash: options complete" bash -c \
    "out=\$(bash '$here/bash-complete.sh' 'loto --chec'); [ \"\$out\" = --check-config ] || { echo \"\$out\"; false; }"
else
  echo "# bash completion checks skipped: bash-completion is not installed"
fi
if command -v zsh >/dev/null && zsh -fc 'zmodload zsh/zpty' 2>/dev/null; then
  check "zsh: loto -L completes the configured resources" bash -c \
    "out=\$(timeout 30 zsh -f '$here/zsh-complete.zsh' 'loto -L '); grep -qx pkgtest <<<\"\$out\" && grep -qx net <<<\"\$out\" || { echo \"\$out\"; false; }"
  check "zsh: --config is passed on to loto --list" bash -c \
    "out=\$(timeout 30 zsh -f '$here/zsh-complete.zsh' 'loto --config $other -L '); grep -qx fromother <<<\"\$out\" && ! grep -qx pkgtest <<<\"\$out\" || { echo \"\$out\"; false; }"
else
  echo "# zsh completion checks skipped: zsh is not installed"
fi

# --- 5. remove and purge -----------------------------------------------------------------------
check "dpkg -r loto" dpkg -r loto
check "dpkg -r removed /usr/bin/loto" test ! -e /usr/bin/loto
check "dpkg -r kept the edited /etc/loto.yaml" cmp /etc/loto.yaml "$tmp/edited.yaml"
check "the package is in state config-files" bash -c "[ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}' loto | tr -d ' ')\" = rc ]"
check "dpkg -P loto" dpkg -P loto
check "dpkg -P removed /etc/loto.yaml" test ! -e /etc/loto.yaml
check "the package is gone" bash -c "! dpkg-query -W loto >/dev/null 2>&1 || [ \"\$(dpkg-query -W -f='\${db:Status-Abbrev}' loto | tr -d ' ')\" = un ]"

# --- 6. the .rpm ---------------------------------------------------------------------------------
rpm_files=$(rpm -qp -l "$rpmfile" 2>/dev/null)
for f in /usr/bin/loto /usr/libexec/loto/loto-etcd /etc/loto.yaml /usr/share/man/man1/loto.1.gz /usr/share/man/man5/loto.yaml.5.gz \
  /usr/share/bash-completion/completions/loto /usr/share/zsh/vendor-completions/_loto \
  /usr/share/doc/loto/README.md /usr/share/doc/loto/LICENSE /usr/share/doc/loto/examples/loto.yaml; do
  check "rpm -qpl lists $f" grep -qx "$f" <<<"$rpm_files"
done
for d in /etc /usr /usr/bin /usr/share/man /usr/share/man/man1 /usr/share/bash-completion/completions \
  /usr/share/zsh/vendor-completions /usr/lib/.build-id; do
  check "the .rpm does not claim the directory $d" bash -c "! grep -qx '$d' <<<'$rpm_files'"
done
check "rpm -qp --configfiles lists only /etc/loto.yaml" bash -c \
  "[ \"\$(rpm -qp --configfiles '$rpmfile' 2>/dev/null)\" = /etc/loto.yaml ]"
check "/etc/loto.yaml is %config(noreplace) in the .rpm" bash -c \
  "rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$rpmfile' 2>/dev/null | grep -qE '^c[a-z]*n[a-z]* /etc/loto.yaml$'"
check "the .rpm marks the license and README" bash -c \
  "rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$rpmfile' 2>/dev/null | grep -qE '^[a-z]*l[a-z]* /usr/share/doc/loto/LICENSE$' &&
   rpm -qp --qf '[%{FILEFLAGS:fflags} %{FILENAMES}\n]' '$rpmfile' 2>/dev/null | grep -qE '^[a-z]*d[a-z]* /usr/share/doc/loto/README.md$'"
check "the .rpm's version is $version" bash -c "[ \"\$(rpm -qp --qf '%{VERSION}' '$rpmfile' 2>/dev/null)\" = '$version' ]"

echo "1..$checks"
if [ "$failures" -ne 0 ]; then
  echo "# $failures of $checks checks failed"
  exit 1
fi
echo "# all $checks checks passed"
