# Helpers for the adversarial end-to-end tests (tests/e2e/adversarial_*.bats).
#
# Load after helpers.bash:   load helpers; load adversarial_helpers
#
# The threat model: loto runs as root; the attacker is the unprivileged user `nobody`, who
# can write the shared, sticky lock directory $SHARED (mode 1777, like /run/lock) and
# nothing else. Files the attacker would like loto to create, open or change live in
# $VICTIM (root-owned, 0755), a separate folder inside the test's own $T.
#
# What you get (on top of helpers.bash):
#   adv_setup / adv_teardown   common_setup + the layout below / restore sysctls + common
#   $SHARED    $T/shared, root-owned 1777: the configured lock_dir
#   $VICTIM    $T/victim, root-owned 0755, holding `secret` (0640) and `data` (0644)
#   $CFG       lock_dir: $SHARED, syslog off (root-owned 0644, so `nobody` can read it)
#   run_loto [-N] ARGS...      `run [-N] --separate-stderr timeout -k 1 10 loto --config $CFG ARGS`
#   assert_status N            the last run's status is N (prints the run on failure)
#   assert_error_line TEXT...  stderr is exactly one line "loto: error: ..." holding each TEXT
#   assert_notice_line TEXT... stderr is exactly one line "loto: ..." holding each TEXT
#   assert_not_ran [MARKER]    the command's marker file ($T/ran) does not exist
#   snap_save NAME PATH...     records type, size, mode, owner, inode, mtime, ctime, link
#                              target and sha256 of everything under PATH...
#   snap_check NAME            fails (showing the diff) if any of that changed
#   never_opened_trace FILE NAME...  with strace: FILE (a trace) shows no successful
#                              open of a path ending in any NAME
#   protections_set S R F H    sets fs.protected_{symlinks,regular,fifos,hardlinks} ("-"
#                              keeps one); skips the test if they cannot be written; the
#                              values the machine had are restored by adv_teardown
#   protections_try S R F H    the same, but returns 1 instead of skipping
#   $PROTECTIONS               "symlinks/regular/fifos/hardlinks" as currently set
#   fd_report OUT              a command for loto to run: writes "FD TARGET" per open fd
#   exec_clean CMD...          runs CMD with every fd above 2 closed (bats keeps some open)

# $status, $output, $stderr come from bats' run; scripts in single quotes are on purpose;
# PROTECTIONS and FD_REPORT_PY are for the test files.
# shellcheck disable=SC2016,SC2154,SC2034,SC2089,SC2090

SHARED=""
VICTIM=""

adv_setup() {
  common_setup
  [[ "$(id -u)" -eq 0 ]] || skip "the adversarial tests run loto as root"
  id nobody >/dev/null 2>&1 || skip "no user nobody"
  command -v setpriv >/dev/null || skip "setpriv (util-linux) is not installed"
  make_traversable "$T"
  SHARED="$T/shared"
  VICTIM="$T/victim"
  mkdir "$SHARED" "$VICTIM"
  chmod 1777 "$SHARED"
  chmod 0755 "$VICTIM"
  printf 'root:$6$not-a-real-hash:19000:0:99999:7:::\n' >"$VICTIM/secret"
  chmod 0640 "$VICTIM/secret"
  printf 'keep me exactly\n' >"$VICTIM/data"
  chmod 0644 "$VICTIM/data"
  # back-date them, so that any write would show in the mtime
  touch -d '2001-02-03 04:05:06' "$VICTIM/secret" "$VICTIM/data"
  printf 'lock_dir: %s\nlogging:\n  syslog: false\n' "$SHARED" >"$T/loto.yaml"
  chmod 0644 "$T/loto.yaml"
  CFG="$T/loto.yaml"
  export SHARED VICTIM CFG
  PROTECTIONS="$(_protections_now)"
}

adv_teardown() {
  _protections_restore
  common_teardown
}

# --- running loto ------------------------------------------------------------------------

run_loto() {
  local expect=()
  if [[ "${1:-}" =~ ^-[0-9]+$ ]]; then
    expect=("$1") # run -N: the status N is expected (no BW01 warning for 127)
    shift
  fi
  run "${expect[@]}" --separate-stderr timeout -k 1 10 "$LOTO" --config "$CFG" "$@"
}

_show_run() {
  echo "status=$status" >&2
  echo "stdout=[${output:-}]" >&2
  echo "stderr=[${stderr:-}]" >&2
}

assert_status() {
  if [[ "$status" != "$1" ]]; then
    echo "expected status $1" >&2
    _show_run
    return 1
  fi
}

_assert_one_line() {
  local prefix="$1" text
  shift
  if [[ -z "${stderr:-}" || "$stderr" == *$'\n'* || "$stderr" != "$prefix"* ]]; then
    echo "expected exactly one stderr line starting with '$prefix'" >&2
    _show_run
    return 1
  fi
  for text in "$@"; do
    if [[ "$stderr" != *"$text"* ]]; then
      echo "expected '$text' in the message" >&2
      _show_run
      return 1
    fi
  done
}
assert_error_line() { _assert_one_line "loto: error: " "$@"; }
assert_notice_line() { _assert_one_line "loto: " "$@"; }

assert_not_ran() {
  local marker="${1:-$T/ran}"
  if [[ -e "$marker" ]]; then
    echo "the command ran: $marker exists" >&2
    return 1
  fi
}

# --- nothing outside changed -------------------------------------------------------------

_snap() {
  local p
  for p in "$@"; do
    [[ -e "$p" || -L "$p" ]] || {
      echo "absent $p"
      continue
    }
    find "$p" -printf '%p %y %s %m %U:%G ino=%i m=%T@ c=%C@ ->%l\n'
    find "$p" -type f -exec sha256sum {} +
  done | LC_ALL=C sort
}

snap_save() {
  local name="$1"
  shift
  printf '%s\n' "$@" >"$T/.snap.$name.paths"
  _snap "$@" >"$T/.snap.$name"
}

snap_check() {
  local name="$1" paths=()
  mapfile -t paths <"$T/.snap.$name.paths"
  _snap "${paths[@]}" >"$T/.snap.$name.now"
  if ! diff -u "$T/.snap.$name" "$T/.snap.$name.now" >&2; then
    echo "files outside the lock directory were created or changed (above)" >&2
    return 1
  fi
}

# never_opened_trace TRACE NAME...: in an `strace -f -e trace=open,openat,openat2` log, no
# open of a path ending in NAME returned a descriptor.
never_opened_trace() {
  local trace="$1" name bad
  shift
  for name in "$@"; do
    bad="$(grep -E "open(at2?)?\(.*\"([^\"]*/)?${name//./\\.}\".*\) = [0-9]+" "$trace" || true)"
    if [[ -n "$bad" ]]; then
      echo "loto opened $name:" >&2
      echo "$bad" >&2
      return 1
    fi
  done
}

# --- kernel protections ------------------------------------------------------------------

_PROT_KEYS=(fs.protected_symlinks fs.protected_regular fs.protected_fifos fs.protected_hardlinks)

_protections_now() {
  local k v out=()
  for k in "${_PROT_KEYS[@]}"; do
    v="$(sysctl -n "$k" 2>/dev/null)" || v="?"
    out+=("$v")
  done
  local IFS=/
  echo "${out[*]}"
}

# Other runs of these tests (a parallel ctest, another checkout) may change the same
# machine-wide settings: a flock on /proc/sys/fs/protected_symlinks, held by a background
# flock(1) (so that no process of the test inherits it), serialises them, from saving
# the original values until they are restored.
_PROT_HOLDER=""
_protections_lock() {
  [[ -z "$_PROT_HOLDER" ]] || return 0
  rm -f "$T/.protected.locked"
  setsid flock -w 120 /proc/sys/fs/protected_symlinks \
    sh -c 'touch "$1" && exec sleep 600' sh "$T/.protected.locked" </dev/null >/dev/null 2>&1 3>&- &
  _PROT_HOLDER=$!
  wait_for_file "$T/.protected.locked" 120
}
_protections_unlock() {
  [[ -n "$_PROT_HOLDER" ]] || return 0
  kill -TERM -- "-$_PROT_HOLDER" 2>/dev/null || kill -TERM "$_PROT_HOLDER" 2>/dev/null || true
  wait "$_PROT_HOLDER" 2>/dev/null || true
  _PROT_HOLDER=""
}

# protections_try S R F H ("-" keeps a value): fails (values restored) if any cannot be set.
protections_try() {
  local want=("$@") i
  _protections_lock || return 1
  if [[ ! -e "$T/.protected.orig" ]]; then
    _protections_now >"$T/.protected.orig"
  fi
  for i in 0 1 2 3; do
    [[ "${want[$i]}" != - ]] || continue
    if ! sysctl -q -w "${_PROT_KEYS[$i]}=${want[$i]}" >/dev/null 2>&1; then
      echo "cannot set ${_PROT_KEYS[$i]}=${want[$i]}" >&2
      _protections_restore
      return 1
    fi
  done
  PROTECTIONS="$(_protections_now)"
}

# protections_set S R F H: as protections_try, but skips the test when sysctl is read-only.
protections_set() {
  protections_try "$@" || skip "cannot write fs.protected_* here (read-only /proc/sys?)"
}

_protections_restore() {
  if [[ -n "${T:-}" && -e "$T/.protected.orig" ]]; then
    local orig i vals
    orig="$(cat "$T/.protected.orig")"
    IFS=/ read -r -a vals <<<"$orig"
    for i in 0 1 2 3; do
      [[ "${vals[$i]:-?}" != "?" ]] || continue
      sysctl -q -w "${_PROT_KEYS[$i]}=${vals[$i]}" >/dev/null 2>&1 || true
    done
    rm -f "$T/.protected.orig"
  fi
  _protections_unlock
}

# --- descriptors -------------------------------------------------------------------------

# A command for loto to run: writes "FD TARGET" for every descriptor it has, to OUT.
# (python lists /proc/self/fd before it opens OUT, so OUT is not in the list.)
FD_REPORT_PY='import os, sys
fds = sorted(int(x) for x in os.listdir("/proc/self/fd"))
lines = []
for fd in fds:
    try:
        lines.append("%d %s" % (fd, os.readlink("/proc/self/fd/%d" % fd)))
    except OSError:
        pass  # the directory listing itself, closed again
with open(sys.argv[1], "w") as f:
    f.write("\n".join(lines) + "\n")'
export FD_REPORT_PY

# exec_clean CMD...: CMD with every descriptor above 2 closed.
exec_clean() {
  "$PY" -c 'import os, sys
os.closerange(3, 65536)
os.execvp(sys.argv[1], sys.argv[1:])' "$@"
}
