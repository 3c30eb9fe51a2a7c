#!/bin/bash
# bench/reexec.sh: time of an in-place re-exec of gosv svscan (issue 15),
# from the command to the new scanner accepting control.
#
#   bench/reexec.sh [GOSV_BINARY] [SERVICES] [REPS]
#
# One scanner with SERVICES (default 1000) services, a real sleep(1)
# each, one in four with an in-process logger (log-script); once all are
# up, REPS (default 5) times `gosv svscanctl -X`, which returns once the
# re-exec'd scanner has adopted everything and accepts control. Prints
# each wall time (the client's, including its own start) and the
# scanner's own figure ("re-executed in N ms": from the letter to the
# end of the new image's setup), then checks that no run was restarted.
# Only processes this script started are stopped, by pid.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gosv=${1:-}
n=${2:-1000}
reps=${3:-5}
# State on tmpfs, as /run is in production (GOSV_BENCH_TMP=/var/tmp for
# a disk: every adoption writes a few small files, which ext4 makes slower).
tmp=$(mktemp -d "${GOSV_BENCH_TMP:-/dev/shm}/gosv-reexec.XXXXXX")
scanner=
cleanup() {
	if [ -n "$scanner" ]; then
		"$gosv" svscanctl -t "$tmp/scan" 2>/dev/null || kill "$scanner" 2>/dev/null
		wait "$scanner" 2>/dev/null || true
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -z "$gosv" ]; then
	mkdir -p "$tmp/bin"
	(cd "$root" && go build -o "$tmp/bin/gosv" ./cmd/gosv)
	gosv=$tmp/bin/gosv
fi
mkdir -p "$tmp/scan" "$tmp/svc"
dirs=()
for i in $(seq 1 "$n"); do
	d=$tmp/svc/s$i
	mkdir -p "$d"
	printf '#!/bin/sh\nexec sleep 100000\n' >"$d/run"
	chmod 755 "$d/run"
	if [ $((i % 4)) = 0 ]; then
		echo "n2 $tmp/log$i" >"$d/log-script"
	fi
	ln -s "$d" "$tmp/scan/s$i"
	dirs+=("$d")
done
mkfifo "$tmp/ready"
exec 4<>"$tmp/ready"
"$gosv" svscan -d 4 "$tmp/scan" 2>"$tmp/scanner.log" &
scanner=$!
read -r -t 60 _ <&4
exec 4>&-
"$gosv" svwait -u -t 120000 "${dirs[@]}"
pids() { cat "$tmp"/svc/*/supervise/gosv/pid | sort | md5sum; }
before=$(pids)
echo "gosv svscan, $n services ($((n / 4)) with in-process loggers), $(nproc) cores, $(uname -r)"
echo "command: GOSV_BENCH_TMP=${GOSV_BENCH_TMP:-/dev/shm} bench/reexec.sh ${1:-} $n $reps ($(df --output=fstype "$tmp" | tail -1))"
for r in $(seq 1 "$reps"); do
	t0=$(date +%s%N)
	"$gosv" svscanctl -X "$tmp/scan"
	t1=$(date +%s%N)
	own=$(grep -o 're-executed in .* set up)' "$tmp/scanner.log" | tail -1)
	echo "reexec $r: $(((t1 - t0) / 1000000)) ms (svscanctl -X, wall); scanner: $own; $(ls /proc/$scanner/fd | wc -l) fds, $(ls /proc/$scanner/task | wc -l) threads, $(grep -c . /proc/$scanner/maps) maps"
done
[ "$(pids)" = "$before" ] && echo "runs: unchanged ($n pids)" || { echo "runs CHANGED"; exit 1; }
kill -0 "$scanner" && echo "scanner: same pid $scanner"
