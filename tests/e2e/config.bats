#!/usr/bin/env bats
# The configuration file: strict parsing with positions, trust checks, drop-ins,
# priority and origins (--show-config), --check-config and --list.
#
# Every broken config must give exactly one line "loto: error: FILE:LINE:COL: message"
# on stderr, exit 78, run nothing and create no lock file. Whole-file problems (missing,
# empty, too big, not a regular file, untrusted) have no position: "loto: error: " and a
# message naming the file.

# Commands given to loto are single-quoted on purpose: their shell expands them.
# shellcheck disable=SC2016

load helpers

setup() {
  common_setup
  unset LOTO_CONFIG
}

teardown() { common_teardown; }

# conf TEXT -> path of a 0600 config file under $T holding TEXT (printf format, no args)
conf() {
  local text
  # shellcheck disable=SC2059
  text="$(printf "$1")"
  write_config -n "${2:-loto.yaml}" "$text"$'\n'
}

# run_broken FILE [EXTRA LOTO ARGS...]: runs a job that must not start, on a lock path
# that must not be created.
run_broken() {
  local file="$1"
  shift
  run --separate-stderr timeout 10 "$LOTO" --config "$file" "$@" -L "$T/never.lock" -- touch "$T/ran"
}

# assert_config_error FILE POS REGEX: the last run failed as a config error in FILE at
# POS (a regex such as "2:3" or "[0-9]+:[0-9]+") with a message matching REGEX: one line
# "loto: error: FILE:LINE:COL: message" on stderr, nothing on stdout, exit 78, the
# command not run, the lock file not created.
assert_config_error() {
  local file="$1" pos="$2" regex="$3" rest
  echo "status=$status stdout=[$output] stderr=[$stderr]" >&2
  [ "$status" -eq 78 ]
  [ -z "$output" ]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == "loto: error: $file:"* ]]
  rest="${stderr#"loto: error: $file:"}"
  [[ "$rest" =~ ^$pos:\  ]]
  [[ "$rest" =~ $regex ]]
  [ ! -e "$T/ran" ]
  [ ! -e "$T/never.lock" ]
}

# assert_whole_file_error FILE REGEX: a config error about the whole file: exit 78, one
# line "loto: error: ..." naming FILE and matching REGEX, nothing run, no lock file.
assert_whole_file_error() {
  local file="$1" regex="$2"
  echo "status=$status stdout=[$output] stderr=[$stderr]" >&2
  [ "$status" -eq 78 ]
  [ -z "$output" ]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == "loto: error: "*"$file"* ]]
  [[ "$stderr" =~ $regex ]]
  [ ! -e "$T/ran" ]
  [ ! -e "$T/never.lock" ]
}

refute_match() {
  [[ "$2" != *"$1"* ]] || {
    echo "did not expect '$1' in: $2" >&2
    return 1
  }
}

# The same file through --check-config: 78 and the same message.
assert_check_fails_too() {
  local file="$1" where="$2"
  run --separate-stderr timeout 10 "$LOTO" --config "$file" --check-config
  [ "$status" -eq 78 ]
  [[ "$stderr" == "loto: error: $where: "* ]]
}

# show_config ARGS... -> $output holds the --show-config lines
show_config() {
  run --separate-stderr "$LOTO" "$@" --show-config
  echo "status=$status stdout=[$output] stderr=[$stderr]" >&2
  [ "$status" -eq 0 ]
}
has_line() {
  grep -qxF -- "$1" <<<"$output" || {
    echo "no line '$1' in:" >&2
    printf '%s\n' "$output" >&2
    return 1
  }
}

# ---------------------------------------------------------------------------------------
# Broken files: position, message, exit 78, nothing run, no lock file

@test "unknown key: position and 'did you mean'" {
  f="$(conf 'defaults:\n  timout: 5\n')"
  run_broken "$f"
  assert_config_error "$f" "2:3" "unknown key 'timout'.*did you mean 'timeout'"
  assert_check_fails_too "$f" "$f:2:3"

  f="$(conf 'lock_dri: /tmp\n' top.yaml)"
  run_broken "$f"
  assert_config_error "$f" "1:1" "unknown key 'lock_dri'.*did you mean 'lock_dir'"

  f="$(conf 'resources:\n  db:\n    wiat: true\n' res.yaml)"
  run_broken "$f"
  assert_config_error "$f" "3:5" "unknown key 'wiat'.*did you mean 'wait'"

  f="$(conf 'logging:\n  facility: lcoal3\n' fac.yaml)"
  run_broken "$f"
  assert_config_error "$f" "2:13" "lcoal3.*did you mean 'local3'"
}

@test "wrong type: a list where a duration is expected" {
  f="$(conf 'defaults:\n  timeout: [1]\n')"
  run_broken "$f"
  assert_config_error "$f" "2:12" "timeout"
}

@test "bad durations: abc, -1, .inf, empty" {
  for bad in abc -1 .inf '""' nan 1e999; do
    f="$(conf "defaults:\n  timeout: $bad\n" "d$RANDOM.yaml")"
    run_broken "$f"
    assert_config_error "$f" "2:12" "duration"
  done
  f="$(conf 'resources:\n  db:\n    timeout: 5 parsecs\n' res.yaml)"
  run_broken "$f"
  assert_config_error "$f" "3:14" "duration"
}

@test "conflict_exit_code outside 0..255" {
  f="$(conf 'defaults:\n  conflict_exit_code: 300\n')"
  run_broken "$f"
  assert_config_error "$f" "2:23" "300"
  f="$(conf 'resources:\n  db:\n    conflict_exit_code: -1\n' res.yaml)"
  run_broken "$f"
  assert_config_error "$f" "3:25" "-1"
}

@test "wrong boolean" {
  f="$(conf 'defaults:\n  wait: maybe\n')"
  run_broken "$f"
  assert_config_error "$f" "2:9" "maybe"
}

@test "duplicate key" {
  f="$(conf 'defaults:\n  wait: true\n  wait: false\n')"
  run_broken "$f"
  assert_config_error "$f" "3:3" "duplicate key 'wait'"
  f="$(conf 'lock_dir: /tmp\nlock_dir: /var/tmp\n' top.yaml)"
  run_broken "$f"
  assert_config_error "$f" "2:1" "duplicate key 'lock_dir'"
}

@test "two YAML documents, with the position of the second" {
  f="$(conf 'lock_dir: /tmp\n---\nlock_dir: /var/tmp\n')"
  run_broken "$f"
  # the contract lists "several YAML documents" among the FILE:LINE:COL errors
  [ "$status" -eq 78 ]
  [[ "$stderr" =~ ^loto:\ error:\ $f:[23]:[0-9]+:\ .*document ]] || {
    echo "expected '$f:LINE:COL: ...document...', got: $stderr" >&2
    return 1
  }
  [ ! -e "$T/ran" ]
  [ ! -e "$T/never.lock" ]
}

@test "aliases are refused" {
  f="$(conf 'lock_dir: &a /tmp\nresources:\n  db:\n    path: *a\n')"
  run_broken "$f"
  assert_config_error "$f" "4:11" "alias"
}

@test "relative paths are refused" {
  f="$(conf 'lock_dir: var/lock\n')"
  run_broken "$f"
  assert_config_error "$f" "1:11" "absolute"
  f="$(conf 'resources:\n  db:\n    path: db.lock\n' res.yaml)"
  run_broken "$f"
  assert_config_error "$f" "3:11" "absolute"
}

@test "paths with a '..' component or a control character are refused" {
  f="$(conf 'lock_dir: /tmp/../etc\n')"
  run_broken "$f"
  assert_config_error "$f" "1:11" "'\.\.'"
  f="$(conf 'resources:\n  db:\n    path: /var/lock/..\n' res.yaml)"
  run_broken "$f"
  assert_config_error "$f" "3:11" "'\.\.'"
  f="$(conf 'lock_dir: "/tmp/a\\nb"\n' nl.yaml)"
  grep -qF '"/tmp/a\nb"' "$f"
  run_broken "$f"
  assert_config_error "$f" "1:11" "control"
}

@test "tab indentation is an error with a position" {
  f="$(conf 'defaults:\n\twait: true\n')"
  run_broken "$f"
  assert_config_error "$f" "2:[0-9]+" "illegal"
}

@test "nesting 1000 deep: 'nested too deep', quickly" {
  f="$T/deep.yaml"
  (
    umask 077
    printf 'defaults: '
    printf '[%.0s' $(seq 1000)
    printf ']%.0s' $(seq 1000)
    printf '\n'
  ) >"$f"
  start="$(now_ms)"
  run_broken "$f"
  (($(now_ms) - start < 5000))
  [ "$status" -eq 78 ]
  [[ "$stderr" =~ ^loto:\ error:\ $f:1:[0-9]+:\ .*nested\ too\ deep ]]
  [ ! -e "$T/ran" ]
  [ ! -e "$T/never.lock" ]

  # block style, 1000 levels of mappings
  f="$T/deep2.yaml"
  (
    umask 077
    for i in $(seq 0 999); do printf '%*sk:\n' $((i * 2)) ''; done
  ) >"$f"
  run_broken "$f"
  [ "$status" -eq 78 ]
  [[ "$stderr" =~ ^loto:\ error:\ $f:[0-9]+:[0-9]+:\ .*nested\ too\ deep ]]
  [ ! -e "$T/ran" ]
  [ ! -e "$T/never.lock" ]
}

@test "invalid UTF-8 and NUL bytes: position of the bad byte" {
  f="$T/utf8.yaml"
  (umask 077 && printf 'lock_dir: /tmp\ndefaults:\n  wait: tr\xffue\n' >"$f")
  run_broken "$f"
  assert_config_error "$f" "3:11" "UTF-8"
  f="$T/nul.yaml"
  (umask 077 && printf 'lock_dir: /tmp\n\0\n' >"$f")
  run_broken "$f"
  assert_config_error "$f" "2:1" "NUL"
}

@test "empty file is an error; a comment-only file is valid" {
  f="$(write_config -n empty.yaml '')"
  run_broken "$f"
  assert_whole_file_error "$f" "empty"
  f="$(write_config -n blank.yaml $'\n  \n')"
  run_broken "$f"
  assert_whole_file_error "$f" "empty"

  f="$(conf '# nothing configured yet\n' comment.yaml)"
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 0 ]
}

@test "a file over 1 MiB is refused" {
  f="$T/big.yaml"
  (
    umask 077
    printf 'lock_dir: /tmp\n# '
    head -c $((1024 * 1024)) /dev/zero | tr '\0' x
    printf '\n'
  ) >"$f"
  run_broken "$f"
  assert_whole_file_error "$f" "(large|1 MiB)"
}

@test "a directory or a FIFO as --config: 78 at once" {
  mkdir -m 0700 "$T/dir.yaml"
  start="$(now_ms)"
  run_broken "$T/dir.yaml"
  (($(now_ms) - start < 3000))
  assert_whole_file_error "$T/dir.yaml" "regular file"

  mkfifo -m 0600 "$T/fifo.yaml"
  start="$(now_ms)"
  run_broken "$T/fifo.yaml"
  (($(now_ms) - start < 3000))
  assert_whole_file_error "$T/fifo.yaml" "regular file"
}

@test "trust: a config owned by another user is refused" {
  [ "$(id -u)" -eq 0 ] || skip "needs root to chown"
  id nobody >/dev/null 2>&1 || skip "no user nobody"
  f="$(conf 'lock_dir: /tmp\n')"
  chown nobody "$f"
  run_broken "$f"
  assert_whole_file_error "$f" "owned by"
}

@test "trust: a group- or world-writable config is refused" {
  for mode in 0666 0620 0602; do
    f="$(conf 'lock_dir: /tmp\n' "m$mode.yaml")"
    chmod "$mode" "$f"
    run_broken "$f"
    assert_whole_file_error "$f" "writable"
  done
  # readable by all is fine
  f="$(conf "lock_dir: $T\n" m0644.yaml)"
  chmod 0644 "$f"
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 0 ]
}

@test "a --config file that does not exist is an error" {
  run_broken "$T/missing.yaml"
  assert_whole_file_error "$T/missing.yaml" "does not exist"
}

@test "LOTO_CONFIG is honoured, and --config beats it" {
  good="$(conf "lock_dir: $T\nresources:\n  db:\n    path: $T/db.lock\n" good.yaml)"
  bad="$(conf 'defaults:\n  timout: 1\n' bad.yaml)"

  # LOTO_CONFIG names a broken file: config error
  LOTO_CONFIG="$bad" run --separate-stderr "$LOTO" -L "$T/never.lock" -- touch "$T/ran"
  [ "$status" -eq 78 ]
  [[ "$stderr" == "loto: error: $bad:2:3: "* ]]
  [ ! -e "$T/ran" ]

  # LOTO_CONFIG names a missing file: config error
  LOTO_CONFIG="$T/missing.yaml" run --separate-stderr "$LOTO" -L "$T/never.lock" -- touch "$T/ran"
  [ "$status" -eq 78 ]
  [ ! -e "$T/ran" ]
  [ ! -e "$T/never.lock" ]

  # LOTO_CONFIG names a good file: its resource works
  LOTO_CONFIG="$good" run --separate-stderr "$LOTO" -L db -- sh -c 'printf %s "$LOTO_LOCKFILE"'
  [ "$status" -eq 0 ]
  [ "$output" = "$T/db.lock" ]

  # --config wins over LOTO_CONFIG
  LOTO_CONFIG="$bad" run --separate-stderr "$LOTO" --config "$good" -L db -- sh -c 'printf %s "$LOTO_LOCKFILE"'
  [ "$status" -eq 0 ]
  [ "$output" = "$T/db.lock" ]
}

# ---------------------------------------------------------------------------------------
# Valid configurations

@test "a named resource maps to its configured path, and that file is locked" {
  f="$(conf "lock_dir: $T\nresources:\n  db:\n    path: $T/data/db.lock\n    description: the database\n")"
  mkdir "$T/data"
  run --separate-stderr "$LOTO" --config "$f" -L db -- \
    sh -c 'printf "%s %s\n" "$LOTO_RESOURCE" "$LOTO_LOCKFILE"; flock -n "$LOTO_LOCKFILE" true && echo free || echo held'
  [ "$status" -eq 0 ]
  [ "${lines[0]}" = "db $T/data/db.lock" ]
  [ "${lines[1]}" = held ]
  [ -f "$T/data/db.lock" ]
  [ ! -e "$T/loto.db" ]
}

@test "a resource without a path uses <lock_dir>/loto.NAME" {
  f="$(conf "lock_dir: $T/locks\nresources:\n  web: {}\n  backup:\n    wait: true\n")"
  mkdir "$T/locks"
  run --separate-stderr "$LOTO" --config "$f" -L web -- sh -c 'printf %s "$LOTO_LOCKFILE"'
  [ "$status" -eq 0 ]
  [ "$output" = "$T/locks/loto.web" ]
  [ -f "$T/locks/loto.web" ]
  run --separate-stderr "$LOTO" --config "$f" -L backup -- sh -c 'printf %s "$LOTO_LOCKFILE"'
  [ "$status" -eq 0 ]
  [ "$output" = "$T/locks/loto.backup" ]
}

@test "built-in cpu and net work without a config entry" {
  f="$(conf "lock_dir: $T\n")"
  for name in cpu net; do
    run --separate-stderr "$LOTO" --config "$f" -L "$name" -- sh -c 'printf %s "$LOTO_LOCKFILE"'
    [ "$status" -eq 0 ]
    [ "$output" = "$T/loto.$name" ]
    [ -f "$T/loto.$name" ]
  done
  # an unknown name is a usage error, not a config error
  run --separate-stderr "$LOTO" --config "$f" -L cpuu -- touch "$T/ran"
  [ "$status" -eq 64 ]
  [[ "$stderr" == *"cpu"* ]]
  [ ! -e "$T/ran" ]
}

@test "drop-ins: DIR/x.d/*.yaml add resources, read in name order, other files ignored" {
  mkdir -m 0700 "$T/etc"
  main="$T/etc/x.yaml"
  (umask 077 && printf 'lock_dir: %s\nresources:\n  db: {}\n' "$T" >"$main")
  mkdir -m 0700 "$T/etc/x.d"
  (
    umask 077
    printf 'defaults:\n  timeout: 7\nresources:\n  web:\n    path: %s/web.lock\n' "$T" >"$T/etc/x.d/20-web.yaml"
    printf 'defaults:\n  timeout: 3\nresources:\n  mail: {}\n' >"$T/etc/x.d/10-mail.yaml"
    printf 'resources:\n  ignored1: {}\n' >"$T/etc/x.d/30-off.yaml.disabled"
    printf 'resources:\n  ignored2: {}\n' >"$T/etc/x.d/README"
    printf 'broken: [\n' >"$T/etc/x.d/.hidden.yaml"
  )
  run --separate-stderr "$LOTO" --config "$main" --list
  echo "$output" >&2
  [ "$status" -eq 0 ]
  for name in cpu net db web mail; do
    grep -qE "^$name +" <<<"$output"
  done
  grep -qE "^web +$T/web\.lock " <<<"$output"
  grep -qE "^mail +$T/loto\.mail " <<<"$output"
  refute_match "ignored" "$output"

  # name order: 20-web.yaml is read after 10-mail.yaml, so its timeout wins
  show_config --config "$main" -L mail
  has_line "($T/etc/x.d/20-web.yaml:2) timeout = 7s"

  run --separate-stderr "$LOTO" --config "$main" -L web -- sh -c 'printf %s "$LOTO_LOCKFILE"'
  [ "$status" -eq 0 ]
  [ "$output" = "$T/web.lock" ]

  run --separate-stderr "$LOTO" --config "$main" --check-config
  [ "$status" -eq 0 ]
}

@test "drop-ins: a resource defined in the main file and a drop-in is an error naming both" {
  mkdir -m 0700 "$T/etc" "$T/etc/x.d"
  main="$T/etc/x.yaml"
  (umask 077 && printf 'lock_dir: %s\nresources:\n  web: {}\n  db: {}\n' "$T" >"$main")
  (umask 077 && printf '# the db again\nresources:\n  db:\n    wait: true\n' >"$T/etc/x.d/50-db.yaml")
  run_broken "$main"
  [ "$status" -eq 78 ]
  [ -z "$output" ]
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == "loto: error: $T/etc/x.d/50-db.yaml:3"* ]]
  [[ "$stderr" == *"'db'"* ]]
  [[ "$stderr" == *"$main:4"* ]]
  [ ! -e "$T/ran" ]
  [ ! -e "$T/never.lock" ]
}

@test "drop-ins: a broken or untrusted drop-in is a config error naming it" {
  mkdir -m 0700 "$T/etc" "$T/etc/x.d"
  main="$T/etc/x.yaml"
  (umask 077 && printf 'lock_dir: %s\n' "$T" >"$main")
  (umask 077 && printf 'defaults:\n  wiat: true\n' >"$T/etc/x.d/10-bad.yaml")
  run_broken "$main"
  assert_config_error "$T/etc/x.d/10-bad.yaml" "2:3" "did you mean 'wait'"

  printf 'defaults:\n  wait: true\n' >"$T/etc/x.d/10-bad.yaml"
  chmod 0666 "$T/etc/x.d/10-bad.yaml"
  run_broken "$main"
  assert_whole_file_error "$T/etc/x.d/10-bad.yaml" "writable"
}

@test "priority: built-in < defaults < resource < command line, shown by --show-config" {
  # built-in only
  f="$(conf "lock_dir: $T\n" empty.yaml)"
  show_config --config "$f" -L cpu
  has_line "($f:1) lock_dir = $T"
  has_line "(built-in) wait = false"
  has_line "(built-in) timeout = none"
  has_line "(built-in) conflict_exit_code = 75"
  has_line "(built-in) inherit_lock = true"
  has_line "(built-in) logging.syslog = true"
  has_line "(built-in) logging.facility = user"

  f="$(conf "lock_dir: $T\ndefaults:\n  wait: true\n  timeout: 10\n  conflict_exit_code: 3\nlogging:\n  facility: local3\nresources:\n  db:\n    timeout: 90s\n    inherit_lock: false\n")"
  # defaults: apply to every resource
  show_config --config "$f" -L cpu
  has_line "($f:3) wait = true"
  has_line "($f:4) timeout = 10s"
  has_line "($f:5) conflict_exit_code = 3"
  has_line "(built-in) inherit_lock = true"
  has_line "($f:7) logging.facility = local3"
  has_line "(built-in) lock cpu = $T/loto.cpu" || has_line "(lock_dir at $f:1) lock cpu = $T/loto.cpu"

  # the resource beats defaults:
  show_config --config "$f" -L db
  has_line "($f:3) wait = true"
  has_line "($f:10) timeout = 90s"
  has_line "($f:11) inherit_lock = false"
  has_line "($f:5) conflict_exit_code = 3"

  # the command line beats both
  show_config --config "$f" -L db -t 5 -E 9 -o
  has_line "(command line) timeout = 5s"
  has_line "(command line) conflict_exit_code = 9"
  has_line "(command line) inherit_lock = false"
  has_line "($f:3) wait = true"
}

@test "--check-config: 0 on a valid file, 78 on a broken one, nothing run" {
  f="$(conf "lock_dir: $T\nresources:\n  db: {}\n")"
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  [ ! -e "$T/loto.db" ]

  f="$(conf 'defaults:\n  timeout: abc\n' bad.yaml)"
  run --separate-stderr "$LOTO" --config "$f" --check-config
  [ "$status" -eq 78 ]
  [[ "$stderr" == "loto: error: $f:2:12: "* ]]
}

@test "--list shows every resource and whether it is free or held by which pid" {
  f="$(conf "lock_dir: $T\nresources:\n  db:\n    path: $T/db.lock\n    timeout: 3\n    description: the orders database\n  web: {}\n")"
  hold_lock "$T/db.lock"
  run --separate-stderr "$LOTO" --config "$f" --list
  echo "$output" >&2
  [ "$status" -eq 0 ]
  [ -z "$stderr" ]
  grep -qE "^NAME +LOCK +POLICY +DESCRIPTION +STATE$" <<<"$output"
  grep -qE "^db +$T/db\.lock +wait up to 3s +the orders database +held by pid $HOLDER\b" <<<"$output"
  grep -qE "^cpu +.* processor-heavy batch jobs, one at a time +free$" <<<"$output"
  grep -qE "^web +$T/loto\.web .*free$" <<<"$output"
  grep -qE "^cpu +$T/loto\.cpu .*free$" <<<"$output"
  grep -qE "^net +$T/loto\.net .*free$" <<<"$output"
  # --list creates no lock files
  [ ! -e "$T/loto.web" ]
  [ ! -e "$T/loto.cpu" ]
}

@test "resource conflict_exit_code and timeout are honoured; -E beats the resource" {
  f="$(conf "lock_dir: $T\ndefaults:\n  conflict_exit_code: 3\nresources:\n  db:\n    conflict_exit_code: 42\n  slow:\n    timeout: 0.3\n  other: {}\n")"
  hold_lock "$T/loto.db"
  run --separate-stderr "$LOTO" --config "$f" -L db -- touch "$T/ran"
  [ "$status" -eq 42 ]
  [ ! -e "$T/ran" ]
  run --separate-stderr "$LOTO" --config "$f" -E 9 -L db -- touch "$T/ran"
  [ "$status" -eq 9 ]
  # a configured code also applies with -q
  run --separate-stderr "$LOTO" --config "$f" -q -L db -- touch "$T/ran"
  [ "$status" -eq 42 ]
  [ -z "$stderr" ]
  [ ! -e "$T/ran" ]

  hold_lock "$T/loto.other" other
  run --separate-stderr "$LOTO" --config "$f" -L other -- touch "$T/ran"
  [ "$status" -eq 3 ]

  # the resource's timeout: waits about 0.3 s, then gives up with the defaults' code
  hold_lock "$T/loto.slow" slow
  start="$(now_ms)"
  run --separate-stderr "$LOTO" --config "$f" -L slow -- touch "$T/ran"
  elapsed=$(($(now_ms) - start))
  echo "elapsed=${elapsed}ms" >&2
  [ "$status" -eq 3 ]
  [ ! -e "$T/ran" ]
  ((elapsed >= 280 && elapsed < 2000))

  # once the holder is gone, the command runs
  release_lock
  wait_until 5 lock_is_free "$T/loto.slow"
  run --separate-stderr "$LOTO" --config "$f" -L slow -- touch "$T/ran"
  [ "$status" -eq 0 ]
  [ -e "$T/ran" ]
}

@test "the shipped etc/loto.yaml and the annotated example are valid and mean the same" {
  local root="$_helpers_dir/../.."
  local name settings=()
  for name in loto loto.example; do
    cp "$root/etc/$name.yaml" "$T/$name.yaml"
    chmod 0644 "$T/$name.yaml"
    run --separate-stderr "$LOTO" --config "$T/$name.yaml" --check-config
    [ "$status" -eq 0 ]
    [[ "$output" == "configuration OK: $T/$name.yaml (2 resources)" ]]
    # every effective setting of each resource, without its origin
    run --separate-stderr "$LOTO" --config "$T/$name.yaml" --show-config -L cpu -L net
    [ "$status" -eq 0 ]
    settings+=("$(sed 's/^([^)]*) //' <<<"$output")")
    # and the same resources, policies and descriptions, wherever they were defined
    run --separate-stderr "$LOTO" --config "$T/$name.yaml" --list
    [ "$status" -eq 0 ]
    settings+=("$output")
  done
  printf '%s\n' "shipped:" "${settings[0]}" "${settings[1]}" "example:" "${settings[2]}" "${settings[3]}"
  [ "${settings[0]}" = "${settings[2]}" ]
  [ "${settings[1]}" = "${settings[3]}" ]
  [[ "${settings[1]}" == *"processor-heavy batch jobs"* ]]
  [[ "${settings[0]}" == *"lock cpu = /var/lock/loto.cpu"* ]]
  # the shipped file stays short: it is parsed on every call
  (($(wc -c <"$root/etc/loto.yaml") <= 512))
}
