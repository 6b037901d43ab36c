#!/bin/bash
# ASan + UBSan (+ LeakSanitizer) build of loto and the whole test suite against it: unit
# tests, fuzz-corpus replay, e2e and stress tests (ctest runs bats with LOTO=build-asan/loto).
# Fails on any test failure and on any sanitizer report.
#
#   tests/tools/sanitize.sh     SANITIZE_BUILD_DIR=dir (build-asan)  SANITIZE_JOBS=N (nproc)
#                               CTEST_ARGS="..." (added to both ctest passes)
#
# Every sanitized process writes its report to $build/sanitizer-reports/{asan,ubsan}.PID
# (log_path), so a report from a loto run inside a bats test is caught even when the test
# swallowed stderr or accepted any non-zero status; after ctest, any file there fails the
# run. A report also ends the process at once with status 86, which no e2e test expects.
#
# For the tests: LOTO_SANITIZER=address,undefined is set. A run that LeakSanitizer cannot
# handle (loto under strace/ptrace, or under RLIMIT_NPROC: LSan needs a thread at exit)
# should add `ASAN_OPTIONS="${ASAN_OPTIONS:-}:detect_leaks=0"` to that one run; a time budget
# made for a normal build may be scaled when LOTO_SANITIZER is set; a case that cannot run
# at all should `skip "... under ASan: <reason>"`. Such skips are listed at the end.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${SANITIZE_BUILD_DIR:-$root/build-asan}"
jobs="${SANITIZE_JOBS:-$(nproc)}"
reports="$build/sanitizer-reports"
start=$SECONDS

step() { printf '\n== sanitize: %s (%ds)\n' "$*" $((SECONDS - start)); }

step "configure $build"
# Debug (-O0 -g): compiles fastest and keeps every frame in the reports.
cmake -S "$root" -B "$build" -DLOTO_SANITIZE=address,undefined -DLOTO_WERROR=ON \
  -DCMAKE_BUILD_TYPE=Debug >/dev/null

step "build"
cmake --build "$build" -j"$jobs"

rm -rf "$reports"
mkdir -p "$reports"
# Processes under test may run as other users (nobody): let them write their reports.
chmod 1777 "$reports"

# halt_on_error + exitcode: the first report ends the process with a status no e2e test
# expects (the e2e tests check exact codes); abort_on_error=0: exit, no core dump.
# log_path: reports go to files as well as failing the process (see above).
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1:\
strict_string_checks=1:check_initialization_order=1:\
log_path=$reports/asan"
export LSAN_OPTIONS="exitcode=86"
export UBSAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=86:print_stacktrace=1:\
report_error_type=1:log_path=$reports/ubsan"
export LOTO_SANITIZER=address,undefined

# Unit and fuzz-replay tests in parallel; the end-to-end and stress tests one at a time, as
# the normal test command runs them (their timing checks assume an otherwise idle machine).
rc=0
logs="$build/sanitize-logs"
rm -rf "$logs"
mkdir -p "$logs"
step "ctest: unit and fuzz replay (-j$jobs)"
# (not mutation.sample: it builds and tests its own copy, without sanitizers)
# shellcheck disable=SC2086 # CTEST_ARGS is a word list on purpose
ctest --test-dir "$build" -j"$jobs" --output-on-failure -E '^(e2e|stress|mutation)[.]' ${CTEST_ARGS:-} ||
  rc=$?
cp "$build/Testing/Temporary/LastTest.log" "$logs/unit.log" 2>/dev/null || true
step "ctest: e2e and stress"
# shellcheck disable=SC2086
ctest --test-dir "$build" --output-on-failure -R '^(e2e|stress)[.]' ${CTEST_ARGS:-} || rc=$?
cp "$build/Testing/Temporary/LastTest.log" "$logs/e2e.log" 2>/dev/null || true

step "sanitizer reports"
shopt -s nullglob
# One notice is not a finding: LeakSanitizer prints "Unable to get registers from thread N."
# when the process is killed (SIGKILL, as the stress test does) while its exit-time leak scan
# runs, then goes on. A file holding only that line is listed, not counted.
benign='^==[0-9]+==Unable to get registers from thread [0-9]+\.$'
found=()
for file in "$reports"/*; do
  if grep -qvE "$benign" "$file"; then
    found+=("$file")
  else
    echo "ignored (process killed during LSan's exit scan): $file: $(cat "$file")"
  fi
done
if ((${#found[@]} > 0)); then
  for file in "${found[@]}"; do
    echo "---- $file"
    cat "$file"
  done
  echo "sanitize: FAILED: ${#found[@]} sanitizer report(s) in $reports" >&2
  rc=1
else
  echo "no sanitizer reports"
fi

# Cases the tests skipped because of the sanitizers (they say why in the skip reason).
skipped="$(grep -h -E '^ok [0-9]+ .*# skip.*(ASan|LSan|UBSan|[Ss]anitiz)' "$logs"/*.log || true)"
if [[ -n "$skipped" ]]; then
  echo "skipped under the sanitizers:"
  echo "$skipped"
fi

step "done, status $rc"
exit "$rc"
