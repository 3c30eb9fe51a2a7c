//go:build integration

package tests

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// The Debian package (issue 13): built from the tree with
// dpkg-buildpackage (debian/), checked with lintian, then, on each OpenRC
// version, installed with dpkg -i in a throw-away namespace, where the
// OpenRC demo runs from the installed files, and purged: afterwards the
// overlays' upper layers must hold nothing that was not there before,
// apart from dpkg's own records.

// debBuild is the package, built once per run of the suite.
var debBuild struct {
	once sync.Once
	deb  string // the gosv_*.deb
	err  error
}

// debAllowed are the paths (relative to /, prefixes ending in /) that
// dpkg itself changes when it installs and purges a package: its database
// and log, and man-db's index, rebuilt by its trigger on /usr/share/man.
var debAllowed = []string{"var/lib/dpkg/", "var/log/dpkg.log", "var/cache/man/"}

// TestDebPackage builds the .deb, then installs, uses and purges it on
// each OpenRC version.
func TestDebPackage(t *testing.T) {
	requireRoot(t)
	requireTools(t, envRequireRC, rcTools...)
	requireTools(t, envRequireRC, "dpkg-buildpackage", "dh", "dpkg", "git")
	deb := buildDeb(t)
	t.Run("lintian", func(t *testing.T) { lintianDeb(t, deb) })
	forEachRC(t, func(t *testing.T, version string) { testDebPackage(t, version, deb) })
}

// buildDeb builds the package with `make deb`: from a copy of the
// checkout's files (tracked and untracked, not ignored) in the suite's
// work directory, since dpkg-buildpackage writes into the source tree and
// its parent. The Go used is the suite's (build profile pkg.gosv.hostgo:
// Debian 12's golang-go is too old), with its module and build caches;
// nocheck, since this suite runs the tests itself.
func buildDeb(t *testing.T) string {
	t.Helper()
	debBuild.once.Do(func() {
		debBuild.deb, debBuild.err = doBuildDeb()
	})
	if debBuild.err != nil {
		t.Fatal(debBuild.err)
	}
	return debBuild.deb
}

func doBuildDeb() (string, error) {
	top := filepath.Join(suite.workDir, "deb")
	cmd := exec.Command("make", "deb", "DEBDIR="+top)
	cmd.Dir = suite.repoRoot
	cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(suite.goTool)+":"+os.Getenv("PATH"), "DEB_BUILD_OPTIONS=nocheck")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("make deb: %v\n%s", err, out)
	}
	debs, _ := filepath.Glob(filepath.Join(top, "gosv_*.deb"))
	if len(debs) != 1 {
		return "", fmt.Errorf("make deb made %d gosv_*.deb in %s, want 1: %q", len(debs), top, debs)
	}
	return debs[0], nil
}

// lintianDeb runs lintian on the package: no error and no warning, each
// override justified in debian/gosv.lintian-overrides. One exception
// while make install installs no manual page: no-manual-page.
func lintianDeb(t *testing.T, deb string) {
	if _, err := exec.LookPath("lintian"); err != nil {
		t.Skipf("lintian not installed (apt-get install lintian): %v", err)
	}
	out, err := exec.Command("lintian", "--pedantic", "--fail-on", "none", deb).CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	t.Logf("lintian --pedantic %s:\n%s", filepath.Base(deb), out)
	contents, err := exec.Command("dpkg-deb", "-c", deb).Output()
	if err != nil {
		t.Fatal(err)
	}
	hasMan := bytes.Contains(contents, []byte("./usr/share/man/"))
	for _, l := range strings.Split(string(out), "\n") {
		if !strings.HasPrefix(l, "E: ") && !strings.HasPrefix(l, "W: ") {
			continue
		}
		if strings.Contains(l, " no-manual-page ") && !hasMan {
			continue
		}
		t.Errorf("lintian: %s", l)
	}
}

func testDebPackage(t *testing.T, version, deb string) {
	build := ""
	if version != rcVersions[0] {
		build = requireOpenRC063(t)
	}
	n := NewNS(t)
	if build != "" {
		// newRCv's recipe.
		if r := n.Sh(t, "rm -rf /usr/lib/rc && DESTDIR= meson install --quiet --no-rebuild -C "+shellQuote(build)+" >/dev/null && ldconfig"); r.Code != 0 {
			t.Fatalf("install OpenRC %s inside the namespace: %s", version, r)
		}
	}
	if got := strings.TrimSpace(n.MustRun(t, "cat", rcLibexec(version)+"/version").Stdout); got != version {
		t.Fatalf("OpenRC inside is %q, want %s", got, version)
	}
	n.Sh(t, "[ -d /sys/fs/cgroup/unified ] && mount -t tmpfs tmpfs /sys/fs/cgroup/unified")
	if r := n.Run(t, "sh", "-c", "command -v gosv"); r.Code == 0 {
		t.Fatalf("gosv is on the namespace's PATH before the package is installed: %s", r)
	}

	// policy-rc.d decides whether maintainer scripts may start or stop
	// services (the host's may say no: Docker's does). Ours allows; it is
	// switched to deny and back below, to the same bytes.
	policy := func(code int) {
		p := n.WriteFile(t, "policy-rc.d", fmt.Sprintf("#!/bin/sh\nexit %d\n", code), 0o755)
		n.MustRun(t, "install", "-m", "0755", p, "/usr/sbin/policy-rc.d")
	}
	policy(0)

	before := upperFiles(t, n)
	// A gosv service known to OpenRC before the package: postinst's
	// rc-update -u must make it need gosv-svscan (0.45 does not notice a
	// new rc.conf.d file by itself).
	n.WriteFile(t, "debweb", "#!/sbin/openrc-run\nsupervisor=gosv\ncommand=/bin/sleep\ncommand_args=424242\n", 0o755)
	n.MustRun(t, "install", "-m", "0755", filepath.Join(n.Dir, "debweb"), "/etc/init.d/debweb")
	n.MustRun(t, "rc-update", "-u")

	r := n.MustRun(t, "dpkg", "-i", deb)
	t.Logf("dpkg -i:\n%s%s", r.Stdout, r.Stderr)
	if got := strings.TrimSpace(n.MustRun(t, "sh", "-c", "command -v gosv").Stdout); got != gosvInstallBin {
		t.Fatalf("gosv on PATH is %q, want the package's %s", got, gosvInstallBin)
	}
	if r := n.Run(t, "gosv", "openrc", "check", "debweb"); r.Code != 0 {
		t.Errorf("gosv openrc check with the packaged hook: %s", r)
	}
	dep := n.MustRun(t, filepath.Join(rcLibexec(version), "bin", "rc-depend"), "-t", "ineed", "debweb").Stdout
	if !slices.Contains(strings.Fields(dep), "gosv-svscan") {
		t.Errorf("after dpkg -i, debweb needs %q: want gosv-svscan (postinst's rc-update -u)", dep)
	}

	// The demo, from the installed files.
	r = n.Run(t, "env", "GOSV_DEMO_INSTALLED=1", "bash", filepath.Join(suite.repoRoot, "demo", "openrc-demo.sh"))
	t.Logf("demo/openrc-demo.sh:\n%s%s", r.Stdout, r.Stderr)
	if r.Code != 0 {
		t.Fatalf("demo: %s", r)
	}
	for _, want := range []string{
		"gosv is installed: " + gosvInstallBin,
		"$ rc-service web start",
		"* status: started",
		"$ gosv svc -wR -T 5000 -k /run/openrc/gosv-scan/web",
		"* status: stopped",
	} {
		if !strings.Contains(r.Stdout, want) {
			t.Errorf("demo output lacks %q", want)
		}
	}
	// The only command of the demo that fails is the status of the
	// stopped service (3).
	if got := strings.Count(r.Stdout, "(exit "); got != 1 || !strings.Contains(r.Stdout, "(exit 3)") {
		t.Errorf("demo: %d failed commands, want one, the status of a stopped service (exit 3)", got)
	}
	n.MustRun(t, "rm", "/etc/init.d/web")

	// A running tree when the package goes: prerm stops gosv-svscan, and
	// OpenRC stops debweb first.
	n.MustRun(t, "rc-service", "debweb", "start")
	if len(debProcs(n)) == 0 {
		t.Fatalf("no gosv process after rc-service debweb start:\n%s", n.psTree())
	}
	if _, err := os.Stat(debHost(n, "/var/log/gosv/current")); err != nil {
		t.Errorf("the catch-all log: %v", err)
	}

	// An upgrade (the same package again: postinst configure with the old
	// version): the running scanner re-executes the new binary in place,
	// and debweb's daemon is not restarted (issue 15).
	scanner := func() int {
		for _, p := range n.Procs() {
			if p.State != 'Z' && strings.HasPrefix(p.Cmdline, "gosv svscan") {
				return p.NsPid
			}
		}
		return 0
	}
	webDir := debHost(n, "/run/openrc/gosv-services/debweb")
	scan0, web0 := scanner(), ReadStatus(t, webDir)
	r = n.MustRun(t, "dpkg", "-i", deb)
	t.Logf("dpkg -i again (upgrade):\n%s%s", r.Stdout, r.Stderr)
	if !strings.Contains(r.Stdout+r.Stderr, "Re-executing the gosv scanner in place") {
		t.Errorf("the upgrade did not re-execute the scanner")
	}
	if scan1, web1 := scanner(), ReadStatus(t, webDir); scan1 == 0 || scan1 != scan0 || web1 != web0 {
		t.Errorf("after the upgrade: scanner %d, debweb %+v; want scanner %d, debweb %+v unchanged", scan1, web1, scan0, web0)
	}

	// An admin's runlevel link, which purge removes with the script.
	n.MustRun(t, "rc-update", "add", "gosv-svscan", "default")

	// prerm obeys policy-rc.d: denied, the tree stays.
	policy(101)
	r = n.Run(t, "/var/lib/dpkg/info/gosv.prerm", "remove")
	if r.Code != 0 || n.Run(t, "rc-service", "gosv-svscan", "status").Code != 0 {
		t.Errorf("prerm remove with policy-rc.d denying: %s; want exit 0 and gosv-svscan still started", r)
	}
	policy(0)

	// A crashed gosv-svscan (its supervise-daemon and scanner killed; the
	// catch-all logger and debweb live on), as in
	// TestOpenRCSvscanStopCrashed: prerm must still stop it, leftovers
	// included.
	for _, p := range n.Procs() {
		if p.State != 'Z' && (p.Comm == "supervise-daemon" && strings.Contains(p.Cmdline, "gosv-svscan") ||
			strings.HasPrefix(p.Cmdline, "gosv svscan")) {
			if err := unix.Kill(p.HostPid, unix.SIGKILL); err != nil {
				t.Fatal(err)
			}
			waitExit(t, p.HostPid, nsReadyTimeout)
		}
	}
	if got := n.Run(t, "rc-service", "gosv-svscan", "status").Code; got == 3 {
		t.Fatalf("gosv-svscan status after SIGKILL of its supervise-daemon and scanner: exit 3 (stopped), want started or crashed")
	}

	r = n.MustRun(t, "dpkg", "--purge", "gosv")
	t.Logf("dpkg --purge:\n%s%s", r.Stdout, r.Stderr)
	if ps := debProcs(n); len(ps) > 0 {
		t.Errorf("gosv processes left after the purge: %v\n%s", ps, n.psTree())
	}
	if got := n.Run(t, "sh", "-c", "rc-service debweb status").Code; got != 3 {
		t.Errorf("debweb status after the purge: exit %d, want 3 (stopped)", got)
	}
	if r := n.Sh(t, "find /run -name '*gosv*'"); r.Stdout != "" {
		t.Errorf("left in /run after the purge:\n%s", r.Stdout)
	}
	n.MustRun(t, "rm", "/etc/init.d/debweb")
	after := upperFiles(t, n)
	for _, d := range diffFiles(before, after) {
		t.Errorf("after the purge, not as before the install: %s", d)
	}
}

// debHost is the path of p inside the namespace, seen from the host.
func debHost(n *NS, p string) string { return fmt.Sprintf("/proc/%d/root%s", n.Pid1(), p) }

// debProcs lists the namespace's processes of gosv: the binary itself,
// gosv-svscan's supervise-daemon, debweb's daemon.
func debProcs(n *NS) []string {
	var out []string
	for _, p := range n.Procs() {
		if p.State != 'Z' && (p.Comm == "gosv" || strings.Contains(p.Cmdline, "gosv-svscan") || strings.Contains(p.Cmdline, "sleep 424242")) {
			out = append(out, fmt.Sprintf("%d %s", p.NsPid, p.Cmdline))
		}
	}
	return out
}

// upperFiles describes every entry of the namespace's overlay upper
// layers (/etc, /usr, /var), by path relative to /: its type and mode, a
// symlink's target, a file's SHA-256; whiteouts (deleted lower files)
// are character devices. A directory that the host (the lower layer)
// has too was only copied up: it is left out.
func upperFiles(t *testing.T, n *NS) map[string]string {
	t.Helper()
	files := map[string]string{}
	for _, top := range []string{"etc", "usr", "var"} {
		upper := filepath.Join(n.Dir, "overlay", top, "upper")
		err := filepath.WalkDir(upper, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(upper, p)
			rel = filepath.Join(top, rel)
			info, err := d.Info()
			if err != nil {
				return err
			}
			if st, err := os.Lstat("/" + rel); d.IsDir() && err == nil && st.IsDir() {
				return nil
			}
			desc := info.Mode().String()
			switch {
			case info.Mode()&fs.ModeSymlink != 0:
				target, _ := os.Readlink(p)
				desc += " -> " + target
			case info.Mode().IsRegular():
				b, err := os.ReadFile(p)
				if err != nil {
					return err
				}
				desc += fmt.Sprintf(" %x", sha256.Sum256(b))
			}
			files[rel] = desc
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return files
}

// diffFiles lists the differences between two upperFiles, but for the
// paths of debAllowed.
func diffFiles(before, after map[string]string) []string {
	allowed := func(p string) bool {
		for _, a := range debAllowed {
			if p == strings.TrimSuffix(a, "/") || strings.HasPrefix(p, a) {
				return true
			}
		}
		return false
	}
	var diffs []string
	for p, a := range after {
		if b, ok := before[p]; (!ok || a != b) && !allowed(p) {
			if !ok {
				diffs = append(diffs, "new: "+p+" ("+a+")")
			} else {
				diffs = append(diffs, "changed: "+p+" ("+b+" -> "+a+")")
			}
		}
	}
	for p := range before {
		if _, ok := after[p]; !ok && !allowed(p) {
			diffs = append(diffs, "gone: "+p)
		}
	}
	slices.Sort(diffs)
	return diffs
}
