#!/bin/bash
# Sourced by bench/openrc.sh and bench/startwait.sh: the outer half of an
# OpenRC benchmark, run on the host.
#   openrc_ns NAME
# checks for root and openrc, builds gosv, testinit and rchelper, starts
# testinit as PID 1 of a private mount+PID namespace (copy-on-write
# overlays on /etc, /usr and /var, a tmpfs on /run with
# /run/openrc/softlevel, a prompt reaper) and sets stamp, out (the results
# directory), work, ns and pid1. The namespace and $work go at exit.
# Needs here and root set by the caller.

openrc_ns() {
	local name=$1 line
	[ "$(id -u)" = 0 ] || { echo "$name.sh: needs root (namespaces, mounts)" >&2; exit 1; }
	command -v openrc-run >/dev/null || { echo "$name.sh: openrc is not installed" >&2; exit 111; }
	stamp=$(date +%Y%m%d-%H%M%S)
	out=$here/results/$stamp-$name
	work=$(mktemp -d "/var/tmp/gosv-bench-$name.XXXXXX")
	mkdir -p "$out" "$here/bin"
	(cd "$root" && go build -o bin/gosv ./cmd/gosv && go build -o "$here/bin/" ./tests/cmd/testinit)
	# NOTE: a static daemon: its own start-up counts in the readiness figure.
	(cd "$root" && CGO_ENABLED=0 go build -o "$here/bin/" ./tests/cmd/rchelper)

	mkfifo "$work/ready"
	unshare --mount --pid --fork --kill-child "$here/bin/testinit" -overlay-base "$work/overlay" \
		-keep "$root" -keep "$work" 3>"$work/ready" >"$work/testinit.log" 2>&1 &
	ns=$!
	trap openrc_ns_cleanup EXIT
	read -r line <"$work/ready"
	[ "$line" = ready ] || { echo "$name.sh: namespace setup failed: $line" >&2; exit 111; }
	pid1=$(tr -d " " <"/proc/$ns/task/$ns/children")
	cp "$here/bin/rchelper" "$work/rchelper"
}

openrc_ns_cleanup() {
	kill -KILL "$ns" 2>/dev/null || true
	wait "$ns" 2>/dev/null || true
	rm -rf "$work"
}
