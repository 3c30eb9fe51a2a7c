#!/bin/bash
# One benchmark trial. It is PID 1 of a PID namespace of its own (see
# inner.sh): when it exits, the kernel kills the supervisor and every service,
# so there is nothing to clean up by name.
#
#   trial.sh memory  SYSTEM DIR N
#   trial.sh restart SYSTEM DIR
#   trial.sh bringup SYSTEM DIR TRIAL SETTLE
#   trial.sh idle    SYSTEM DIR BARRIER-FILE SYSTEMS-COUNT
#   trial.sh scale   SYSTEM DIR N REP
#
# Prints "key value" lines on stdout; everything else goes to stderr.
set -euo pipefail
bench=$1 sys=$2 W=$3
shift 3
here=$BENCH_HERE
bin=$here/bin
export LC_ALL=C # $EPOCHREALTIME must use a decimal point
ulimit -n "$(ulimit -Hn)"
exec 3>&1 1>&2 # results on fd 3 only
result() { echo "$1 $2" >&3; }
t0=$EPOCHREALTIME
# progress on stderr (trials.log): seconds since the trial started
progress() { echo "   +$(awk "BEGIN{printf \"%.2f\", $EPOCHREALTIME - $t0}")s $*" >&2; }

mkdir -p "$W/sv" "$W/svconf" "$W/scan" "$W/stamps" "$W/openrc"
: >"$W/marker"
# supervise-daemon keeps its state in /run/openrc, whatever RC_SVCDIR says:
# give it this trial's directory, on the file system under test.
mount --bind "$W/openrc" /run/openrc
mkdir -p /run/openrc/options /run/openrc/daemons /run/openrc/exclusive

# Processes that make up each supervision tree (comm, 15 characters).
case $sys in
gosv) comms=gosv ;;
s6) comms=s6-svscan,s6-supervise ;;
runit) comms=runsvdir,runsv ;;
daemontools) comms=svscan,supervise ;;
openrc) comms=supervise-daemon ;;
supervisord) comms=supervisord ;;
esac

# make_services KIND N: service directories svcNNNN in $W/sv (and, for
# supervisord, program sections in $W/svconf). KIND sleep appends "x\n" to
# $W/marker then execs sleep; KIND stamp appends "PID EPOCHREALTIME" to
# $W/stamps/NAME. Neither forks: echo and printf are builtins.
make_services() {
	local kind=$1 n=$2 i name ready="" names=()
	# s6-supervise restarts a dead service at once only if it signalled
	# readiness at least 1 s earlier; otherwise it waits 1 s after the death
	# (s6-supervise(8), "readiness"). So s6 and gosv services signal readiness on fd 3 (a builtin
	# write, after the stamp) unless RESTART_NOTIFY=0.
	if [ "$kind" = stamp ] && [ "${RESTART_NOTIFY:-1}" != 0 ]; then
		case $sys in s6 | gosv) ready=$'echo >&3\n' ;; esac
	fi
	for ((i = 1; i <= n; i++)); do
		printf -v name '%s/sv/svc%04d' "$W" "$i"
		names+=("$name")
	done
	[ "$n" -eq 0 ] || mkdir "${names[@]}" # one fork, not n
	for ((i = 1; i <= n; i++)); do
		printf -v name 'svc%04d' "$i"
		case $kind in
		sleep) printf '#!/bin/sh\necho x >> %s/marker\nexec sleep 100000\n' "$W" >"$W/sv/$name/run" ;;
		stamp)
			printf '#!/bin/bash\nprintf '\''%%s %%s\\n'\'' "$$" "$EPOCHREALTIME" >> %s/stamps/%s\n%sexec sleep 100000\n' \
				"$W" "$name" "$ready" >"$W/sv/$name/run"
			[ -z "$ready" ] || echo 3 >"$W/sv/$name/notification-fd"
			;;
		esac
		if [ "$sys" = supervisord ]; then
			printf '[program:%s]\ncommand=%s/sv/%s/run\nautorestart=true\nstartsecs=0\nstdout_logfile=NONE\nstderr_logfile=NONE\n' \
				"$name" "$W" "$name" >"$W/svconf/$name.conf"
		fi
	done
	[ "$n" -eq 0 ] || chmod +x "$W"/sv/*/run
	progress "made $n services"
}

# make_idle N: service directories idleNNNNN in $W/idle that append "x\n"
# to $W/marker and exec sleep: the rest of a big tree (scale).
make_idle() {
	local n=$1 i name names=()
	mkdir -p "$W/idle"
	for ((i = 1; i <= n; i++)); do
		printf -v name '%s/idle/idle%05d' "$W" "$i"
		names+=("$name")
	done
	[ "$n" -eq 0 ] || mkdir "${names[@]}" # one fork, not n
	for name in "${names[@]}"; do
		printf '#!/bin/sh\necho x >> %s/marker\nexec sleep 100000\n' "$W" >"$name/run"
	done
	[ "$n" -eq 0 ] || chmod +x "$W"/idle/*/run
	progress "made $n idle services"
}

# link_all: put every service in the scan directory before the supervisor starts.
link_all() {
	case $sys in
	openrc) ;;
	supervisord) ln -s "$W"/svconf/*.conf "$W/scan/" ;;
	*) ln -s "$W"/sv/* "$W/scan/" ;;
	esac
}

start_supervisor() {
	case $sys in
	gosv) GOSV_TRACE=$W/gosv-trace "$GOSV" svscan "$W/scan" >"$W/log" 2>&1 3>&- & ;;
	s6) s6-svscan -c "$s6max" "$W/scan" >"$W/log" 2>&1 3>&- & ;;
	runit) runsvdir -P "$W/scan" >"$W/log" 2>&1 3>&- & ;;
	daemontools) svscan "$W/scan" >"$W/log" 2>&1 3>&- & ;;
	openrc) bash "$here/lib/openrc-start.sh" "$W" 2 3>&- ;;
	supervisord)
		cat >"$W/supervisord.conf" <<-EOF
			[supervisord]
			nodaemon=true
			logfile=$W/supervisord.log
			pidfile=$W/supervisord.pid
			childlogdir=$W
			loglevel=warn
			minfds=4096
			minprocs=4096
			[unix_http_server]
			file=$W/supervisor.sock
			[rpcinterface:supervisor]
			supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
			[supervisorctl]
			serverurl=unix://$W/supervisor.sock
			[include]
			files=$W/scan/*.conf
		EOF
		supervisord -c "$W/supervisord.conf" >"$W/log" 2>&1 3>&- &
		;;
	esac
}

# wait_marker N: block (inotify) until N services have started.
wait_marker() {
	"$bin/benchutil" waitsize -file "$W/marker" -bytes $((2 * $1)) -timeout 120s >/dev/null
}

# procs_field KEY LINE: the value of KEY=... in a benchutil procs line.
procs_field() {
	local f
	for f in $2; do
		[ "${f%%=*}" = "$1" ] && echo "${f#*=}"
	done
	return 0
}

# s6-svscan supervises at most 500 services unless told otherwise (-c).
s6max=500

case $bench in
memory)
	n=$1
	[ "$n" -le "$s6max" ] || s6max=$n
	make_services sleep "$n"
	link_all
	start_supervisor
	progress "supervisor started"
	wait_marker "$n"
	progress "all $n services up"
	# Let start-up transients settle (a supervisor's first moments allocate
	# and free; the Go runtime returns freed pages in the background), so
	# the figure is the steady state. Not a synchronisation: every service
	# is already known to be running.
	sleep 1
	p=$("$bin/benchutil" procs -comm "$comms")
	result "pss_kib@$n" "$(procs_field pss_kib "$p")"
	result "procs@$n" "$(procs_field procs "$p")"
	;;
scale)
	# N idle services up first, then the restart benchmark's 15 services in
	# the same tree, then (gosv) the CPU per in-process log line.
	n=$1 r=$2
	[ "$n" -le 400 ] || s6max=$((n + 100))
	make_idle "$n"
	k=15
	make_services stamp "$k"
	[ "$n" -eq 0 ] || ln -s "$W"/idle/* "$W/scan/"
	if [ "$sys" = gosv ]; then
		# The talker: in-process logging (log-script) into $W/talklog; its
		# run records its pid, logcpu writes into its pipe.
		mkdir -p "$W/talk" "$W/talklog"
		: >"$W/talkpid"
		printf '#!/bin/sh\necho $$ >> %s/talkpid\nexec sleep 100000\n' "$W" >"$W/talk/run"
		chmod +x "$W/talk/run"
		printf 't s16777215 n3 %s/talklog\n' "$W" >"$W/talk/log-script"
		ln -s "$W/talk" "$W/scan/talk"
	fi
	start_supervisor
	spid=$!
	progress "supervisor started"
	"$bin/benchutil" waitsize -file "$W/marker" -bytes $((2 * n)) -timeout 280s >/dev/null
	progress "all $n idle services up"
	suffix() { sed "s|^\([^ ]*\) |\1@$n/r$r |"; }
	# The floor at this N: the helper fork+execs a copy of the run script
	# that stamps into a directory of its own (the services' stamps must
	# name live runs), with the N idle services up.
	mkdir -p "$W/bstamps"
	sed "s|$W/stamps/svc0001|$W/bstamps/base|" "$W/sv/svc0001/run" >"$W/base-run"
	chmod +x "$W/base-run"
	"$bin/latency" -dir "$W/bstamps" -baseline "$W/base-run" -n 30 -timeout 10s | tr ' ' '\n' | tr '=' ' ' |
		sed -n 's/^median_ms /base_median_ms /p' | suffix >&3
	progress "baseline done"
	ln -s "$W"/sv/* "$W/scan/"
	case $sys in
	s6) s6-svscanctl -a "$W/scan" ;;
	esac
	trace=""
	[ "$sys" = gosv ] && trace=$W/gosv-trace
	"$bin/latency" -dir "$W/stamps" -services "$k" -n 30 -min-up 2100ms -timeout 10s -trace "$trace" | tr ' ' '\n' | tr '=' ' ' | suffix >&3
	progress "restart done"
	if [ "$sys" = gosv ]; then
		"$bin/benchutil" logcpu -pidfile "$W/talkpid" -current "$W/talklog/current" -scanner "$spid" -n "${SCALE_LINES:-3000}" |
			tr ' ' '\n' | tr '=' ' ' | suffix >&3
		progress "log lines done"
	fi
	;;
restart)
	if [ "$sys" = baseline ]; then
		make_services stamp 1
		"$bin/latency" -dir "$W/stamps" -baseline "$W/sv/svc0001/run" -n 30 -timeout 10s | tr ' ' '\n' | tr '=' ' ' >&3
		exit 0
	fi
	k=15 # 15 services, killed oldest first: 30 samples in two rounds of 2.1 s
	make_services stamp "$k"
	link_all
	start_supervisor
	trace=""
	[ "$sys" = gosv ] && trace=$W/gosv-trace
	"$bin/latency" -dir "$W/stamps" -services "$k" -n 30 -min-up 2100ms -timeout 10s -trace "$trace" | tr ' ' '\n' | tr '=' ' ' >&3
	;;
bringup)
	i=$1 settle=$2
	make_services sleep 100
	# OpenRC has no scanner: its "bring-up" is starting the daemons below.
	case $sys in openrc | baseline) ;; *) start_supervisor ;; esac
	# The supervisor must be in its idle loop before the clock starts; for
	# runsvdir and svscan this also picks the phase of their 5 s rescan.
	sleep "$settle"
	case $sys in
	baseline) args=(-spawn "$W/sv") ;;
	gosv | runit | daemontools) args=(-from "$W/sv" -to "$W/scan") ;;
	s6) args=(-from "$W/sv" -to "$W/scan" -- s6-svscanctl -a "$W/scan") ;;
	supervisord) args=(-from "$W/svconf" -to "$W/scan" -- supervisorctl -c "$W/supervisord.conf" update) ;;
	openrc) args=(-- bash "$here/lib/openrc-start.sh" "$W") ;;
	esac
	r=$("$bin/benchutil" bringup -marker "$W/marker" -n 100 -timeout 30s "${args[@]}")
	result "trial${i}_ms" "$(procs_field ms "$r")"
	result "trial${i}_first_ms" "$(procs_field first_ms "$r")"
	;;
idle)
	barrier=$1 count=$2
	arrived=""
	# Arrive at the barrier exactly once, even on failure, so that the
	# other trials do not wait for this one until their deadline.
	arrive() { [ -n "$arrived" ] || { arrived=1; echo x >>"$barrier"; }; }
	trap arrive EXIT
	make_services sleep 100
	link_all
	start_supervisor
	wait_marker 100
	progress "all 100 services up"
	arrive
	"$bin/benchutil" waitsize -file "$barrier" -bytes $((2 * count)) -timeout 200s >/dev/null
	progress "all $count systems up"
	# The benchmark is defined on time: the window opens 5 s after all
	# services are up and lasts 10 s. These two sleeps ARE the measurement.
	sleep 5
	a=$("$bin/benchutil" procs -comm "$comms")
	sleep 10
	b=$("$bin/benchutil" procs -comm "$comms")
	result procs "$(procs_field procs "$b")"
	result threads "$(procs_field threads "$b")"
	result vol $(($(procs_field vol "$b") - $(procs_field vol "$a")))
	result nonvol $(($(procs_field nonvol "$b") - $(procs_field nonvol "$a")))
	result window_s 10
	if [ "$(procs_field procs "$a") $(procs_field threads "$a")" != "$(procs_field procs "$b") $(procs_field threads "$b")" ]; then
		result note "process/thread set changed during the window: $a -> $b"
	fi
	;;
*)
	echo "trial.sh: unknown benchmark $bench" >&2
	exit 2
	;;
esac
