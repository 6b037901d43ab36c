#!/usr/bin/env bats
# Command-line forms, argument passing, stdout discipline, -q and -v.

load helpers

# The command run under loto: reports the lock path loto passed and whether that lock is
# held right now (a fresh flock(1) -n on the path conflicts with loto's lock: 99).
probe_cmd=(sh -c 'printf "%s " "$LOTO_LOCKFILE"; flock -n -E 99 "$LOTO_LOCKFILE" true; echo $?')

@test "-L VALUE, -L=VALUE, -LVALUE, --lock VALUE, --lock=VALUE all lock the path" {
  local -a forms=(
    "-L|$T/a"
    "-L=$T/b"
    "-L$T/c"
    "--lock|$T/d"
    "--lock=$T/e"
  )
  local form expected letter
  for form in "${forms[@]}"; do
    letter="${form: -1}"
    expected="$T/$letter"
    IFS='|' read -r -a words <<<"$form"
    run --separate-stderr lotoc "${words[@]}" "${probe_cmd[@]}"
    echo "$form -> $status: $output / $stderr"
    [ "$status" -eq 0 ]
    [ "$output" = "$expected 99" ]
    [ -f "$expected" ]
    lock_is_free "$expected"
  done
  # -L=x must not lock a file whose name starts with '='
  [ ! -e "$T/=b" ]
  not grep -q "^=" <(ls "$T")
}

@test "-L with a resource name: -Lcpu, -L=cpu, --lock=cpu" {
  local form
  for form in -Lcpu -L=cpu --lock=cpu; do
    run --separate-stderr lotoc "$form" "${probe_cmd[@]}"
    echo "$form -> $status: $output / $stderr"
    [ "$status" -eq 0 ]
    [ "$output" = "$T/loto.cpu 99" ]
  done
}

@test "-t=0.5 and -t 250ms and --timeout=250ms are accepted and used" {
  run lotoc -t=0.5 -L "$T/l" true
  [ "$status" -eq 0 ]
  run lotoc -t 250ms -L "$T/l" true
  [ "$status" -eq 0 ]
  run lotoc --timeout=250ms -L "$T/l" true
  [ "$status" -eq 0 ]
  run lotoc -t0.1 -L "$T/l" true
  [ "$status" -eq 0 ]

  hold_lock "$T/l"
  local t0 t1
  t0=$(now_ms)
  run lotoc -q -E 9 -t=0.5 -L "$T/l" true
  t1=$(now_ms)
  echo "-t=0.5: status $status after $((t1 - t0)) ms"
  [ "$status" -eq 9 ]
  ((t1 - t0 >= 495 && t1 - t0 <= 800))

  t0=$(now_ms)
  run lotoc -q -E 9 -t 250ms -L "$T/l" true
  t1=$(now_ms)
  echo "-t 250ms: status $status after $((t1 - t0)) ms"
  [ "$status" -eq 9 ]
  ((t1 - t0 >= 245 && t1 - t0 <= 550))
}

@test "clustered -wL=PATH waits for the lock" {
  hold_lock "$T/l"
  spawn -n w lotoc -wL="$T/l" "${probe_cmd[@]}"
  wait_for_waiters "$T/l" 1
  not proc_gone "$SPAWNED"
  release_lock
  wait_exit "$SPAWNED" 5
  cat "$T/w.err"
  [ "$STATUS" -eq 0 ]
  [ "$(cat "$T/w.out")" = "$T/l 99" ]
}

@test "clustered -qE3, -wE3 -t0.1 and -qwt0.1 forms" {
  hold_lock "$T/l"
  run --separate-stderr lotoc -qE3 -L "$T/l" true
  [ "$status" -eq 3 ]
  [ -z "$stderr" ]
  # -w and -t=0.1 both count: the busy code comes after the timeout, not at once
  local t0 t1
  t0=$(now_ms)
  run --separate-stderr lotoc -wE3 -t0.1 -L "$T/l" true
  t1=$(now_ms)
  echo "-wE3 -t0.1: status $status after $((t1 - t0)) ms"
  [ "$status" -eq 3 ]
  ((t1 - t0 >= 95 && t1 - t0 <= 600))
  # the cluster -qwt0.1 waits too before -q turns the busy lock into 0
  t0=$(now_ms)
  run --separate-stderr lotoc -qwt0.1 -L "$T/l" true
  t1=$(now_ms)
  [ "$status" -eq 0 ]
  [ -z "$stderr$output" ]
  ((t1 - t0 >= 95 && t1 - t0 <= 600))
}

@test "options stop at the first command word: loto -L x echo -v x" {
  run --separate-stderr lotoc -L "$T/l" echo -v x
  [ "$status" -eq 0 ]
  [ "$output" = "-v x" ]
  [ -z "$stderr" ]
  run --separate-stderr lotoc -L "$T/l" printf '[%s]' -L -t 5 -w -- -q
  [ "$status" -eq 0 ]
  [ "$output" = "[-L][-t][5][-w][--][-q]" ]
}

@test "after -- the command's arguments are untouched: loto -L x -- ls -- --y" {
  run --separate-stderr lotoc -L "$T/l" -- printf '[%s]' -- --y -L
  [ "$status" -eq 0 ]
  [ "$output" = "[--][--y][-L]" ]
  # ls got '--' then '--y' as a file name (not an option): it cannot find it.
  run --separate-stderr lotoc -L "$T/l" -- ls -- --y
  echo "$status: $output / $stderr"
  [ "$status" -eq 2 ]
  [[ "$stderr" == *"'--y'"* ]]
  [[ "$stderr" != *"unrecognized option"* ]]
  # a command that starts with a dash after --
  run -127 --separate-stderr lotoc -L "$T/l" -- -notacommand
}

@test "no shell is used: arguments with spaces and metacharacters reach the command as is" {
  run --separate-stderr lotoc -L "$T/l" printf '[%s]' 'a b' '$HOME' '*' ';' '' "'"
  [ "$status" -eq 0 ]
  [ "$output" = "[a b][\$HOME][*][;][][']" ]
}

@test "the command is found on PATH" {
  mkdir "$T/bin"
  printf '#!/bin/sh\necho "mine $*"\n' >"$T/bin/loto-test-cmd"
  chmod 0755 "$T/bin/loto-test-cmd"
  PATH="$T/bin:$PATH" run --separate-stderr lotoc -L "$T/l" loto-test-cmd 1 2
  [ "$status" -eq 0 ]
  [ "$output" = "mine 1 2" ]
}

@test "--help and -h exit 0 and print usage on stdout only" {
  local opt
  for opt in --help -h; do
    run --separate-stderr loto "$opt"
    [ "$status" -eq 0 ]
    [[ "$output" == *-L* ]]
    [[ "$output" == *--lock* ]]
    [[ "$output" == *--timeout* ]]
    [ -z "$stderr" ]
  done
}

@test "-V and --version print the version on stdout" {
  run --separate-stderr loto -V
  [ "$status" -eq 0 ]
  [[ "$output" =~ ^loto\ [0-9]+\.[0-9]+ ]]
  [ -z "$stderr" ]
  local v="$output"
  run --separate-stderr loto --version
  [ "$status" -eq 0 ]
  [ "$output" = "$v" ]
}

@test "loto never writes to stdout: busy, error, verbose and quiet runs" {
  hold_lock "$T/busy"
  run --separate-stderr lotoc -L "$T/busy" true
  [ "$status" -eq 75 ]
  [ -z "$output" ]
  [ -n "$stderr" ]
  run --separate-stderr lotoc -v -t 0.05 -L "$T/busy" true
  [ "$status" -eq 75 ]
  [ -z "$output" ]
  run --separate-stderr lotoc -vv -L "$T/l" true
  [ "$status" -eq 0 ]
  [ -z "$output" ]
  [ -n "$stderr" ]
  run --separate-stderr lotoc -L cpx true
  [ "$status" -eq 64 ]
  [ -z "$output" ]
  run --separate-stderr lotoc -L "$T/l" sh -c 'exit 4'
  [ "$status" -eq 4 ]
  [ -z "$output" ]
  [ -z "$stderr" ]
}

@test "-v: play-by-play on stderr (acquired, started pid, exit status); stdout is the command's" {
  run --separate-stderr lotoc -v -L "$T/l" sh -c 'echo "out $$"; exit 3'
  echo "stdout: $output"
  echo "stderr: $stderr"
  [ "$status" -eq 3 ]
  [[ "$output" =~ ^out\ ([0-9]+)$ ]]
  local pid="${BASH_REMATCH[1]}"
  [[ "$stderr" == *acquired*"$T/l"* ]]
  [[ "$stderr" == *"started pid $pid"* ]]
  [[ "$stderr" =~ exited.*status\ 3 ]]
  [[ "$stderr" =~ held\ for\ [0-9]+ ]]
}

@test "-v while waiting reports the wait and the holder" {
  hold_lock "$T/l"
  spawn -n w lotoc -v -w -L "$T/l" true
  wait_for_waiters "$T/l" 1
  release_lock
  wait_exit "$SPAWNED" 5
  cat "$T/w.err"
  [ "$STATUS" -eq 0 ]
  grep -q "waiting" "$T/w.err"
  grep -qE "pid $HOLDER([^0-9]|$)" "$T/w.err"
  grep -Eq "acquired.* after [0-9]+ ms" "$T/w.err"
  [ ! -s "$T/w.out" ]
}

@test "-v acquired line: one lock by its path and several by their names" {
  run --separate-stderr lotoc -v -L "$T/l" true
  [ "$status" -eq 0 ]
  [[ "$stderr" =~ "acquired lock '$T/l' after "[0-9]+" ms" ]]
  run --separate-stderr lotoc -v -L "$T/a" -L "$T/b" true
  [ "$status" -eq 0 ]
  [[ "$stderr" =~ "acquired $T/a,$T/b after "[0-9]+" ms" ]]
}

# CONTRACT (Command line): "-vv adds debug detail". Written to the contract.
@test "-vv prints more than -v (debug detail)" {
  run --separate-stderr lotoc -v -L "$T/l" true
  [ "$status" -eq 0 ]
  local v_lines
  v_lines=$(printf '%s\n' "$stderr" | wc -l)
  run --separate-stderr lotoc -vv -L "$T/l" true
  [ "$status" -eq 0 ]
  local vv_lines
  vv_lines=$(printf '%s\n' "$stderr" | wc -l)
  echo "-v: $v_lines lines, -vv: $vv_lines lines"
  echo "$stderr"
  ((vv_lines > v_lines))
  # the detail: where the settings came from, the policy, and what is locked before trying
  grep -qxF "loto: configuration: $CFG" <<<"$stderr"
  grep -qE '^loto: policy: no wait; conflict exit code 75; lock passed to the command: yes$' <<<"$stderr"
  grep -qxF "loto: locking lock '$T/l'" <<<"$stderr"
  [ "$(grep -n "locking" <<<"$stderr" | cut -d: -f1)" -lt "$(grep -n "acquired" <<<"$stderr" | cut -d: -f1)" ]
}

@test "-q prints nothing on busy; -q on a normal run prints nothing either" {
  hold_lock "$T/busy"
  run --separate-stderr lotoc -q -L "$T/busy" true
  [ "$status" -eq 0 ]
  [ -z "$output$stderr" ]
  run --separate-stderr lotoc -q -L "$T/l" sh -c 'exit 6'
  [ "$status" -eq 6 ]
  [ -z "$output$stderr" ]
}

@test "-q still reports tragic failures (bad lock path) on stderr" {
  run --separate-stderr lotoc -q -L "$T/no/dir/l" true
  [ "$status" -eq 73 ]
  [ -n "$stderr" ]
}
