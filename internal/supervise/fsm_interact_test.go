package supervise

import (
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// Issue 11's features together: a run stopped for failing its health
// check dies by its down-signal (SIGTERM). That death is a failure for
// the restart policy even when SIGTERM is a success exit (systemd: a
// watchdog timeout restarts under Restart=on-failure), it counts for the
// backoff and respawn-max like any death, and the policy state says the
// run was unhealthy.
func TestHealthStopIsAPolicyFailure(t *testing.T) {
	p := onFailure("0 SIGTERM")
	p.Delay, p.DelayMax, p.Reset = 20*time.Millisecond, 160*time.Millisecond, time.Minute
	c := healthCfg(1, false)
	c.Policy = p
	m := with(up(100), func(m *Machine) { m.Cfg = c })
	m = runHealth(t, m, []hstep{
		{0, ctl('1'), ""},
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{5 * time.Second, done(false), "event:unhealthy kill:-100/15"},
	})
	m, all := deathAt(m, 15, at(6*time.Second)) // SIGTERM
	if !m.WantUp || m.Pol.GaveUp || m.Pol.Failures != 1 {
		t.Fatalf("the unhealthy run's SIGTERM ended the service as a success: %s; %+v", all, m.Pol)
	}
	if st := m.Pol.State(&m.Cfg.Policy); !st.LastUnhealthy {
		t.Errorf("policy state %+v does not say the run was unhealthy", st)
	}
	// A plain SIGTERM (an operator's kill) is still a success exit.
	m = with(up(300), func(m *Machine) { m.Cfg = c; m.SpawnedAt = at(7 * time.Second) })
	m, all = deathAt(m, 15, at(8*time.Second))
	if m.WantUp || !m.Pol.Completed || m.Pol.Unhealthy {
		t.Fatalf("a plain SIGTERM with success-exit SIGTERM: %s; %+v", all, m.Pol)
	}
}

// With respawn-on never, an unhealthy run is not respawned, and the
// give-up says why (systemd Restart=no after a watchdog timeout).
func TestHealthStopRespawnNever(t *testing.T) {
	c := healthCfg(1, false)
	c.Policy = Policy{On: servicedir.RespawnNever, Reset: DefaultRespawnReset, Success: servicedir.DefaultSuccessExits}
	m := with(up(100), func(m *Machine) { m.Cfg = c })
	m = runHealth(t, m, []hstep{
		{0, ctl('1'), ""},
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{5 * time.Second, done(false), "kill:-100/15"},
	})
	m, all := deathAt(m, 15, at(6*time.Second))
	if m.WantUp || !m.Pol.GaveUp || !strings.HasPrefix(m.Pol.Reason, "unhealthy (signal SIGTERM)") {
		t.Fatalf("%s; %+v", all, m.Pol)
	}
}

// The restart cures an unhealthy service: the new run's first pass
// reports recovered (the failures were the last run's), once.
func TestHealthRecoveredAfterRestart(t *testing.T) {
	c := healthCfg(1, false)
	m := with(up(100), func(m *Machine) { m.Cfg = c })
	m = runHealth(t, m, []hstep{
		{0, ctl('1'), ""},
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{5 * time.Second, done(false), "event:unhealthy kill:-100/15"},
	})
	m, _ = deathAt(m, 15, at(6*time.Second))
	// The respawn, at once: the run lived longer than the throttle.
	if m.State != Starting {
		t.Fatalf("no respawn: %v", m.State)
	}
	m, _ = Step(m, spawned(300), at(7*time.Second), nil)
	if m.State != Up {
		t.Fatalf("not respawned: %v", m.State)
	}
	m = runHealth(t, m, []hstep{
		{12 * time.Second, ev(EvTimeout), "hcheck"},
		{12 * time.Second, done(true), "event:recovered"},
		{22 * time.Second, ev(EvTimeout), "hcheck"},
	})
	if _, as := Step(m, done(true), at(22*time.Second), nil); strings.Contains(acts(as), "recovered") {
		t.Errorf("recovered twice: %s", acts(as))
	}
}
