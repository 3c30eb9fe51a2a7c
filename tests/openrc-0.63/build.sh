#!/bin/sh
# Build upstream OpenRC 0.63.3 (the current release line; Debian 12 ships 0.45.2) from the
# source tarball beside this script (upstream's release tarball, checked by its sha256 below),
# for the integration tests that run against both versions. `make test` runs it into
# OPENRC_063_DIR (default /var/tmp/gosv-openrc-0.63) and hands DIR/build to the tests as
# GOSV_TEST_OPENRC_063 (see tests/README.md).
#
#   build.sh DIR         configure and compile under DIR (reused when already built);
#                        prints the meson build directory, DIR/build
#
# Install it only inside a throw-away mount namespace whose /etc, /usr and /var are overlays,
# never on the host:
#   rm -rf /usr/lib/rc                       # Debian 0.45's helper directory: nothing may use it
#   DESTDIR= meson install --no-rebuild -C DIR/build   # DESTDIR must be set, even empty
#   ldconfig
# Upstream's layout differs from Debian's: helpers in /usr/libexec/rc (RC_LIBEXECDIR), binaries
# in /usr/sbin and /usr/bin. Debian's execline commands live in /usr/lib/execline/bin, which
# OpenRC 0.63's s6 backend expects on PATH.
# Needs (installed when missing, as root on Debian): meson ninja-build pkg-config libcap-dev libpam0g-dev.
set -eu
B=${1:?usage: build.sh DIR}
here=$(cd "$(dirname "$0")" && pwd)
V=0.63.3
if [ -f "$B/.built-$V" ]; then echo "$B/build"; exit 0; fi
need=""
for p in meson ninja-build pkg-config libcap-dev libpam0g-dev; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || need="$need $p"
done
if [ -n "$need" ]; then
	apt-get update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y $need >/dev/null
fi
echo "c9090cadb09a490dd9d2361c8e0755086328b61a0eb6d55d168bcd704da87ba2  $here/openrc-$V.tar.gz" | sha256sum -c --quiet
mkdir -p "$B"
src=$B/openrc-$V
rm -rf "$src" && tar -xzf "$here/openrc-$V.tar.gz" -C "$B"
meson setup "$B/build" "$src" --prefix=/usr --sysconfdir=/etc -Dpam=true -Dselinux=disabled \
	-Daudit=disabled -Dpkgconfig=false -Dbash-completions=false -Dzsh-completions=false >"$B/setup.log"
ninja -j"$(nproc)" -C "$B/build" >"$B/ninja.log"
touch "$B/.built-$V"
echo "$B/build"
