#!/bin/bash
# PID-1 figures of `gosv init` (issue 12), against its peers run as PID 1
# of a fresh PID namespace the same way. See bench/README.md, "init".
#
#   bench/init.sh [-n ROUNDS] [-c SERVICES] [-o ORPHANS] [-m MEMSERVICES]
#
#   shutdown  time from SIGTERM to the exit of PID 1 with SERVICES (100)
#             services (`exec sleep`), for gosv init, s6-svscan (SIGTERM is
#             its t) and runit (stage 3 on SIGCONT with /etc/runit/stopit;
#             its /etc/runit/3 is `sv force-stop` then `sv exit` of every
#             service, as distributions' is)
#   orphans   ORPHANS (10000) children made in a burst by a process that
#             exits at once (tests/cmd/svhelper orphans): the zombies in
#             the namespace right after the maker exited, the time until a
#             count found none (bounded at 60 s; a count walks /proc, so
#             this is at least one walk), and the zombies left at the end
#   memory    PSS (smaps_rollup) of every process of the namespace that is
#             not a service, with MEMSERVICES (10) services: gosv init;
#             tini + supervisord; s6-svscan + one s6-supervise per service
#
# Needs root (unshare), Go, and the peers: s6, runit, tini, supervisor
# (`tests/real-deps.sh tini supervisor` installs the last two without
# starting anything on the host). A missing peer gets a "not installed" row.
# Every PID 1 is started by `unshare --pid --fork --mount-proc --kill-child`:
# when it exits, the kernel kills whatever is left in its namespace, and
# nothing is ever killed by name. Waiting here is a bench's: readiness of
# gosv and s6 is s6-svwait/gosv svwait; the process counts of runit,
# supervisord and the orphans are sampled every 10 ms with a deadline.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
n=3
count=100
orphans=10000
memcount=10
while [ $# -gt 0 ]; do
	case $1 in
	-n) n=$2; shift 2 ;;
	-c) count=$2; shift 2 ;;
	-o) orphans=$2; shift 2 ;;
	-m) memcount=$2; shift 2 ;;
	*) echo "usage: $0 [-n ROUNDS] [-c SERVICES] [-o ORPHANS] [-m MEMSERVICES]" >&2; exit 100 ;;
	esac
done
[ "$(id -u)" = 0 ] || { echo "init.sh: needs root (unshare)" >&2; exit 100; }

work=$(mktemp -d /var/tmp/gosv-init-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
go=$(command -v go || echo /usr/local/go/bin/go)
(cd "$root" && "$go" build -o "$work/bin/gosv" ./cmd/gosv && "$go" build -o "$work/bin/svhelper" ./tests/cmd/svhelper)
gosv=$work/bin/gosv
stamp=$(date -u +%Y%m%dT%H%M%SZ)
out=$here/results/$stamp-init
mkdir -p "$out"

now() { echo "${EPOCHREALTIME/./}"; } # microseconds

# services DIR N: N services that exec sleep.
services() {
	local d=$1 k=$2 i
	rm -rf "$d"
	mkdir -p "$d"
	for ((i = 1; i <= k; i++)); do
		mkdir "$d/s$i"
		printf '#!/bin/sh\nexec sleep 100000\n' >"$d/s$i/run"
		chmod 755 "$d/s$i/run"
	done
}

# start_pid1 CMD...: run CMD as PID 1 of a new namespace in the
# background; sets upid (unshare) and p1 (PID 1's host pid).
start_pid1() {
	unshare --pid --fork --mount-proc --kill-child "$@" >>"$out/pid1.log" 2>&1 &
	upid=$!
	p1=""
	local deadline=$(($(now) + 10000000))
	while [ -z "$p1" ]; do
		p1=$(cat /proc/"$upid"/task/*/children 2>/dev/null | tr -s ' ' '\n' | head -1 || :)
		[ "$(now)" -lt "$deadline" ] || { echo "init.sh: PID 1 did not start: $*" >&2; return 1; }
		[ -n "$p1" ] || sleep 0.01
	done
}

# nsprocs: host pids of every process in p1's PID namespace.
nsprocs() {
	local want pid
	want=$(readlink /proc/"$p1"/ns/pid)
	for pid in /proc/[0-9]*; do
		pid=${pid#/proc/}
		[ "$(readlink /proc/"$pid"/ns/pid 2>/dev/null)" = "$want" ] && echo "$pid"
	done
	return 0
}

# count_ns STATE|COMM...: processes of the namespace in state Z, or with that comm.
zombies() { local n=0 p; for p in $(nsprocs); do [ "$(awk '{print $3}' /proc/"$p"/stat 2>/dev/null)" = Z ] && n=$((n + 1)); done; echo $n; }
count_comm() { local n=0 p; for p in $(nsprocs); do [ "$(cat /proc/"$p"/comm 2>/dev/null)" = "$1" ] && n=$((n + 1)); done; echo $n; }

# wait_count FN ARG WANT: sample FN ARG every 10 ms until it prints WANT (60 s).
wait_count() {
	local deadline=$(($(now) + 60000000))
	while [ "$($1 "$2")" != "$3" ]; do
		[ "$(now)" -lt "$deadline" ] || return 1
		sleep 0.01
	done
}

# stop_pid1 SIG: signal PID 1 and wait for it; prints the microseconds.
stop_pid1() {
	local t0 t1
	t0=$(now)
	kill -"$1" "$p1"
	wait "$upid" || :
	t1=$(now)
	echo $((t1 - t0))
}

has() { command -v "$1" >/dev/null 2>&1; }

# statuses DIR: wait until every service of DIR has supervise/status.
nostatus() { local k=0 d; for d in "$1"/s*; do [ -e "$d/supervise/status" ] || k=$((k + 1)); done; echo $k; }
statuses() { wait_count nostatus "$1" 0; }

# --- shutdown -----------------------------------------------------------
shutdown_gosv() {
	services "$work/sv" "$count"
	start_pid1 "$gosv" init "$work/sv"
	statuses "$work/sv"
	"$gosv" svwait -u -t 60000 "$work"/sv/s* >/dev/null
	stop_pid1 TERM
}

shutdown_s6() {
	services "$work/sv" "$count"
	start_pid1 s6-svscan "$work/sv"
	wait_count count_comm s6-supervise "$count"
	statuses "$work/sv"
	s6-svwait -u -t 60000 "$work"/sv/s* >/dev/null
	stop_pid1 TERM
}

shutdown_runit() {
	services "$work/sv" "$count"
	mkdir -p "$work/runit/etc" "$work/runit/run"
	printf '#!/bin/sh\nexit 0\n' >"$work/runit/etc/1"
	printf '#!/bin/sh\nexec runsvdir -P %s\n' "$work/sv" >"$work/runit/etc/2"
	printf '#!/bin/sh\nsv -w 196 force-stop %s/*\nsv exit %s/*\n' "$work/sv" "$work/sv" >"$work/runit/etc/3"
	chmod 755 "$work/runit/etc/1" "$work/runit/etc/2" "$work/runit/etc/3"
	rm -f "$work/runit/run/"*
	# runit reads /etc/runit/{1,2,3} and (Debian's build) /run/runit.stopit:
	# a private mount namespace gets ours there.
	unshare --mount --pid --fork --mount-proc --kill-child \
		sh -c 'mount --bind "$1/etc" /etc/runit && mount --bind "$1/run" /run && exec /sbin/runit' sh "$work/runit" >>"$out/pid1.log" 2>&1 &
	upid=$!
	p1=""
	while [ -z "$p1" ]; do p1=$(cat /proc/"$upid"/task/*/children 2>/dev/null | tr -s ' ' '\n' | head -1 || :); [ -n "$p1" ] || sleep 0.01; done
	wait_count count_comm sleep "$count"
	touch "$work/runit/run/runit.stopit"
	chmod 100 "$work/runit/run/runit.stopit"
	stop_pid1 CONT
}

# --- orphans ------------------------------------------------------------
# orphans_run: with PID 1 started, make the burst and report
# "zombies-at-maker-exit<TAB>ms-until-none<TAB>zombies-at-end".
orphans_run() {
	local t0 z0 t1 z1
	nsenter --target "$p1" --pid --mount -- "$work/bin/svhelper" orphans "$orphans" >/dev/null
	z0=$(zombies)
	t0=$(now)
	wait_count zombies "" 0 || :
	t1=$(now)
	z1=$(zombies)
	printf '%s\t%s\t%s\n' "$z0" $(((t1 - t0) / 1000)) "$z1"
}

orphans_gosv() {
	mkdir -p "$work/empty"
	start_pid1 "$gosv" init "$work/empty"
	local deadline=$(($(now) + 10000000))
	until "$gosv" svscanctl -a "$work/empty" 2>/dev/null; do
		[ "$(now)" -lt "$deadline" ] || return 1
		sleep 0.01
	done
	orphans_run
	stop_pid1 TERM >/dev/null
}

orphans_s6() {
	rm -rf "$work/empty" && mkdir -p "$work/empty"
	start_pid1 s6-svscan "$work/empty"
	orphans_run
	stop_pid1 TERM >/dev/null
}

orphans_tini() {
	start_pid1 tini -s -- sleep 100000
	orphans_run
	stop_pid1 TERM >/dev/null
}

# --- memory -------------------------------------------------------------
# pss_ns: KiB of PSS of every non-service process of the namespace, and
# how many processes that is.
pss_ns() {
	local sum=0 k=0 p v
	for p in $(nsprocs); do
		[ "$(cat /proc/"$p"/comm 2>/dev/null)" = sleep ] && continue
		v=$(awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup 2>/dev/null || echo 0)
		sum=$((sum + ${v:-0}))
		k=$((k + 1))
	done
	printf '%s\t%s\n' "$sum" "$k"
}

memory_gosv() {
	services "$work/sv" "$memcount"
	start_pid1 "$gosv" init "$work/sv"
	statuses "$work/sv"
	"$gosv" svwait -u -t 60000 "$work"/sv/s* >/dev/null
	pss_ns
	stop_pid1 TERM >/dev/null
}

memory_s6() {
	services "$work/sv" "$memcount"
	start_pid1 s6-svscan "$work/sv"
	wait_count count_comm s6-supervise "$memcount"
	statuses "$work/sv"
	s6-svwait -u -t 60000 "$work"/sv/s* >/dev/null
	pss_ns
	stop_pid1 TERM >/dev/null
}

memory_supervisord() {
	local i
	{
		printf '[supervisord]\nnodaemon=true\nlogfile=%s/supervisord.log\npidfile=%s/supervisord.pid\n' "$work" "$work"
		for ((i = 1; i <= memcount; i++)); do
			printf '[program:s%d]\ncommand=sleep 100000\nautorestart=true\nstartsecs=0\n' "$i"
		done
	} >"$work/supervisord.conf"
	start_pid1 tini -- supervisord -n -c "$work/supervisord.conf"
	wait_count count_comm sleep "$memcount"
	pss_ns
	stop_pid1 TERM >/dev/null
}

# --- run ----------------------------------------------------------------
: >"$out/raw.tsv"
for ((round = 1; round <= n; round++)); do
	printf 'shutdown\tgosv\t%s\n' "$(shutdown_gosv)" >>"$out/raw.tsv"
	has s6-svscan && printf 'shutdown\ts6-svscan\t%s\n' "$(shutdown_s6)" >>"$out/raw.tsv"
	has runsvdir && [ -x /sbin/runit ] && printf 'shutdown\trunit\t%s\n' "$(shutdown_runit)" >>"$out/raw.tsv"
	printf 'orphans\tgosv\t%s\n' "$(orphans_gosv)" >>"$out/raw.tsv"
	has s6-svscan && printf 'orphans\ts6-svscan\t%s\n' "$(orphans_s6)" >>"$out/raw.tsv"
	has tini && printf 'orphans\ttini\t%s\n' "$(orphans_tini)" >>"$out/raw.tsv"
	printf 'memory\tgosv\t%s\n' "$(memory_gosv)" >>"$out/raw.tsv"
	has s6-svscan && printf 'memory\ts6-svscan\t%s\n' "$(memory_s6)" >>"$out/raw.tsv"
	has tini && has supervisord && printf 'memory\ttini+supervisord\t%s\n' "$(memory_supervisord)" >>"$out/raw.tsv"
done

{
	echo "# init: gosv init as PID 1 ($stamp)"
	echo
	echo "- command: \`bench/init.sh -n $n -c $count -o $orphans -m $memcount\`; gosv $(git -C "$root" rev-parse --short HEAD)$(git -C "$root" diff --quiet || echo -dirty)"
	echo "- machine: nproc $(nproc), kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
	for p in s6 runit tini supervisor; do
		echo "- $p: $(dpkg-query -W -f='${Version}' "$p" 2>/dev/null || echo 'not installed')"
	done
	echo
	awk -F'\t' -v count="$count" -v orphans="$orphans" -v mem="$memcount" '
	function sortv(a, n,   i, j, t) { for (i = 2; i <= n; i++) { t = a[i]; for (j = i - 1; j > 0 && a[j] > t; j--) a[j+1] = a[j]; a[j+1] = t } }
	function median(a, n) { sortv(a, n); return (n % 2) ? a[(n+1)/2] : (a[n/2] + a[n/2+1]) / 2 }
	$1 == "shutdown" { k = $2; s[k, ++ns[k]] = $3 / 1000; if (!(k in so)) { so[k] = 1; sord[++nso] = k } }
	$1 == "orphans" { k = $2; o0[k] = o0[k] " " $3; ot[k, ++no[k]] = $4; o1[k] = o1[k] " " $5; if (!(k in oo)) { oo[k] = 1; oord[++noo] = k } }
	$1 == "memory" { k = $2; m[k, ++nm[k]] = $3; mp[k] = $4; if (!(k in mo)) { mo[k] = 1; mord[++nmo] = k } }
	END {
		printf "## shutdown: SIGTERM (runit: SIGCONT with stopit) to exit of PID 1, %d services\n\n| PID 1 | runs | median ms | all ms |\n|---|---|---|---|\n", count
		for (i = 1; i <= nso; i++) { k = sord[i]; all = ""; delete a; for (j = 1; j <= ns[k]; j++) { a[j] = s[k, j]; all = all sprintf(" %.0f", s[k, j]) }; printf "| %s | %d | %.0f |%s |\n", k, ns[k], median(a, ns[k]), all }
		printf "\n## orphans: %d orphan exits in a burst\n\n| PID 1 | zombies right after the maker exited | ms until a count found none (one count is a walk of /proc) | zombies left at the end (60 s bound) |\n|---|---|---|---|\n", orphans
		for (i = 1; i <= noo; i++) { k = oord[i]; all = ""; for (j = 1; j <= no[k]; j++) all = all " " ot[k, j]; printf "| %s |%s |%s |%s |\n", k, o0[k], all, o1[k] }
		printf "\n## memory: PSS of the supervision tree (every process but the services), %d services\n\n| PID 1 and tree | processes | median KiB | all KiB |\n|---|---|---|---|\n", mem
		for (i = 1; i <= nmo; i++) { k = mord[i]; all = ""; delete a; for (j = 1; j <= nm[k]; j++) { a[j] = m[k, j]; all = all " " m[k, j] }; printf "| %s | %d | %.0f |%s |\n", k, mp[k], median(a, nm[k]), all }
	}' "$out/raw.tsv"
} >"$out/report.md"
cp "$out/report.md" "$here/results/latest-init.md"
cat "$out/report.md"
