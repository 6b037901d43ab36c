#!/bin/bash
# Mutation testing of the code that decides who holds a lock and what runs.
#
#   tests/tools/mutation.sh                                  every file in scope (slow)
#   tests/tools/mutation.sh --file src/lock/flock_backend.cpp    one file
#   tests/tools/mutation.sh --file src/plan.cpp --sample 20 --seed 7   20 mutants of it
#   tests/tools/mutation.sh --file src/plan.cpp --mutants 12,40   these two again
#   tests/tools/mutation.sh --list [--file F]                print the mutants, run nothing
#
# Mutants come from tests/tools/mutate.py (one change each, numbered deterministically).
# Nothing in the repository is changed, and its files are read once, at the start: the
# tree is copied to WORK/tree (default build-mutation/, --work DIR) and built in
# WORK/tree/build, at nice 19 with -j1 (--jobs N).
# For each mutant:
#   1. it is compiled with the build's own flags (warnings are errors); if that fails it is
#      "stillborn" (not counted);
#   2. if its object file, without debug sections, is byte-identical to the original's, it
#      is "equivalent" (trivial compiler equivalence), as is a mutant listed with a reason
#      in tests/tools/mutation-equivalent.txt; a listed one whose reason says "Not
#      equivalent" (a race no test can aim, a filesystem the suite lacks) is "untestable";
#   3. otherwise loto is relinked and the tests that cover the file (the map below) run one
#      by one, stopping at the first failure: "killed"; all passed: "survived"; over the
#      per-mutant time limit (--timeout S, default 5 x the unmutated run, at least 120 s,
#      so that a survivor slowed down by a busy machine is not taken for a hang):
#      "timed out", which counts as killed. With --stall S, a test that prints nothing for
#      S seconds is taken as hung at once ("timed out") instead of after its CTest limit.
#      --tests 'RX ...' runs only those of the map's tests (a quick first pass: a mutant
#      that survives it has not faced the rest and must run again without --tests).
# It prints a table per file (score = (killed + timed out) / (mutants - equivalent -
# untestable - stillborn)) and writes every survivor's diff to WORK/survivors.txt
# (--report FILE).
# Exit status: 0 when no mutant survived, 1 when some did, 2 when the tool itself failed
# (bad option, the original does not build or its tests fail, no table).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
mutate="$root/tests/tools/mutate.py"
equivalent_list="$root/tests/tools/mutation-equivalent.txt"
scope=(src/lock/flock_backend.cpp src/plan.cpp src/executor.cpp src/process.cpp
  src/lock/etcd/etcd_backend.cpp src/lock/etcd/messages.cpp
  src/lock/etcd/helper/semaphore.cpp src/lock/etcd/helper/renewal.cpp
  src/lock/etcd/helper/session.cpp)

# The tests that cover each file, in the order they run (the quickest killers first), and
# the build targets they need. Each entry is a CTest regular expression.
targets_for() {
  case $1 in
  src/plan.cpp) echo "loto loto_unit" ;;
  src/lock/etcd/messages.cpp) echo "loto loto_unit loto-etcd" ;;
  src/lock/etcd/helper/*) echo "loto loto-etcd loto_etcd_unit" ;;
  *) echo "loto loto-etcd" ;; # their maps hold tests with etcd resources
  esac
}
tests_for() {
  case $1 in
  src/lock/flock_backend.cpp)
    echo 'e2e\.locking e2e\.adversarial_lockfile e2e\.queue e2e\.exit_codes e2e\.signals e2e\.status_line e2e\.list_json stress\.quick'
    ;;
  src/plan.cpp)
    echo '^unit\. e2e\.config e2e\.cli e2e\.exit_codes e2e\.locking e2e\.adversarial_config e2e\.syslog'
    ;;
  src/executor.cpp)
    echo 'e2e\.locking e2e\.exit_codes e2e\.signals e2e\.adversarial_lockfile e2e\.syslog e2e\.adversarial_syslog e2e\.metrics e2e\.cli e2e\.config e2e\.status_line e2e\.adversarial_supervision e2e\.limits e2e\.queue stress\.quick e2e\.etcd$'
    ;;
  src/process.cpp)
    echo 'e2e\.signals e2e\.adversarial_supervision e2e\.limits e2e\.locking e2e\.exit_codes e2e\.status_line e2e\.syslog e2e\.metrics e2e\.cli e2e\.adversarial_lockfile stress\.quick e2e\.etcd$'
    ;;
  src/lock/etcd/etcd_backend.cpp)
    echo 'e2e\.etcd$ e2e\.etcd_slots e2e\.etcd_tls e2e\.etcd_cluster stress\.etcd_quick'
    ;;
  src/lock/etcd/messages.cpp)
    echo '^unit\. e2e\.etcd$ e2e\.etcd_slots e2e\.etcd_cluster stress\.etcd_quick'
    ;;
  src/lock/etcd/helper/semaphore.cpp)
    echo '^unit\.etcd_helper\. e2e\.etcd_slots e2e\.etcd$ stress\.etcd_quick'
    ;;
  src/lock/etcd/helper/renewal.cpp | src/lock/etcd/helper/session.cpp)
    echo '^unit\.etcd_helper\. e2e\.etcd$ e2e\.etcd_slots e2e\.etcd_cluster e2e\.etcd_tls stress\.etcd_quick'
    ;;
  *) return 1 ;;
  esac
}

die() {
  echo "mutation.sh: $*" >&2
  exit 2
}
usage() {
  sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'
  echo "options: --file F (repeatable), --sample N, --seed S (default 1), --mutants 3,17 (these"
  echo "         numbers only), --list, --work DIR,"
  echo "         --report FILE, --timeout S, --stall S, --tests 'RX ...', --jobs N, --no-baseline (trust the"
  echo "         unmutated tests)"
}

files=()
sample=""
only=""
seed=1
list_only=0
work="$root/build-mutation"
report=""
timeout_s=""
stall_s=""
only_tests=""
jobs=1
baseline=1
while (($#)); do
  case $1 in
  --file)
    [[ $# -ge 2 ]] || die "--file needs a path"
    files+=("${2#./}")
    shift 2
    ;;
  --sample)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--sample needs a positive number, not '${2:-}'"
    sample=$2
    shift 2
    ;;
  --seed)
    [[ "${2:-}" =~ ^[0-9]+$ ]] || die "--seed needs a number, not '${2:-}'"
    seed=$2
    shift 2
    ;;
  --mutants)
    [[ "${2:-}" =~ ^[1-9][0-9]*(,[1-9][0-9]*)*$ ]] || die "--mutants needs numbers like 3,17,40, not '${2:-}'"
    only=$2
    shift 2
    ;;
  --list)
    list_only=1
    shift
    ;;
  --work)
    [[ -n "${2:-}" ]] || die "--work needs a directory"
    work=$2
    shift 2
    ;;
  --report)
    [[ -n "${2:-}" ]] || die "--report needs a file"
    report=$2
    shift 2
    ;;
  --timeout | --stall)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "$1 needs seconds, not '${2:-}'"
    if [[ $1 == --timeout ]]; then timeout_s=$2; else stall_s=$2; fi
    shift 2
    ;;
  --tests)
    [[ -n "${2:-}" ]] || die "--tests needs CTest expressions, such as '^unit\\.'"
    only_tests=$2
    shift 2
    ;;
  --jobs)
    [[ "${2:-}" =~ ^[1-9][0-9]*$ ]] || die "--jobs needs a positive number, not '${2:-}'"
    jobs=$2
    shift 2
    ;;
  --no-baseline)
    baseline=0
    shift
    ;;
  -h | --help)
    usage
    exit 0
    ;;
  *) die "unknown option '$1' (see --help)" ;;
  esac
done
((${#files[@]})) || files=("${scope[@]}")
for f in "${files[@]}"; do
  tests_for "$f" >/dev/null || die "$f is not in scope (${scope[*]})"
  [[ -f "$root/$f" ]] || die "$f does not exist in $root"
done
[[ -f "$equivalent_list" ]] || die "missing $equivalent_list"

# mutants FILE: the mutants to run, as mutate.py lists them (sampled with --sample)
mutants() {
  local all
  local from=$root
  [[ ! -f "$work/orig/$1" ]] || from=$work/orig
  all="$(cd "$from" && python3 "$mutate" list "$1" "$equivalent_list")" || die "mutate.py failed on $1"
  if [[ -n "$sample" || -n "$only" ]]; then
    local ids=${only//,/|}
    if [[ -n "$sample" ]]; then
      ids="$(cd "$from" && python3 "$mutate" sample "$1" "$sample" "$seed" | paste -sd'|')"
    fi
    awk -F'\t' -v ids="$ids" 'BEGIN { n = split(ids, a, "|"); for (i = 1; i <= n; i++) want[a[i]] = 1 }
      want[$1]' <<<"$all"
  else
    printf '%s\n' "$all"
  fi
}

if ((list_only)); then
  for f in "${files[@]}"; do
    echo "== $f"
    mutants "$f" | awk -F'\t' '{ printf "%4d  line %-4d %-11s %s  =>  %s%s\n", $1, $2, $3, substr($4, 3),
      substr($5, 3), ($6 == "" ? "" : "   [equivalent: " $6 "]") }'
  done
  exit 0
fi

# --- the copy of the tree ----------------------------------------------------------------
renice -n 19 -p $$ >/dev/null 2>&1 || true
command -v objcopy >/dev/null || die "objcopy (binutils) is needed"
mkdir -p "$work"
work="$(cd "$work" && pwd)"
[[ -n "$report" ]] || report="$work/survivors.txt"
tree="$work/tree"
build="$tree/build"
mkdir -p "$tree" "$work/logs" "$work/obj"
# Copy the sources (mtimes kept, so an existing build redoes only what changed); then the
# files in scope get a new mtime, so no object left by an interrupted run is reused.
# In a git checkout: the tracked and the new, not ignored files (so no build directory,
# wherever it is); otherwise everything but build*/ and the work directory.
if git -C "$root" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  (cd "$root" && git ls-files -z --cached --others --exclude-standard |
    while IFS= read -r -d '' p; do
      [[ -e "$p" && "$root/$p" != "$work"/* ]] && printf '%s\0' "$p"
    done |
    tar --null -T - -cf -) | tar -C "$tree" -xf -
else
  tar -C "$root" --exclude='./build*' --exclude='./.git' --exclude="./${work#"$root"/}" -cf - . |
    tar -C "$tree" -xf -
fi
for f in "${scope[@]}"; do
  [[ -f "$tree/$f" ]] && touch "$tree/$f"
done
# The originals, as they were when the run started: mutants are made from these.
rm -rf "$work/orig"
for f in "${files[@]}"; do
  mkdir -p "$work/orig/$(dirname "$f")"
  cp "$root/$f" "$work/orig/$f"
done
token="loto-mutation.$$.$RANDOM"
current=""
cleanup() {
  sweep
  [[ -z "${scratch:-}" ]] || rm -rf "$scratch"
  if [[ -n "$current" ]]; then
    cp "$work/orig/$current" "$tree/$current" # back to the original, with a new mtime
  fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# The tests of a mutant see a private, empty /tmp: in their own mount namespace, the
# directory $scratch (on /tmp's own filesystem, so device numbers and path lengths are as
# usual) is mounted over /tmp; whatever a killed run leaves there is deleted after it.
scratch="$(mktemp -d /tmp/loto-mutation.XXXXXX)"
chmod 1777 "$scratch"
isolate=()
# shellcheck disable=SC2016 # "$@" and "$0" are for that sh
if unshare --mount sh -c 'mount --bind "$0" /tmp' "$scratch" >/dev/null 2>&1; then
  isolate=(unshare --mount sh -c 'mount --bind "$0" /tmp && exec "$@"' "$scratch")
else
  echo "mutation: no private /tmp here (unshare --mount); a killed run may leave /tmp/bats-run-*" >&2
fi

# sweep: SIGKILL every process a mutant's tests left behind (they carry our token in
# their environment), by pid.
sweep() {
  local p kv
  for p in /proc/[0-9]*; do
    [[ "${p#/proc/}" != "$$" ]] || continue
    while IFS= read -r -d '' kv; do
      if [[ "$kv" == "LOTO_MUTATION_TOKEN=$token" ]]; then
        kill -KILL "${p#/proc/}" 2>/dev/null || true
        break
      fi
    done 2>/dev/null <"$p/environ" || true
  done
}

# watch_tap: reads ctest -V's lines; 0 at the first failing bats case, 1 at the end, and
# 3 when no line came for --stall seconds: the run is hung, so it ends it (a hung test
# would otherwise hold the pipeline until its CTest limit, 300 s for e2e.etcd).
watch_tap() {
  local line
  while true; do
    if IFS= read -r ${stall_s:+-t "$stall_s"} line; then
      [[ ! "$line" =~ ^[0-9]+:\ not\ ok\  ]] || return 0
    elif (($? > 128)); then
      sweep
      return 3
    else
      return 1
    fi
  done
}

# run_tests LOG LIMIT REGEX...: the covering tests one by one, stopping at the first
# failure, and within a .bats file at its first failing case (ctest -V streams the TAP
# lines; the pipe closes on the first "not ok" and the sweep ends the rest). Returns 0
# (all passed), 1 (one failed), 124 (over LIMIT seconds in all) or 125 (silent for --stall
# seconds: hung).
run_tests() {
  local log=$1 limit=$2 rx left start=$SECONDS
  local -a st
  shift 2
  : >"$log"
  for rx in "$@"; do
    left=$((limit - (SECONDS - start)))
    ((left > 0)) || return 124
    set +e
    LOTO_MUTATION_TOKEN=$token "${isolate[@]}" timeout -k 5 "$left" \
      ctest --test-dir "$build" -R "$rx" --stop-on-failure -V </dev/null 2>&1 |
      tee -a "$log" | watch_tap
    st=("${PIPESTATUS[@]}")
    set -e
    sweep
    find "$scratch" -mindepth 1 -delete 2>/dev/null || true
    if ((st[2] == 0)); then
      return 1 # a bats case failed
    elif ((st[2] == 3)); then
      echo "mutation: no output for $stall_s s: hung" >>"$log"
      return 125
    elif ((st[0] == 124 || st[0] == 137)); then
      return 124
    elif ((st[0] != 0)); then
      return 1
    fi
  done
  return 0
}

# failure_of LOG: which test (and bats case) killed the mutant
failure_of() {
  local case_line test_name
  case_line="$(grep -m1 -E '^[0-9]+: not ok ' "$1" || true)"
  test_name="$(sed -nE 's/^[0-9]+: Test command: .*\/([^/"]+)\.bats"?$/e2e.\1/p' "$1" | tail -1)"
  if [[ -n "$case_line" ]]; then
    echo "by $test_name: ${case_line#*: }"
  else
    sed -nE 's/^[[:space:]]*[0-9]+ - (.+) \(([^()]+)\)$/by \1 (\2)/p' "$1" | head -1
  fi
}

echo "mutation: configuring and building the copy in $build (nice 19, -j$jobs)" >&2
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  cmake -S "$tree" -B "$build" -DLOTO_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    >"$work/logs/configure.log" 2>&1 || die "configuring the copy failed: $work/logs/configure.log"
fi
need_targets="$(for f in "${files[@]}"; do targets_for "$f"; done | tr ' ' '\n' | sort -u | tr '\n' ' ')"
# shellcheck disable=SC2086 # the targets are words
cmake --build "$build" -j"$jobs" --target $need_targets >"$work/logs/build.log" 2>&1 ||
  die "the unmutated copy does not build: $work/logs/build.log"

: >"$report"
table="$work/table.txt"
printf '%-32s %7s %7s %8s %10s %10s %9s %9s %7s %8s\n' file mutants killed survived equivalent \
  untestable "timed out" stillborn score time >"$table"
survivors=0
total_start=$SECONDS
for f in "${files[@]}"; do
  file_start=$SECONDS
  read -r -a tests <<<"${only_tests:-$(tests_for "$f")}"
  targets="$(targets_for "$f")"
  base="$work/obj/$(echo "$f" | tr / _).base.o"
  obj="$(python3 "$mutate" object "$build" "$tree/$f")"
  python3 "$mutate" compile "$build" "$tree/$f" "$base" 2>"$work/logs/base-compile.log" ||
    die "the unmutated $f does not compile: $work/logs/base-compile.log"
  objcopy --strip-debug "$base" "$base.stripped"
  for rx in "${tests[@]}"; do
    [[ "$(ctest --test-dir "$build" -N -R "$rx")" == *"Test "*"#"* ]] ||
      die "no test matches '$rx' (${only_tests:+--tests, or }the map of $f in $0)"
  done
  limit=${timeout_s:-}
  if ((baseline)); then
    t0=$SECONDS
    run_tests "$work/logs/baseline.log" 1800 "${tests[@]}" ||
      die "the tests of $f fail on the unmutated copy: $work/logs/baseline.log"
    [[ -n "$limit" ]] || limit=$((5 * (SECONDS - t0) > 120 ? 5 * (SECONDS - t0) : 120))
    echo "mutation: $f: its tests take $((SECONDS - t0)) s unmutated; limit per mutant ${limit} s" >&2
  fi
  [[ -n "$limit" ]] || limit=300
  n=0 killed=0 survived=0 equivalent=0 untestable=0 timedout=0 stillborn=0
  results="$work/results.$(echo "$f" | tr / _).tsv"
  : >"$results"
  mutant_list="$(mutants "$f")"
  count="$(grep -c . <<<"$mutant_list" || true)"
  current=$f
  while IFS=$'\t' read -r -u 3 id line rule old new reason; do
    [[ -n "$id" ]] || continue
    n=$((n + 1))
    m_start=$SECONDS
    mlog="$work/logs/mutant.log"
    python3 "$mutate" apply "$work/orig/$f" "$id" "$tree/$f"
    if [[ "$reason" == *"Not equivalent"* ]]; then
      status="untestable"
      why="listed"
    elif [[ -n "$reason" ]]; then
      status="equivalent"
      why="listed"
    elif ! python3 "$mutate" compile "$build" "$tree/$f" "$work/obj/mutant.o" >"$mlog" 2>&1; then
      status="stillborn"
      why="does not compile"
    else
      objcopy --strip-debug "$work/obj/mutant.o" "$work/obj/mutant.stripped"
      if cmp -s "$work/obj/mutant.stripped" "$base.stripped"; then
        status="equivalent"
        why="same object code"
      else
        # the object is already built: put it in place, newer than the source
        cp "$work/obj/mutant.o" "$obj"
        # shellcheck disable=SC2086
        if ! cmake --build "$build" -j"$jobs" --target $targets >"$mlog" 2>&1; then
          status="stillborn"
          why="does not link"
        else
          rc=0
          run_tests "$mlog" "$limit" "${tests[@]}" || rc=$?
          case $rc in
          0)
            status="survived"
            why="all tests passed"
            ;;
          124)
            status="timed out"
            why="over ${limit} s"
            ;;
          125)
            status="timed out"
            why="hung: no output for ${stall_s} s"
            ;;
          *)
            status="killed"
            why="$(failure_of "$mlog")"
            ;;
          esac
        fi
      fi
    fi
    case $status in
    killed) killed=$((killed + 1)) ;;
    survived)
      survived=$((survived + 1))
      survivors=$((survivors + 1))
      {
        echo "# $f mutant $id (line $line, $rule)"
        echo "--- $f"
        echo "+++ $f (mutant $id)"
        echo "@@ line $line @@"
        echo "$old"
        echo "$new"
        echo
      } >>"$report"
      ;;
    equivalent) equivalent=$((equivalent + 1)) ;;
    untestable) untestable=$((untestable + 1)) ;;
    "timed out") timedout=$((timedout + 1)) ;;
    stillborn) stillborn=$((stillborn + 1)) ;;
    esac
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$id" "$status" "$((SECONDS - m_start))" "$line" \
      "$rule" "$old" "$new" "$why" >>"$results"
    printf 'mutation: %s %d/%d #%s line %s %-11s %-10s %3ds  %s\n' "$f" "$n" "$count" "$id" "$line" \
      "$rule" "$status" "$((SECONDS - m_start))" "$why" >&2
  done 3<<<"$mutant_list"
  # back to the original (with a new mtime) and its object, for the next file or run
  cp "$work/orig/$f" "$tree/$f"
  current=""
  cp "$base" "$obj"
  counted=$((n - equivalent - untestable - stillborn))
  ((n > 0)) || die "mutate.py made no mutant of $f"
  # a tool that builds nothing must not pass: with 5 mutants or more, some must be tested
  ((counted > 0 || n < 5)) || die "none of the $n mutants of $f was built and tested: see $work/logs"
  if ((counted > 0)); then
    score="$(awk -v k=$((killed + timedout)) -v c=$counted 'BEGIN { printf "%.1f%%", 100 * k / c }')"
  else
    score="-"
  fi
  printf '%-32s %7d %7d %8d %10d %10d %9d %9d %7s %7ds\n' "$f" "$n" "$killed" "$survived" \
    "$equivalent" "$untestable" "$timedout" "$stillborn" "$score" $((SECONDS - file_start)) >>"$table"
done
# shellcheck disable=SC2086
cmake --build "$build" -j"$jobs" --target $need_targets >"$work/logs/build.log" 2>&1 || true
echo
cat "$table"
echo "total time $((SECONDS - total_start)) s; survivors' diffs: $report; per mutant: $work/results.*.tsv"
((survivors == 0)) || exit 1
