//go:build integration

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// gosv-only tests: behaviour gosv promises beyond (or instead of) s6's.
// They skip when GOSV_TEST_SCANNER=s6 and fail when gosv is not testable.

// groupExitGrace bounds how long the members of a killed process group may
// take to finish dying after the supervisor announced D: SIGKILL is
// delivered asynchronously, so a member may still be exiting when D
// arrives. A member that ignored the kill would never exit.
const groupExitGrace = time.Second

// snapshot is the part of supervise/status that must match s6 byte for
// byte: stamps and pid values vary from run to run, pid zero-ness does not.
type snapshot struct {
	step   string
	pidSet bool
	wstat  uint16
	flags  byte
}

func (s snapshot) String() string {
	return fmt.Sprintf("pid!=0:%v wstat=%#04x flags=%#02x", s.pidSet, s.wstat, s.flags)
}

func snap(t testing.TB, step, dir string) snapshot {
	t.Helper()
	st := ReadStatus(t, dir)
	return snapshot{step: step, pidSet: st.Pid != 0, wstat: st.Wstat, flags: st.Flags}
}

// statusScenario drives e with the real s6 tools through the states of
// s6-protocol.md §3.4 and records the status after each step. Every step
// ends on an event (or a status rewrite), so the result is deterministic.
func statusScenario(t testing.TB, e *Env) []snapshot {
	t.Helper()
	var out []snapshot
	rec := func(step, dir string) { out = append(out, snap(t, step, dir)) }

	a := e.AddService(t, "notify", "a", nil)
	e.MustRun(t, "s6-svwait", "-u", "-t", waitMs, a)
	rec("up, not ready", a)
	makeReady(t, a)
	e.MustRun(t, "s6-svwait", "-U", "-t", waitMs, a)
	rec("up and ready", a)
	w := WatchStatus(t, a)
	w.Drain(t)
	e.MustRun(t, "s6-svc", "-p", a)
	w.Wait(t)
	rec("paused", a)
	w.Drain(t)
	e.MustRun(t, "s6-svc", "-c", a)
	w.Wait(t)
	rec("continued", a)
	e.MustRun(t, "s6-svc", "-wD", "-T", waitMs, "-d", a)
	rec("down by -d", a)
	if err := os.Remove(filepath.Join(a, "go-ready")); err != nil {
		t.Fatal(err)
	}
	e.MustRun(t, "s6-svc", "-wu", "-T", waitMs, "-u", a)
	rec("up again", a)
	w.Drain(t)
	e.MustRun(t, "s6-svc", "-O", a)
	w.Wait(t)
	rec("up, want down", a)
	e.MustRun(t, "s6-svc", "-k", a)
	e.MustRun(t, "s6-svwait", "-D", "-t", waitMs, a)
	rec("killed, stays down", a)

	b := e.Service(t, "exit3", "b", nil)
	l := Listen(t, b)
	e.Link(t, b, "b")
	for attempt := 0; ; attempt++ { // see testSvstat exitcode-want-up
		l.Wait(t, "D")
		if st := ReadStatus(t, b); !st.Up() || attempt == 3 {
			break
		}
	}
	rec("exited 3, want up", b)

	c := e.AddService(t, "pause", "c", map[string]string{"down": ""})
	rec("normally down", c)
	e.MustRun(t, "s6-svc", "-o", c)
	e.MustRun(t, "s6-svwait", "-u", "-t", waitMs, c)
	rec("once", c)

	d := e.AddService(t, "finish", "d", nil)
	e.MustRun(t, "s6-svwait", "-u", "-t", waitMs, d)
	e.MustRun(t, "s6-svc", "-wD", "-T", waitMs, "-d", d)
	rec("down after finish", d)
	return out
}

// TestStatusBytesMatchS6 runs the same scenario under s6-svscan and under
// gosv (one namespace each) and compares supervise/status field by field.
func TestStatusBytesMatchS6(t *testing.T) {
	requireGosv(t)
	compareScenario(t, scannerS6, scannerGosv)
}

func compareScenario(t *testing.T, refKind, kind string) {
	var ref, got []snapshot
	t.Run(refKind, func(t *testing.T) { ref = statusScenario(t, newEnvWith(t, refKind)) })
	t.Run(kind, func(t *testing.T) { got = statusScenario(t, newEnvWith(t, kind)) })
	if t.Failed() {
		return
	}
	if len(ref) != len(got) {
		t.Fatalf("%d steps under %s, %d under %s", len(ref), refKind, len(got), kind)
	}
	for i := range ref {
		if ref[i] != got[i] {
			t.Errorf("step %q: %s %v, %s %v", ref[i].step, refKind, ref[i], kind, got[i])
		}
	}
}

// markerCmdline is the command line of every ready service's run.
const markerCmdline = "svhelper -record ./pids ready 3"

func (e *Env) countMarker() int {
	n := 0
	for _, p := range e.Procs() {
		if p.Cmdline == markerCmdline && p.State != 'Z' {
			n++
		}
	}
	return n
}

// TestScannerKillAdopts kills the scanner with SIGKILL while 10 services
// are up and starts it again: it must adopt the running services (same
// pids, no second start), not start duplicates.
func TestScannerKillAdopts(t *testing.T) {
	requireGosv(t)
	testScannerKillAdopts(t, newEnv(t))
}

func testScannerKillAdopts(t *testing.T, e *Env) {
	const n = 10
	var dirs []string
	for i := 0; i < n; i++ {
		dirs = append(dirs, e.AddService(t, "ready", "svc"+strconv.Itoa(i), nil))
	}
	// Ready (U) comes after the service recorded its pid in ./pids.
	e.MustRun(t, append([]string{"s6-svwait", "-U", "-t", waitMs}, dirs...)...)
	before := make([]uint64, n)
	for i, d := range dirs {
		before[i] = ReadStatus(t, d).Pid
	}
	if got := e.countMarker(); got != n {
		t.Fatalf("%d service processes before the kill, want %d:\n%s", got, n, e.psTree())
	}

	e.MustRun(t, "kill", "-KILL", strconv.Itoa(e.Scanner.NsPid))
	if code := e.Scanner.Wait(t, eventTimeout); code != 128+9 {
		t.Fatalf("scanner exit %d, want killed by SIGKILL", code)
	}
	ls := make([]*Listener, n)
	for i, d := range dirs {
		ls[i] = Listen(t, d)
	}
	e.StartScanner(t)
	for _, l := range ls {
		l.Wait(t, "s") // the restarted scanner took this service over
	}
	e.MustRun(t, append([]string{"s6-svwait", "-u", "-t", waitMs}, dirs...)...)
	for i, d := range dirs {
		st := ReadStatus(t, d)
		if st.Pid != before[i] || !st.Up() {
			t.Errorf("%s: %v after the restart, want the adopted pid %d", filepath.Base(d), st, before[i])
		}
		if pids := svPids(t, d); len(pids) != 1 {
			t.Errorf("%s started %d times: %v", filepath.Base(d), len(pids), pids)
		}
	}
	if got := e.countMarker(); got != n {
		t.Errorf("%d service processes after the restart, want %d:\n%s", got, n, e.psTree())
	}
	// Adopted means controllable: -d must stop the original process.
	host := e.hostPid(t, int(before[0]))
	e.MustRun(t, "s6-svc", "-wD", "-T", waitMs, "-d", dirs[0])
	if !waitExit(t, host, groupExitGrace) {
		t.Errorf("adopted service %d still alive after -wD -d", before[0])
	}
}

// TestTimeoutKillGroup checks that stopping a run that ignores SIGTERM and
// forked children (timeout-kill 500) leaves nothing of its process group.
func TestTimeoutKillGroup(t *testing.T) {
	requireGosv(t)
	testTimeoutKillGroup(t, newEnv(t))
}

func testTimeoutKillGroup(t *testing.T, e *Env) {
	dir := e.AddService(t, "forker", "forker", nil)
	e.MustRun(t, "s6-svwait", "-U", "-t", waitMs, dir) // ready once its children exist
	pgid := int(ReadStatus(t, dir).Pid)                // run is a session leader: pgid == pid
	var group []Process
	for _, p := range e.Procs() {
		if p.NsPgid == pgid {
			group = append(group, p)
		}
	}
	if len(group) != 4 {
		t.Fatalf("process group %d has %d processes, want run + 3 children:\n%s", pgid, len(group), e.psTree())
	}
	e.MustRun(t, "s6-svc", "-wD", "-T", waitMs, "-d", dir)
	for _, p := range group {
		if !waitExit(t, p.HostPid, groupExitGrace) {
			t.Errorf("pid %d of process group %d still alive %v after D", p.NsPid, pgid, groupExitGrace)
		}
	}
	for _, p := range e.Procs() {
		if p.NsPgid == pgid && p.State != 'Z' {
			t.Errorf("left in process group %d: pid %d %q", pgid, p.NsPid, p.Cmdline)
		}
	}
}

// TestInotifyNewService checks that a service directory symlinked into the
// scan directory is picked up without s6-svscanctl -a.
func TestInotifyNewService(t *testing.T) {
	requireGosv(t)
	testInotifyNewService(t, newEnv(t))
}

func testInotifyNewService(t *testing.T, e *Env) {
	dir := e.Service(t, "pause", "ino", nil)
	l := Listen(t, dir) // s6-svwait needs the status file: wait for s first
	e.MustRun(t, "ln", "-s", dir, filepath.Join(e.Scan, "ino"))
	l.WaitTimeout(t, "s", 2*time.Second)
	e.MustRun(t, "s6-svwait", "-u", "-t", "2000", dir)
}
