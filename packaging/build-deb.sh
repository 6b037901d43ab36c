#!/bin/bash
# Builds loto's Debian package and RPM into one folder (default: build-pkg/out/).
#
#   packaging/build-deb.sh [OUTDIR]
#
# 1. The .deb: debhelper (packaging/debian, `dh $@ --buildsystem=cmake`) via
#    `dpkg-buildpackage -b`, with ./debian a symlink to packaging/debian made for the
#    build and removed afterwards. The test suite is not run (DEB_BUILD_OPTIONS=nocheck
#    and the nocheck build profile: run the tests with ctest). CMake builds in
#    obj-<triplet>/ at the top of the tree.
# 2. The .rpm: `cpack -G RPM` in that same build tree, so both packages hold the same
#    binary and the files of the same CMake install rules.
# 3. lintian on the .changes (--pedantic -I -E; errors and warnings fail the build)
#    and rpmlint on the .rpm (noted only), when they are installed.
#
# Needs (Debian 12): debhelper dpkg-dev fakeroot cmake g++ libyaml-cpp-dev
# libcxxopts-dev libspdlog-dev libfmt-dev scdoc rpm; optional: lintian rpmlint.
# OUTDIR then holds loto_VERSION_ARCH.deb, loto-dbgsym_VERSION_ARCH.deb,
# loto_VERSION_ARCH.changes/.buildinfo, loto-VERSION-1.ARCH.rpm, lintian.txt and
# rpmlint.txt. Running it again rebuilds from scratch.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
out=${1:-$root/build-pkg/out}
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() {
  echo "build-deb.sh: $*" >&2
  exit 1
}
for tool in dpkg-buildpackage dh cmake cpack rpmbuild; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install debhelper dpkg-dev cmake rpm)"
done

# The Debian version must be the CMake project version.
cmake_version=$(sed -n 's/^project(loto VERSION \([0-9.]*\).*/\1/p' CMakeLists.txt)
deb_version=$(dpkg-parsechangelog -l packaging/debian/changelog -S Version)
[ "$cmake_version" = "$deb_version" ] ||
  die "packaging/debian/changelog says $deb_version but CMakeLists.txt says $cmake_version"

# ./debian -> packaging/debian, for this build only.
made_link=
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  if [ -n "$made_link" ]; then rm -f "$root/debian"; fi
}
trap cleanup EXIT
if [ -L debian ]; then
  [ "$(readlink debian)" = packaging/debian ] || die "./debian is a symlink to $(readlink debian), not packaging/debian"
elif [ -e debian ]; then
  die "./debian exists and is not the symlink to packaging/debian; remove it"
else
  ln -s packaging/debian debian
  made_link=1
fi

arch=$(dpkg-architecture -qDEB_HOST_ARCH)
triplet=$(dpkg-architecture -qDEB_HOST_GNU_TYPE)
base=loto_${deb_version}_${arch}
rm -f "$out"/loto_*.deb "$out"/loto-dbgsym_*.deb "$out"/loto_*.changes "$out"/loto_*.buildinfo \
  "$out"/loto-*.rpm "$out"/lintian.txt "$out"/rpmlint.txt

# --- .deb -----------------------------------------------------------------------------------
# -b: binary packages only; -us -uc: unsigned. Everything dpkg-buildpackage writes to ..
# by default goes to $out instead.
export DEB_BUILD_OPTIONS="nocheck ${DEB_BUILD_OPTIONS:-}"
export LOTO_DEB_DESTDIR=$out
dpkg-buildpackage -b -us -uc -Pnocheck -Jauto \
  --changes-option=-u"$out" --buildinfo-option=-u"$out" \
  --changes-file="$out/$base.changes" --buildinfo-file="$out/$base.buildinfo"

# --- .rpm -----------------------------------------------------------------------------------
# The same build tree and install rules; only the license text, which the .deb carries in
# /usr/share/doc/loto/copyright, is installed as a file of its own (%license).
cmake -DLOTO_INSTALL_LICENSE=ON "obj-$triplet" >/dev/null
rm -rf "$root/build-pkg/rpm"
(cd "obj-$triplet" && cpack -G RPM -B "$root/build-pkg/rpm")
cp "$root"/build-pkg/rpm/loto-*.rpm "$out/"

# --- checks ---------------------------------------------------------------------------------
status=0
if command -v lintian >/dev/null; then
  # Fails on errors and warnings (lintian's default --fail-on); info and pedantic tags
  # are shown and kept in lintian.txt.
  lintian --pedantic -I -E --fail-on error,warning "$out/$base.changes" >"$out/lintian.txt" || status=$?
  echo "== lintian ($(wc -l <"$out/lintian.txt") tags)"
  cat "$out/lintian.txt"
  [ "$status" -eq 0 ] || echo "build-deb.sh: lintian found errors or warnings" >&2
else
  echo "build-deb.sh: lintian is not installed; skipped" >&2
fi
if command -v rpmlint >/dev/null; then
  rpmlint -c "$root/packaging/rpm/rpmlint.toml" "$out"/loto-*.rpm >"$out/rpmlint.txt" 2>&1 || true
  echo "== rpmlint (noted, not enforced)"
  cat "$out/rpmlint.txt"
fi

echo "== packages in $out"
ls -l "$out"
exit "$status"
