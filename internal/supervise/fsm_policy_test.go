package supervise

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

func withPolicy(m Machine, p Policy) Machine { m.Cfg.Policy = p; return m }

// backoff: 20 ms doubling up to 160 ms, reset after a 1 s run.
var backoff = Policy{Delay: 20 * time.Millisecond, DelayMax: 160 * time.Millisecond, Reset: time.Second,
	Success: servicedir.DefaultSuccessExits}

func onFailure(success string) Policy {
	s, err := servicedir.ParseSuccessExits([]byte(success))
	if err != nil {
		panic(err)
	}
	return Policy{On: servicedir.RespawnFailure, Reset: DefaultRespawnReset, Success: s}
}

func TestPolicyDelay(t *testing.T) {
	ms := time.Millisecond
	for _, c := range []struct {
		p    Policy
		n    int
		want time.Duration
	}{
		{DefaultPolicy, 5, 0},
		{Policy{Delay: 2 * time.Second}, 7, 2 * time.Second}, // no cap: no doubling
		{backoff, 1, 20 * ms}, {backoff, 2, 40 * ms}, {backoff, 3, 80 * ms}, {backoff, 4, 160 * ms}, {backoff, 5, 160 * ms},
		{backoff, 1 << 30, 160 * ms},
		{Policy{DelayMax: 8 * time.Second}, 1, time.Second}, // no first delay: from the throttle
		{Policy{DelayMax: 8 * time.Second}, 4, 8 * time.Second},
		{Policy{Delay: 300 * ms, DelayMax: time.Second}, 3, time.Second},            // 1.2 s capped
		{Policy{Delay: 3 * time.Second, DelayMax: time.Second}, 3, 3 * time.Second}, // a cap below the first delay: no doubling
	} {
		if got := c.p.delay(c.n); got != c.want {
			t.Errorf("%+v after %d failures: %v, want %v", c.p, c.n, got, c.want)
		}
	}
}

// deathAt feeds the death of run 100 at now (with ws), then finish's exit
// and the empty group, and returns the machine and all the actions.
func deathAt(m Machine, ws int, now time.Time) (Machine, string) {
	var all []string
	m, as := Step(m, exit(m.Pid, ws), now, nil)
	all = append(all, acts(as))
	for _, e := range []Event{spawned(200), exit(200, 0), ev(EvGroupEmpty)} {
		m, as = Step(m, e, now, as[:0])
		all = append(all, acts(as))
	}
	return m, strings.Join(all, " | ")
}

func TestPolicyTable(t *testing.T) {
	ms := time.Millisecond
	runUp := func(p Policy, spawned time.Time) Machine {
		m := withPolicy(up(100), p)
		m.SpawnedAt = spawned
		return m
	}
	for i, c := range []struct {
		m     Machine
		ws    int
		now   time.Time
		state State
		acts  string // of the death only
		check func(Machine) string
	}{
		// No policy: s6's throttle, no policy file, no extra event.
		{runUp(DefaultPolicy, t0), 1 << 8, at(100 * ms), Down, "event:exit tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", func(m Machine) string {
			return check(m.SpawnAt.Equal(at(ThrottleInterval)) && !m.Pol.Written, "throttled as s6")
		}},
		// First failure: the first delay, from the death.
		{runUp(backoff, t0), 1 << 8, at(5 * ms), Down, "event:exit policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", func(m Machine) string {
			return check(m.SpawnAt.Equal(at(25*ms)) && m.Pol.Failures == 1 && m.Pol.Delay == 20*ms, "first delay")
		}},
		// Third short run in a row: 80 ms, with a backoff event.
		{with(runUp(backoff, t0), func(m *Machine) { m.Pol.Failures = 2 }), 1 << 8, at(5 * ms), Down,
			"event:exit event:backoff/80ms policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", func(m Machine) string {
				return check(m.SpawnAt.Equal(at(85*ms)) && m.Pol.Failures == 3, "doubled twice")
			}},
		// A run that lived respawn-reset starts over.
		{with(runUp(backoff, t0), func(m *Machine) { m.Pol.Failures = 6 }), 1 << 8, at(time.Second), Down, "event:exit policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", func(m Machine) string {
			return check(m.Pol.Failures == 1 && m.SpawnAt.Equal(at(time.Second+20*ms)), "reset")
		}},
		// respawn-on failure: exit 0 stays down (O then D), and why.
		{runUp(onFailure("0"), t0), 0, at(5 * time.Second), Down, "event:exit event:give-up policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:0,0", func(m Machine) string {
			return check(!m.WantUp && m.SpawnAt.IsZero() && m.Pol.GaveUp && m.Pol.Reason == "exit 0 is a success exit and respawn-on is failure", "success stays down")
		}},
		{runUp(onFailure("0"), t0), 1 << 8, at(5 * time.Second), Starting, "event:exit policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", nil},
		// A signal among the success exits.
		{runUp(onFailure("0 TERM"), t0), int(unix.SIGTERM), at(5 * time.Second), Down, "event:exit event:give-up policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:256,15", func(m Machine) string {
			return check(m.Pol.Reason == "signal SIGTERM is a success exit and respawn-on is failure", m.Pol.Reason)
		}},
		{runUp(onFailure("0 TERM"), t0), int(unix.SIGKILL), at(5 * time.Second), Starting, "event:exit policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:256,9", nil},
		// An adopted run's death is unknown: a failure.
		{with(runUp(onFailure("0"), time.Time{}), func(m *Machine) { m.Adopted = true }), 0, at(5 * time.Second), Starting, "", nil},
		// respawn-on never: even a failure stays down.
		{runUp(Policy{On: servicedir.RespawnNever, Success: servicedir.DefaultSuccessExits}, t0), 1 << 8, at(5 * time.Second), Down,
			"event:exit event:give-up policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", func(m Machine) string {
				return check(m.Pol.Reason == "exit 1 and respawn-on is never", m.Pol.Reason)
			}},
		// respawn-max 2 in 10 s: the third death in the window gives up.
		{with(runUp(Policy{Max: 2, Period: 10 * time.Second, Reset: DefaultRespawnReset}, t0), func(m *Machine) {
			m.Pol.WinStart, m.Pol.WinCount = t0, 2
		}), 1 << 8, at(3 * time.Second), Down, "event:exit event:give-up policy tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", func(m Machine) string {
			s := m.Pol.State(&m.Cfg.Policy)
			return check(!m.WantUp && s.Words() == "respawned 3 times within 10 s", s.Words())
		}},
		// … but a death after the window closes it uncounted (supervise-daemon).
		{with(runUp(Policy{Max: 2, Period: 10 * time.Second, Reset: DefaultRespawnReset}, t0), func(m *Machine) {
			m.Pol.WinStart, m.Pol.WinCount = t0, 2
		}), 1 << 8, at(11 * time.Second), Starting, "", func(m Machine) string {
			return check(m.WantUp && m.Pol.WinCount == 0 && m.Pol.WinStart.IsZero(), "window reset")
		}},
		// respawn-max 0 never gives up.
		{with(runUp(Policy{Delay: time.Second, Reset: DefaultRespawnReset}, t0), func(m *Machine) { m.Pol.WinStart, m.Pol.WinCount = t0, 1000 }),
			1 << 8, at(3 * time.Second), Down, "", func(m Machine) string { return check(m.WantUp && !m.Pol.GaveUp, "no give-up") }},
		// A stop (d) while up: no decision.
		{with(runUp(backoff, t0), func(m *Machine) { m.WantUp = false }), 1 << 8, at(5 * ms), Down, "event:exit tally closenotify kill:-100/15 kill:-100/18 watchgroup finish:1,0", func(m Machine) string {
			return check(m.Pol.Failures == 0 && m.SpawnAt.IsZero(), "no policy on a stop")
		}},
	} {
		var e Event
		if c.m.Adopted {
			e = Event{Kind: EvExit, Pid: 100, Unknown: true}
		} else {
			e = exit(100, c.ws)
		}
		m, as := Step(c.m, e, c.now, nil)
		if got := acts(as); c.acts != "" && got != c.acts {
			t.Errorf("%d: death acts %q, want %q", i, got, c.acts)
		}
		for _, e := range []Event{spawned(200), exit(200, 0), ev(EvGroupEmpty)} {
			m, _ = Step(m, e, c.now, nil)
		}
		if m.State != c.state {
			t.Errorf("%d: state %v, want %v", i, m.State, c.state)
		}
		if c.check != nil {
			if msg := c.check(m); msg != "" {
				t.Errorf("%d: %s (%+v)", i, msg, m.Pol)
			}
		}
	}
}

// TestPolicyGiveUpAnnouncesO: the give-up is s6's permanent failure: O
// then D, and the next u starts over with a clean policy state.
func TestPolicyGiveUpAnnouncesO(t *testing.T) {
	m := withPolicy(up(100), onFailure("0"))
	m, all := deathAt(m, 0, at(2*time.Second))
	if !strings.Contains(all, "notify:OD") || m.WantUp {
		t.Fatalf("give-up: %s", all)
	}
	m, as := Step(m, ctl('u'), at(3*time.Second), nil)
	if got := acts(as); got != "policy spawn" || m.Pol.GaveUp {
		t.Fatalf("u after a give-up: %q %+v", got, m.Pol)
	}
}

// TestPolicyBackoffSequence: a crash loop's delays, through the machine
// and its deadlines, are 20, 40, 80, 160, 160 ms; a long run resets.
func TestPolicyBackoffSequence(t *testing.T) {
	ms := time.Millisecond
	m := withPolicy(down(true), backoff)
	now := t0
	m, _ = Step(m, ev(EvStart), now, nil)
	var got []time.Duration
	for i := 0; i < 6; i++ {
		pid := 100 + i
		m, _ = Step(m, spawned(pid), now, nil)
		lived := 5 * ms
		if i == 5 {
			lived = time.Second // stable: the next delay is the first again
		}
		now = now.Add(lived)
		died := now
		m, _ = deathAt(m, 1<<8, now)
		if m.State != Down || m.Deadline().IsZero() {
			t.Fatalf("run %d: %v, deadline %v", i, m.State, m.Deadline())
		}
		now = m.Deadline()
		got = append(got, now.Sub(died))
		m, _ = Step(m, ev(EvTimeout), now, nil)
		if m.State != Starting {
			t.Fatalf("run %d: no respawn at the deadline", i)
		}
	}
	want := []time.Duration{20 * ms, 40 * ms, 80 * ms, 160 * ms, 160 * ms, 20 * ms}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("delays %v, want %v", got, want)
		}
	}
}

var fuzzPolicies = []Policy{
	DefaultPolicy,
	backoff,
	onFailure("0 TERM"),
	{Max: 2, Period: 3 * time.Second, Delay: 500 * time.Millisecond, Reset: 2 * time.Second},
	{On: servicedir.RespawnNever},
	{DelayMax: 4 * time.Second, Reset: time.Second, Max: 3, On: servicedir.RespawnFailure, Success: servicedir.DefaultSuccessExits},
}

// policyInvariants: the delay never exceeds the cap; a pending respawn is
// never earlier than the policy's delay; no spawn after a give-up but by
// an explicit start.
func policyInvariants(prev, m Machine, e Event, now time.Time, as []Action) string {
	p := &m.Cfg.Policy
	limit := max(p.Delay, p.DelayMax)
	if p.Delay == 0 && p.DelayMax > 0 {
		limit = max(limit, ThrottleInterval)
	}
	switch {
	case m.Pol.Delay > limit:
		return "respawn delay above the cap"
	case prev.Pol.GaveUp && !prev.WantUp && m.WantUp && e.Kind != EvCtl:
		return "want-up back after a give-up without a control letter"
	case m.State == Down && !m.SpawnAt.IsZero() && !m.Pol.Until.IsZero() && m.SpawnAt.Before(m.Pol.Until) && m.WantUp:
		return "respawn armed before the policy's delay"
	}
	for _, a := range as {
		switch a.Kind {
		case ActSpawnRun:
			explicit := e.Kind == EvCtl && (e.Byte == 'u' || e.Byte == 'U' || e.Byte == 'o')
			if prev.Pol.GaveUp && !explicit && !prev.WantUp {
				return "respawn after a give-up without u"
			}
		case ActEvent:
			if a.Hap == HapGiveUp && (m.WantUp || !m.Pol.GaveUp) {
				return "give-up event while still wanted up"
			}
		}
	}
	return ""
}

// TestPolicyGiveUpWindow replays supervise-daemon 0.63.3's respawn
// bookkeeping (respawn_max within respawn_period, a window from the first
// death counted) through the machine: deaths at the given seconds after
// the start, each of a run spawned 10 ms before (respawn-delay 1 ms).
func TestPolicyGiveUpWindow(t *testing.T) {
	for _, c := range []struct {
		name   string
		p      Policy
		deaths []float64
		count  int
		giveUp bool
	}{
		{"first death", Policy{Max: 10, Period: 12 * time.Second}, []float64{0}, 1, false},
		{"max reached, not passed", Policy{Max: 3, Period: 12 * time.Second}, []float64{0, 1, 2}, 3, false},
		{"one more than max", Policy{Max: 3, Period: 12 * time.Second}, []float64{0, 1, 2, 3}, 4, true},
		{"window reset", Policy{Max: 3, Period: 12 * time.Second}, []float64{0, 1, 2, 13}, 0, false},
		{"window restarts at the next death", Policy{Max: 3, Period: 12 * time.Second}, []float64{0, 1, 2, 13, 14, 15, 16}, 3, false},
		{"exactly at the period still counts", Policy{Max: 1, Period: 12 * time.Second}, []float64{0, 12}, 2, true},
		{"no period: lifetime count", Policy{Max: 2}, []float64{0, 100, 200}, 3, true},
		{"max 0 never gives up", Policy{Max: 0, Period: time.Second}, []float64{0, 0.1, 0.2, 0.3, 0.4}, 5, false},
	} {
		c.p.Reset, c.p.Success = DefaultRespawnReset, servicedir.DefaultSuccessExits
		c.p.Delay = time.Millisecond // respawns come before the next death
		m := withPolicy(down(true), c.p)
		m, _ = Step(m, ev(EvStart), t0, nil)
		for i, s := range c.deaths {
			now := t0.Add(time.Duration(s * float64(time.Second)))
			if m.State == Down {
				m, _ = Step(m, ev(EvTimeout), m.Deadline(), nil)
			}
			m, _ = Step(m, spawned(100+i), now.Add(-10*time.Millisecond), nil)
			m, _ = deathAt(m, 1<<8, now)
		}
		if m.Pol.WinCount != c.count || m.Pol.GaveUp != c.giveUp || m.WantUp == c.giveUp {
			t.Errorf("%s: count %d give up %v want-up %v; want %d %v", c.name, m.Pol.WinCount, m.Pol.GaveUp, m.WantUp, c.count, c.giveUp)
		}
	}
}

// TestPolicyEvents: what the events log and hooks get from the policy.
func TestPolicyEvents(t *testing.T) {
	ms := time.Millisecond
	m := with(withPolicy(up(100), backoff), func(m *Machine) { m.Pol.Failures = 2 })
	_, as := Step(m, exit(100, 1<<8), at(5*ms), nil)
	var got []string
	for _, a := range as {
		if a.Kind == ActEvent {
			got = append(got, a.Hap.String()+"|"+a.After.String()+"|"+a.Msg)
		}
	}
	want := "exit|0s| backoff|80ms|3 failures in a row (last: exit 1)"
	if strings.Join(got, " ") != want {
		t.Errorf("events %q, want %q", got, want)
	}
	m = withPolicy(up(100), Policy{Max: 1, Period: time.Minute, Reset: DefaultRespawnReset})
	m.Pol.WinStart, m.Pol.WinCount = t0, 1
	_, as = Step(m, exit(100, int(unix.SIGSEGV)), at(time.Second), nil)
	for _, a := range as {
		if a.Kind == ActEvent && a.Hap != HapExit && (a.Hap != HapGiveUp || a.Msg != "respawned 2 times within 1 min") {
			t.Errorf("give-up event %v %q", a.Hap, a.Msg)
		}
		if a.Kind == ActWritePolicy && (!a.Policy.GaveUp || a.Policy.Respawns != 2 || a.Policy.LastWstat != uint16(unix.SIGSEGV) || !a.Policy.LastKnown) {
			t.Errorf("policy written %+v", a.Policy)
		}
	}
}
