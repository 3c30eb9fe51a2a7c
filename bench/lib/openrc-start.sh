#!/bin/bash
# Start one OpenRC supervise-daemon per service directory in $1/sv, in name
# order, the way `rc-service NAME start` does for supervisor=supervise-daemon
# (without the init script around it). Each one daemonizes and returns.
#   openrc-start.sh DIR
set -euo pipefail
export RC_SVCDIR=/run/openrc # what supervise-daemon uses anyway
for d in "$1"/sv/*/; do
	d=${d%/}
	name=${d##*/}
	# -m 0: respawn forever (the default gives up after 10 respawns).
	RC_SVCNAME=$name supervise-daemon "$name" --start "$d/run" --pidfile "/run/openrc/$name.pid" -m 0
done
