#!/bin/bash
# Readiness latency, gosv vs s6, in one run: from the daemon's readiness
# write (bash $EPOCHREALTIME, no fork) to the return of `svwait -U`.
# See bench/README.md, "readiness".
#
#   bench/readiness.sh [-n SAMPLES] [--fs tmpfs|ext4|both]
#
# Needs root (unshare, mount), Go and s6. Everything runs in a private
# mount+PID namespace; the tmpfs case mounts its own tmpfs there, the ext4
# case uses a fresh directory under /var/tmp, removed at the end.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=40
fs=both
while [ $# -gt 0 ]; do
	case $1 in
	-n) n=$2; shift 2 ;;
	--fs) fs=$2; shift 2 ;;
	*) echo "usage: $0 [-n SAMPLES] [--fs tmpfs|ext4|both]" >&2; exit 100 ;;
	esac
done

if [ -z "${READINESS_INNER:-}" ]; then
	command -v s6-svscan >/dev/null || { echo "readiness.sh: s6 is not installed" >&2; exit 111; }
	mkdir -p "$here/bin"
	# The multi-call binary dispatches on its name: it must be called gosv.
	(cd "$root" && go build -o "$here/bin/gosv" ./cmd/gosv && go build -o "$here/bin/readylat" ./bench/cmd/readylat)
	echo "# readiness latency, $(date -u +%FT%TZ), gosv $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo -dirty)"
	echo "# $(nproc) cpus, $(uname -r), s6 $(dpkg-query -W -f '${Version}' s6 2>/dev/null || echo '?'), load $(cut -d' ' -f1-3 /proc/loadavg)"
	READINESS_INNER=1 exec unshare --mount --pid --fork --mount-proc --kill-child "$0" -n "$n" --fs "$fs"
fi

# PID 1 of the namespace from here on.
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /run
ext4=$(mktemp -d /var/tmp/gosv-readiness.XXXXXX)
trap 'rm -rf "$ext4"' EXIT

printf 'fs\tsystem\tn\tmedian_ms\tp10_ms\tp90_ms\tmin_ms\tmax_ms\n'
for f in tmpfs ext4; do
	[ "$fs" = both ] || [ "$fs" = "$f" ] || continue
	dir=/run/gosv-readiness
	[ "$f" = tmpfs ] || dir=$ext4/work
	mkdir -p "$dir"
	PATH=$here/bin:$PATH timeout -k 5 900 "$here/bin/readylat" -n "$n" -fs "$f" -gosv "$here/bin/gosv" -dir "$dir"
	rm -rf "$dir"
done
