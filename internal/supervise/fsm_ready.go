package supervise

import (
	"time"

	"golang.org/x/sys/unix"
)

// Readiness and timers of the Up state: ./check runs, the sd_notify
// watchdog, and timeout-kill. Part of [Step]; see fsm.go for the model.

func (t *stepper) upTimeout() {
	m := &t.m
	if !m.KillAt.IsZero() && !t.now.Before(m.KillAt) {
		t.kill(m.Pgid, unix.SIGKILL, true)
		m.KillAt = t.now.Add(KillRepeat)
	}
	if !m.CheckAt.IsZero() && !t.now.Before(m.CheckAt) {
		m.CheckAt = time.Time{}
		if !m.Ready && m.CheckPid == 0 {
			t.act(Action{Kind: ActSpawnCheck})
		}
	}
	if !m.WatchdogAt.IsZero() && !t.now.Before(m.WatchdogAt) {
		// Like systemd's WatchdogSec: the service is killed and, as
		// want-up is unchanged, restarted.
		m.WatchdogAt = time.Time{}
		t.act(Action{Kind: ActReport, Msg: "watchdog timeout: no WATCHDOG=1 for " + m.Cfg.Watchdog.String() + ", killing the service"})
		t.kill(m.Pgid, m.Cfg.DownSignal, true)
		t.kill(m.Pgid, unix.SIGCONT, true)
		if m.KillAt.IsZero() {
			m.KillAt = t.now.Add(drainDelay(m.Cfg))
		}
	}
}

// drainDelay is how long a signalled group gets before SIGKILL.
func drainDelay(c Config) time.Duration {
	if c.TimeoutKill > 0 {
		return c.TimeoutKill
	}
	return GroupDrainKill
}

// ready records readiness from any source (notification-fd, sd_notify,
// check) once per run.
func (t *stepper) ready() {
	m := &t.m
	if m.Ready {
		return
	}
	m.Ready, m.ReadyStamp, m.CheckAt = true, t.now, time.Time{}
	t.writeStatus()
	t.notify("U")
	t.event(HapReady, m.Pid)
}

// checkDone handles the end of a check run, in any state: only the
// current run's check counts.
func (t *stepper) checkDone(e Event) {
	m := &t.m
	if !e.Unknown && (e.Pid == 0 || e.Pid != m.CheckPid) {
		return // a check of a dead run, killed at its death
	}
	m.CheckPid, m.CheckKillAt = 0, time.Time{}
	if m.State != Up || m.Ready {
		return
	}
	if !e.Unknown && e.Wstat == 0 {
		t.ready()
		return
	}
	t.act(Action{Kind: ActCheckFailed, Wstat: e.Wstat})
	m.CheckEvery *= 2
	if m.CheckEvery < CheckFirst {
		m.CheckEvery = CheckFirst
	}
	if m.CheckEvery > CheckMax {
		m.CheckEvery = CheckMax
	}
	m.CheckAt = t.now.Add(m.CheckEvery)
}

// checkKill enforces timeout-check on a running check, in any state.
func (t *stepper) checkKill() {
	m := &t.m
	if m.CheckPid != 0 && !m.CheckKillAt.IsZero() && !t.now.Before(m.CheckKillAt) {
		t.kill(m.CheckPid, unix.SIGKILL, true)
		m.CheckKillAt = t.now.Add(KillRepeat)
	}
}
