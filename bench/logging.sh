#!/bin/bash
# Logging throughput and idle memory, gosv vs s6-log vs svlogd, in one run.
# See bench/README.md, "logging".
#
#   bench/logging.sh [-n RUNS] [-b BYTES] [--fs tmpfs|ext4|both]
#
# One service writes BYTES (default 500 MB) of 60-byte lines as fast as it
# can, stamped with TAI64N (t), through: gosv in-process (gosv svscan with a
# log-script), gosv log, s6-log and svlogd -t. Then the PSS of gosv svscan
# with 100 idle services, with and without in-process loggers. Needs root
# (unshare, mount), Go; s6 and runit for their rows.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
runs=3
bytes=$((500 * 1000 * 1000))
fs=tmpfs
while [ $# -gt 0 ]; do
	case $1 in
	-n) runs=$2; shift 2 ;;
	-b) bytes=$2; shift 2 ;;
	--fs) fs=$2; shift 2 ;;
	*) echo "usage: $0 [-n RUNS] [-b BYTES] [--fs tmpfs|ext4|both]" >&2; exit 100 ;;
	esac
done

if [ -z "${LOGBENCH_INNER:-}" ]; then
	mkdir -p "$here/bin"
	# The multi-call binary dispatches on its name: it must be called gosv.
	(cd "$root" && go build -o "$here/bin/gosv" ./cmd/gosv && go build -o "$here/bin/logbench" ./bench/cmd/logbench)
	out=$here/results/$(date -u +%Y%m%d-%H%M%S)-logging
	mkdir -p "$out"
	{
		echo "# logging, $(date -u +%FT%TZ), gosv $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo -dirty)"
		echo "# $(nproc) cpus, $(uname -r), s6 $(dpkg-query -W -f '${Version}' s6 2>/dev/null || echo '?'), runit $(dpkg-query -W -f '${Version}' runit 2>/dev/null || echo '?'), load $(cut -d' ' -f1-3 /proc/loadavg)"
		echo "# $runs runs of $bytes bytes per logger; command: bench/logging.sh -n $runs -b $bytes --fs $fs"
		LOGBENCH_INNER=1 unshare --mount --pid --fork --mount-proc --kill-child "$0" -n "$runs" -b "$bytes" --fs "$fs"
		echo "# load at the end $(cut -d' ' -f1-3 /proc/loadavg)"
	} | tee "$out/report.md"
	cp "$out/report.md" "$here/results/latest-logging.md"
	exit 0
fi

# PID 1 of the namespace from here on.
mount --make-rprivate /
mount -t tmpfs -o mode=0755 tmpfs /run
ext4=$(mktemp -d /var/tmp/gosv-logging.XXXXXX)
trap 'rm -rf "$ext4"' EXIT
lb=$here/bin/logbench
gosv=$here/bin/gosv

# median of the numbers on stdin
median() { sort -n | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }

for f in tmpfs ext4; do
	[ "$fs" = both ] || [ "$fs" = "$f" ] || continue
	base=/run/gosv-logging
	[ "$f" = tmpfs ] || base=$ext4/work
	echo
	echo "## throughput, $f: $bytes bytes of 60-byte lines, t stamps, median of $runs"
	echo
	echo "| logger | lines/s | MB/s | logger CPU s | runs (s) |"
	echo "|---|---|---|---|---|"
	for sys in gosv-in-process gosv-log s6-log svlogd; do
		case $sys in
		s6-log) command -v s6-log >/dev/null || { echo "| s6-log | not installed | | | |"; continue; } ;;
		svlogd) command -v svlogd >/dev/null || { echo "| svlogd | not installed | | | |"; continue; } ;;
		esac
		rows=()
		for _ in $(seq "$runs"); do
			rm -rf "$base"
			mkdir -p "$base"
			case $sys in
			gosv-in-process) row=$("$lb" svscan -gosv "$gosv" -bytes "$bytes" -dir "$base") ;;
			gosv-log) row=$("$lb" pipe -bytes "$bytes" -dir "$base/log" -- "$gosv" log t s16777215 n1000) ;;
			s6-log) row=$("$lb" pipe -bytes "$bytes" -dir "$base/log" -- s6-log t s16777215 n1000) ;;
			svlogd)
				mkdir -p "$base/log"
				printf 's16777215\nn1000\n' >"$base/log/config"
				row=$("$lb" pipe -bytes "$bytes" -dir "$base/log" -- svlogd -t) ;;
			esac
			rows+=("$row")
		done
		rm -rf "$base"
		secs=$(printf '%s\n' "${rows[@]}" | cut -f3 | median)
		lps=$(printf '%s\n' "${rows[@]}" | cut -f4 | median)
		mbs=$(printf '%s\n' "${rows[@]}" | cut -f5 | median)
		cpu=$(printf '%s\n' "${rows[@]}" | cut -f6 | median)
		[ "$sys" = gosv-in-process ] && cpu="(in the scanner)"
		all=$(printf '%s\n' "${rows[@]}" | cut -f3 | paste -sd' ')
		printf '| %s | %.0f | %.1f | %s | %s |\n' "$sys" "$lps" "$mbs" "$cpu" "$all"
	done
done

echo
echo "## memory: gosv svscan with 100 idle services (tmpfs)"
echo
rm -rf /run/gosv-idle && mkdir -p /run/gosv-idle
row=$("$lb" idle -gosv "$gosv" -n 100 -dir /run/gosv-idle)
rm -rf /run/gosv-idle
read -r _ n without with per <<<"$row"
echo "| services | PSS without loggers (KiB) | PSS with in-process loggers (KiB) | per logger (KiB) |"
echo "|---|---|---|---|"
echo "| $n | $without | $with | $per |"
