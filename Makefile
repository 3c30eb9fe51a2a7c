# gosv build, install and test entry points.
#
#   make build                      bin/gosv, bin/gosv-openrc
#   make install DESTDIR= PREFIX=/usr
#   make test                       deps (as root), vet, unit tests, integration tests
#   make demo                       real OpenRC + gosv session in a throw-away namespace (root)
#   make demo-svscan                the supervision tree driven by the real s6 tools (root)
#   make bench                      bench/run.sh (see bench/README.md)
#   make bench-charts               bench/*.svg from bench/results.tsv
#   make man                        man/*.5, man/*.8 (committed) from the commands

GO      ?= go
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin
MANDIR  ?= $(PREFIX)/share/man
# What gosv --version reports (cmd/gosv/version.go): from git when building
# from a checkout; a release tarball passes VERSION= and COMMIT=.
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null)
COMMIT  ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null)
# Shell completions, in the places bash-completion, zsh and fish look.
BASHCOMPDIR ?= $(PREFIX)/share/bash-completion/completions
ZSHCOMPDIR  ?= $(PREFIX)/share/zsh/site-functions
FISHCOMPDIR ?= $(PREFIX)/share/fish/vendor_completions.d
# OpenRC reads /etc whatever the prefix.
SYSCONFDIR ?= /etc

# Debian packages the integration suite drives (s6 and OpenRC are the
# references gosv is compared with).
TEST_PKGS := openrc s6 execline runit daemontools
# The man pages are rendered with man and groff, the completions loaded in
# bash (with bash-completion), fish and zsh (cmd/gosv's tests).
TEST_PKGS += man-db groff-base bash-completion fish zsh
# The real daemons of the real-daemon tier (tests/real_test.go), installed
# by tests/real-deps.sh without starting them on the host; prometheus for
# promtool, which validates gosv's metrics (issue 11).
REAL_PKGS := nginx redis-server memcached dnsmasq cron mosquitto prometheus

# Upstream OpenRC 0.63.3, the second OpenRC the integration suite runs on
# (Debian ships 0.45.2): built once from tests/openrc-0.63 into this cache
# outside the checkout, and installed only inside test namespaces.
OPENRC_063_DIR ?= /var/tmp/gosv-openrc-0.63

demo-svscan: test-deps build
	demo/svscan-demo.sh bin/gosv

# A real OpenRC session with supervisor=gosv, in a throw-away namespace.
demo: test-deps
	demo/openrc-demo.sh

demo-openrc: demo

.PHONY: demo demo-svscan demo-openrc all build man completions bench-charts install uninstall test test-deps test-deps-real test-openrc-063 test-unit test-integration bench fmt vet

all: build

# A static binary (no cgo): each `gosv` process starts ~0.8 ms sooner without
# the dynamic loader and libc, and OpenRC starts one per rc-service call and
# the scanner one per respawn. os/user then reads only /etc/passwd and
# /etc/group; openrc/users.go asks getent(1) for the rest (LDAP, sssd).
# CGO_ENABLED=1 make build gives the cgo build back.
CGO_ENABLED ?= 0

# bin/gosv-openrc: the OpenRC hook's lean client (gosv openrc start, stop,
# status, reload), installed beside gosv (cmd/gosv-openrc). The same
# -ldflags as gosv: its build information then records the same version
# stamp, which gosv openrc check compares (cmd/gosv/client.go).
build:
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/gosv ./cmd/gosv
	CGO_ENABLED=$(CGO_ENABLED) $(GO) build -ldflags "-X main.version=$(VERSION) -X main.commit=$(COMMIT)" -o bin/gosv-openrc ./cmd/gosv-openrc

# The man pages are generated from the commands (and man/*.md) by
# cmd/gosv's TestManPages, and committed: installing needs no generator,
# and a test fails when one is stale. make man rewrites them.
man:
	$(GO) test ./cmd/gosv -run '^TestManPages$$' -count=1 -update

# cobra's scripts ask the installed gosv (gosv __complete) at each <TAB>.
completions: build
	mkdir -p build/completions
	bin/gosv completion bash > build/completions/gosv
	bin/gosv completion zsh > build/completions/_gosv
	bin/gosv completion fish > build/completions/gosv.fish

bench-charts:
	$(GO) run ./bench/cmd/charts -data bench/results.tsv -out bench

install: build completions
	install -D -m 0755 bin/gosv $(DESTDIR)$(BINDIR)/gosv
	install -m 0755 bin/gosv-openrc $(DESTDIR)$(BINDIR)/gosv-openrc
	install -d $(DESTDIR)$(MANDIR)/man5 $(DESTDIR)$(MANDIR)/man8
	install -m 0644 man/*.5 $(DESTDIR)$(MANDIR)/man5
	install -m 0644 man/*.8 $(DESTDIR)$(MANDIR)/man8
	install -D -m 0644 build/completions/gosv $(DESTDIR)$(BASHCOMPDIR)/gosv
	install -D -m 0644 build/completions/_gosv $(DESTDIR)$(ZSHCOMPDIR)/_gosv
	install -D -m 0644 build/completions/gosv.fish $(DESTDIR)$(FISHCOMPDIR)/gosv.fish
	# --- install hooks of later issues go here ---
	# OpenRC (supervisor=gosv): the rc.conf.d hook and gosv-svscan, with the
	# binary's path filled in. An existing conf.d is the admin's: kept.
	# OpenRC 0.45 does not notice a new rc.conf.d file: refresh its deptree.
	install -d $(DESTDIR)$(SYSCONFDIR)/rc.conf.d $(DESTDIR)$(SYSCONFDIR)/init.d $(DESTDIR)$(SYSCONFDIR)/conf.d
	sed 's|@BINDIR@|$(BINDIR)|g' openrc/gosv.conf > $(DESTDIR)$(SYSCONFDIR)/rc.conf.d/gosv.conf
	chmod 0644 $(DESTDIR)$(SYSCONFDIR)/rc.conf.d/gosv.conf
	sed 's|@BINDIR@|$(BINDIR)|g' init.d/gosv-svscan > $(DESTDIR)$(SYSCONFDIR)/init.d/gosv-svscan
	chmod 0755 $(DESTDIR)$(SYSCONFDIR)/init.d/gosv-svscan
	# OpenRC 0.60+ user services (openrc --user) find scripts in /etc/user/init.d.
	install -d $(DESTDIR)$(SYSCONFDIR)/user/init.d
	sed 's|@BINDIR@|$(BINDIR)|g' init.d/gosv-svscan > $(DESTDIR)$(SYSCONFDIR)/user/init.d/gosv-svscan
	chmod 0755 $(DESTDIR)$(SYSCONFDIR)/user/init.d/gosv-svscan
	[ -e $(DESTDIR)$(SYSCONFDIR)/conf.d/gosv-svscan ] || install -m 0644 conf.d/gosv-svscan $(DESTDIR)$(SYSCONFDIR)/conf.d/gosv-svscan
	# s6-svscan for gosv_backend=s6, only where OpenRC ships none (Debian's
	# 0.45.2; 0.63 has its own on the same scan directory) or to update ours.
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/init.d/s6-svscan ] || grep -q '^# gosv-installed s6-svscan' $(DESTDIR)$(SYSCONFDIR)/init.d/s6-svscan; then \
		sed 's|@BINDIR@|$(BINDIR)|g' init.d/s6-svscan > $(DESTDIR)$(SYSCONFDIR)/init.d/s6-svscan && chmod 0755 $(DESTDIR)$(SYSCONFDIR)/init.d/s6-svscan; \
		[ -e $(DESTDIR)$(SYSCONFDIR)/conf.d/s6-svscan ] || install -m 0644 conf.d/s6-svscan $(DESTDIR)$(SYSCONFDIR)/conf.d/s6-svscan; \
	fi
	# runsvdir for gosv_backend=runit, likewise (OpenRC 0.63 ships one).
	if [ ! -e $(DESTDIR)$(SYSCONFDIR)/init.d/runsvdir ] || grep -q '^# gosv-installed runsvdir' $(DESTDIR)$(SYSCONFDIR)/init.d/runsvdir; then \
		sed 's|@BINDIR@|$(BINDIR)|g' init.d/runsvdir > $(DESTDIR)$(SYSCONFDIR)/init.d/runsvdir && chmod 0755 $(DESTDIR)$(SYSCONFDIR)/init.d/runsvdir; \
		[ -e $(DESTDIR)$(SYSCONFDIR)/conf.d/runsvdir ] || install -m 0644 conf.d/runsvdir $(DESTDIR)$(SYSCONFDIR)/conf.d/runsvdir; \
	fi
	@if [ -z "$(DESTDIR)" ] && command -v rc-update >/dev/null 2>&1; then echo rc-update -u; rc-update -u >/dev/null; fi

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gosv $(DESTDIR)$(BINDIR)/gosv-openrc
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man5/,$(notdir $(wildcard man/*.5)))
	rm -f $(addprefix $(DESTDIR)$(MANDIR)/man8/,$(notdir $(wildcard man/*.8)))
	rm -f $(DESTDIR)$(BASHCOMPDIR)/gosv $(DESTDIR)$(ZSHCOMPDIR)/_gosv $(DESTDIR)$(FISHCOMPDIR)/gosv.fish
	# --- uninstall hooks of later issues go here (mirror of install) ---
	rm -f $(DESTDIR)$(SYSCONFDIR)/rc.conf.d/gosv.conf $(DESTDIR)$(SYSCONFDIR)/init.d/gosv-svscan
	rm -f $(DESTDIR)$(SYSCONFDIR)/conf.d/gosv-svscan
	rm -f $(DESTDIR)$(SYSCONFDIR)/user/init.d/gosv-svscan
	if grep -q '^# gosv-installed s6-svscan' $(DESTDIR)$(SYSCONFDIR)/init.d/s6-svscan 2>/dev/null; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/init.d/s6-svscan $(DESTDIR)$(SYSCONFDIR)/conf.d/s6-svscan; fi
	if grep -q '^# gosv-installed runsvdir' $(DESTDIR)$(SYSCONFDIR)/init.d/runsvdir 2>/dev/null; then \
		rm -f $(DESTDIR)$(SYSCONFDIR)/init.d/runsvdir $(DESTDIR)$(SYSCONFDIR)/conf.d/runsvdir; fi
	@if [ -z "$(DESTDIR)" ] && command -v rc-update >/dev/null 2>&1; then echo rc-update -u; rc-update -u >/dev/null; fi

test: test-deps test-openrc-063 vet test-unit test-integration

# Install the reference packages when missing; only as root, and only on a
# dpkg-based system. apt-get update runs only when something is missing.
test-deps:
	@if ! command -v dpkg >/dev/null 2>&1; then \
		echo "test-deps: no dpkg, not installing $(TEST_PKGS)"; \
	else \
		missing=""; \
		for p in $(TEST_PKGS); do \
			dpkg-query -W -f='$${Status}\n' $$p 2>/dev/null | grep -q '^install ok installed' || missing="$$missing $$p"; \
		done; \
		if [ -z "$$missing" ]; then :; \
		elif [ "$$(id -u)" != 0 ]; then \
			echo "test-deps: not root, not installing:$$missing"; \
		else \
			echo "test-deps: installing:$$missing"; \
			apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$missing; \
		fi; \
	fi

test-deps: test-deps-real
test-deps-real:
	@if command -v dpkg >/dev/null 2>&1; then tests/real-deps.sh $(REAL_PKGS); fi

# Build OpenRC 0.63.3 when missing (build.sh installs meson and the other
# build dependencies with apt-get; only as root). Not root: the 0.63 tests
# skip, or fail under REQUIRE_OPENRC=1. flock: two checkouts testing at
# once share the cache; the second waits and finds the build done.
test-openrc-063:
	@if [ -f $(OPENRC_063_DIR)/.built-0.63.3 ]; then :; \
	elif [ "$$(id -u)" != 0 ]; then \
		echo "test-openrc-063: not root, not building OpenRC 0.63.3 in $(OPENRC_063_DIR)"; \
	else \
		echo "test-openrc-063: building OpenRC 0.63.3 in $(OPENRC_063_DIR)"; \
		flock $(OPENRC_063_DIR).lock tests/openrc-0.63/build.sh $(OPENRC_063_DIR) >/dev/null; \
	fi

# CI makes a missing s6 a failure instead of a skip here too: unit tests
# compare codecs and clients with the real s6 tools.
test-unit:
	$(if $(CI),REQUIRE_S6=1 REQUIRE_RUNIT=1 )$(GO) test -race ./...

# CI makes a missing s6 or OpenRC (either version) a failure instead of a
# skip. The OpenRC suite runs once per OpenRC version: more than go test's
# default 10 minutes.
test-integration:
	$(if $(CI),REQUIRE_S6=1 REQUIRE_RUNIT=1 REQUIRE_OPENRC=1 )GOSV_TEST_OPENRC_063=$(OPENRC_063_DIR)/build \
		$(GO) test -tags integration -count=1 -timeout 60m ./tests/...

bench:
	bench/run.sh

# make deb: the Debian package (debian/README.source), built from a copy
# of the tree (dpkg-buildpackage writes into the source tree and its
# parent) with the go in PATH, into DEBDIR.
DEBDIR ?= bin/deb
.PHONY: deb
deb:
	rm -rf $(DEBDIR)/gosv && mkdir -p $(DEBDIR)/gosv
	git ls-files -z --cached --others --exclude-standard | xargs -0 cp -P --parents -t $(DEBDIR)/gosv
	cd $(DEBDIR)/gosv && dpkg-buildpackage -us -uc -b -Ppkg.gosv.hostgo
	@ls $(DEBDIR)/*.deb

fmt:
	gofmt -l -w .

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./tests/...

# The Debian package's test (tests/deb_test.go) builds it with
# dpkg-buildpackage and checks it with lintian.
TEST_PKGS += dpkg-dev debhelper lintian
