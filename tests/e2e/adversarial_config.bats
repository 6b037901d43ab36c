#!/usr/bin/env bats
# Adversarial config-file cases C01-C09 (../shared/research/reliability-anchors.md,
# section b). loto runs as root; the config files are given with --config or LOTO_CONFIG
# (the system file is never touched). For each: exit 78, one line "loto: error: ..."
# naming the file (and FILE:LINE:COL for what is inside it) and the reason, no hang, no
# crash (never 134 or another signal status), nothing run and no lock file created.

# Scripts given to bash -c are single-quoted on purpose.
# shellcheck disable=SC2016

load helpers
load adversarial_helpers

setup() { adv_setup; }
teardown() { adv_teardown; }

NOBODY_UID="$(id -u nobody 2>/dev/null || echo 65534)"

# cfg_file NAME [TEXT]: a root-owned 0600 config NAME in $T holding TEXT (printf %b) or stdin
cfg_file() {
  local path="$T/$1"
  (
    umask 077
    if [[ $# -gt 1 ]]; then printf '%b' "$2"; else cat; fi >"$path"
  )
  echo "$path"
}

# run_cfg FILE [LOTO ARGS...]: a run that must not start, with FILE as --config; timed.
run_cfg() {
  local file="$1" t0
  shift
  t0=$(now_ms)
  run --separate-stderr timeout -k 1 10 "$LOTO" --config "$file" "$@" -L cpu -- touch "$T/ran"
  ELAPSED=$(($(now_ms) - t0))
}

# assert_refused [TEXT...]: 78, quickly, one error line holding each TEXT, nothing run,
# no lock file (the shared lock directory is still empty).
assert_refused() {
  assert_status 78
  assert_error_line "$@"
  assert_not_ran
  ((ELAPSED < 1000)) || {
    echo "took ${ELAPSED} ms" >&2
    return 1
  }
  [ -z "$(ls -A "$SHARED")" ] || {
    echo "lock directory not empty: $(ls -A "$SHARED")" >&2
    return 1
  }
}

# assert_at FILE LINE:COL-REGEX TEXT...: refused with "loto: error: FILE:L:C: ..." there.
assert_at() {
  local file="$1" pos="$2"
  shift 2
  assert_refused "$@"
  [[ "$stderr" =~ ^loto:\ error:\ $file:$pos:\  ]] || {
    echo "expected the position $file:$pos" >&2
    _show_run
    return 1
  }
}

good_text() { printf 'lock_dir: %s\nlogging:\n  syslog: false\n' "$SHARED"; }

@test "C01 a config file owned by another user: 78 naming its owner, nothing locked" {
  f="$(cfg_file user.yaml "$(good_text)\n")"
  chown nobody:nogroup "$f"
  chmod 0644 "$f"
  run_cfg "$f"
  assert_refused "'$f'" "owned by uid $NOBODY_UID"
  # the same file owned by root is accepted: only the owner was wrong
  chown root:root "$f"
  run_cfg "$f"
  assert_status 0
}

@test "C02 a group- or world-writable config file: 78 naming the file" {
  f="$(cfg_file w.yaml "$(good_text)\n")"
  chmod 0666 "$f"
  run_cfg "$f"
  assert_refused "'$f'" "writable by group or others"
  chgrp nogroup "$f"
  chmod 0664 "$f"
  run_cfg "$f"
  assert_refused "'$f'" "writable by group or others"
  chmod 0620 "$f"
  run_cfg "$f"
  assert_refused "'$f'" "writable by group or others"
}

# Like sshd's StrictModes, the directories are checked too, not only the file (the
# catalogue's C02 asks for "insecure directory").
@test "C02 a config in a directory another user can write or owns: 78 insecure directory" {
  # (a) root-owned, writable by others, not sticky: anyone can swap or delete the file
  mkdir -m 0777 "$T/wdir"
  chmod 0777 "$T/wdir"
  f="$T/wdir/loto.yaml"
  good_text >"$f"
  chmod 0644 "$f"
  run_cfg "$f"
  assert_refused "'$T/wdir" "director"
  # (b) a directory owned by the attacker, holding a root-owned file
  mkdir -m 0755 "$T/udir"
  chown nobody:nogroup "$T/udir"
  f="$T/udir/loto.yaml"
  good_text >"$f"
  chmod 0644 "$f"
  run_cfg "$f"
  assert_refused "'$T/udir" "director"
  # (c) the drop-in directory owned by the attacker
  mkdir -m 0755 "$T/cfg" "$T/cfg/loto.d"
  chown nobody:nogroup "$T/cfg/loto.d"
  good_text >"$T/cfg/loto.yaml"
  printf 'resources:\n  extra: {}\n' >"$T/cfg/loto.d/10-extra.yaml"
  chmod 0644 "$T/cfg/loto.yaml" "$T/cfg/loto.d/10-extra.yaml"
  run_cfg "$T/cfg/loto.yaml"
  assert_refused "'$T/cfg/loto.d" "director"
}

@test "C03 FIFO, symlink to a user's file, directory, /dev/zero, 100 MB, empty, bad UTF-8: 78 at once" {
  # a FIFO: no hang in open() or read(), even with a writer feeding it
  mkfifo -m 0600 "$T/fifo.yaml"
  run_cfg "$T/fifo.yaml"
  assert_refused "'$T/fifo.yaml'" "not a regular file"
  spawn -n feeder sh -c 'exec yes "lock_dir: /tmp" >"$1"' sh "$T/fifo.yaml"
  # the feeder is blocked in its open() of the FIFO, waiting for a reader, before loto runs
  wait_until 5 grep -qx wait_for_partner "/proc/$SPAWNED/wchan"
  run_cfg "$T/fifo.yaml"
  assert_refused "'$T/fifo.yaml'" "not a regular file"
  kill -TERM -- "-$SPAWNED" 2>/dev/null || true

  # a symlink: the owner check is on the file it names
  f="$(cfg_file target.yaml "$(good_text)\n")"
  chown nobody:nogroup "$f"
  ln -s "$f" "$T/link.yaml"
  run_cfg "$T/link.yaml"
  assert_refused "'$T/link.yaml'" "owned by uid $NOBODY_UID"

  # a directory: never std::terminate (134)
  mkdir -m 0700 "$T/dir.yaml"
  run_cfg "$T/dir.yaml"
  assert_refused "'$T/dir.yaml'" "directory"

  # a device that never ends
  run_cfg /dev/zero
  assert_refused "'/dev/zero'" "not a regular file"

  # 100 MB (sparse: costs no disk)
  f="$(cfg_file big.yaml "$(good_text)\n")"
  truncate -s 100M "$f"
  run_cfg "$f"
  assert_refused "'$f'" "too large"

  f="$(cfg_file empty.yaml '')"
  run_cfg "$f"
  assert_refused "$f" "empty"

  f="$(cfg_file utf8.yaml 'lock_dir: /tmp\nlogging:\n  ident: lo\xc3\x28to\n')"
  run_cfg "$f"
  assert_at "$f" "3:12" "invalid UTF-8"
  f="$(cfg_file overlong.yaml '# \xc0\xaf overlong slash\nlock_dir: /tmp\n')"
  run_cfg "$f"
  assert_at "$f" "1:3" "invalid UTF-8"
}

@test "C04 root with --config or LOTO_CONFIG naming a user's file: 78 (same rules as /etc)" {
  f="$(cfg_file user.yaml "$(good_text)\n")"
  chown nobody:nogroup "$f"
  chmod 0644 "$f"
  run_cfg "$f"
  assert_refused "'$f'" "owned by uid $NOBODY_UID"

  # the environment variable is subject to the same check (the contract: "system,
  # drop-in, --config or LOTO_CONFIG")
  local t0
  t0=$(now_ms)
  run --separate-stderr env LOTO_CONFIG="$f" timeout -k 1 10 "$LOTO" -L cpu -- touch "$T/ran"
  ELAPSED=$(($(now_ms) - t0))
  assert_refused "'$f'" "owned by uid $NOBODY_UID"

  # the user's own file is fine for that user; a third user's file is not
  make_shared_loto
  run --separate-stderr as_nobody "$SHARED_LOTO" --config "$f" -L "$SHARED/mine.lock" -- true
  assert_status 0
  chown 1:1 "$f"
  run --separate-stderr as_nobody "$SHARED_LOTO" --config "$f" -L "$SHARED/mine2.lock" -- true
  assert_status 78
  assert_error_line "'$f'" "owned by uid 1"
  [ ! -e "$SHARED/mine2.lock" ]
}

@test "C05 nesting 100000 deep (flow, mapping, block sequence): 78 nested too deep, no crash" {
  local f
  f="$T/flow.yaml"
  (umask 077 && head -c 100000 /dev/zero | tr '\0' '[' >"$f")
  run_cfg "$f"
  assert_at "$f" "[0-9]+:[0-9]+" "nested too deep"

  f="$T/map.yaml"
  (umask 077 && "$PY" -c 'import sys; sys.stdout.write("{a: " * 100000)' >"$f")
  run_cfg "$f"
  assert_at "$f" "[0-9]+:[0-9]+" "nested too deep"

  f="$T/seq.yaml"
  (umask 077 && "$PY" -c 'import sys; sys.stdout.write("- " * 100000 + "x\n")' >"$f")
  run_cfg "$f"
  assert_at "$f" "[0-9]+:[0-9]+" "nested too deep"

  f="$T/block.yaml"
  (umask 077 && "$PY" -c 'import sys; sys.stdout.write("".join(" " * i + "k:\n" for i in range(1400)))' >"$f")
  run_cfg "$f"
  assert_at "$f" "[0-9]+:[0-9]+" "nested too deep"
}

@test "C06 an alias bomb (10 levels x 10 aliases) and a merge key: 78 aliases, at once" {
  f="$T/bomb.yaml"
  (
    umask 077
    echo 'a0: &a0 [x, x, x, x, x, x, x, x, x, x]'
    for n in 1 2 3 4 5 6 7 8 9; do
      p=$((n - 1))
      echo "a$n: &a$n [*a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p, *a$p]"
    done
  ) >"$f"
  (($(stat -c %s "$f") < 1000))
  run_cfg "$f"
  assert_at "$f" "2:[0-9]+" "aliases"

  f="$(cfg_file merge.yaml 'defaults: &d\n  wait: true\nresources:\n  cpu:\n    <<: *d\n')"
  run_cfg "$f"
  assert_at "$f" "5:[0-9]+" "aliases"
}

@test "C07 duplicate resource key (also spelled quoted) and several documents: 78 with the place" {
  f="$(cfg_file dup.yaml 'resources:\n  cpu:\n    wait: true\n  cpu:\n    wait: false\n')"
  run_cfg "$f"
  assert_at "$f" "4:3" "duplicate key 'cpu'"

  f="$(cfg_file dupq.yaml 'resources:\n  cpu:\n    wait: true\n  "cpu":\n    wait: false\n')"
  run_cfg "$f"
  assert_at "$f" "4:3" "duplicate key 'cpu'"

  f="$(cfg_file dupk.yaml 'defaults:\n  wait: true\n  timeout: 1\n  wait: false\n')"
  run_cfg "$f"
  assert_at "$f" "4:3" "duplicate key 'wait'"

  f="$(cfg_file docs.yaml '---\nlock_dir: /tmp\n---\nlock_dir: /var/tmp\n')"
  run_cfg "$f"
  assert_at "$f" "3:1" "second YAML document"

  f="$(cfg_file docs2.yaml 'lock_dir: /tmp\n...\n---\nlock_dir: /var/tmp\n')"
  run_cfg "$f"
  assert_at "$f" "3:1" "second YAML document"
}

@test "C08 bad numbers, wrong shapes and tabs: 78 with FILE:LINE:COL for each" {
  local v
  for v in abc -1 .inf .nan 1e999 99999999999999999999 0x10 1e3 '""' '[1]' '{a: 1}'; do
    f="$(cfg_file "t.yaml" "defaults:\n  timeout: $v\n")"
    run_cfg "$f"
    assert_at "$f" "2:12" "'timeout'"
  done
  for v in 256 -1 1e2 0x4b 75.0 abc; do
    f="$(cfg_file "c.yaml" "resources:\n  cpu:\n    conflict_exit_code: $v\n")"
    run_cfg "$f"
    assert_at "$f" "3:25" "'conflict_exit_code'"
  done
  f="$(cfg_file str.yaml 'resources: "str"\n')"
  run_cfg "$f"
  assert_at "$f" "1:12" "mapping"
  f="$(cfg_file list.yaml 'resources:\n  cpu:\n    path: [/run/lock/a, /run/lock/b]\n')"
  run_cfg "$f"
  assert_at "$f" "3:11" "'path'"
  f="$(cfg_file top.yaml '[lock_dir, /tmp]\n')"
  run_cfg "$f"
  assert_at "$f" "1:1" "mapping"
  f="$(cfg_file tab.yaml 'defaults:\n\twait: true\n')"
  run_cfg "$f"
  assert_at "$f" "2:[0-9]+" "illegal map value"
}

@test "C09 paths with NUL, newline, relative, or '..': 78 invalid path, nothing truncated" {
  local v key
  for key in path lock_dir; do
    for v in '"/run/lock/a\\0b"' '"/run/lock/a\\nb"' 'relative/x' '"/run/lock/../../etc/shadow"' '""'; do
      if [[ $key == path ]]; then
        f="$(cfg_file p.yaml "resources:\n  cpu:\n    path: $v\n")"
        run_cfg "$f"
        assert_at "$f" "3:11" "invalid path" "'path'"
      else
        f="$(cfg_file p.yaml "lock_dir: $v\n")"
        run_cfg "$f"
        assert_at "$f" "1:11" "invalid path" "'lock_dir'"
      fi
    done
  done
  # the NUL is shown escaped, and what follows it is not lost
  f="$(cfg_file nul.yaml 'resources:\n  cpu:\n    path: "/run/lock/a\\0b"\n')"
  run_cfg "$f"
  assert_at "$f" "3:11" "'/run/lock/a\\x00b'"
  [ ! -e /run/lock/a ]
}
