#!/bin/bash
# bench/health.sh: what health checks cost the scanner (issue 11).
#
#   bench/health.sh [-n SERVICES] [-w SECONDS] [-r RESTARTS] [GOSV_BINARY]
#
# 1. CPU and PSS of one gosv svscan with SERVICES (default 1000) services
#    (each a real sleep(1)), first without health checks, then with an
#    HTTP check every 10 s (health-check http://127.0.0.1:PORT/, one
#    shared server, bench/cmd/healthbench serve): the scanner's CPU over a
#    window of SECONDS (default 60) after every service had its first
#    check, and its PSS; the difference is what the checks cost.
# 2. The time from a failing check to the restart: one service whose own
#    HTTP server answers 503 after 1.5 s, checked every 200 ms (retries
#    1); RESTARTS (default 20) times, from the failing result
#    (supervise/gosv/health "at") to the new run's up stamp.
# Everything runs in a private PID namespace: its end kills whatever is
# left; nothing outside it is touched.
set -euo pipefail
if [ -z "${HEALTH_BENCH_INNER:-}" ]; then
	exec unshare --pid --fork --mount-proc --kill-child env HEALTH_BENCH_INNER=1 "$0" "$@"
fi
n=1000 window=60 restarts=20
while getopts n:w:r: o; do
	case $o in
	n) n=$OPTARG ;;
	w) window=$OPTARG ;;
	r) restarts=$OPTARG ;;
	*) exit 100 ;;
	esac
done
shift $((OPTIND - 1))
root=$(cd "$(dirname "$0")/.." && pwd)
gosv=${1:-}
tmp=$(mktemp -d /tmp/gosv-health.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
if [ -z "$gosv" ]; then
	(cd "$root" && go build -o "$tmp/gosv" ./cmd/gosv)
	gosv=$tmp/gosv
fi
(cd "$root" && go build -o "$tmp/healthbench" ./bench/cmd/healthbench)
hb=$tmp/healthbench

# start_scanner DIR: start gosv svscan on DIR, wait until every service is up.
start_scanner() {
	mkfifo "$tmp/ready.$$"
	exec 4<>"$tmp/ready.$$"
	rm "$tmp/ready.$$"
	"$gosv" svscan -d 4 "$1" 2>>"$tmp/scanner.log" &
	scanner=$!
	read -r -t 60 _ <&4
	exec 4>&-
	"$gosv" svwait -u -t 120000 "$1"/*
}

stop_scanner() {
	kill "$scanner"
	wait "$scanner" || true
}

# make_services DIR CHECK: SERVICES services sleeping, with CHECK if set.
make_services() {
	mkdir -p "$1"
	for i in $(seq "$n"); do
		d=$tmp/svc/$(basename "$1")/s$i
		mkdir -p "$d"
		printf '#!/bin/sh\nexec sleep 1000000\n' >"$d/run"
		chmod 755 "$d/run"
		if [ -n "$2" ]; then
			echo "$2" >"$d/health-check"
			echo 10000 >"$d/health-timer"
			echo 2000 >"$d/health-timeout"
		fi
		ln -s "$d" "$1/s$i"
	done
}

coproc server { exec "$hb" serve 127.0.0.1:0; }
read -r port <&"${server[0]}"

echo "# bench/health.sh -n $n -w $window -r $restarts"
echo "# $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg), gosv $(cd "$root" && git rev-parse --short HEAD)"
echo
echo "| services | checks | scanner CPU (% of one core) | scanner PSS (KiB) |"
echo "|---|---|---|---|"
declare -A pss cpu
for mode in none http; do
	check=
	[ "$mode" = http ] && check="http://127.0.0.1:$port/"
	make_services "$tmp/scan-$mode" "$check"
	start_scanner "$tmp/scan-$mode"
	# NOTE: waits on time by design: every service's first check comes
	# 10 s (health-timer) after its start; the window starts after that.
	sleep 12
	read -r c p < <("$hb" usage "$scanner" "$window" | sed 's/cpu_pct=\([^ ]*\) pss_kib=\(.*\)/\1 \2/')
	cpu[$mode]=$c pss[$mode]=$p
	if [ "$mode" = http ]; then
		healthy=$(grep -l '"health":"healthy"' "$tmp"/svc/scan-http/*/supervise/gosv/health | wc -l)
		echo "| $n | HTTP every 10 s ($healthy healthy) | $c | $p |"
	else
		echo "| $n | none | $c | $p |"
	fi
	stop_scanner
done
awk -v n="$n" -v c0="${cpu[none]}" -v c1="${cpu[http]}" -v p0="${pss[none]}" -v p1="${pss[http]}" 'BEGIN {
	printf "\nadded by the checks: %.3f%% of one core, %.2f KiB PSS per service\n", c1 - c0, (p1 - p0) / n }'

# 2. Failing check → restart.
mkdir -p "$tmp/scan-lat" "$tmp/svc/lat"
d=$tmp/svc/lat
lport=$((port + 1))
printf '#!/bin/sh\nexec %s serve 127.0.0.1:%s -fail-after 1.5s >/dev/null\n' "$hb" "$lport" >"$d/run"
chmod 755 "$d/run"
echo "http://127.0.0.1:$lport/" >"$d/health-check"
echo 200 >"$d/health-timer"
echo 1000 >"$d/health-timeout"
ln -s "$d" "$tmp/scan-lat/lat"
start_scanner "$tmp/scan-lat"
echo
echo "failing HTTP check → restart (health-timer 200 ms, retries 1, down-signal SIGTERM):"
"$hb" latency "$d" "$restarts"
stop_scanner
