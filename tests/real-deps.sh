#!/bin/sh
# Install the real Debian daemons of the real-daemon test tier (issue 8,
# tests/real_test.go) when missing, without starting any of them on the host.
#
#   tests/real-deps.sh PKG...
#
# Debian's maintainer scripts start a daemon through invoke-rc.d unless
# /usr/sbin/policy-rc.d exits 101. The tests run these daemons only inside
# throw-away namespaces, so the install needs that policy: an existing
# policy-rc.d must deny (exit 101), and when there is none a denying one is
# put in place for the install and removed afterwards. After the install,
# no process of an installed daemon may have appeared on the host; the
# script then fails and names it (it stops nothing: the host is not ours).
set -eu
policy=/usr/sbin/policy-rc.d
missing=""
for p in "$@"; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed' || missing="$missing $p"
done
[ -n "$missing" ] || exit 0
if [ "$(id -u)" != 0 ]; then
	echo "real-deps: not root, not installing:$missing" >&2
	exit 0
fi

# The daemons' process names, and the host's processes of them (test
# namespaces' processes, also visible to pidof, are left out).
names="nginx redis-server memcached dnsmasq cron mosquitto prometheus"
hostns=$(readlink /proc/self/ns/pid)
daemons() {
	for p in $(for n in $names; do pidof "$n" 2>/dev/null || :; done); do
		[ "$(readlink /proc/"$p"/ns/pid 2>/dev/null)" = "$hostns" ] && echo "$p"
	done | sort -u
}
before=$(daemons)

temp_policy=""
if [ -e "$policy" ]; then
	rc=0
	"$policy" 2>/dev/null || rc=$?
	if [ "$rc" != 101 ]; then
		echo "real-deps: $policy exits $rc, not 101: installing$missing would start them on the host" >&2
		exit 1
	fi
else
	printf '#!/bin/sh\n# real-deps.sh: no daemon starts during the install.\nexit 101\n' >"$policy"
	chmod 0755 "$policy"
	temp_policy=$policy
	trap 'rm -f "$temp_policy"' EXIT
fi

echo "real-deps: installing:$missing"
apt-get update
DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $missing

after=$(daemons)
new=$(printf '%s\n' "$after" | grep -vxF -e "$before" -e '' || :)
if [ -n "$new" ]; then
	for p in $new; do
		echo "real-deps: the install started a daemon on the host: pid $p ($(cat /proc/"$p"/comm 2>/dev/null))" >&2
	done
	exit 1
fi
