#!/bin/bash
# gosv + OpenRC demo: a real OpenRC session with supervisor=gosv, end to
# end, inside a throw-away mount + PID namespace. /etc, /usr and /var are
# copy-on-write overlays (their upper layers in a temporary directory,
# removed at the end) and /run is a tmpfs, so `make install` and every
# service stay inside; nothing on the host changes.
#
#   sudo make demo-openrc      (or: sudo demo/openrc-demo.sh)
#
# GOSV_DEMO_INSTALLED=1: gosv is installed already (from the Debian
# package: tests/deb_test.go) and the caller's namespace is the throw-away
# one; the demo then neither makes a namespace nor runs make install.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
installed=${GOSV_DEMO_INSTALLED:-}
if [ "$installed" = 1 ]; then
	GOSV_DEMO_INSIDE=1
fi
if [ "${GOSV_DEMO_INSIDE:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "demo: run as root (it uses unshare)" >&2; exit 100; }
	command -v openrc-run >/dev/null || { echo "demo: needs OpenRC (apt-get install -y openrc)" >&2; exit 100; }
	work=$(mktemp -d /var/tmp/gosv-demo.XXXXXX)
	trap 'rm -rf "$work"' EXIT
	GOSV_DEMO_INSIDE=1 GOSV_DEMO_WORK=$work unshare --mount --pid --fork --mount-proc --propagation private "$0"
	exit
fi

# Inside: PID 1 of a new PID namespace (this shell reaps orphans).
if [ "$installed" != 1 ]; then
	work=$GOSV_DEMO_WORK
	for d in etc usr var; do
		mkdir -p "$work/$d/upper" "$work/$d/work"
		mount -t overlay overlay -o "lowerdir=/$d,upperdir=$work/$d/upper,workdir=$work/$d/work" "/$d"
	done
	mount -t tmpfs tmpfs /run
	mkdir -p /run/openrc && touch /run/openrc/softlevel
	# OpenRC puts services into cgroups; the hierarchy is the host's: keep it out.
	if [ -d /sys/fs/cgroup/unified ]; then mount -t tmpfs tmpfs /sys/fs/cgroup/unified; fi
fi

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() {
	printf '$ %s\n' "$*"
	"$@" || printf '(exit %d)\n' $?
}

if [ "$installed" = 1 ]; then
	say "gosv is installed: $(command -v gosv), the OpenRC hook (/etc/rc.conf.d/gosv.conf), gosv-svscan"
else
	say "make install: gosv, the OpenRC hook (/etc/rc.conf.d/gosv.conf), gosv-svscan"
	make -C "$root" -s install DESTDIR= PREFIX=/usr 2>&1 | grep -v "needs non existent" || true
fi

say "an init script: supervisor=gosv, ready on fd 3 after one second; no depend() edit"
cat >/etc/init.d/web <<'EOF'
#!/sbin/openrc-run
description="a web server that takes a second to warm up"
supervisor=gosv
command=/bin/sh
command_args="-c 'echo web: warming up; sleep 1; echo web: ready; echo >&3; exec sleep 100000'"
notify=fd:3
timeout_ready=5sec
extra_started_commands="reload"
EOF
chmod +x /etc/init.d/web
show cat /etc/init.d/web
show gosv openrc check web
rc-update -u >/dev/null 2>&1
. "$root/bench/lib/rc-libexec.sh"
show "$(rc_libexec)/bin/rc-depend" -t ineed web

say "start: gosv-svscan comes in as a dependency; start returns once web is ready"
t0=${EPOCHREALTIME/./}
show rc-service web start
echo "(took $(((${EPOCHREALTIME/./} - t0) / 1000)) ms)"
show rc-service web status
rcstatus() { printf '$ rc-status -a | grep -E "web|gosv"\n'; rc-status -a | grep -E 'web|gosv'; }
rcstatus

say "kill the daemon: gosv restarts it at once, OpenRC still says started"
svc=/run/openrc/gosv-scan/web
# svc -k sends SIGKILL to the daemon; -wR waits until it is restarted and
# ready (subscribed before the signal, so nothing is missed).
show gosv svc -wR -T 5000 -k "$svc"
show rc-service web status
rcstatus

say "logs: web has no logger of its own, so its output is in gosv-svscan's catch-all log"
show gosv logs /var/log/gosv 2>/dev/null || show tail -n 5 /var/log/gosv/current

say "all gosv services, their state and configuration"
show gosv openrc ls

say "stop, then stop the whole tree"
show rc-service web stop
show rc-service web status
show rc-service gosv-svscan stop
show ps -eo pid,ppid,args
