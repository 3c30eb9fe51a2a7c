#!/bin/bash
# bench/sdflood.sh: CPU of gosv svscan under an sd_notify flood from
# another user (issue 9, defect 8). Root only (the flood runs as nobody).
#
#   bench/sdflood.sh [GOSV_BINARY] [SECONDS]
#
# One scanner, one service with notification-socket (a real sleep(1), up,
# never ready), then bench/cmd/sdflood sends datagrams to its socket as
# uid 65534 for SECONDS (default 1.5) and prints the scanner's CPU.
# Only processes this script started are stopped, by pid.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
gosv=${1:-}
secs=${2:-1.5}
tmp=$(mktemp -d /tmp/gosv-sdflood.XXXXXX)
chmod 755 "$tmp"
scanner=
cleanup() {
	[ -n "$scanner" ] && kill "$scanner" 2>/dev/null && wait "$scanner" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
if [ -z "$gosv" ]; then
	(cd "$root" && go build -o "$tmp/gosv" ./cmd/gosv)
	gosv=$tmp/gosv
fi
(cd "$root" && go build -o "$tmp/sdflood" ./bench/cmd/sdflood)
mkdir -p "$tmp/scan" "$tmp/svc/flood"
printf '#!/bin/sh\nexec sleep 1000\n' > "$tmp/svc/flood/run"
chmod 755 "$tmp/svc/flood/run"
echo main > "$tmp/svc/flood/notification-socket"
# The service is in place before the scanner starts: its first scan takes
# it before the scanner reports readiness.
ln -s "$tmp/svc/flood" "$tmp/scan/flood"
# -d 4: the scanner writes a newline on fd 4 once it runs. The fifo is
# opened read-write here so that neither side's open blocks.
mkfifo "$tmp/ready"
exec 4<>"$tmp/ready"
"$gosv" svscan -d 4 "$tmp/scan" 2>"$tmp/scanner.log" &
scanner=$!
read -r -t 10 _ <&4
exec 4>&-
"$gosv" svwait -u -t 10000 "$tmp/svc/flood"
sock=$(cat "$tmp/svc/flood/supervise/gosv/notify-socket")
"$tmp/sdflood" -socket "$sock" -pid "$scanner" -for "${secs}s"
