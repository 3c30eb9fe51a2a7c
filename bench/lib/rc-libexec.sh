#!/bin/sh
# Sourced by bench/openrc.sh, bench/startwait.sh and demo/openrc-demo.sh.
#   rc_libexec
# prints OpenRC's RC_LIBEXECDIR by the rule gosv itself uses
# (openrc.DetectLibexecDir): of /usr/libexec/rc (upstream's layout, 0.63)
# and /lib/rc (Debian's 0.45), the one holding sh/openrc-run.sh, the newer
# by its version file when both do; /lib/rc when none does.
rc_libexec() {
	_best= _bestv=
	for _d in /usr/libexec/rc /lib/rc; do
		[ -f "$_d/sh/openrc-run.sh" ] || continue
		_v=$(cat "$_d/version" 2>/dev/null || echo 0)
		if [ -z "$_best" ] || [ "$(printf '%s\n%s\n' "$_bestv" "$_v" | sort -V | tail -n1)" != "$_bestv" ]; then
			_best=$_d _bestv=$_v
		fi
	done
	echo "${_best:-/lib/rc}"
}
