#!/bin/bash
# Static checks: clang-tidy (.clang-tidy) and cppcheck over src/ and fuzz/, through the CMake
# `lint` target of a clang-configured build dir (build-tidy). Nothing is compiled; exits
# non-zero on any finding.
#
#   tests/tools/lint.sh          LINT_BUILD_DIR=dir to use another build dir
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
build="${LINT_BUILD_DIR:-$root/build-tidy}"
start=$SECONDS

for tool in clang-tidy-14 run-clang-tidy-14 cppcheck; do
  command -v "$tool" >/dev/null || {
    echo "lint: $tool is not installed (apt-get install clang-tidy-14 cppcheck clang-14)" >&2
    exit 1
  }
done

# clang's view of the flags, so clang-tidy sees what a clang build would compile.
compiler=()
if [[ ! -f "$build/CMakeCache.txt" ]]; then
  for cxx in clang++ clang++-14; do
    if command -v "$cxx" >/dev/null; then
      compiler=(-DCMAKE_CXX_COMPILER="$cxx")
      break
    fi
  done
fi
cmake -S "$root" -B "$build" "${compiler[@]}" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null

rc=0
cmake --build "$build" --target lint || rc=$?
if ((rc == 0)); then
  echo "lint: clean ($((SECONDS - start))s)"
else
  echo "lint: FAILED: findings above ($((SECONDS - start))s)" >&2
fi
exit "$rc"
