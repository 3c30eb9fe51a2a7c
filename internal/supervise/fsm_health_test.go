package supervise

import (
	"strings"
	"testing"
	"time"
)

// healthInvariants are FuzzStep's checks of the health fields.
func healthInvariants(m Machine, as []Action) string {
	on := m.healthOn()
	switch {
	case m.HealthBusy && (m.State != Up || m.HealthCutAt.IsZero()):
		return "a health check runs outside Up or without its cut"
	case !m.HealthAt.IsZero() && !on:
		return "a health check is scheduled while checks are off"
	case on && m.HealthBusy == !m.HealthAt.IsZero():
		return "checks on, but not exactly one of (a check runs, one is scheduled)"
	case m.HookBusy != !m.HookCutAt.IsZero():
		return "the unhealthy hook runs exactly while its cut is armed"
	case (m.Unhealthy || !m.HealthSince.IsZero() || m.HealthFails != 0) && m.State != Up:
		return "health state outlived its run"
	case m.HealthFails >= normHealth(m.Cfg.Health).Retries && !m.Unhealthy:
		return "retries failures counted without turning unhealthy"
	case m.Unhealthy && !m.HookBusy && m.KillAt.IsZero():
		return "unhealthy, no hook running and no stop under way"
	}
	for _, a := range as {
		switch a.Kind {
		case ActHealthCheck:
			if !m.HealthBusy {
				return "a check was started but is not recorded"
			}
		case ActEvent:
			if a.Hap == HapUnhealthy && !m.Unhealthy {
				return "unhealthy reported without the stop"
			}
		}
	}
	return ""
}

func healthCfg(retries int, hook bool) Config {
	c := DefaultConfig
	c.Health = HealthConfig{On: true, Hook: hook, Every: 10 * time.Second, Delay: 5 * time.Second,
		Timeout: 2 * time.Second, Retries: retries}
	return c
}

// run feeds events in order, each at its own time, and returns the
// actions of each step.
type hstep struct {
	at   time.Duration
	e    Event
	want string // substring of acts(...); "" = anything
}

func runHealth(t *testing.T, m Machine, steps []hstep) Machine {
	t.Helper()
	for i, s := range steps {
		var as []Action
		m, as = Step(m, s.e, at(s.at), nil)
		got := acts(as)
		bad := s.want != "" && !strings.Contains(got, s.want)
		if s.want == "-" {
			bad = got != ""
		}
		if bad {
			t.Fatalf("step %d (%v at %v): actions %q, want %q", i, s.e.Kind, s.at, got, s.want)
		}
		if msg := healthInvariants(m, as); msg != "" {
			t.Fatalf("step %d: %s", i, msg)
		}
	}
	return m
}

func done(ok bool) Event { return Event{Kind: EvHealthDone, OK: ok, Msg: "x"} }

func TestHealthFirstCheckAfterDelay(t *testing.T) {
	m := with(down(true), func(m *Machine) { m.Cfg = healthCfg(1, false) })
	m = runHealth(t, m, []hstep{
		{0, ev(EvStart), "spawn"},
		{0, spawned(100), "hstate:unknown/0"},
	})
	if m.HealthAt != at(5*time.Second) {
		t.Fatalf("first check at %v, want delay 5s", m.HealthAt.Sub(t0))
	}
	m = runHealth(t, m, []hstep{
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{6 * time.Second, done(true), "hstate:healthy/0"},
	})
	if m.HealthAt != at(16*time.Second) {
		t.Fatalf("next check at %v, want 10s after the last one ended", m.HealthAt.Sub(t0))
	}
}

func TestHealthWaitsForReadiness(t *testing.T) {
	c := healthCfg(1, false)
	c.Readiness = true
	m := with(up(100), func(m *Machine) { m.Cfg = c })
	m = runHealth(t, m, []hstep{{time.Second, ctl('1'), ""}})
	if !m.HealthAt.IsZero() {
		t.Fatal("check scheduled before readiness")
	}
	m = runHealth(t, m, []hstep{{3 * time.Second, ev(EvReady), "hstate:unknown/0"}})
	if m.HealthAt != at(8*time.Second) {
		t.Fatalf("first check at %v, want 5s after readiness", m.HealthAt.Sub(t0))
	}
}

// Two failures then a pass with retries 3: no restart, recovered.
func TestHealthRetriesThenRecovers(t *testing.T) {
	m := with(up(100), func(m *Machine) { m.Cfg = healthCfg(3, false) })
	m = runHealth(t, m, []hstep{
		{0, ctl('1'), "hstate:unknown/0"},
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{5 * time.Second, done(false), "hstate:failing/1"},
		{15 * time.Second, ev(EvTimeout), "hcheck"},
		{15 * time.Second, done(false), "hstate:failing/2"},
		{25 * time.Second, ev(EvTimeout), "hcheck"},
		{25 * time.Second, done(true), "event:recovered hstate:healthy/0"},
	})
	if m.State != Up || !m.KillAt.IsZero() {
		t.Fatalf("restarted: %s, KillAt %v", m.State, m.KillAt)
	}
}

// Three failures with retries 3: unhealthy, the hook, then the stop
// schedule (down-signal, SIGKILL after timeout-kill) and the respawn.
func TestHealthUnhealthyHookThenRestart(t *testing.T) {
	c := healthCfg(3, true)
	c.TimeoutKill = 3 * time.Second
	m := with(up(100), func(m *Machine) { m.Cfg = c })
	m = runHealth(t, m, []hstep{
		{0, ctl('1'), ""},
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{5 * time.Second, done(false), "failing/1"},
		{15 * time.Second, ev(EvTimeout), "hcheck"},
		// A check that hangs is cut at its timeout and counts as a failure.
		{17 * time.Second, ev(EvTimeout), "hcancel hstate:failing/2"},
		{27 * time.Second, ev(EvTimeout), "hcheck"},
		{27 * time.Second, done(false), "hstate:unhealthy/3 event:unhealthy unhealthy"},
		{28 * time.Second, ev(EvHookDone), "kill:-100/15 kill:-100/18"},
		{31 * time.Second, ev(EvTimeout), "kill:-100/9"},
		{32 * time.Second, exit(100, 9), "finish"},
	})
	if !m.WantUp || m.Unhealthy || m.HealthFails != 0 {
		t.Fatalf("after the death: want-up %v, unhealthy %v, fails %d", m.WantUp, m.Unhealthy, m.HealthFails)
	}
}

func TestHealthHookTimesOut(t *testing.T) {
	m := with(up(100), func(m *Machine) { m.Cfg = healthCfg(1, true) })
	runHealth(t, m, []hstep{
		{0, ctl('1'), ""},
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{5 * time.Second, done(false), "event:unhealthy unhealthy"},
		{7 * time.Second, ev(EvTimeout), "hookcancel report kill:-100/15"},
		{8 * time.Second, ev(EvHookDone), "-"}, // stale
	})
}

func TestHealthStartGrace(t *testing.T) {
	c := healthCfg(1, false)
	c.Health.Grace = 20 * time.Second
	m := with(up(100), func(m *Machine) { m.Cfg = c })
	runHealth(t, m, []hstep{
		{0, ctl('1'), ""},
		{5 * time.Second, ev(EvTimeout), "hcheck"},
		{5 * time.Second, done(false), "hstate:failing/0"},
		{15 * time.Second, ev(EvTimeout), "hcheck"},
		{21 * time.Second, done(false), "event:unhealthy"},
	})
}

// Checks stop while the service is stopped, paused or dead, and the
// running one is cut.
func TestHealthCancelled(t *testing.T) {
	for _, e := range []Event{ctl('d'), ctl('p'), exit(100, 0), ev(EvQuit)} {
		m := with(up(100), func(m *Machine) { m.Cfg = healthCfg(1, false) })
		m = runHealth(t, m, []hstep{
			{0, ctl('1'), ""},
			{5 * time.Second, ev(EvTimeout), "hcheck"},
			{6 * time.Second, e, "hcancel"},
			{7 * time.Second, done(false), ""},
		})
		if m.HealthBusy || !m.HealthAt.IsZero() || m.Unhealthy {
			t.Errorf("%v: checks go on: %+v", e, m)
		}
	}
}

func TestHealthAlign(t *testing.T) {
	for _, tc := range []struct {
		at, every, want time.Duration
	}{
		{10*time.Second + time.Millisecond, 10 * time.Second, 10*time.Second + 250*time.Millisecond},
		{10 * time.Second, 10 * time.Second, 10 * time.Second},
		{1*time.Minute + 1, time.Minute, time.Minute + time.Second},
		{1234 * time.Millisecond, time.Second, 1234 * time.Millisecond}, // short timers keep their time
	} {
		if got := alignUp(at(tc.at), tc.every); !got.Equal(at(tc.want)) {
			t.Errorf("alignUp(%v, %v) = %v, want %v", tc.at, tc.every, got.Sub(t0), tc.want)
		}
	}
}
