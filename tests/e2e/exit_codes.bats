#!/usr/bin/env bats
# Every row of the exit-status table in the "loto core" issue.

load helpers

# expect_loto_fails EXPECTED ARGS...: runs lotoc with separate stdout/stderr, asserts the
# status, that stdout is empty (loto never writes there) and that the command never ran.
expect_loto_fails() {
  local expected="$1"
  shift
  # run -127 tells bats that 127 is expected (no BW01 warning).
  local -a check=()
  [[ "$expected" != 127 ]] || check=(-127)
  run "${check[@]}" --separate-stderr lotoc "$@"
  echo "args: $* | status: $status | stdout: $output | stderr: $stderr"
  [ "$status" -eq "$expected" ]
  [ -z "$output" ]
  [ ! -e "$T/ran" ]
}

@test "command status 0..255 passes through exactly" {
  # four loops in parallel (each on its own lock) to keep this fast
  local part i pids=()
  for part in 0 1 2 3; do
    (
      for ((i = part; i < 256; i += 4)); do
        rc=0
        "$LOTO" --config "$CFG" -L "$T/l$part" sh -c "exit $i" || rc=$?
        echo "$i $rc"
      done >"$T/codes.$part"
    ) 3>&- &
    pids+=($!)
  done
  for i in "${pids[@]}"; do wait "$i"; done
  run awk '$1 != $2 { print "status " $1 " came back as " $2 } END { print NR " codes" }' "$T"/codes.*
  echo "$output"
  [ "$output" = "256 codes" ]
}

@test "command killed by signal N gives 128+N" {
  local sig num rc
  for sig in HUP INT QUIT ABRT KILL USR1 SEGV USR2 PIPE TERM; do
    num=$(kill -l "$sig")
    rc=0
    # ulimit -c 0: no core files from ABRT/QUIT/SEGV.
    "$LOTO" --config "$CFG" -L "$T/l" sh -c "ulimit -c 0; kill -$sig \$\$; sleep 5" || rc=$?
    echo "$sig: $rc"
    [ "$rc" -eq $((128 + num)) ]
  done
}

@test "busy lock: 75, stdout empty, message names the lock and the holder" {
  hold_lock "$T/l"
  expect_loto_fails 75 -L "$T/l" sh -c 'touch "$T/ran"'
  [[ "$stderr" == *"$T/l"* ]]
  [[ "$stderr" =~ pid\ $HOLDER([^0-9]|$) ]]
  [[ "$stderr" == *flock* ]]
}

@test "busy named resource: message names the resource and its lock path" {
  hold_lock "$T/loto.cpu"
  expect_loto_fails 75 -L cpu sh -c 'touch "$T/ran"'
  [[ "$stderr" == *"'cpu'"* ]]
  [[ "$stderr" == *"$T/loto.cpu"* ]]
}

@test "-t expired: 75" {
  hold_lock "$T/l"
  expect_loto_fails 75 -t 0.1 -L "$T/l" sh -c 'touch "$T/ran"'
  [ -n "$stderr" ]
}

@test "-E N / --conflict-exit-code N sets the busy status" {
  hold_lock "$T/l"
  expect_loto_fails 3 -E 3 -L "$T/l" sh -c 'touch "$T/ran"'
  expect_loto_fails 0 -E 0 -L "$T/l" sh -c 'touch "$T/ran"'
  expect_loto_fails 255 --conflict-exit-code 255 -L "$T/l" sh -c 'touch "$T/ran"'
  expect_loto_fails 42 --conflict-exit-code=42 -L "$T/l" sh -c 'touch "$T/ran"'
  expect_loto_fails 9 -E 9 -t 0.05 -L "$T/l" sh -c 'touch "$T/ran"'
}

@test "-E does not change the status of a command that ran" {
  run lotoc -E 3 -L "$T/l" sh -c 'exit 75'
  [ "$status" -eq 75 ]
  run lotoc -E 3 -L "$T/l" true
  [ "$status" -eq 0 ]
}

@test "-q with a busy lock: exit 0, nothing on stdout or stderr" {
  hold_lock "$T/l"
  expect_loto_fails 0 -q -L "$T/l" sh -c 'touch "$T/ran"'
  [ -z "$stderr" ]
  expect_loto_fails 0 -q -t 0.05 -L "$T/l" sh -c 'touch "$T/ran"'
  [ -z "$stderr" ]
}

@test "-q with -E 3: busy exits 3" {
  hold_lock "$T/l"
  expect_loto_fails 3 -q -E 3 -L "$T/l" sh -c 'touch "$T/ran"'
  [ -z "$stderr" ]
}

@test "-q with a conflict_exit_code from the config: busy exits that code" {
  CFG="$(write_config "$(base_config)
defaults:
  conflict_exit_code: 5
")"
  hold_lock "$T/l"
  expect_loto_fails 5 -q -L "$T/l" sh -c 'touch "$T/ran"'
}

@test "usage errors exit 64 before any file is touched" {
  local -a cases=(
    "--no-such-option"
    "-Z"
    "-t abc"
    "-t -1"
    "-t inf"
    "-t nan"
    "-t="
    "-t 5x"
    "-t 99999999999999999999"
    "-E 300"
    "-E -1"
    "-E abc"
  )
  local c
  for c in "${cases[@]}"; do
    # shellcheck disable=SC2086
    expect_loto_fails 64 $c -L "$T/l" sh -c 'touch "$T/ran"'
    [ -n "$stderr" ]
    [ ! -e "$T/l" ]
  done
  # an empty timeout as a separate word
  expect_loto_fails 64 -t '' -L "$T/l" sh -c 'touch "$T/ran"'
  [ ! -e "$T/l" ]
  expect_loto_fails 64 --timeout= -L "$T/l" sh -c 'touch "$T/ran"'
  [ ! -e "$T/l" ]
}

@test "usage error: unknown resource lists known names and suggests the closest" {
  expect_loto_fails 64 -L cpx sh -c 'touch "$T/ran"'
  [[ "$stderr" == *"did you mean 'cpu'"* ]]
  [[ "$stderr" == *cpu*net* ]]
  [ ! -e "$T/loto.cpx" ]
}

@test "usage error: no command, no -L, relative lock path, bad name" {
  expect_loto_fails 64 -L "$T/l"
  [[ "$stderr" == *"no command"* ]]
  expect_loto_fails 64 -L "$T/l" --
  expect_loto_fails 64 sh -c 'touch "$T/ran"'
  [[ "$stderr" == *"no lock"* ]]
  expect_loto_fails 64 -L a/b sh -c 'touch "$T/ran"'
  expect_loto_fails 64 -L ./x sh -c 'touch "$T/ran"'
  expect_loto_fails 64 -L 'bad name' sh -c 'touch "$T/ran"'
  expect_loto_fails 64 -L "$(printf 'a%.0s' $(seq 65))" sh -c 'touch "$T/ran"'
  [ ! -e "$T/l" ]
}

@test "cannot create or open the lock file: 73" {
  expect_loto_fails 73 -L "$T/no/such/dir/l" sh -c 'touch "$T/ran"'
  [[ "$stderr" == *"$T/no/such/dir/l"* ]]
  # a path through a regular file
  touch "$T/file"
  expect_loto_fails 73 -L "$T/file/l" sh -c 'touch "$T/ran"'
}

# Each unsafe kind: 77, a one-line reason, command not run, target untouched.
@test "unsafe: symlink to a regular file is refused (77)" {
  echo data >"$T/target"
  ln -s "$T/target" "$T/link"
  expect_loto_fails 77 -L "$T/link" sh -c 'touch "$T/ran"'
  [ "$(printf '%s\n' "$stderr" | wc -l)" -eq 1 ]
  [[ "$stderr" == *"symbolic link"* ]]
  [ "$(cat "$T/target")" = data ]
  lock_is_free "$T/target"
}

@test "unsafe: dangling symlink is refused and its target is not created" {
  ln -s "$T/nowhere" "$T/dangling"
  expect_loto_fails 77 -L "$T/dangling" sh -c 'touch "$T/ran"'
  [ ! -e "$T/nowhere" ]
}

@test "unsafe: FIFO is refused quickly (no blocking open)" {
  mkfifo "$T/fifo"
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr timeout 5 "$LOTO" --config "$CFG" -L "$T/fifo" sh -c 'touch "$T/ran"'
  t1=$(now_ms)
  echo "status $status in $((t1 - t0)) ms: $stderr"
  [ "$status" -eq 77 ]
  [ $((t1 - t0)) -lt 1000 ]
  [[ "$stderr" == *FIFO* ]]
  [ ! -e "$T/ran" ]
}

@test "unsafe: directory is refused" {
  mkdir "$T/dir"
  expect_loto_fails 77 -L "$T/dir" sh -c 'touch "$T/ran"'
  [[ "$stderr" == *directory* ]]
}

@test "unsafe: hard-linked file is refused" {
  echo data >"$T/orig"
  ln "$T/orig" "$T/hard"
  expect_loto_fails 77 -L "$T/hard" sh -c 'touch "$T/ran"'
  [[ "$stderr" == *"hard link"* ]]
  expect_loto_fails 77 -L "$T/orig" sh -c 'touch "$T/ran"'
  [ "$(cat "$T/orig")" = data ]
}

@test "unsafe: socket is refused" {
  "$PY" -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$T/sock"
  [ -S "$T/sock" ]
  expect_loto_fails 77 -L "$T/sock" sh -c 'touch "$T/ran"'
  [[ "$stderr" == *socket* ]]
}

@test "unsafe: character device is refused" {
  expect_loto_fails 77 -L /dev/null sh -c 'touch "$T/ran"'
}

@test "command not found: 127" {
  expect_loto_fails 127 -L "$T/l" loto-no-such-command-xyz
  [[ "$stderr" == *loto-no-such-command-xyz* ]]
  expect_loto_fails 127 -L "$T/l" "$T/no-such-file"
  # an empty command word names nothing (execvp would try each PATH directory itself)
  expect_loto_fails 127 -L "$T/l" ''
  [[ "$stderr" == "loto: error: command not found: '' (check PATH)" ]]
  # the lock was released
  lock_is_free "$T/l"
}

@test "command not executable: 126 (0644 file, directory)" {
  printf '#!/bin/sh\ntouch "$T/ran"\n' >"$T/script"
  chmod 0644 "$T/script"
  expect_loto_fails 126 -L "$T/l" "$T/script"
  mkdir "$T/adir"
  expect_loto_fails 126 -L "$T/l" "$T/adir"
  lock_is_free "$T/l"
}

@test "PATH search as execvp: a non-executable match is passed over; no /bin/sh fallback" {
  mkdir "$T/bin1" "$T/bin2"
  printf '#!/bin/sh\ntouch "$T/wrong"\n' >"$T/bin1/loto-probe"
  chmod 0644 "$T/bin1/loto-probe"
  printf '#!/bin/sh\ntouch "$T/right"\n' >"$T/bin2/loto-probe"
  chmod 0755 "$T/bin2/loto-probe"
  PATH="$T/bin1:$T/bin2:$PATH" lotoc -L "$T/l" loto-probe
  [ -e "$T/right" ]
  [ ! -e "$T/wrong" ]
  # only the file without execute permission on PATH: 126
  PATH="$T/bin1:$PATH" expect_loto_fails 126 -L "$T/l" loto-probe
  [[ "$stderr" == *"Permission denied"* ]]
  # an executable text file with no #! line is refused, not run by /bin/sh as execvp would
  printf 'touch "$T/ran"\n' >"$T/bin2/loto-no-hashbang"
  chmod 0755 "$T/bin2/loto-no-hashbang"
  PATH="$T/bin2:$PATH" expect_loto_fails 126 -L "$T/l" loto-no-hashbang
  [[ "$stderr" == *"Exec format error"* ]]
  # an empty PATH entry is the current directory
  rm "$T/right"
  (cd "$T/bin2" && PATH=":/usr/bin:/bin" "$LOTO" --config "$CFG" -L "$T/l" loto-probe)
  [ -e "$T/right" ]
  # PATH given twice in the environment: the first one counts, as for getenv() and execvp
  rm "$T/right"
  "$PY" -c 'import ctypes, os, sys
strings = lambda words: (ctypes.c_char_p * (len(words) + 1))(*[w.encode() for w in words], None)
env = ["T=" + os.environ["T"], "PATH=" + os.environ["T"] + "/bin2", "PATH=/usr/bin:/bin"]
ctypes.CDLL(None).execve(sys.argv[1].encode(), strings(sys.argv[1:]), strings(env))
sys.exit("execve failed")' "$LOTO" --config "$CFG" -L "$T/l" loto-probe
  [ -e "$T/right" ]
  lock_is_free "$T/l"
}

@test "config error: 78, nothing run, no lock file created" {
  CFG="$(write_config "$(base_config)
no_such_key: 1
")"
  expect_loto_fails 78 -L cpu sh -c 'touch "$T/ran"'
  [[ "$stderr" == *"$CFG:"* ]]
  [ ! -e "$T/loto.cpu" ]
}
