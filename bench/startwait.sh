#!/bin/bash
# What start_wait costs a runlevel: wall time of `openrc benchsw`, which
# starts 100 supervisor=gosv services without a readiness source, with
# start_wait 0, 250ms and 1s (set for every gosv service at once, in
# /etc/conf.d/gosv-svscan), in a serial and in a parallel (rc_parallel=YES)
# runlevel. See bench/README.md, "startwait".
#
#   bench/startwait.sh [-n ROUNDS] [-s "0 250ms 1s"] [-c COUNT]
#
# Needs root (namespaces, overlay mounts), Go and Debian's openrc. As
# bench/openrc.sh: the real OpenRC runs in a private mount+PID namespace
# whose PID 1 is the test suite's testinit, with copy-on-write overlays on
# /etc, /usr and /var and a tmpfs on /run, where `make install` puts gosv,
# its hook and gosv-svscan. Inside, every runlevel link of the host's copy
# is removed first, so that `openrc RUNLEVEL` starts only the benchmark's
# services: nothing reaches the host. Rounds are interleaved: round i runs
# every configuration before round i+1.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=3
waits="0 250ms 1s"
count=100
while [ $# -gt 0 ]; do
	case $1 in
	-n) n=$2; shift 2 ;;
	-s) waits=$2; shift 2 ;;
	-c) count=$2; shift 2 ;;
	--inner) inner=1; shift ;;
	*) echo "usage: $0 [-n ROUNDS] [-s \"0 250ms 1s\"] [-c COUNT]" >&2; exit 100 ;;
	esac
done

# setup: the services and two runlevels, benchsw (gosv-svscan and the
# services) and benchoff (gosv-svscan alone: the scanner's cold start is
# not what is measured).
setup() {
	local h=$1 i name
	rm -f /etc/runlevels/*/*
	mkdir -p /etc/runlevels/benchsw /etc/runlevels/benchoff
	for ((i = 1; i <= count; i++)); do
		name=$(printf 'bench-sw-%03d' "$i")
		printf '#!/sbin/openrc-run\nsupervisor=gosv\ncommand=%s\n' "$h" >"/etc/init.d/$name"
		chmod 0755 "/etc/init.d/$name"
		ln -s "/etc/init.d/$name" /etc/runlevels/benchsw/
	done
	ln -s /etc/init.d/gosv-svscan /etc/runlevels/benchsw/
	ln -s /etc/init.d/gosv-svscan /etc/runlevels/benchoff/
}

# configure WAIT PARALLEL: the gosv-wide start_wait and rc_parallel, then a
# fresh dependency tree (OpenRC compares whole seconds: none is rebuilt
# inside a timed run).
configure() {
	sed -i '/^start_wait=/d' /etc/conf.d/gosv-svscan
	echo "start_wait=$1" >>/etc/conf.d/gosv-svscan
	sed -i '/^rc_parallel=/d' /etc/rc.conf
	echo "rc_parallel=\"$2\"" >>/etc/rc.conf
	rc-update -u >/dev/null 2>&1
}

if [ -n "${inner:-}" ]; then
	# Inside the namespace: its PID 1 is testinit, or this is a mistake
	# (setup removes every runlevel link).
	grep -q testinit /proc/1/cmdline || { echo "startwait.sh: --inner outside the benchmark namespace" >&2; exit 111; }
	out=$BENCH_OUT
	make -C "$root" install DESTDIR= PREFIX=/usr GO="$(command -v go)" >/dev/null
	# OpenRC's hybrid cgroup hierarchy is the host's: keep it out.
	if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs tmpfs /sys/fs/cgroup/unified; fi
	setup "$BENCH_HELPER"
	configure 0 NO
	openrc benchoff >/dev/null 2>&1
	: >"$out/raw.tsv"
	for ((round = 1; round <= n; round++)); do
		for par in NO YES; do
			for w in $waits; do
				configure "$w" "$par"
				t0=${EPOCHREALTIME/./}
				rc=0
				openrc benchsw >"$out/last.log" 2>&1 || rc=$?
				t1=${EPOCHREALTIME/./}
				started=$(ls /run/openrc/started | grep -c '^bench-sw-' || true)
				printf '%s\t%s\t%d\t%d\t%d\t%d\n' "$par" "$w" $((t1 - t0)) "$rc" "$started" "$round" >>"$out/raw.tsv"
				if [ "$rc" != 0 ] || [ "$started" != "$count" ]; then
					{
						echo "== rc_parallel=$par start_wait=$w: exit $rc, $started/$count started"
						cat "$out/last.log"
					} >>"$out/failures.log"
				fi
				openrc benchoff >/dev/null 2>&1
			done
		done
	done
	exit 0
fi

# PID 1: testinit in a private namespace (bench/lib/openrc-ns.sh).
. "$here/lib/openrc-ns.sh"
openrc_ns startwait

{
	echo "# start_wait: openrc benchsw, $count gosv services without readiness ($stamp)"
	echo
	echo "- command: \`bench/startwait.sh -n $n -s \"$waits\" -c $count\`; OpenRC $rcversion, gosv $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo -dirty)"
	echo "- machine: nproc $(nproc), kernel $(uname -r), load at start $(cut -d' ' -f1-3 /proc/loadavg)"
} >"$out/report.md"
nsenter --target "$pid1" --mount --pid -- env BENCH_OUT="$out" BENCH_HELPER="$work/rchelper" \
	PATH=/usr/local/go/bin:/usr/sbin:/usr/bin:/sbin:/bin bash "$here/startwait.sh" --inner -n "$n" -s "$waits" -c "$count"

# Report: per runlevel mode and start_wait, the median wall time and its
# cost over start_wait=0 in the same round (paired), per service too.
awk -F'\t' -v load="$(cut -d' ' -f1-3 /proc/loadavg)" -v count="$count" '
function sortv(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t } }
function median(a, n) { sortv(a, n); return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
{ k = $1 SUBSEP $2; t[k, $6] = $3 / 1e6; c[k]++; if ($4 != 0 || $5 != count) bad[k]++; if ($6 > nr) nr = $6
  if (!(k in seen)) { seen[k] = 1; order[++nk] = k } ; if (!($2 in zs)) { zs[$2] = 1; if (z == "") z = $2 } }
END {
	printf "- load at end %s\n\n| rc_parallel | start_wait | runs | median s | cost over start_wait=%s (paired) s | per service ms | failed runs |\n|---|---|---|---|---|---|---|\n", load, z
	for (i = 1; i <= nk; i++) {
		k = order[i]; split(k, kk, SUBSEP); m = 0; delete a; delete d
		for (r = 1; r <= nr; r++) if ((k, r) in t) { a[++m] = t[k, r]; if ((kk[1] SUBSEP z, r) in t) d[m] = t[k, r] - t[kk[1] SUBSEP z, r] }
		cost = median(d, m)
		printf "| %s | %s | %d | %.2f | %.2f | %.1f | %d |\n", kk[1], kk[2], m, median(a, m), cost, 1000 * cost / count, bad[k]
	}
}' "$out/raw.tsv" >>"$out/report.md"
[ -s "$out/failures.log" ] 2>/dev/null && echo "- failures: see $out/failures.log" >>"$out/report.md"
echo "- reproduce: \`bench/startwait.sh -n $n -s \"$waits\" -c $count\`" >>"$out/report.md"
cp "$out/report.md" "$here/results/latest-startwait.md"
cat "$out/report.md"
