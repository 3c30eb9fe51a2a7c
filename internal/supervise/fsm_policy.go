package supervise

import (
	"fmt"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// The restart policy (PROTOCOL.md §9.6, docs/restart-policy.md).
//
// After a death of a run that is wanted up (no d, no x pending), the
// machine decides, at the death and before finish is spawned (so that
// finish can read supervise/gosv/policy):
//
//	respawn-on never, or failure and a success exit (success-exit)
//	    → stay down: want-up is cleared, O then D are announced, the
//	      policy state says why (GaveUp with Reason), HapGiveUp;
//	respawn-max > 0 and more deaths than that within respawn-period,
//	counted as supervise-daemon 0.63 does (the window opens at the first
//	death counted and a death after it closes it without being counted)
//	    → give up the same way, with Respawns and Within;
//	otherwise → respawn after a delay, HapRestart (and HapBackoff when
//	the delay is longer than the first one).
//
// The delay: with no respawn-delay and no respawn-delay-max, s6's throttle
// (one spawn per ThrottleInterval), exactly as without a policy. With a
// respawn-delay d and no cap, d after the death. With respawn-delay-max,
// d (or ThrottleInterval when d is 0) doubled at each consecutive death,
// capped; a run that lived respawn-reset or longer starts the count over.
// The respawn is an ordinary SpawnAt deadline of the Down state, so the
// loop's timer heap sees it through Deadline; u spawns at once, d cancels.
//
// A start (u or U while not wanted up, or the machine's first start)
// forgets the failures, the give-up window and a give-up.

// Policy is the restart policy of a service directory (Config.Policy).
type Policy struct {
	Delay    time.Duration // respawn-delay: the first delay; 0 = the throttle
	DelayMax time.Duration // respawn-delay-max: cap of the doubling; 0 = no doubling
	Reset    time.Duration // respawn-reset: a run this long resets the backoff
	Max      int           // respawn-max: give up after more deaths than this; 0 = never
	Period   time.Duration // respawn-period: the give-up window; 0 = since the start
	On       servicedir.RespawnOn
	Success  servicedir.SuccessExits // success-exit
}

// DefaultRespawnReset is respawn-reset when neither it nor respawn-period
// exists: OpenRC's respawn_period default.
const DefaultRespawnReset = 12 * time.Second

// DefaultPolicy is a service directory without policy files: s6's
// behaviour (respawn every death after the throttle, never give up).
var DefaultPolicy = Policy{Reset: DefaultRespawnReset, Success: servicedir.DefaultSuccessExits}

// active reports whether the policy does anything beyond s6's throttle;
// only then does the machine keep supervise/gosv/policy up to date.
func (p *Policy) active() bool {
	return p.Delay > 0 || p.DelayMax > 0 || p.Max > 0 || p.On != servicedir.RespawnAlways
}

// PolicyRun is the policy's state in the machine.
type PolicyRun struct {
	Failures  int           // consecutive deaths of short runs, this one included
	Delay     time.Duration // the last respawn delay decided
	Until     time.Time     // the pending respawn; zero if none
	WinStart  time.Time     // give-up window: the first death counted
	WinCount  int           // deaths counted in the window
	Wstat     uint16        // the last death
	Known     bool          // Wstat is known (not an adopted run)
	Unhealthy bool          // the run was stopped for failing its health check
	GaveUp    bool
	GaveUpAt  time.Time
	Reason    string // why it gave up, when not respawn-max
	Completed bool   // it gave up on a success exit
	Written   bool   // supervise/gosv/policy was written since the machine began
}

// State is what supervise/gosv/policy says.
func (r *PolicyRun) State(p *Policy) servicedir.PolicyState {
	s := servicedir.PolicyState{Failures: r.Failures, Delay: r.Delay, Until: r.Until,
		LastWstat: r.Wstat, LastKnown: r.Known, LastUnhealthy: r.Unhealthy, GaveUp: r.GaveUp, GaveUpAt: r.GaveUpAt, Reason: r.Reason, Completed: r.Completed}
	if r.GaveUp && r.Reason == "" {
		s.Respawns, s.Within = r.WinCount, p.Period
	}
	return s
}

// writePolicy asks the loop to write supervise/gosv/policy.
func (t *stepper) writePolicy() {
	t.m.Pol.Written = true
	t.act(Action{Kind: ActWritePolicy, Policy: t.m.Pol.State(&t.m.Cfg.Policy)})
}

// policyStart forgets the past at a start. With an active policy the
// file is rewritten at the machine's first start too: one left by an
// earlier supervisor must not explain this one's service.
func (t *stepper) policyStart() {
	r := &t.m.Pol
	written := r.Written
	*r = PolicyRun{}
	if written || t.m.Cfg.Policy.active() {
		t.writePolicy()
	}
}

// policyDeath applies the policy to the death of the run (called by
// runDied before it changes the state). e.Unknown: an adopted run.
func (t *stepper) policyDeath(e Event) {
	m, p := &t.m, &t.m.Cfg.Policy
	r := &m.Pol
	if !m.WantUp || m.Last {
		r.Until = time.Time{}
		return // stopping: no decision to make
	}
	launchFailed := m.State == AwaitPid || m.State == LaunchAbort
	r.Wstat, r.Known, r.Unhealthy = e.Wstat, !e.Unknown, m.Unhealthy
	// A run stopped for failing its health check failed, whatever its
	// wait status (systemd: a watchdog timeout is a failure for
	// Restart=on-failure even when SIGTERM is a success exit).
	success := r.Known && !launchFailed && !m.Unhealthy && p.Success.Has(e.Wstat)
	switch {
	case p.On == servicedir.RespawnNever:
		t.giveUp(policyWords(e, m.Unhealthy)+" and respawn-on is never", success)
		return
	case p.On == servicedir.RespawnFailure && success:
		t.giveUp(policyWords(e, m.Unhealthy)+" is a success exit and respawn-on is failure", true)
		return
	}
	if r.WinStart.IsZero() {
		r.WinStart = t.now
	}
	if p.Period > 0 && t.now.Sub(r.WinStart) > p.Period {
		r.WinCount, r.WinStart = 0, time.Time{}
	} else {
		r.WinCount++
	}
	if p.Max > 0 && r.WinCount > p.Max {
		t.giveUp("", false)
		return
	}
	lived := t.now.Sub(m.SpawnedAt)
	if m.SpawnedAt.IsZero() || lived >= p.Reset || r.Failures == 0 {
		r.Failures = 1
	} else {
		r.Failures++
	}
	r.Delay = p.delay(r.Failures)
	r.Until = time.Time{}
	if r.Delay > 0 {
		r.Until = t.now.Add(r.Delay)
	}
	if !p.active() {
		return // s6's throttle: nothing to record
	}
	if r.Failures > 1 && p.DelayMax > 0 {
		t.act(Action{Kind: ActEvent, Hap: HapBackoff, After: r.Delay, Wstat: e.Wstat,
			Msg: fmt.Sprintf("%d failures in a row (last: %s)", r.Failures, policyWords(e, r.Unhealthy))})
	}
	t.writePolicy()
}

// delay is the respawn delay after n consecutive failures.
func (p *Policy) delay(n int) time.Duration {
	d := p.Delay
	if p.DelayMax <= 0 {
		return d
	}
	if d <= 0 {
		d = ThrottleInterval
	}
	for i := 1; i < n && d < p.DelayMax; i++ {
		d *= 2
	}
	return min(d, max(p.DelayMax, p.Delay))
}

// giveUp stops respawning: the run's death leads to O then D, and the
// service stays down until the next u. completed: the run ended with a
// success exit (not a failure).
func (t *stepper) giveUp(reason string, completed bool) {
	m := &t.m
	r := &m.Pol
	r.GaveUp, r.GaveUpAt, r.Reason, r.Until, r.Completed = true, t.now, reason, time.Time{}, completed
	m.WantUp, m.Perm = false, true
	s := r.State(&m.Cfg.Policy)
	t.act(Action{Kind: ActEvent, Hap: HapGiveUp, Msg: s.Words(), Wstat: r.Wstat})
	t.writePolicy()
}

// respawn schedules the respawn of a wanted-up service that just went
// down: at the policy's Until, or after s6's throttle.
func (t *stepper) respawn() {
	m := &t.m
	next := m.Pol.Until
	if next.IsZero() && !m.SpawnedAt.IsZero() {
		next = m.SpawnedAt.Add(ThrottleInterval)
	}
	// HapRestart here, once the old run's finish and group are gone, so
	// that its After is the real wait, for every service, policy or not.
	if next.IsZero() || !t.now.Before(next) {
		t.act(Action{Kind: ActEvent, Hap: HapRestart})
		t.spawn()
	} else {
		m.SpawnAt = next
		t.act(Action{Kind: ActEvent, Hap: HapRestart, After: next.Sub(t.now)})
	}
}

// policySpawn is called at each spawn: a start forgets the past; a
// respawn that was delayed is no longer pending.
func (t *stepper) policySpawn() {
	switch r := &t.m.Pol; {
	case t.m.StartReq && (r.Failures > 0 || r.GaveUp || r.WinCount > 0 || !r.Written && t.m.Cfg.Policy.active()):
		t.policyStart()
	case !r.Until.IsZero():
		r.Until = time.Time{}
		if r.Written {
			t.writePolicy()
		}
	}
}

// policyWords describes a death for the policy: exitWords, said to follow
// a failed health check when it did.
func policyWords(e Event, unhealthy bool) string {
	if unhealthy {
		return "unhealthy (" + exitWords(e) + ")"
	}
	return exitWords(e)
}

// exitWords describes a death: "exit 1", "signal SIGKILL", "unknown exit".
func exitWords(e Event) string {
	if e.Unknown {
		return "unknown exit"
	}
	return servicedir.ExitWords(e.Wstat)
}
