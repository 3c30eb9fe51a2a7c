package supervise

import (
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// Health checks: part of [Step]; see fsm.go for the model.
//
// A health check (Cfg.Health.On: the directory has a health-check file) is
// a periodic probe of an Up service, run by the loop (a process, a
// non-blocking socket): the machine only decides when one starts, when it
// is cut, and what its result means.
//
//	checking on   State == Up, WantUp, not Paused, no stop under way
//	              (KillAt zero), not Unhealthy, and Ready if the service
//	              has a readiness mechanism (Cfg.Readiness).
//	HealthSince   when checking turned on for this run; the first check
//	              is due Delay after it. Cleared when the run ends.
//	HealthAt      the next check; armed while checking is on and no
//	              check runs (HealthBusy).
//	HealthBusy    ActHealthCheck was issued; EvHealthDone ends it, or
//	              HealthCutAt (Timeout) cuts it with ActHealthCancel and
//	              counts a failure. Leaving "checking on" cancels it.
//	HealthFails   consecutive failures. Failures within Grace of
//	              HealthSince are not counted (Docker's start period).
//	              Retries of them make the service Unhealthy:
//	Unhealthy     HapUnhealthy is reported; ActUnhealthy runs the
//	              unhealthy hook (OpenRC's unhealthy()) when there is one
//	              (HookBusy, cut at HookCutAt, Timeout after), then the
//	              run's group gets the down-signal and SIGKILL after
//	              timeout-kill (or GroupDrainKill), as a watchdog timeout
//	              does. WantUp is unchanged, so the normal respawn follows.
//	              A run's death clears it.
//
// A pass after failures reports HapRecovered, and so does the first pass
// after an unhealthy run's restart (WasUnhealthy): an operator told
// "unhealthy" learns that the restart cured it, as monit's "succeeded"
// alert says. Every result is handed to
// the loop as ActHealthState; the loop writes supervise/gosv/health when
// what it says changed.

// HealthConfig is the health check part of [Config].
type HealthConfig struct {
	On      bool          // a check is configured
	Hook    bool          // an unhealthy hook is configured
	Every   time.Duration // healthcheck_timer: between the end of a check and the next
	Delay   time.Duration // healthcheck_delay: from up (or ready) to the first check
	Timeout time.Duration // limit of one check (and of the hook)
	Retries int           // consecutive failures that make the service unhealthy
	Grace   time.Duration // failures this soon after up (or ready) do not count
}

// Defaults of the health check files (PROTOCOL.md §9.1).
const (
	DefaultHealthEvery   = 30 * time.Second
	DefaultHealthRetries = 1
	// MinHealthEvery keeps a zero or tiny timer from turning the check
	// into a busy loop.
	MinHealthEvery = 100 * time.Millisecond
)

// normHealth fills in the defaults that depend on other values.
func normHealth(h HealthConfig) HealthConfig {
	if h.Every < MinHealthEvery {
		h.Every = DefaultHealthEvery
	}
	if h.Delay <= 0 {
		h.Delay = h.Every
	}
	if h.Timeout <= 0 {
		h.Timeout = h.Every
	}
	if h.Retries < 1 {
		h.Retries = DefaultHealthRetries
	}
	return h
}

func isHealthEvent(k EventKind) bool { return k == EvHealthDone || k == EvHookDone }

// healthOn says whether checks run now (see the model above).
func (m *Machine) healthOn() bool {
	return m.State == Up && m.Cfg.Health.On && m.WantUp && !m.Paused && m.KillAt.IsZero() &&
		!m.Unhealthy && (m.Ready || !m.Cfg.Readiness)
}

// healthSync brings the health fields in line with the rest of the
// machine; Step calls it after every event.
func (t *stepper) healthSync() {
	m := &t.m
	if m.State != Up {
		if m.HealthBusy {
			t.act(Action{Kind: ActHealthCancel})
		}
		if m.HookBusy && (m.State == Exited || m.State == Fatal) {
			t.act(Action{Kind: ActHookCancel})
			m.HookBusy, m.HookCutAt = false, time.Time{}
		}
		m.HealthBusy, m.HealthAt, m.HealthCutAt, m.HealthSince = false, time.Time{}, time.Time{}, time.Time{}
		m.HealthFails, m.Unhealthy = 0, false
		return
	}
	if !m.healthOn() {
		if m.HealthBusy {
			m.HealthBusy, m.HealthCutAt = false, time.Time{}
			t.act(Action{Kind: ActHealthCancel})
		}
		m.HealthAt = time.Time{}
		return
	}
	h := normHealth(m.Cfg.Health)
	switch {
	case m.HealthSince.IsZero():
		m.HealthSince, m.HealthAt, m.HealthFails = t.now, alignUp(t.now.Add(h.Delay), h.Every), 0
		t.healthState(servicedir.HealthUnknown, "")
	case m.HealthAt.IsZero() && !m.HealthBusy:
		m.HealthAt = alignUp(t.now.Add(h.Every), h.Every)
	case !m.HealthAt.IsZero() && !t.now.Before(m.HealthAt):
		// Started here, after the event's own actions, so that a stop
		// decided by the same event (a watchdog timeout) starts none.
		m.HealthAt, m.HealthBusy = time.Time{}, true
		m.HealthCutAt = t.now.Add(h.Timeout)
		t.act(Action{Kind: ActHealthCheck})
	}
}

// alignUp delays a check due at t to the next multiple of a slack of
// about 1/40 of the interval (250 ms for 10 s), as systemd's AccuracySec
// does for timers: the checks of many services then start in the same
// loop wakeup, and their sockets complete together, instead of one
// wakeup each (bench/health.sh).
func alignUp(t time.Time, every time.Duration) time.Time {
	var q time.Duration
	for _, s := range [...]time.Duration{time.Second, 500 * time.Millisecond, 250 * time.Millisecond, 100 * time.Millisecond} {
		if every/40 >= s {
			q = s
			break
		}
	}
	if q == 0 {
		return t
	}
	if a := t.Truncate(q); a.Before(t) {
		return a.Add(q)
	}
	return t
}

// healthTimeout cuts a check that overran and ends an unhealthy hook
// that overran, in any live state (healthSync starts due checks).
func (t *stepper) healthTimeout() {
	m := &t.m
	if m.HealthBusy && !t.now.Before(m.HealthCutAt) {
		m.HealthBusy, m.HealthCutAt = false, time.Time{}
		t.act(Action{Kind: ActHealthCancel})
		t.healthResult(false, "timed out after "+normHealth(m.Cfg.Health).Timeout.String())
	}
	if m.HookBusy && !t.now.Before(m.HookCutAt) {
		m.HookBusy, m.HookCutAt = false, time.Time{}
		t.act(Action{Kind: ActHookCancel})
		t.act(Action{Kind: ActReport, Msg: "unhealthy hook timed out after " + normHealth(m.Cfg.Health).Timeout.String() + ", killed"})
		if m.Unhealthy {
			t.healthStop()
		}
	}
}

// healthEvent handles EvHealthDone and EvHookDone in any state.
func (t *stepper) healthEvent(e Event) {
	m := &t.m
	switch e.Kind {
	case EvHealthDone:
		if !m.HealthBusy {
			return // cut or cancelled already: the loop raced with us
		}
		m.HealthBusy, m.HealthCutAt = false, time.Time{}
		t.healthResult(e.OK, e.Msg)
	case EvHookDone:
		if !m.HookBusy {
			return
		}
		m.HookBusy, m.HookCutAt = false, time.Time{}
		if m.Unhealthy {
			t.healthStop()
		}
	}
}

// healthResult counts one check result.
func (t *stepper) healthResult(ok bool, msg string) {
	m := &t.m
	h := normHealth(m.Cfg.Health)
	if ok {
		if m.HealthFails > 0 || m.WasUnhealthy {
			t.act(Action{Kind: ActEvent, Hap: HapRecovered, Pid: m.Pid, Msg: msg})
		}
		m.HealthFails, m.WasUnhealthy = 0, false
		t.healthState(servicedir.HealthOK, msg)
		return
	}
	if t.now.Before(m.HealthSince.Add(h.Grace)) {
		t.healthState(servicedir.HealthFailing, msg+" (start grace)")
		return
	}
	m.HealthFails++
	if m.HealthFails < h.Retries {
		t.healthState(servicedir.HealthFailing, msg)
		return
	}
	m.Unhealthy, m.WasUnhealthy = true, true
	t.healthState(servicedir.HealthUnhealthy, msg)
	t.act(Action{Kind: ActEvent, Hap: HapUnhealthy, Pid: m.Pid,
		Msg: msg + " (" + strconv.Itoa(m.HealthFails) + "/" + strconv.Itoa(h.Retries) + ")"})
	if m.Cfg.Health.Hook {
		m.HookBusy = true
		m.HookCutAt = t.now.Add(h.Timeout)
		t.act(Action{Kind: ActUnhealthy})
		return
	}
	t.healthStop()
}

// healthStop stops an unhealthy run through its stop schedule; the
// respawn follows its death as after any death.
func (t *stepper) healthStop() {
	m := &t.m
	if m.State != Up || !m.KillAt.IsZero() {
		return // dead or already being stopped
	}
	t.kill(m.Pgid, m.Cfg.DownSignal, true)
	t.kill(m.Pgid, unix.SIGCONT, true)
	m.KillAt = t.now.Add(drainDelay(m.Cfg))
}

func (t *stepper) healthState(h servicedir.Health, msg string) {
	m := &t.m
	t.act(Action{Kind: ActHealthState, Health: servicedir.HealthState{Health: h, Fails: m.HealthFails,
		Retries: normHealth(m.Cfg.Health).Retries, Last: msg, At: t.now}})
}
