#!/bin/bash
# Start one OpenRC supervise-daemon per service directory in $1/sv, in name
# order, the way `rc-service NAME start` does for supervisor=supervise-daemon
# (without the init script around it). Each one daemonizes and returns.
#   openrc-start.sh DIR [LANES]
# LANES > 1 starts them in that many parallel lanes (used where only the
# steady state matters, to keep 1000 starts short); bring-up uses one lane.
set -euo pipefail
export RC_SVCDIR=/run/openrc # what supervise-daemon uses anyway
lanes=${2:-1}
dirs=("$1"/sv/*/)
start_lane() {
	local i d name
	for ((i = $1; i < ${#dirs[@]}; i += lanes)); do
		d=${dirs[i]%/}
		name=${d##*/}
		# -m 0: respawn forever (the default gives up after 10 respawns).
		RC_SVCNAME=$name supervise-daemon "$name" --start "$d/run" --pidfile "/run/openrc/$name.pid" -m 0
	done
}
for ((l = 0; l < lanes; l++)); do
	start_lane "$l" &
done
wait
