#!/bin/bash
# PID 1 of the benchmark's private mount+PID namespace (started by run.sh).
# Runs every trial in a nested PID namespace and appends its results to
# $BENCH_OUT/raw.tsv.
set -euo pipefail
here=$BENCH_HERE
raw=$BENCH_OUT/raw.tsv
log=$BENCH_OUT/trials.log
: >"$raw"

# A private /run: s6, runit and daemontools write nothing there, but
# supervise-daemon hard-codes /run/openrc (each trial bind-mounts its own
# directory there).
mount -t tmpfs -o mode=0755 tmpfs /run
mkdir -p /run/openrc

# Run one trial in its own PID namespace. Output lines "key value" become raw
# result lines; a failure becomes a note.
#   trial BENCH SYSTEM FS LABEL TRIAL-ARGS...
trial() {
	local bench=$1 sys=$2 fs=$3 label=$4
	shift 4
	local w=$base/$sys-$bench-$label
	local tlog=$w.trial.log # per trial: idle trials run side by side
	rm -rf "$w"
	mkdir -p "$w"
	echo "== $bench $sys $fs $label $(date +%T)" >"$tlog"
	local rc=0 lines
	# timeout ends unshare, whose --kill-child ends the trial's PID 1 and so
	# the whole trial namespace.
	lines=$(timeout -k 5 300 unshare --pid --fork --mount-proc --kill-child \
		bash "$here/lib/trial.sh" "$bench" "$sys" "$w" "$@" 2>>"$tlog") || rc=$?
	local out=""
	if [ $rc -ne 0 ]; then
		# Keep the supervisor's own log for the post-mortem.
		cat "$w"/log "$w"/*.log >"$BENCH_OUT/fail-$bench-$fs-$sys-$label.log" 2>/dev/null || true
		local why
		why=$(grep -v -e '^==' -e '^ *+' -e '^$' "$tlog" | tail -n 1 | tr '|\t' '/ ' | cut -c1-160)
		out=$(printf '%s\t%s\t%s\tnote\tfailed (%s, exit %d): %s' "$bench" "$fs" "$sys" "$label" "$rc" "$why")$'\n'
	fi
	echo "$lines" >>"$tlog"
	while read -r k v; do
		[ -z "$k" ] || out+=$(printf '%s\t%s\t%s\t%s\t%s' "$bench" "$fs" "$sys" "$k" "$v")$'\n'
	done <<<"$lines"
	printf '%s' "$out" >>"$raw" # one write per trial
	cat "$tlog" >>"$log"
	rm -rf "$w" "$tlog"
	echo "   $bench $sys $fs $label: $(echo $lines)" >&2
}

available() {
	case $1 in
	gosv) [ -z "$GOSV_NOTE" ] || { echo "$GOSV_NOTE"; return 1; } ;;
	s6) command -v s6-svscan >/dev/null || { echo "not installed"; return 1; } ;;
	runit) command -v runsvdir >/dev/null || { echo "not installed"; return 1; } ;;
	daemontools) command -v svscan >/dev/null && command -v supervise >/dev/null || { echo "not installed"; return 1; } ;;
	openrc) command -v supervise-daemon >/dev/null || { echo "not installed"; return 1; } ;;
	supervisord) command -v supervisord >/dev/null || { echo "not installed"; return 1; } ;;
	esac
}

for fs in $BENCH_FSS; do
	case $fs in
	tmpfs) base=/run/gosv-bench ;;
	ext4)
		base=$(mktemp -d /var/tmp/gosv-bench.XXXXXX)
		trap 'rm -rf "$base"' EXIT
		;;
	esac
	mkdir -p "$base"
	echo "== fs $fs: $base ($(findmnt -no FSTYPE -T "$base"))" >>"$log"
	for bench in $BENCH_BENCHES; do
		idle_systems=()
		# The floor under every restart and bring-up figure: fork+exec of
		# the same run scripts by the measuring helper itself, no supervisor.
		case $bench in
		restart | scale) trial restart baseline "$fs" n30 ;;
		bringup) for i in 1 2 3; do trial bringup baseline "$fs" "t$i" "$i" 0; done ;;
		esac
		for sys in ${BENCH_SYSTEMS//,/ }; do
			[ "$sys" != baseline ] || continue
			if ! why=$(available "$sys"); then
				printf '%s\t%s\t%s\tnote\t%s\n' "$bench" "$fs" "$sys" "$why" >>"$raw"
				continue
			fi
			# supervisord keeps no per-service state on disk, so the file
			# system pass says nothing about it, and it is the slowest to
			# start (about 20 programs a second here): tmpfs only.
			if [ "$sys" = supervisord ] && [ "$fs" != tmpfs ]; then
				printf '%s\t%s\t%s\tnote\t%s\n' "$bench" "$fs" "$sys" "skipped: no per-service state on disk (see tmpfs)" >>"$raw"
				continue
			fi
			case $bench in
			memory)
				for n in 1 100 1000; do trial memory "$sys" "$fs" "n$n" "$n"; done
				;;
			restart) trial restart "$sys" "$fs" k15 ;;
			scale)
				# Repetitions interleaved with the sizes, so that a change
				# of the machine's load spreads over every size.
				for ((r = 1; r <= BENCH_REPS; r++)); do
					for n in ${BENCH_SIZES//,/ }; do trial scale "$sys" "$fs" "n$n-r$r" "$n" "$r"; done
				done
				;;
			bringup)
				# runsvdir and svscan rescan every 5 s: start the three
				# trials at different phases of that period. The others
				# only need a moment to reach their idle loop.
				case $sys in
				runit | daemontools) settles="0.5 2.2 3.9" ;;
				supervisord) settles="0.3" ;; # ~10 s a trial: one is enough
				*) settles="0.3 0.3 0.3" ;;
				esac
				i=0
				for s in $settles; do
					i=$((i + 1))
					trial bringup "$sys" "$fs" "t$i" "$i" "$s"
				done
				;;
			idle) idle_systems+=("$sys") ;;
			esac
		done
		if [ "$bench" = idle ] && [ ${#idle_systems[@]} -gt 0 ]; then
			# Idle trials run side by side, each in its own namespace: they
			# meet at a barrier once all their services are up, then share
			# one quiet settle period and one window. Ten seconds of
			# waiting, once instead of once per system.
			barrier=$base/idle-barrier
			: >"$barrier"
			pids=()
			for sys in "${idle_systems[@]}"; do
				trial idle "$sys" "$fs" n100 "$barrier" "${#idle_systems[@]}" &
				pids+=($!)
			done
			wait "${pids[@]}"
			rm -f "$barrier"
		fi
	done
	if [ "$fs" = ext4 ]; then rm -rf "$base"; fi
done
