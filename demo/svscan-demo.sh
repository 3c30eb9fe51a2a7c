#!/bin/bash
# gosv supervision-tree demo: runs entirely inside a throw-away mount + PID
# namespace (a tmpfs on /run, nothing of the host's /run touched), with the
# real s6 tools driving gosv's tree.
#
#   sudo make demo        (or: sudo demo/svscan-demo.sh [path/to/gosv])
set -euo pipefail
gosv=$(realpath "${1:-bin/gosv}")
if [ "${GOSV_DEMO_INSIDE:-}" != 1 ]; then
	[ "$(id -u)" = 0 ] || { echo "demo: run as root (it uses unshare)" >&2; exit 100; }
	command -v s6-svstat >/dev/null || { echo "demo: needs s6 (apt-get install -y s6)" >&2; exit 100; }
	exec env GOSV_DEMO_INSIDE=1 unshare --mount --pid --fork --mount-proc --propagation private "$0" "$gosv"
fi

mount -t tmpfs tmpfs /run
scan=/run/gosv-scan svc=/run/svc.d
mkdir -p "$scan" "$svc/web/log" "$svc/db"
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@" || true; }

# web: becomes ready (notification-fd) and logs through NAME/log.
cat > "$svc/web/run" <<'RUN'
#!/bin/sh
echo "web: starting as pid $$"
exec 2>&1
echo >&3   # readiness: one newline on fd 3
exec sleep 100000
RUN
echo 3 > "$svc/web/notification-fd"
cat > "$svc/web/log/run" <<'RUN'
#!/bin/sh
exec sh -c 'while IFS= read -r l; do echo "log: $l" >> /run/web.log; done'
RUN
# db: ignores SIGTERM and forks a child; timeout-kill makes d stick.
cat > "$svc/db/run" <<'RUN'
#!/bin/sh
trap '' TERM
sleep 100000 &
exec sleep 100001
RUN
echo 500 > "$svc/db/timeout-kill"
chmod +x "$svc/web/run" "$svc/web/log/run" "$svc/db/run"

# start_scanner returns once the scanner takes services (-d 3: one newline).
start_scanner() {
	rm -f /run/ready && mkfifo /run/ready
	"$gosv" svscan -d 3 "$scan" 3>/run/ready 2>>/run/svscan.err &
	scanner=$!
	read -r _ </run/ready
}
say "start the scanner"
start_scanner
say "link two services (s6-svlink waits for the supervisor's s event), wait for readiness"
show s6-svlink "$scan" "$svc/web" web
show s6-svlink "$scan" "$svc/db" db
show s6-svwait -U -t 5000 "$scan/web"
show s6-svwait -u -t 5000 "$scan/db"
show s6-svstat "$scan/web"
show s6-svstat "$scan/db"
show s6-svok "$scan/web"
say "one process supervises both: no s6-supervise"
show ps -o pid,ppid,pgid,args --ppid "$scanner"
say "SIGKILL web's daemon: restarted, ready again"
kill -KILL "$(s6-svstat -o pid "$scan/web")"
show s6-svwait -D -t 5000 "$scan/web"
show s6-svwait -U -t 5000 "$scan/web"
show s6-svstat "$scan/web"
say "stop db (ignores SIGTERM, forked a child): SIGKILL to its process group after 500 ms"
show s6-svc -wD -T 5000 -d "$scan/db"
show s6-svstat "$scan/db"
show ps -o pid,pgid,args --ppid "$scanner"
show pgrep -c -f "sleep 100000"
say "kill the scanner itself with SIGKILL; a new one adopts web, no duplicate"
before=$(s6-svstat -o pid "$scan/web")
kill -KILL "$scanner"; wait "$scanner" 2>/dev/null || true
start_scanner
show s6-svok "$scan/web"
echo "web pid before: $before, after: $(s6-svstat -o pid "$scan/web")"
show s6-svstat "$scan/web"
show pgrep -c -f "sleep 100000"
say "the log lines web wrote"
show cat /run/web.log
say "stop everything"
show s6-svscanctl -t "$scan"
wait "$scanner" || true
show cat /run/svscan.err
echo "demo done"
