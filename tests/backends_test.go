//go:build integration

package tests

import (
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The backend contract (issue 14): one table of OpenRC behaviours, run
// against every supervisor gosv drives (gosv_backend, set for every
// service at once in /etc/conf.d/gosv-svscan), with the real s6, on both
// OpenRC versions.

// contractBackend is one backend under test: its name, the OpenRC
// service of its scanner and that scanner's scan directory.
type contractBackend struct {
	name, scanner, scanDir string
	// scannerCmd is part of the scanner's command line (not of its
	// supervise-daemon's).
	scannerCmd string
}

var contractBackends = []contractBackend{
	{"gosv", "gosv-svscan", rcScanDir, "gosv svscan " + rcScanDir},
	{"s6", "s6-svscan", rcSvcDir + "/s6-scan", "s6-svscan -"},
}

func TestBackendsContract(t *testing.T) {
	for _, b := range contractBackends {
		t.Run(b.name, func(t *testing.T) {
			if b.name == "s6" {
				requireTools(t, envRequireS6, "s6-svscan", "s6-supervise", "s6-log")
			}
			forEachRC(t, func(t *testing.T, version string) { testContract(t, version, b) })
		})
	}
}

func testContract(t *testing.T, version string, b contractBackend) {
	e := newRCv(t, true, version)
	e.Sh(t, "echo gosv_backend="+b.name+" >> /etc/conf.d/gosv-svscan && rc-update -u >/dev/null")

	// Start and ready: the scanner comes in as the dependency the hook
	// added, the start blocks until the daemon is ready, the service is
	// linked into that scanner's directory, status is 0.
	t0 := time.Now()
	e.mustSvc(t, "gosv-slowready", "start")
	if d := time.Since(t0); d < 400*time.Millisecond {
		t.Errorf("start returned after %v, before the daemon was ready", d)
	}
	if st := e.status(t, "gosv-slowready"); !st.Up() || st.Flags&flagReady == 0 {
		t.Errorf("after start: %v, want up and ready", st)
	}
	if r := e.svc(t, b.scanner, "status"); r.Code != 0 {
		t.Errorf("%s was not started as a dependency: %s", b.scanner, r)
	}
	e.MustRun(t, "test", "-L", filepath.Join(b.scanDir, "gosv-slowready"))
	if r := e.svc(t, "gosv-slowready", "status"); r.Code != 0 {
		t.Errorf("status: %s, want 0", r)
	}
	e.mustSvc(t, "gosv-slowready", "stop")
	if r := e.svc(t, "gosv-slowready", "status"); r.Code != 3 {
		t.Errorf("status after stop: %s, want 3", r)
	}

	// A hand-written directory (gosv_service_path: what a supervisor=s6
	// service moves with) runs on the backend's scanner too.
	t0 = time.Now()
	e.mustSvc(t, "gosv-handwritten", "start")
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("hand-written: start returned after %v, before the daemon was ready", d)
	}
	e.MustRun(t, "test", "-L", filepath.Join(b.scanDir, "gosv-handwritten"))
	if r := e.svc(t, "gosv-handwritten", "status"); r.Code != 0 {
		t.Errorf("hand-written: status %s, want 0", r)
	}
	e.mustSvc(t, "gosv-handwritten", "stop")

	// Timeout with the reason and the last log lines; nothing left.
	r := e.svc(t, "gosv-neverready", "start")
	if r.Code != 1 {
		t.Fatalf("start of a never-ready daemon: %s, want exit 1", r)
	}
	for _, want := range []string{"* gosv-neverready: not ready within 500ms", "*   still warming up"} {
		wantLine(t, r, want)
	}
	if ps := e.procs(e.helper); len(ps) != 0 {
		t.Errorf("left running after a failed start: %+v", ps)
	}
	e.MustRun(t, "test", "!", "-e", filepath.Join(b.scanDir, "gosv-neverready"))
	if r := e.svc(t, "gosv-neverready", "status"); r.Code != 3 {
		t.Errorf("status after a failed start: %s, want 3", r)
	}

	// Stop of a forker that ignores SIGTERM: SIGKILL after timeout_kill,
	// its children too.
	e.mustSvc(t, "gosv-forker", "start")
	if ps := e.procs(e.helper); len(ps) != 3 {
		t.Fatalf("%d helper processes, want 3: %+v", len(ps), ps)
	}
	t0 = time.Now()
	e.mustSvc(t, "gosv-forker", "stop")
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("forker stopped after %v, before timeout_kill", d)
	}
	if ps := e.procs(e.helper); len(ps) != 0 {
		t.Errorf("left running after stop: %+v", ps)
	}

	// A crash loop is given up after respawn_max respawns: OpenRC marks
	// it stopped then failed, status says why.
	cl := e.listen(t, rcServices+"/gosv-crashloop")
	e.mustSvc(t, "gosv-crashloop", "start")
	cl.WaitTimeout(t, "O", 3*eventTimeout)
	if r := e.svc(t, "gosv-crashloop", "status"); r.Code != 3 || !strings.Contains(r.Stdout, "respawned 3 times") {
		t.Errorf("status of a given-up crash loop: %s, want 3 and the reason", r)
	}
	if got := e.rcStatus(t, "gosv-crashloop"); got != "[ failed ]" {
		t.Errorf("rc-status of a given-up crash loop: %q, want [ failed ]", got)
	}

	// Crash restart: a SIGKILLed daemon comes back, status stays 0 and
	// says how it died.
	e.mustSvc(t, "gosv-plain", "start")
	before := e.status(t, "gosv-plain")
	l := e.listen(t, rcServices+"/gosv-plain")
	e.MustRun(t, "kill", "-KILL", strconv.FormatUint(before.Pid, 10))
	l.Wait(t, "U")
	if after := e.status(t, "gosv-plain"); after.Pid == before.Pid || !after.Up() {
		t.Errorf("not restarted: before %v, after %v", before, after)
	}
	if r := e.svc(t, "gosv-plain", "status"); r.Code != 0 || !strings.Contains(r.Stdout, "last exit: signal SIGKILL") {
		t.Errorf("status after a crash: %s, want 0 and the last exit", r)
	}

	// rc-status agrees (the daemon record's pidfile names the service's
	// supervisor), and restart gives a new process.
	if got := e.rcStatus(t, "gosv-plain"); !strings.HasPrefix(got, "[ started") {
		t.Errorf("rc-status: %q, want started", got)
	}
	prev := e.status(t, "gosv-plain")
	e.mustSvc(t, "gosv-plain", "restart")
	if now := e.status(t, "gosv-plain"); now.Pid == prev.Pid || !now.Up() {
		t.Errorf("restart: before %v, after %v", prev, now)
	}

	// Scanner death (its supervisor first, so that nothing restarts it):
	// the daemon lives on unsupervised (64); stop still stops it.
	victims := e.procs("supervise-daemon " + b.scanner)
	for _, p := range e.procs(b.scannerCmd) {
		if !strings.HasPrefix(p.Cmdline, "supervise-daemon") {
			victims = append(victims, p)
		}
	}
	if len(victims) == 0 {
		t.Fatalf("no %s process found", b.scanner)
	}
	for _, p := range victims {
		e.MustRun(t, "kill", "-KILL", strconv.Itoa(p.NsPid))
		e.WaitReaped(t, p.NsPid, eventTimeout)
	}
	if r := e.svc(t, "gosv-plain", "status"); r.Code != 64 {
		t.Errorf("status after the scanner died: %s, want 64 (unsupervised)", r)
	}
	e.mustSvc(t, "gosv-plain", "stop")
	if ps := e.procs(e.helper); len(ps) != 0 {
		t.Errorf("left running after stop without a scanner: %+v", ps)
	}
}
