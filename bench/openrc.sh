#!/bin/bash
# OpenRC backends side by side, in one namespace and one run: wall time of
# `rc-service X start|status|stop` for a supervisor=gosv service against the
# same daemon under supervise-daemon and start-stop-daemon, gosv's
# readiness overhead, the cold start of gosv-svscan, and a daemon that
# forks itself (pidfile) under gosv and start-stop-daemon, with its restart
# latency after a SIGKILL (bench/cmd/forklat), and the daemon on a real
# s6-svscan: gosv_backend=s6 against OpenRC's own supervisor=s6, and on a
# real runsvdir: gosv_backend=runit against OpenRC's own supervisor=runit.
# See bench/README.md, "openrc".
#
#   bench/openrc.sh [-n ROUNDS]
#   GOSV_BENCH_OPENRC_063=/var/tmp/gosv-openrc-0.63/build bench/openrc.sh [-n ROUNDS]
#                      the same on upstream's OpenRC 0.63 (tests/openrc-0.63/build.sh)
#
# Needs root (namespaces, overlay mounts), Go and Debian's openrc. The real
# OpenRC runs in a private mount+PID namespace whose PID 1 is the test
# suite's testinit (a prompt reaper, as a real init: the spec's caveat on
# lazy reapers), with copy-on-write overlays on /etc, /usr and /var and a
# tmpfs on /run, where `make install` puts gosv, its hook and gosv-svscan.
# Nothing reaches the host. Rounds are interleaved: round i runs every
# service's start, status and stop before round i+1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=30
while [ $# -gt 0 ]; do
	case $1 in
	-n) n=$2; shift 2 ;;
	--inner) inner=1; shift ;;
	*) echo "usage: $0 [-n ROUNDS]" >&2; exit 100 ;;
	esac
done

# The daemon every service runs: rchelper, readiness on fd 3 when asked.
services() {
	local h=$1
	mk() {
		local name=$1
		shift
		{
			echo '#!/sbin/openrc-run'
			printf '%s\n' "$@"
		} >"/etc/init.d/$name"
		chmod 0755 "/etc/init.d/$name"
	}
	mk bench-ssd "command=$h" 'command_background=yes' 'pidfile=/run/bench-ssd.pid'
	mk bench-sd 'supervisor=supervise-daemon' "command=$h"
	mk bench-gosv 'supervisor=gosv' "command=$h"
	# The same daemon, ready 200 ms after exec: with and without notify.
	mk bench-gosv-r200 'supervisor=gosv' "command=$h" 'command_args="-ready-fd 3 -ready-after 200"' 'notify=fd:3'
	mk bench-gosv-u200 'supervisor=gosv' "command=$h" 'command_args="-ready-fd 3 -ready-after 200"'
	# Ready at once: start - u200's start = spawn of run to the daemon's
	# readiness write (exec helper, daemon start-up, event), for diagnosis.
	mk bench-gosv-r0 'supervisor=gosv' "command=$h" 'command_args="-ready-fd 3"' 'notify=fd:3'
	# A daemon that forks itself and writes its pidfile (rchelper
	# -daemonize), as distributions' scripts run it: the same script under
	# start-stop-daemon and gosv (forking mode).
	mk bench-ssd-fork "command=$h" 'command_args="-daemonize /run/bench-ssd-fork.pid"' 'pidfile=/run/bench-ssd-fork.pid'
	mk bench-gosv-fork 'supervisor=gosv' "command=$h" 'command_args="-daemonize /run/bench-gosv-fork.pid"' \
		'pidfile=/run/bench-gosv-fork.pid' 'respawn_max=0'
	# Restart latency's reference: the daemon in the foreground, ready at once.
	mk bench-gosv-fg 'supervisor=gosv' "command=$h" 'command_args="-ready-fd 3"' 'notify=fd:3' 'respawn_max=0'
	# The same daemon on a real s6-svscan (issue 14): gosv's backend
	# (gosv_backend=s6) against OpenRC's own supervisor=s6, whose service
	# directory is hand-written in /var/svc.d.
	mk bench-gosv-s6 'supervisor=gosv' 'gosv_backend=s6' "command=$h"
	mk bench-s6 'supervisor=s6' 's6_service_path=/var/svc.d/bench-s6'
	mkdir -p /var/svc.d/bench-s6
	printf '#!/bin/sh\nexec %s\n' "$h" >/var/svc.d/bench-s6/run
	chmod 0755 /var/svc.d/bench-s6/run
	# And on a real runsvdir: gosv_backend=runit against OpenRC's own
	# supervisor=runit, whose service directory is hand-written in /etc/sv.
	mk bench-gosv-runit 'supervisor=gosv' 'gosv_backend=runit' "command=$h"
	mk bench-runit 'supervisor=runit' 'runit_service=/etc/sv/bench-runit'
	mkdir -p /etc/sv/bench-runit
	printf '#!/bin/sh\nexec %s\n' "$h" >/etc/sv/bench-runit/run
	chmod 0755 /etc/sv/bench-runit/run
	rc-update -u >/dev/null 2>&1
}

# now_us: microseconds, from bash's EPOCHREALTIME (no fork).
now_us() { local t=${EPOCHREALTIME/./}; echo "$t"; }

# timed OP SVC...: one rc-service call, its wall time appended to raw.tsv.
timed() {
	local label=$1
	shift
	local t0 t1 rc=0
	t0=${EPOCHREALTIME/./}
	"$@" >"$out/last.log" 2>&1 || rc=$?
	t1=${EPOCHREALTIME/./}
	printf '%s\t%d\t%d\t%d\n' "$label" $((t1 - t0)) "$rc" "${round:-0}" >>"$out/raw.tsv"
	if [ "$rc" != 0 ]; then
		{
			echo "== $label: exit $rc after $(((t1 - t0) / 1000)) ms"
			cat "$out/last.log"
		} >>"$out/failures.log"
	fi
}

if [ -n "${inner:-}" ]; then
	# Inside the namespace.
	out=$BENCH_OUT
	rcsvc=/run/openrc/gosv-services
	make -C "$root" install DESTDIR= PREFIX=/usr GO="$(command -v go)" >/dev/null
	# OpenRC's hybrid cgroup hierarchy is the host's: keep it out.
	if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs tmpfs /sys/fs/cgroup/unified; fi
	services "$BENCH_HELPER"
	: >"$out/raw.tsv"
	# Cold start: gosv-svscan alone, and a gosv service pulling it in.
	for ((i = 0; i < n / 3 + 1; i++)); do
		timed "gosv-svscan start (cold)" rc-service gosv-svscan start
		rc-service gosv-svscan stop >/dev/null 2>&1
		timed "bench-gosv start (cold: pulls gosv-svscan in)" rc-service bench-gosv start
		rc-service gosv-svscan stop >/dev/null 2>&1
	done
	rc-service gosv-svscan start >/dev/null 2>&1
	rc-service s6-svscan start >/dev/null 2>&1 || echo "s6-svscan did not start" >>"$out/failures.log"
	rc-service runsvdir start >/dev/null 2>&1 || echo "runsvdir did not start" >>"$out/failures.log"
	# execline's commands, which 0.63's s6 backend runs by name.
	for f in /usr/lib/execline/bin/*; do [ -e "/usr/local/bin/${f##*/}" ] || ln -s "$f" /usr/local/bin/ 2>/dev/null || :; done
	for ((round = 1; round <= n; round++)); do
		for s in bench-ssd bench-sd bench-gosv bench-gosv-r200 bench-gosv-u200 bench-gosv-r0 bench-ssd-fork bench-gosv-fork bench-gosv-s6 bench-s6 bench-gosv-runit bench-runit; do
			timed "$s start" rc-service "$s" start
			timed "$s status" rc-service "$s" status
			timed "$s stop" rc-service "$s" stop
		done
	done
	# runsv sleeps a second after the death of a run that lived less than
	# a second (runsv.c), which the stops above pay: the runit stops again,
	# of a daemon up for 1.5 s (NOTE: the sleep is the condition measured).
	for ((round = 1; round <= (n + 1) / 2; round++)); do
		for s in bench-gosv-runit bench-runit; do
			rc-service "$s" start >/dev/null 2>&1
			sleep 1.5
			timed "$s stop (up 1.5 s)" rc-service "$s" stop
		done
	done
	# Restart latency after a SIGKILL: kill to up-and-ready with a new pid.
	: >"$out/forklat.txt"
	for s in bench-gosv-fork bench-gosv-fg; do
		rc-service "$s" start >/dev/null 2>&1
		"$BENCH_FORKLAT" -n "$n" "$rcsvc/$s" "$s" >>"$out/forklat.txt" 2>>"$out/failures.log" || true
		rc-service "$s" stop >/dev/null 2>&1
	done
	exit 0
fi

# PID 1: testinit in a private namespace (bench/lib/openrc-ns.sh), plus
# the forking daemons' restart-latency probe.
. "$here/lib/openrc-ns.sh"
openrc_ns openrc
(cd "$root" && go build -o "$here/bin/" ./bench/cmd/forklat)
cp "$here/bin/forklat" "$work/"

{
	echo "# OpenRC backends: rc-service wall time ($stamp)"
	echo
	echo "- command: \`${GOSV_BENCH_OPENRC_063:+GOSV_BENCH_OPENRC_063=$GOSV_BENCH_OPENRC_063 }bench/openrc.sh -n $n\`; OpenRC $rcversion, gosv $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo -dirty)"
	echo "- machine: nproc $(nproc), kernel $(uname -r), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/report.md"
nsenter --target "$pid1" --mount --pid -- env BENCH_OUT="$out" BENCH_HELPER="$work/rchelper" BENCH_FORKLAT="$work/forklat" \
	PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin bash "$here/openrc.sh" --inner -n "$n"

# Report: median and p90 per label, then the targets.
awk -F'\t' -v load="$(cut -d' ' -f1-3 /proc/loadavg)" '
function sortv(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t } }
function median(a, n) { sortv(a, n); return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
# paired(x, y, k): median over rounds of x - y - k (ms): each round gives
# one difference, so a load change between rounds cancels out.
function paired(x, y, k,   r, m, d) { m = 0; for (r = 1; r <= nr; r++) if ((x, r) in byr && (y, r) in byr) d[++m] = byr[x, r] - byr[y, r] - k; return m ? median(d, m) : 0 }
function pairedratio(x, y,   r, m, d) { m = 0; for (r = 1; r <= nr; r++) if ((x, r) in byr && (y, r) in byr) d[++m] = byr[x, r] / byr[y, r]; return m ? median(d, m) : 0 }
{ k = $1; c[k]++; v[k, c[k]] = $2 / 1000; if ($3 != 0) bad[k]++; if ($4 > 0) { byr[k, $4] = $2 / 1000; if ($4 > nr) nr = $4 }
  if (!(k in seen)) { seen[k] = 1; order[++nk] = k } }
END {
	for (i = 1; i <= nk; i++) {
		k = order[i]; m = c[k]; delete a; for (j = 1; j <= m; j++) a[j] = v[k, j]
		med[k] = median(a, m); p90[k] = a[int(0.9 * m + 0.5) > 0 ? int(0.9 * m + 0.5) : 1]
	}
	printf "- load at end %s\n\n| rc-service call | n | median ms | p90 ms | failures |\n|---|---|---|---|---|\n", load
	for (i = 1; i <= nk; i++) { k = order[i]; printf "| %s | %d | %.1f | %.1f | %d |\n", k, c[k], med[k], p90[k], bad[k] }
	s = med["bench-ssd start"]; g = med["bench-gosv start"]
	printf "\nTargets (paired: the median over rounds of the per-round figure):\n\n"
	printf "- start: gosv %.1f ms vs start-stop-daemon %.1f ms (medians); target <= 1.2 x %.1f + 2 = %.1f ms: %s; paired ratio gosv/ssd %.2f\n", g, s, s, 1.2 * s + 2, (g <= 1.2 * s + 2) ? "met" : "MISSED", pairedratio("bench-gosv start", "bench-ssd start")
	printf "- start vs supervise-daemon: gosv %.1f ms, supervise-daemon %.1f ms; paired ratio %.2f\n", g, med["bench-sd start"], pairedratio("bench-gosv start", "bench-sd start")
	printf "- status: gosv %.1f, ssd %.1f, supervise-daemon %.1f ms; stop: gosv %.1f, ssd %.1f, supervise-daemon %.1f ms\n", med["bench-gosv status"], med["bench-ssd status"], med["bench-sd status"], med["bench-gosv stop"], med["bench-ssd stop"], med["bench-sd stop"]
	printf "- gosv vs supervise-daemon, paired ratios (target <= 1 each): start %.2f, status %.2f, stop %.2f\n", pairedratio("bench-gosv start", "bench-sd start"), pairedratio("bench-gosv status", "bench-sd status"), pairedratio("bench-gosv stop", "bench-sd stop")
	o = paired("bench-gosv-r200 start", "bench-gosv-u200 start", 200)
	printf "- readiness overhead (paired): start(ready 200 ms after exec) - 200 - start(same, no readiness) = %.1f ms: target <= 5 ms: %s\n", o, (o <= 5) ? "met" : "MISSED"
	printf "  (a daemon ready at once: start - start without readiness = %.1f ms, paired)\n", paired("bench-gosv-r0 start", "bench-gosv-u200 start", 0)
	printf "- cold start: gosv-svscan alone %.1f ms; a gosv service with gosv-svscan pulled in %.1f ms\n", med["gosv-svscan start (cold)"], med["bench-gosv start (cold: pulls gosv-svscan in)"]
	printf "- s6: gosv_backend=s6 start %.1f, status %.1f, stop %.1f ms; OpenRC supervisor=s6 start %.1f, status %.1f, stop %.1f ms\n", med["bench-gosv-s6 start"], med["bench-gosv-s6 status"], med["bench-gosv-s6 stop"], med["bench-s6 start"], med["bench-s6 status"], med["bench-s6 stop"]
	printf "- runit: gosv_backend=runit start %.1f (p90 %.1f), status %.1f, stop %.1f ms (up 1.5 s: %.1f); OpenRC supervisor=runit start %.1f (p90 %.1f), status %.1f, stop %.1f ms (up 1.5 s: %.1f)\n", med["bench-gosv-runit start"], p90["bench-gosv-runit start"], med["bench-gosv-runit status"], med["bench-gosv-runit stop"], med["bench-gosv-runit stop (up 1.5 s)"], med["bench-runit start"], p90["bench-runit start"], med["bench-runit status"], med["bench-runit stop"], med["bench-runit stop (up 1.5 s)"]
	printf "- forking daemon (pidfile), same script: gosv %.1f ms vs start-stop-daemon %.1f ms (medians), ratio %.2f; paired ratio %.2f; stop: gosv %.1f, ssd %.1f ms\n", med["bench-gosv-fork start"], med["bench-ssd-fork start"], med["bench-ssd-fork start"] ? med["bench-gosv-fork start"] / med["bench-ssd-fork start"] : 0, pairedratio("bench-gosv-fork start", "bench-ssd-fork start"), med["bench-gosv-fork stop"], med["bench-ssd-fork stop"]
}' "$out/raw.tsv" >>"$out/report.md"
{
	echo
	echo "Restart latency after a SIGKILL (bench/cmd/forklat: kill to up and ready with a new pid, ms):"
	echo
	sed 's/^/- /' "$out/forklat.txt"
} >>"$out/report.md"
echo "- reproduce: \`${GOSV_BENCH_OPENRC_063:+GOSV_BENCH_OPENRC_063=$GOSV_BENCH_OPENRC_063 }bench/openrc.sh -n $n\`" >>"$out/report.md"
cp "$out/report.md" "$here/results/latest-openrc.md"
cat "$out/report.md"
