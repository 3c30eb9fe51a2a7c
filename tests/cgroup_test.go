//go:build integration

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// envRequireCgroup makes a missing pids cgroup controller a failure.
const envRequireCgroup = "REQUIRE_CGROUP"

// pidsCgroup creates a child cgroup with the pids controller (v1 or v2)
// and returns its directory; the cleanup moves what is left in it to its
// parent and removes it.
func pidsCgroup(t testing.TB) string {
	t.Helper()
	skip := func(why string) string {
		if os.Getenv(envRequireCgroup) == "1" {
			t.Fatalf("pids cgroup: %s (%s=1)", why, envRequireCgroup)
		}
		t.Skipf("pids cgroup: %s (set %s=1 to make this a failure)", why, envRequireCgroup)
		return ""
	}
	parent := "/sys/fs/cgroup/pids" // v1
	if b, err := os.ReadFile("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		parent = "/sys/fs/cgroup" // v2: enable pids for the children of the root
		if !strings.Contains(string(b), "pids") {
			return skip("no pids controller in cgroup v2")
		}
		if err := os.WriteFile(filepath.Join(parent, "cgroup.subtree_control"), []byte("+pids"), 0); err != nil {
			return skip(err.Error())
		}
	} else if _, err := os.Stat(filepath.Join(parent, "cgroup.procs")); err != nil {
		return skip("neither cgroup v2 nor a v1 pids hierarchy")
	}
	cg := filepath.Join(parent, fmt.Sprintf("gosv-fault-%d-%d", os.Getpid(), time.Now().UnixNano()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		return skip(err.Error())
	}
	t.Cleanup(func() {
		for range 3 {
			b, _ := os.ReadFile(filepath.Join(cg, "cgroup.procs"))
			for _, p := range strings.Fields(string(b)) {
				os.WriteFile(filepath.Join(parent, "cgroup.procs"), []byte(p), 0)
			}
			if err := os.Remove(cg); err == nil || os.IsNotExist(err) {
				return
			}
		}
		t.Logf("could not remove %s", cg)
	})
	return cg
}

// TestFaultPidsCgroup puts a scanner and its services in a pids cgroup,
// drops pids.max to 1 (no fork, no new thread) while services die, then
// lifts it: the scanner survives, every service comes back, none twice,
// and the fork failures are reported once per service.
func TestFaultPidsCgroup(t *testing.T) {
	requireGosv(t)
	cg := pidsCgroup(t)
	window := faultWindow(t, 10*time.Second)
	e := newEnv(t)
	scan := filepath.Join(e.Dir, "scan-cg")
	if err := os.Mkdir(scan, 0o755); err != nil {
		t.Fatal(err)
	}
	var pauses, crashers []string
	var crashL []*Listener
	for i := range 4 {
		d := e.Service(t, "pause", fmt.Sprintf("p%d", i), nil)
		pauses = append(pauses, d)
		os.Symlink(d, filepath.Join(scan, filepath.Base(d)))
	}
	for i := range 3 {
		d := e.Service(t, "exit3", fmt.Sprintf("c%d", i), nil)
		crashers = append(crashers, d)
		crashL = append(crashL, Listen(t, d))
		os.Symlink(d, filepath.Join(scan, filepath.Base(d)))
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	// The shell joins the cgroup, then becomes the scanner.
	sc := e.Start(t, []*os.File{pw}, "sh", "-c",
		"echo $$ > "+filepath.Join(cg, "cgroup.procs")+" && exec "+gosvInstallBin+" svscan -d 3 "+scan)
	pw.Close()
	if _, err := readLine(pr, eventTimeout); err != nil {
		t.Fatalf("scanner: no readiness: %v (log: %s)", err, readFile(sc.Log))
	}
	pr.Close()
	e.MustRun(t, append([]string{"s6-svwait", "-u", "-t", waitMs}, pauses...)...)
	for _, l := range crashL {
		l.Wait(t, "d") // crash-looping
	}

	setMax := func(v string) {
		if err := os.WriteFile(filepath.Join(cg, "pids.max"), []byte(v), 0); err != nil {
			t.Fatal(err)
		}
	}
	setMax("1")
	// Two services die while nothing can fork.
	for _, d := range pauses[:2] {
		w := Listen(t, d)
		unix.Kill(e.hostPid(t, int(ReadStatus(t, d).Pid)), unix.SIGKILL)
		w.Wait(t, "d")
	}
	// NOTE: time-based: what is asserted is that nothing is lost or
	// duplicated, and the scanner survives, while the limit lasts.
	<-time.After(window)
	if sc.Exited() {
		t.Fatalf("the scanner died at the pids limit: %s", readFile(sc.Log))
	}
	failures := logLines(sc.Log, "unable to spawn", "resource temporarily unavailable")
	setMax("max")
	lifted := time.Now()
	// s6's fork-failure retry is 60 s (supervise.RetryFork): recovery
	// takes up to that.
	const recovery = 75 * time.Second
	e.MustRun(t, append([]string{"s6-svwait", "-u", "-t", strconv.Itoa(int(recovery / time.Millisecond))}, pauses...)...)
	for _, l := range crashL {
		l.WaitTimeout(t, "u", recovery)
	}
	took := time.Since(lifted)
	t.Logf("pids.max=1 for %v: %d fork-failure warnings; all 7 services back %.1f s after the limit was lifted",
		window, len(failures), took.Seconds())
	if sc.Exited() {
		t.Fatalf("the scanner died: %s", readFile(sc.Log))
	}
	if len(failures) == 0 {
		t.Errorf("no fork failure reported: the limit did not bite (log: %s)", readFile(sc.Log))
	}
	if all := logLines(sc.Log, "warning"); len(all) > 2*7 {
		t.Errorf("%d warning lines for 7 services:\n%s", len(all), strings.Join(all, "\n"))
	}
	// No duplicates: of every start a pause service recorded, only the
	// last is alive.
	for _, d := range pauses {
		pids := svPids(t, d)
		for i, p := range pids {
			alive := false
			if pr, ok := e.proc(p); ok && pr.State != 'Z' {
				alive = true
			}
			if alive != (i == len(pids)-1) {
				t.Errorf("%s: start %d (pid %d) alive=%v; starts %v", filepath.Base(d), i, p, alive, pids)
			}
		}
	}
}
