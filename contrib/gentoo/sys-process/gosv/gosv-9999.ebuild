# Copyright 2026 gosv developers
# Distributed under the terms of the GNU General Public License v2
#
# gosv for Gentoo: a live ebuild (the git tree's HEAD) for an overlay,
# in ::gentoo's style for Go (go-module, go-module_live_vendor).
#
# NOT BUILT HERE: gosv's tree and tests run on Debian, which has neither
# portage nor Gentoo's OpenRC; this ebuild has never been run. What is
# tested is the Debian package (debian/, tests/deb_test.go), which
# installs the same files through the same `make install`. To try it: put
# contrib/gentoo into an overlay (repos.conf), then
# `ebuild gosv-9999.ebuild manifest && emerge -av =sys-process/gosv-9999`.

EAPI=8

inherit git-r3 go-module optfeature

DESCRIPTION="Process supervisor speaking the s6 protocol, with an OpenRC backend"
HOMEPAGE="https://github.com/gosv/gosv"
EGIT_REPO_URI="https://github.com/gosv/gosv.git"

# gosv's own code states no license yet (hence all-rights-reserved and
# the restrictions); its Go modules are Apache-2.0 (cobra, mousetrap) and
# BSD (pflag, x/sys, mvdan.cc/sh).
LICENSE="all-rights-reserved Apache-2.0 BSD"
SLOT="0"
# A live ebuild has no keywords.
RESTRICT="bindist mirror"

# go.mod's go line.
BDEPEND=">=dev-lang/go-1.26.8"

src_unpack() {
	git-r3_src_unpack
	# go mod vendor, in src_unpack where the network is allowed.
	go-module_live_vendor
}

src_compile() {
	# go-module's GOFLAGS (-mod=vendor, -trimpath, ...) are in the
	# environment of the Makefile's go build.
	emake build
}

src_test() {
	# tests/ (the integration suite) needs root, namespaces and s6.
	ego test -short ./...
}

src_install() {
	# The binary, gosv-svscan (init.d, conf.d), the rc.conf.d hook, man
	# pages and completions, where `make install` puts them (OpenRC
	# reads /etc whatever the prefix).
	emake DESTDIR="${D}" PREFIX="${EPREFIX}/usr" SYSCONFDIR="${EPREFIX}/etc" install
	einstalldocs
}

pkg_postinst() {
	# OpenRC caches its dependency tree and does not notice the new
	# /etc/rc.conf.d/gosv.conf: refresh it when OpenRC runs this root.
	# Nothing is started or enabled: OpenRC starts gosv-svscan as a
	# dependency of the first supervisor=gosv service.
	if [[ -z ${ROOT} && -e /run/openrc/softlevel ]] && type -P rc-update >/dev/null; then
		rc-update -u >/dev/null || ewarn "rc-update -u failed; run it by hand"
	fi
	# An upgrade: a running scanner re-executes the new binary in place
	# (the same pid, no service restarted; `restart` would restart them all).
	if [[ -n ${REPLACING_VERSIONS} && -z ${ROOT} && -e /run/openrc/softlevel && -x /etc/init.d/gosv-svscan ]] &&
		rc-service gosv-svscan status >/dev/null 2>&1; then
		rc-service gosv-svscan reexec || ewarn "the running scanner could not re-execute the new binary; it runs the old one until gosv-svscan restarts"
	fi
	optfeature "supervisor=gosv in OpenRC init scripts" sys-apps/openrc
	elog "An init script with supervisor=gosv is now run by gosv; check it with"
	elog "  gosv openrc check SERVICE"
}

pkg_postrm() {
	# The hook is gone (unless this was an upgrade): refresh the tree.
	if [[ -z ${REPLACED_BY_VERSION} && -z ${ROOT} && -e /run/openrc/softlevel ]] && type -P rc-update >/dev/null; then
		rc-update -u >/dev/null
	fi
}
