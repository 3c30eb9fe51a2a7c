//go:build integration

package tests

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// TestPolicyBackoff (issue 11): a daemon that fails its first four starts
// is respawned after 200, 400, 800 and 800 ms (respawn_delay,
// gosv_respawn_delay_max), then stays up. The delays are asserted as lower
// bounds on the deaths' death_tally stamps (a loaded machine only makes the
// gaps longer) and exactly in supervise/gosv/policy.
func TestPolicyBackoff(t *testing.T) { forEachRC(t, testPolicyBackoff) }

func testPolicyBackoff(t *testing.T, version string) {
	e := newRCv(t, true, version)
	e.mustSvc(t, "gosv-svscan", "start")
	dir := rcServices + "/gosv-backoff"
	l := e.listen(t, dir)
	t.Cleanup(func() {
		if t.Failed() {
			// Registered after the namespace's own cleanup: runs before it.
			tally, _ := servicedir.ReadDeathTally(e.host(dir))
			r := e.Run(t, "tail", "-n", "30", "/var/log/gosv/current")
			t.Logf("events %q, starts (pids) %v, death tally %+v; last lines of /var/log/gosv/current:\n%s",
				l.Seen(), readPids(t, filepath.Join(e.Dir, "gosv-backoff.pids")), tally, r.Stdout)
		}
	})
	e.mustSvc(t, "gosv-backoff", "start")
	for range 5 {
		l.Wait(t, "u")
	}
	tally, err := servicedir.ReadDeathTally(e.host(dir))
	if err != nil || len(tally) != 4 {
		t.Fatalf("death tally %v, %v: want 4 deaths", tally, err)
	}
	ms := time.Millisecond
	for i, d := range []time.Duration{200 * ms, 400 * ms, 800 * ms} {
		if gap := tally[i+1].Stamp.Sub(tally[i].Stamp); gap < d {
			t.Errorf("death %d came %v after death %d, before the respawn delay %v", i+2, gap, i+1, d)
		}
	}
	if st := e.status(t, "gosv-backoff"); !st.Up() {
		t.Errorf("the fifth start is not up: %v", st)
	}
	p, ok, err := servicedir.ReadPolicyState(e.host(dir))
	if !ok || err != nil || p.Failures != 4 || p.Delay != 800*ms || p.GaveUp {
		t.Errorf("policy state %+v %v %v: want 4 failures, delay 800ms", p, ok, err)
	}
	if r := e.svc(t, "gosv-backoff", "status"); r.Code != 0 || !strings.Contains(r.Stdout, "restarts: 4") || strings.Contains(r.Stdout, "backing off") {
		t.Errorf("status: %s", r)
	}
	e.mustSvc(t, "gosv-backoff", "stop")
}

// TestPolicyStatusExplains: while the supervisor waits out a respawn
// delay, rc-service status (still started, code 0) and gosv openrc ls say
// why the daemon is down.
func TestPolicyStatusExplains(t *testing.T) { forEachRC(t, testPolicyStatusExplains) }

func testPolicyStatusExplains(t *testing.T, version string) {
	e := newRCv(t, true, version)
	e.mustSvc(t, "gosv-svscan", "start")
	l := e.listen(t, rcServices+"/gosv-backoff-long")
	e.mustSvc(t, "gosv-backoff-long", "start")
	l.Wait(t, "D") // down, the 30 s delay running
	const want = "backing off 30 s after 1 failure (last: exit 1)"
	if r := e.svc(t, "gosv-backoff-long", "status"); r.Code != 0 || !strings.Contains(r.Stdout, want) {
		t.Errorf("status: %s, want 0 and %q", r, want)
	}
	if r := e.Run(t, gosvInstallBin, "openrc", "ls"); !strings.Contains(r.Stdout, want) {
		t.Errorf("ls: %s, want %q", r, want)
	}
	if r := e.Run(t, gosvInstallBin, "svstat", "--json", rcServices+"/gosv-backoff-long"); !strings.Contains(r.Stdout, `"explain":"`+want+`"`) {
		t.Errorf("svstat --json: %s", r)
	}
	e.mustSvc(t, "gosv-backoff-long", "stop") // during the delay: at once, no respawn
	if n := strings.Count(l.Seen(), "u"); n != 1 {
		t.Errorf("events %q: want one start", l.Seen())
	}
}

// TestPolicyRespawnOnFailure: gosv_respawn_on=failure and a daemon that
// exits 0: it stays down, OpenRC marks it stopped (not failed), and status
// and ls say why.
func TestPolicyRespawnOnFailure(t *testing.T) { forEachRC(t, testPolicyRespawnOnFailure) }

func testPolicyRespawnOnFailure(t *testing.T, version string) {
	e := newRCv(t, true, version)
	e.mustSvc(t, "gosv-svscan", "start")
	l := e.listen(t, rcServices+"/gosv-oneshot")
	e.mustSvc(t, "gosv-oneshot", "start")
	// 'x' last: finish told OpenRC and the supervisor left.
	l.WaitTimeout(t, "x", 3*eventTimeout)
	if seen := l.Seen(); strings.Count(seen, "u") != 1 || !strings.Contains(seen, "O") {
		t.Errorf("events %q: want one start, then O", seen)
	}
	if n := len(readPids(t, filepath.Join(e.Dir, "gosv-oneshot.pids"))); n != 1 {
		t.Errorf("%d starts, want 1", n)
	}
	const why = "exit 0 is a success exit and gosv_respawn_on is failure"
	if r := e.svc(t, "gosv-oneshot", "status"); r.Code != 3 || !strings.Contains(r.Stdout, "respawns stopped: "+why) {
		t.Errorf("status: %s, want stopped (3) and %q", r, why)
	}
	// rc-status lists a stopped service outside the runlevels not at all.
	if got := e.rcStatus(t, "gosv-oneshot"); got != "" {
		t.Errorf("rc-status: %q, want nothing (stopped, not failed)", got)
	}
	if r := e.Run(t, gosvInstallBin, "openrc", "ls"); !strings.Contains(r.Stdout, "gosv-oneshot: stopped") || !strings.Contains(r.Stdout, why) {
		t.Errorf("ls: %s", r)
	}
	e.MustRun(t, "test", "!", "-e", rcScanDir+"/gosv-oneshot")
}
