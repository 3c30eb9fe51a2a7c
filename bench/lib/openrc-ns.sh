#!/bin/bash
# Sourced by bench/openrc.sh and bench/startwait.sh: the outer half of an
# OpenRC benchmark, run on the host.
#   openrc_ns NAME
# checks for root and openrc, builds gosv, testinit and rchelper, starts
# testinit as PID 1 of a private mount+PID namespace (copy-on-write
# overlays on /etc, /usr and /var, a tmpfs on /run with
# /run/openrc/softlevel, a prompt reaper) and sets stamp, out (the results
# directory), work, ns, pid1 and rcversion (the OpenRC inside). With
# GOSV_BENCH_OPENRC_063 set to tests/openrc-0.63/build.sh's DIR/build (under
# /var: the overlay), upstream's OpenRC 0.63 is installed in the namespace
# over Debian's, as the integration tests do. The namespace and $work go
# at exit. Needs here and root set by the caller.

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
	if [ -n "${GOSV_BENCH_OPENRC_063:-}" ]; then
		# tests/openrc-0.63/build.sh's recipe; 0.63's s6 backend wants
		# execline's commands on PATH.
		nsenter --target "$pid1" --mount --pid -- sh -c 'rm -rf /usr/lib/rc && DESTDIR= meson install --quiet --no-rebuild -C "$1" >/dev/null && ldconfig &&
			for f in /usr/lib/execline/bin/*; do [ -e "/usr/local/bin/${f##*/}" ] || ln -s "$f" /usr/local/bin/; done' sh "$GOSV_BENCH_OPENRC_063" ||
			{ echo "$name.sh: unable to install OpenRC 0.63 from $GOSV_BENCH_OPENRC_063" >&2; exit 111; }
	fi
	rcversion=$(nsenter --target "$pid1" --mount --pid -- sh -c '. "$1"; cat "$(rc_libexec)/version"' sh "$here/lib/rc-libexec.sh")
	cp "$here/bin/rchelper" "$work/rchelper"
}

openrc_ns_cleanup() {
	kill -KILL "$ns" 2>/dev/null || true
	wait "$ns" 2>/dev/null || true
	rm -rf "$work"
}
