package supervise

import (
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Forking mode: the states Launching, AwaitPid and LaunchAbort, between a
// spawn and Up, for a service whose run starts a daemon that forks away
// and writes a pidfile (systemd's Type=forking with PIDFile=). Part of
// [Step]; see fsm.go for the model.
//
//	Starting  --spawned-->      Launching   (status: up, launcher's pid, not ready; u)
//	Launching --exit 0-->       AwaitPid    (watch the pidfile)
//	Launching --exit != 0-->    Finishing   (launch failed: reason recorded; d, restart policy)
//	Launching --d/r/timeout-->  LaunchAbort (launcher group signalled; find-daemon)
//	LaunchAbort --daemon-->     LaunchAbort (the daemon's groups signalled: stopped, not adopted)
//	LaunchAbort --exit-->       LaunchAbort, FindPending (find-daemon: one last look)
//	LaunchAbort, FindPending --daemon/no-daemon--> Finishing
//	AwaitPid  --daemon-->       Up          (daemon's pid and group; U unless readiness comes later)
//	AwaitPid  --pidfile-bad-->  Finishing   (launch failed)
//	AwaitPid  --timeout/d/r-->  LaunchAbort, FindPending (launch failed or cancelled; find-daemon)
//	Down      --adopt-launch--> Launching or AwaitPid (a new supervisor takes over a launch)
//
// The death of the daemon once Up is the death of any run.
//
// A cancelled launch may have a daemon already: one that writes its
// pidfile before its launcher exits (dnsmasq's launcher waits for it),
// and that left the launcher's group (setsid). Signalling that group
// misses it, and the next start fails on its port. So every cancellation
// asks the loop to read the pidfile (ActFindDaemon, answered at once by
// EvDaemon or EvNoDaemon, with the checks that accept a daemon in
// AwaitPid); a daemon found is signalled with its groups, which the drain
// then waits for (stopDaemon). The last look is at the launcher's death:
// a launcher that waits for its daemon exits after the pidfile is written.

// launch enters Launching after the launcher's spawn.
func (t *stepper) launch() {
	m := &t.m
	m.State, m.ReadyEarly = Launching, false
	if m.Cfg.TimeoutPidfile > 0 {
		m.LaunchAt = t.now.Add(m.Cfg.TimeoutPidfile)
	}
	t.writeStatus()
	t.notify("u")
}

// adoptLaunch takes over a launch that a previous supervisor started (it
// was killed): the launcher is watched by pidfd (its exit status is
// unknown, so any exit leads to AwaitPid), or is gone already.
func (t *stepper) adoptLaunch(e Event) {
	m := &t.m
	m.Pgid, m.Adopted, m.Ready, m.ReadyEarly = e.Pgid, true, false, false
	m.StartReq, m.EarlyWatch = false, false // started by an earlier scanner
	if m.Pgid <= 0 {
		m.Pgid = e.Pid
	}
	if m.Stamp.IsZero() {
		m.Stamp = t.now
	}
	m.SpawnedAt = time.Time{} // unknown age: restart at once if it fails
	if m.Cfg.TimeoutPidfile > 0 {
		m.LaunchAt = t.now.Add(m.Cfg.TimeoutPidfile)
	}
	if e.Pid > 0 {
		m.State, m.Pid = Launching, e.Pid
	} else {
		m.State, m.Pid = AwaitPid, 0
	}
	t.writeStatus()
	t.notify("s")
	if m.State == AwaitPid {
		t.act(Action{Kind: ActWatchPidfile})
	}
}

// launchFailed records why a launch failed.
// The failure is the start's report: no early-death line follows for it.
func (t *stepper) launchFailed(msg string) {
	t.m.StartReq = false
	t.act(Action{Kind: ActLaunchFailed, Msg: msg})
}

// abortLaunch signals the launcher's group and waits for its death.
func (t *stepper) abortLaunch() {
	m := &t.m
	m.State, m.LaunchAt, m.ReadyEarly, m.Paused = LaunchAbort, time.Time{}, false, false
	t.kill(m.Pgid, m.Cfg.DownSignal, true)
	t.kill(m.Pgid, unix.SIGCONT, true)
	if m.KillAt.IsZero() {
		m.KillAt = t.now.Add(drainDelay(m.Cfg))
	}
	t.writeStatus()
	t.act(Action{Kind: ActFindDaemon})
}

// cancelAwait cancels a launch whose launcher already exited 0 (AwaitPid):
// one look at the pidfile for a daemon to stop, then its group drains and
// finish runs, as after a death (endAbort).
func (t *stepper) cancelAwait() {
	m := &t.m
	t.act(Action{Kind: ActUnwatchPidfile})
	m.State, m.FindPending, m.Pid, m.Wstat, m.Adopted = LaunchAbort, true, 0, 0, false
	m.LaunchAt, m.ReadyEarly, m.Paused = time.Time{}, false, false
	m.KillAt = t.now.Add(drainDelay(m.Cfg)) // re-armed by runDied next
	t.act(Action{Kind: ActFindDaemon})
}

// stopDaemon stops a cancelled launch's daemon (EvDaemon in LaunchAbort):
// it is recorded as groups of the service (OwnGroup: its pid, which
// setsid makes a group; DaemonGroup: the group it was found in, when that
// is neither the launcher's nor its own), so that every signal to the
// service's group, SIGKILL after the drain delay included, reaches it,
// and the drain waits for it before D.
func (t *stepper) stopDaemon(e Event) {
	m := &t.m
	if e.Pid <= 0 || e.Pid == m.Pgid {
		return // in the launcher's group, signalled already
	}
	g := e.Pgid
	if g <= 0 {
		g = e.Pid
	}
	m.OwnGroup, m.DaemonGroup = e.Pid, 0
	if g != m.Pgid && g != e.Pid {
		m.DaemonGroup = g
	}
	t.kill(m.Pgid, m.Cfg.DownSignal, true)
	t.kill(m.Pgid, unix.SIGCONT, true)
}

// endAbort handles the launcher's death (its status kept in Wstat and
// Adopted) once the last look at the pidfile answered.
func (t *stepper) endAbort() {
	m := &t.m
	m.FindPending = false
	t.runDied(Event{Kind: EvExit, Pid: m.Pid, Wstat: m.Wstat, Unknown: m.Adopted})
}

// launchOver ends a launch whose launcher already exited 0: the group
// (where the daemon may be) drains and finish runs, as after a death.
func (t *stepper) launchOver() {
	t.act(Action{Kind: ActUnwatchPidfile})
	t.m.LaunchAt, t.m.ReadyEarly = time.Time{}, false
	t.runDied(Event{Kind: EvExit})
}

func (t *stepper) launching(e Event) {
	m := &t.m
	switch e.Kind {
	case EvCtl:
		switch b := e.Byte; {
		case b == 'd' || b == 'D':
			t.wantLetter(b)
			t.abortLaunch()
		case b == 'r':
			t.abortLaunch()
		default:
			t.upCtl(b) // signals to the launcher, p, c, x, want letters
		}
	case EvExit:
		if e.Pid != m.Pid {
			t.fatal("exit of a foreign pid")
			return
		}
		ws := unix.WaitStatus(e.Wstat)
		if e.Unknown || (ws.Exited() && ws.ExitStatus() == 0) {
			m.State, m.Pid, m.Paused = AwaitPid, 0, false
			t.writeStatus()
			t.act(Action{Kind: ActWatchPidfile})
			return
		}
		t.launchFailed("the launcher " + deathWords(e.Wstat))
		m.LaunchAt, m.ReadyEarly = time.Time{}, false
		t.runDied(e)
	case EvTimeout:
		if !m.LaunchAt.IsZero() && !t.now.Before(m.LaunchAt) {
			t.launchFailed("the launcher (pid " + strconv.Itoa(m.Pid) + ") did not exit within " + m.Cfg.TimeoutPidfile.String())
			t.abortLaunch()
		}
	case EvReady, EvNotReady:
		m.ReadyEarly = e.Kind == EvReady // announced once the daemon is found
	case EvGroupEmpty, EvRunChanged, EvMainPid, EvWatchdog, EvDaemon, EvPidfileBad, EvNoDaemon:
		// Stale, or meaningless before the daemon is known.
	default:
		if !t.launchSignal(e) {
			t.fatal(e.Kind.String() + " while launching")
		}
	}
}

func (t *stepper) awaitPid(e Event) {
	m := &t.m
	switch e.Kind {
	case EvDaemon:
		if e.Pid <= 0 {
			t.fatal("daemon without a pid")
			return
		}
		t.act(Action{Kind: ActUnwatchPidfile})
		m.State, m.Pid, m.Pgid, m.Adopted = Up, e.Pid, e.Pid, e.Unknown
		if e.Pgid > 0 {
			m.Pgid = e.Pgid
		}
		m.ownGroup(e.Pid)
		m.Stamp, m.LaunchAt = t.now, time.Time{}
		m.EarlyWatch, m.StartReq = m.StartReq, false // a start's daemon dying soon is reported
		early := m.ReadyEarly
		m.ReadyEarly = false
		if m.Cfg.Watchdog > 0 {
			m.WatchdogAt = t.now.Add(m.Cfg.Watchdog)
		}
		if early || (!m.Cfg.Check && !m.Cfg.NotifyReady) {
			t.ready()
			return
		}
		if m.Cfg.Check {
			m.CheckEvery = CheckFirst
			m.CheckAt = t.now.Add(CheckFirst)
		}
		t.writeStatus()
	case EvPidfileBad:
		t.launchFailed("the pidfile names a process that is not this launch's daemon")
		t.launchOver()
	case EvTimeout:
		if !m.LaunchAt.IsZero() && !t.now.Before(m.LaunchAt) {
			t.launchFailed("the pidfile named no daemon within " + m.Cfg.TimeoutPidfile.String())
			t.cancelAwait()
		}
	case EvCtl:
		switch b := e.Byte; {
		case b == 'd' || b == 'D':
			t.wantLetter(b)
			t.cancelAwait()
		case b == 'r':
			t.cancelAwait()
		case b == 'x':
			m.Last = true
		case t.wantLetter(b):
			t.writeStatus()
		}
		// Signal letters, p and c: there is no process to signal yet.
	case EvReady, EvNotReady:
		m.ReadyEarly = e.Kind == EvReady // announced once the daemon is found
	case EvGroupEmpty, EvRunChanged, EvMainPid, EvWatchdog, EvNoDaemon:
		// Stale, or meaningless before the daemon is known.
	default:
		if !t.launchSignal(e) {
			t.fatal(e.Kind.String() + " while waiting for the pidfile")
		}
	}
}

func (t *stepper) launchAbort(e Event) {
	m := &t.m
	if m.FindPending {
		// Like Starting: only the answer to ActFindDaemon may come.
		switch e.Kind {
		case EvDaemon:
			t.stopDaemon(e)
			t.endAbort()
		case EvNoDaemon:
			t.endAbort()
		default:
			t.fatal(e.Kind.String() + " while looking for a cancelled launch's daemon")
		}
		return
	}
	switch e.Kind {
	case EvExit:
		if e.Pid != m.Pid {
			t.fatal("exit of a foreign pid")
			return
		}
		m.FindPending, m.Wstat, m.Adopted = true, e.Wstat, e.Unknown
		t.act(Action{Kind: ActFindDaemon})
	case EvDaemon:
		t.stopDaemon(e)
	case EvNoDaemon:
		// The pidfile names no daemon yet: the launcher's death looks again.
	case EvTimeout:
		if !m.KillAt.IsZero() && !t.now.Before(m.KillAt) {
			t.kill(m.Pgid, unix.SIGKILL, true)
			m.KillAt = t.now.Add(KillRepeat)
		}
	case EvCtl:
		if sig := upSignals[e.Byte]; sig != 0 {
			t.kill(m.Pid, sig, false)
		} else if e.Byte == 'x' {
			m.Last = true
		} else if t.wantLetter(e.Byte) {
			t.writeStatus()
		}
	case EvReady, EvNotReady, EvGroupEmpty, EvRunChanged, EvMainPid, EvWatchdog, EvPidfileBad:
		// Stale: this launch is over.
	default:
		if !t.launchSignal(e) {
			t.fatal(e.Kind.String() + " while aborting a launch")
		}
	}
}

// launchSignal applies the supervisor's own signals in the launch
// states, and reports whether e was one: SIGTERM (EvTerm) stops the
// service after this launch, which it cancels unless that is under way;
// SIGHUP makes this run the last; SIGQUIT leaves the processes running.
func (t *stepper) launchSignal(e Event) bool {
	m := &t.m
	switch e.Kind {
	case EvTerm:
		m.Last, m.WantUp = true, false
		switch m.State {
		case Launching:
			t.abortLaunch()
		case AwaitPid:
			t.cancelAwait()
		}
	case EvHup:
		m.Last = true
	case EvQuit:
		if m.State == AwaitPid {
			t.act(Action{Kind: ActUnwatchPidfile})
		}
		t.exit(true)
	default:
		return false
	}
	return true
}

// deathWords says how a process ended, for launch-error.
func deathWords(wstat uint16) string {
	ws := unix.WaitStatus(wstat)
	if ws.Signaled() {
		return "was killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return "exited " + strconv.Itoa(ws.ExitStatus())
}
