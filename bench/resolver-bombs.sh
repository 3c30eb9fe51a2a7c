#!/bin/bash
# The resolver bombs of docs/reliability.md: one markdown row per hostile
# init script and gosv binary, with `gosv openrc check`'s wall time, the
# peak RSS of gosv and its children (GNU time's %M: wait4's rusage), its
# exit status and the script's line of output (or the Go runtime's fatal
# error).
#
#   bench/resolver-bombs.sh [GOSV...]     (default: bin/gosv, built)
#
# Needs GNU time (/usr/bin/time, Debian package "time") and prlimit. Every
# run is guarded: RLIMIT_DATA 1 GiB (prlimit), SIGKILL after 15 s
# (timeout), so that an old binary cannot take the machine down; "killed
# by the guard" in a row means it was still running at 15 s. Nothing outside a temporary
# directory is written; /etc/rc.conf and /etc/rc.conf.d are read, as
# check always does.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
if [ $# -eq 0 ]; then
	(cd "$root" && go build -o bin/gosv ./cmd/gosv)
	set -- "$root/bin/gosv"
fi
dir=$(mktemp -d /tmp/gosv-bombs.XXXXXX)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/init.d" "$dir/conf.d" "$dir/run"
mkfifo "$dir/fifo"
head -c $((1024 * 1024 + 1)) /dev/zero | tr '\0' '#' >"$dir/big.conf"

bomb() {
	printf '#!/sbin/openrc-run\nsupervisor=gosv\ncommand=/bin/true\n%s\n' "$2" >"$dir/init.d/$1"
	chmod 0755 "$dir/init.d/$1"
}
bomb zero-cmdsubst 'x=$(< /dev/zero)'
bomb zero-dot '. /dev/zero'
bomb fifo-cmdsubst "x=\$(< $dir/fifo)"
bomb fifo-read "read x < $dir/fifo"
bomb urandom-mapfile 'mapfile -t a < /dev/urandom'
bomb big-file ". $dir/big.conf"
bomb string-doubling 'x=a; while :; do x=$x$x; done'
bomb array-doubling 'a=(x); while :; do a=("${a[@]}" "${a[@]}"); done'
bomb deep-recursion 'f() { f; }; f'
bomb infinite-loop 'while :; do :; done'
bomb deep-nesting "$(printf '%200000s' '' | tr ' ' '(')$(printf ':%200000s' '' | tr ' ' ')')"

echo "| bomb | gosv | time (s) | peak RSS (MiB) | exit | output |"
echo "|---|---|---|---|---|---|"
for b in zero-cmdsubst zero-dot fifo-cmdsubst fifo-read urandom-mapfile big-file \
	string-doubling array-doubling deep-recursion deep-nesting infinite-loop; do
	for g in "$@"; do
		out=$(RC_LIBEXECDIR=$dir RC_SVCDIR=$dir/run /usr/bin/time -f '%e %M %x' -o "$dir/time" \
			timeout -s KILL 15 prlimit --data=1073741824 -- "$g" openrc check "$dir/init.d/$b" 2>&1 || true)
		read -r secs kib code < <(tail -n 1 "$dir/time") || true
		rss=$((kib / 1024))
		if grep -q -e 'status 137' -e 'signal 9' "$dir/time"; then
			code="killed by the guard" rss=-
		fi
		line=$(printf '%s\n' "$out" | grep -a -m1 -e "init.d/$b" -e '^fatal error' -e '^SIGSEGV' || true)
		line=${line//$dir/DIR}
		echo "| $b | $g | $secs | $rss | $code | ${line:0:110} |"
	done
done
