#!/bin/bash
# bench/run.sh: compare gosv with s6, runit, daemontools, OpenRC's
# supervise-daemon and supervisord, side by side in one run.
#
#   bench/run.sh memory|restart|bringup|idle|all [--systems gosv,s6,...] [--fs tmpfs|ext4|both]
#   bench/run.sh scale [--systems gosv] [--fs tmpfs] [--sizes 10,100,1000,5000] [--reps 3]
#
# Everything runs inside a private mount+PID namespace with a private tmpfs on
# /run, and every trial in a nested PID namespace of its own, so nothing
# touches the host's /run, /etc/service or running services, and ending a
# trial's PID 1 ends every process it started. See bench/README.md.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(dirname "$here")
all_systems=gosv,s6,runit,daemontools,openrc,supervisord

usage() {
	echo "usage: bench/run.sh memory|restart|bringup|idle|all [--systems $all_systems] [--fs tmpfs|ext4|both]" >&2
	echo "       bench/run.sh scale [--systems gosv] [--fs tmpfs|ext4|both] [--sizes 10,100,1000,5000] [--reps 3]" >&2
	exit 2
}

[ $# -ge 1 ] || usage
bench=$1
shift
case $bench in
memory | restart | bringup | idle | scale) benches=$bench ;;
all) benches="memory restart bringup idle" ;;
*) usage ;;
esac
systems=$all_systems
fs=both
sizes=10,100,1000,5000
reps=3
if [ "$bench" = scale ]; then
	systems=gosv # the log CPU figure is gosv's alone; others on request
	fs=tmpfs
fi
while [ $# -gt 0 ]; do
	case $1 in
	--systems) systems=${2:?}; shift 2 ;;
	--systems=*) systems=${1#*=}; shift ;;
	--fs) fs=${2:?}; shift 2 ;;
	--fs=*) fs=${1#*=}; shift ;;
	--sizes) sizes=${2:?}; shift 2 ;;
	--sizes=*) sizes=${1#*=}; shift ;;
	--reps) reps=${2:?}; shift 2 ;;
	--reps=*) reps=${1#*=}; shift ;;
	*) usage ;;
	esac
done
case $fs in
tmpfs | ext4) fss=$fs ;;
both) fss="tmpfs ext4" ;;
*) usage ;;
esac
for s in ${systems//,/ }; do
	# "baseline" (no supervisor) always runs with restart; accept the name
	# so that the report's reproduce command for it works.
	case ,$all_systems,baseline, in *,$s,*) ;; *) echo "run.sh: unknown system $s" >&2; usage ;; esac
done
case $sizes,$reps in *[!0-9,]* | ,* | *,,*) echo "run.sh: --sizes and --reps take numbers" >&2; usage ;; esac
[ "$(id -u)" = 0 ] || { echo "run.sh: needs root (unshare, mount)" >&2; exit 1; }

# Helpers, and gosv itself when its source is there.
mkdir -p "$here/bin"
(cd "$root" && go build -o "$here/bin/latency" ./bench/cmd/latency && go build -o "$here/bin/benchutil" ./bench/cmd/benchutil)
GOSV=${GOSV:-$root/bin/gosv}
gosv_note=""
if [ -z "${GOSV_NO_BUILD:-}" ] && [ -d "$root/cmd/gosv" ] && [ "$GOSV" = "$root/bin/gosv" ]; then
	(cd "$root" && go build -o bin/gosv ./cmd/gosv) >&2 || gosv_note="not built (build failed)"
fi
if [ -z "$gosv_note" ]; then
	if [ ! -x "$GOSV" ]; then
		gosv_note="not built"
	elif ! "$GOSV" --help 2>&1 | grep -qE '^ +svscan '; then
		gosv_note="not built (no svscan)"
	fi
fi

stamp=$(date +%Y%m%d-%H%M%S)
out=$here/results/$stamp-$bench
mkdir -p "$out"
ver() { dpkg-query -W -f='${Version}' "$1" 2>/dev/null || echo missing; }
{
	echo "# gosv benchmarks: $bench ($stamp)"
	echo
	if [ "$bench" = scale ]; then
		echo "- command: \`bench/run.sh scale --systems $systems --fs $fs --sizes $sizes --reps $reps\`"
	else
		echo "- command: \`bench/run.sh $bench --systems $systems --fs $fs\`"
	fi
	echo "- machine: nproc $(nproc), kernel $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), $(awk '/MemTotal/{printf "%.0f GiB RAM", $2/1048576}' /proc/meminfo)"
	echo "- peers: s6 $(ver s6), runit $(ver runit), daemontools $(ver daemontools), openrc $(ver openrc), supervisor $(ver supervisor)"
	if [ -n "$gosv_note" ]; then
		echo "- gosv: $gosv_note"
	elif [ "$GOSV" = "$root/bin/gosv" ]; then
		echo "- gosv: bin/gosv built from the work tree at commit $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$root" diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)')"
	else
		echo "- gosv: $GOSV (given by GOSV)"
	fi
	echo "- load average at start: $(cut -d' ' -f1-3 /proc/loadavg) (the machine may be shared: compare systems within one run)"
	echo "- state: tmpfs = a private tmpfs on /run in the benchmark's mount namespace; ext4 = a scratch directory under /var/tmp ($(findmnt -no FSTYPE -T /var/tmp) on $(findmnt -no SOURCE -T /var/tmp))"
} >"$out/machine.md"

export BENCH_HERE=$here BENCH_OUT=$out BENCH_BENCHES=$benches BENCH_SYSTEMS=$systems BENCH_FSS=$fss
export BENCH_SIZES=$sizes BENCH_REPS=$reps
export GOSV GOSV_NOTE=$gosv_note
echo "run.sh: results in $out" >&2
# --kill-child: if run.sh is interrupted, the namespace's PID 1 dies and the
# kernel kills everything in it.
unshare --mount --pid --fork --mount-proc --kill-child bash "$here/lib/inner.sh"

echo "- load average at end: $(cut -d' ' -f1-3 /proc/loadavg)" >>"$out/machine.md"
"$here/bin/benchutil" report -raw "$out/raw.tsv" -machine "$out/machine.md" >"$out/report.md"
cat "$out/report.md"
cp "$out/report.md" "$here/results/latest-$bench.md"
