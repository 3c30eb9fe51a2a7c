# gosv build, install and test entry points.
#
#   make build                      bin/gosv
#   make install DESTDIR= PREFIX=/usr
#   make test                       deps (as root), vet, unit tests, integration tests
#   make demo                       end-to-end demo in a throw-away namespace (root)
#   make bench                      bench/run.sh, if present

GO      ?= go
PREFIX  ?= /usr/local
DESTDIR ?=
BINDIR  ?= $(PREFIX)/bin

# Debian packages the integration suite drives (s6 and OpenRC are the
# references gosv is compared with).
TEST_PKGS := openrc s6 execline runit daemontools

demo: build
	demo/svscan-demo.sh bin/gosv

.PHONY: demo all build install uninstall test test-deps test-unit test-integration bench fmt vet

all: build

build:
	$(GO) build -o bin/gosv ./cmd/gosv

install: build
	install -D -m 0755 bin/gosv $(DESTDIR)$(BINDIR)/gosv
	# --- install hooks of later issues go here ---
	# OpenRC hook, init.d/gosv-svscan, conf.d/gosv-svscan, multi-call links.

uninstall:
	rm -f $(DESTDIR)$(BINDIR)/gosv
	# --- uninstall hooks of later issues go here (mirror of install) ---

test: test-deps vet test-unit test-integration

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

test-unit:
	$(GO) test -race ./...

# CI makes a missing s6 a failure instead of a skip.
test-integration:
	$(if $(CI),REQUIRE_S6=1 )$(GO) test -tags integration -count=1 ./tests/...

bench:
	@if [ -x bench/run.sh ]; then bench/run.sh; else echo "bench: no bench/run.sh yet"; fi

fmt:
	gofmt -l -w .

vet:
	$(GO) vet ./...
	$(GO) vet -tags integration ./tests/...
