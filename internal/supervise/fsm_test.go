package supervise

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var t0 = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func at(d time.Duration) time.Time { return t0.Add(d) }

// Machine constructors for the table.
func down(want bool) Machine {
	return Machine{State: Down, WantUp: want, Ready: true, Cfg: DefaultConfig}
}
func up(pid int) Machine {
	return Machine{State: Up, WantUp: true, Pid: pid, Pgid: pid, SpawnedAt: t0, Cfg: DefaultConfig}
}
func fin(finPid int, group bool) Machine {
	return Machine{State: Finishing, WantUp: true, Pgid: 100, FinishPid: finPid, GroupAlive: group, SpawnedAt: t0, Cfg: DefaultConfig}
}
func with(m Machine, f func(*Machine)) Machine { f(&m); return m }

// Forking mode: a launcher (pid 100) running, or gone with the daemon
// not found yet; LaunchAt is the default timeout-pidfile after t0.
func forking() Config {
	c := DefaultConfig
	c.Forking = true
	return c
}
func launching() Machine {
	return Machine{State: Launching, WantUp: true, Pid: 100, Pgid: 100, SpawnedAt: t0, Stamp: t0,
		LaunchAt: at(DefaultTimeoutPidfile), Cfg: forking()}
}
func awaiting() Machine {
	return Machine{State: AwaitPid, WantUp: true, Pgid: 100, SpawnedAt: t0, Stamp: t0,
		LaunchAt: at(DefaultTimeoutPidfile), Cfg: forking()}
}
func aborting() Machine {
	return Machine{State: LaunchAbort, WantUp: true, Pid: 100, Pgid: 100, SpawnedAt: t0, Stamp: t0,
		KillAt: at(GroupDrainKill), Cfg: forking()}
}
func daemon(pid, pgid int) Event { return Event{Kind: EvDaemon, Pid: pid, Pgid: pgid} }

// ownUp: a forking daemon (500) found still in its launcher's group
// (100), which is therefore also signalled as a group of its own.
func ownUp() Machine {
	return Machine{State: Up, WantUp: true, Pid: 500, Pgid: 100, OwnGroup: 500, SpawnedAt: t0, Stamp: t0, Cfg: forking()}
}

func ctl(b byte) Event             { return Event{Kind: EvCtl, Byte: b} }
func exit(pid int, ws int) Event   { return Event{Kind: EvExit, Pid: pid, Wstat: uint16(ws)} }
func ev(k EventKind) Event         { return Event{Kind: k} }
func spawned(pid int) Event        { return Event{Kind: EvSpawned, Pid: pid} }
func failed(d time.Duration) Event { return Event{Kind: EvSpawnFailed, Delay: d} }

// acts renders actions compactly: "status notify:u spawn kill:-100/15 ...".
func acts(as []Action) string {
	var b []string
	for _, a := range as {
		switch a.Kind {
		case ActWriteStatus:
			b = append(b, "status")
		case ActNotify:
			b = append(b, "notify:"+a.Ev)
		case ActSpawnRun:
			b = append(b, "spawn")
		case ActSpawnFinish:
			b = append(b, fmt.Sprintf("finish:%d,%d", a.Code, a.FinSig))
		case ActKill:
			p := a.Pid
			if a.Group {
				p = -p
			}
			b = append(b, fmt.Sprintf("kill:%d/%d", p, int(a.Sig)))
		case ActWatchGroup:
			b = append(b, "watchgroup")
		case ActDeathTally:
			b = append(b, "tally")
		case ActCreateDown:
			b = append(b, "mkdown")
		case ActRemoveDown:
			b = append(b, "rmdown")
		case ActCloseNotify:
			b = append(b, "closenotify")
		case ActWaitRun:
			b = append(b, "waitrun")
		case ActReport:
			b = append(b, "report")
		case ActSpawnCheck:
			b = append(b, "spawncheck")
		case ActCheckFailed:
			b = append(b, "checkfailed")
		case ActWatchPidfile:
			b = append(b, "watchpid")
		case ActUnwatchPidfile:
			b = append(b, "unwatchpid")
		case ActLaunchFailed:
			b = append(b, "launchfailed")
		case ActEvent:
			if a.After != 0 {
				b = append(b, fmt.Sprintf("event:%v/%v", a.Hap, a.After))
			} else {
				b = append(b, "event:"+a.Hap.String())
			}
		case ActWritePolicy:
			b = append(b, "policy")
		case ActHealthCheck:
			b = append(b, "hcheck")
		case ActHealthCancel:
			b = append(b, "hcancel")
		case ActHealthState:
			b = append(b, fmt.Sprintf("hstate:%s/%d", a.Health.Health, a.Health.Fails))
		case ActUnhealthy:
			b = append(b, "unhealthy")
		case ActHookCancel:
			b = append(b, "hookcancel")
		case ActFindDaemon:
			b = append(b, "finddaemon")
		case ActEarlyDeath:
			b = append(b, fmt.Sprintf("early:%v", a.After))
		case ActExit:
			if a.Leave {
				b = append(b, "exit:leave")
			} else {
				b = append(b, "exit")
			}
		}
	}
	return strings.Join(b, " ")
}

func TestStepTable(t *testing.T) {
	sigterm := int(unix.SIGTERM)
	for i, tc := range []struct {
		m     Machine
		e     Event
		now   time.Time
		state State
		acts  string
		check func(Machine) string
	}{
		// Down
		{down(true), ev(EvStart), t0, Starting, "status notify:s spawn", nil},
		{down(false), ev(EvStart), t0, Down, "status notify:s", nil},
		{down(false), Event{Kind: EvAdopt, Pid: 7}, t0, Up, "status notify:s", func(m Machine) string {
			return check(m.Pid == 7 && m.Adopted && m.Pgid == 7, "adopted pid")
		}},
		{down(false), Event{Kind: EvAdopt, Pid: 7, Pgid: 9}, t0, Up, "status notify:s", func(m Machine) string {
			return check(m.Pid == 7 && m.Pgid == 9 && m.OwnGroup == 0, "adopted run keeps its group; not forking: no own group")
		}},
		{with(down(false), func(m *Machine) { m.Cfg = forking() }), Event{Kind: EvAdopt, Pid: 7, Pgid: 9}, t0, Up, "status notify:s", func(m Machine) string {
			return check(m.Pid == 7 && m.Pgid == 9 && m.OwnGroup == 7, "adopted forking daemon outside its group: its own group too")
		}},
		{with(down(false), func(m *Machine) { m.Cfg = forking() }), Event{Kind: EvAdopt, Pid: 7, Pgid: 7}, t0, Up, "status notify:s", func(m Machine) string {
			return check(m.OwnGroup == 0, "adopted forking daemon leading its group: one group")
		}},
		{down(false), ctl('u'), t0, Starting, "spawn", nil},
		{with(down(true), func(m *Machine) { m.Cfg = forking() }), Event{Kind: EvAdoptLaunch, Pid: 100}, t0, Launching, "status notify:s", func(m Machine) string {
			return check(m.Pid == 100 && m.Pgid == 100 && m.Adopted && !m.Ready && m.LaunchAt.Equal(at(DefaultTimeoutPidfile)), "launcher adopted")
		}},
		{with(down(true), func(m *Machine) { m.Cfg = forking() }), Event{Kind: EvAdoptLaunch, Pgid: 100}, t0, AwaitPid, "status notify:s watchpid", func(m Machine) string {
			return check(m.Pid == 0 && m.Pgid == 100 && m.Status().Pid == 100, "launch adopted after the launcher")
		}},
		{with(launching(), func(m *Machine) { m.Adopted = true }), Event{Kind: EvExit, Pid: 100, Unknown: true}, t0, AwaitPid, "status watchpid", nil},
		{down(false), ctl('U'), t0, Starting, "rmdown spawn", nil},
		{down(false), ctl('o'), t0, Starting, "spawn", func(m Machine) string { return check(!m.WantUp, "o keeps want down") }},
		{down(true), ctl('d'), t0, Down, "status", func(m Machine) string { return check(!m.WantUp, "want down") }},
		{down(true), ctl('D'), t0, Down, "mkdown status", nil},
		{down(true), ctl('Q'), t0, Down, "mkdown status", nil},
		{down(true), ctl('O'), t0, Down, "status", nil},
		{down(true), ctl('x'), t0, Exited, "exit", nil},
		{down(true), ctl('k'), t0, Down, "", nil},
		{down(true), ctl('?'), t0, Down, "", nil},
		{with(down(true), func(m *Machine) { m.SpawnAt = at(time.Second) }), ev(EvTimeout), at(time.Second), Starting, "spawn", nil},
		{with(down(true), func(m *Machine) { m.SpawnAt = at(time.Second) }), ev(EvTimeout), at(time.Millisecond), Down, "", nil},
		{with(down(true), func(m *Machine) { m.WaitRun = true }), ev(EvRunChanged), t0, Starting, "spawn", nil},
		{down(false), ev(EvRunChanged), t0, Down, "", nil},
		{down(true), ev(EvTerm), t0, Exited, "exit", nil},
		{down(true), exit(5, 0), t0, Fatal, "report exit", nil},
		// Starting
		{with(down(true), func(m *Machine) { m.State = Starting }), spawned(42), at(time.Second), Up, "event:start status notify:u", func(m Machine) string {
			return check(m.Pid == 42 && m.Pgid == 42 && !m.Ready && m.Stamp.Equal(at(time.Second)), "spawned fields")
		}},
		{with(down(true), func(m *Machine) { m.State = Starting }), failed(0), t0, Down, "waitrun", func(m Machine) string { return check(m.WaitRun, "waitrun") }},
		{with(down(true), func(m *Machine) { m.State = Starting }), failed(RetryExec), t0, Down, "", func(m Machine) string {
			return check(m.SpawnAt.Equal(at(RetryExec)), "retry in 10s")
		}},
		{with(down(true), func(m *Machine) { m.State = Starting }), ctl('d'), t0, Fatal, "report exit", nil},
		// Up: signal letters go to the pid, down-signal to the group
		{up(100), ctl('k'), t0, Up, "kill:100/9", nil},
		{up(100), ctl('1'), t0, Up, "kill:100/10", nil},
		{up(100), ctl('p'), t0, Up, "kill:100/19 status", func(m Machine) string { return check(m.Paused, "paused") }},
		{with(up(100), func(m *Machine) { m.Paused = true }), ctl('c'), t0, Up, "kill:100/18 status", nil},
		{up(100), ctl('r'), t0, Up, fmt.Sprintf("kill:-100/%d", sigterm), nil},
		{up(100), ctl('d'), t0, Up, fmt.Sprintf("kill:-100/%d kill:-100/18 status", sigterm), func(m Machine) string {
			return check(!m.WantUp && m.KillAt.IsZero(), "no timeout-kill by default")
		}},
		{with(up(100), func(m *Machine) { m.Cfg.TimeoutKill = 500 * time.Millisecond; m.Cfg.DownSignal = unix.SIGHUP }), ctl('d'), t0,
			Up, "kill:-100/1 kill:-100/18 status", func(m Machine) string { return check(m.KillAt.Equal(at(500*time.Millisecond)), "kill armed") }},
		{with(up(100), func(m *Machine) { m.KillAt = at(time.Second) }), ev(EvTimeout), at(time.Second), Up, "kill:-100/9", func(m Machine) string {
			return check(m.KillAt.Equal(at(time.Second+KillRepeat)), "kill repeats")
		}},
		{up(100), ctl('O'), t0, Up, "status", func(m Machine) string { return check(!m.WantUp, "O: want down, no signal") }},
		{up(100), ctl('Q'), t0, Up, "mkdown status", nil},
		{up(100), ctl('x'), t0, Up, "", func(m Machine) string { return check(m.Last, "last") }},
		{up(100), ev(EvReady), at(time.Second), Up, "status notify:U event:ready", func(m Machine) string { return check(m.Ready, "ready") }},
		{with(up(100), func(m *Machine) { m.Ready = true }), ev(EvReady), t0, Up, "", nil},
		{up(100), ev(EvTerm), t0, Up, fmt.Sprintf("kill:-100/%d kill:-100/18 status", sigterm), func(m Machine) string { return check(m.Last && !m.WantUp, "term") }},
		{up(100), ev(EvQuit), t0, Exited, "exit:leave", nil},
		{up(100), exit(101, 0), t0, Fatal, fmt.Sprintf("kill:-100/%d kill:-100/18 report exit", sigterm), nil},
		// Up: run dies
		{up(100), exit(100, 3<<8), at(2 * time.Second), Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:3,0", sigterm), func(m Machine) string {
				return check(m.Wstat == 3<<8 && m.FinishPending && m.GroupAlive && m.Pid == 0, "died")
			}},
		{up(100), exit(100, int(unix.SIGKILL)), t0, Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:256,9", sigterm), nil},
		{with(up(100), func(m *Machine) { m.Adopted = true }), Event{Kind: EvExit, Pid: 100, Unknown: true}, t0, Finishing,
			fmt.Sprintf("event:exit closenotify kill:-100/%d kill:-100/18 watchgroup finish:-1,0", sigterm), nil},
		// Finishing
		{with(fin(0, true), func(m *Machine) { m.FinishPending = true }), spawned(200), t0, Finishing, "status notify:d", func(m Machine) string {
			return check(m.FinishPid == 200 && m.FinishKillAt.Equal(at(DefaultTimeoutFinish)), "finish running")
		}},
		{with(fin(0, false), func(m *Machine) { m.FinishPending = true; m.SpawnedAt = t0 }), failed(0), at(2 * time.Second), Starting,
			"status notify:d status notify:D event:restart spawn", nil},
		{with(fin(0, false), func(m *Machine) { m.FinishPending = true; m.SpawnedAt = t0 }), failed(0), at(300 * time.Millisecond), Down,
			"status notify:d status notify:D event:restart/700ms", func(m Machine) string { return check(m.SpawnAt.Equal(at(time.Second)), "throttled") }},
		{fin(200, false), exit(200, 0), at(5 * time.Second), Starting, "status notify:D event:restart spawn", nil},
		{fin(200, false), exit(200, 125<<8), t0, Down, "status notify:OD", func(m Machine) string { return check(!m.WantUp, "125 clears want-up") }},
		{fin(200, true), exit(200, 0), t0, Finishing, "", nil},
		{fin(0, true), ev(EvGroupEmpty), at(5 * time.Second), Starting, "status notify:D event:restart spawn", nil},
		{with(fin(0, true), func(m *Machine) { m.Last = true }), ev(EvGroupEmpty), t0, Exited, "status notify:D exit", nil},
		{with(fin(0, true), func(m *Machine) { m.WantUp = false }), ev(EvGroupEmpty), t0, Down, "status notify:D", nil},
		{with(fin(200, true), func(m *Machine) { m.FinishKillAt = t0; m.KillAt = t0 }), ev(EvTimeout), t0, Finishing,
			"kill:200/18 kill:200/9 kill:-100/9", nil},
		{fin(200, true), ctl('d'), t0, Finishing, "status", func(m Machine) string { return check(!m.WantUp, "d while finishing") }},
		{fin(200, true), ctl('k'), t0, Finishing, "", nil},
		{fin(200, true), ev(EvTerm), t0, Finishing, "", func(m Machine) string { return check(m.Last && !m.WantUp, "term") }},
		{fin(200, true), exit(201, 0), t0, Fatal, "kill:-100/15 kill:-100/18 report exit", nil},
		// Readiness by check script and sd_notify, watchdog
		{with(down(true), func(m *Machine) { m.State = Starting; m.Cfg.Check = true; m.Cfg.Watchdog = time.Second }), spawned(42), t0, Up, "event:start status notify:u", func(m Machine) string {
			return check(m.CheckAt.Equal(at(CheckFirst)) && m.WatchdogAt.Equal(at(time.Second)), "check and watchdog armed")
		}},
		{with(up(100), func(m *Machine) { m.CheckAt = t0 }), ev(EvTimeout), t0, Up, "spawncheck", nil},
		{with(up(100), func(m *Machine) { m.CheckAt = t0; m.CheckPid = 7 }), ev(EvTimeout), t0, Up, "", nil},
		{up(100), Event{Kind: EvCheckStarted, Pid: 7}, t0, Up, "", func(m Machine) string {
			return check(m.CheckPid == 7 && m.CheckKillAt.Equal(at(DefaultTimeoutCheck)), "check running")
		}},
		{with(up(100), func(m *Machine) { m.CheckPid = 7 }), Event{Kind: EvCheckDone, Pid: 7}, t0, Up, "status notify:U event:ready", nil},
		{with(up(100), func(m *Machine) { m.CheckPid = 7; m.CheckEvery = CheckFirst }), Event{Kind: EvCheckDone, Pid: 7, Wstat: 1 << 8}, t0, Up, "checkfailed", func(m Machine) string {
			return check(m.CheckAt.Equal(at(2*CheckFirst)) && m.CheckPid == 0, "next check doubled")
		}},
		{with(up(100), func(m *Machine) { m.CheckPid = 7; m.CheckEvery = CheckMax }), Event{Kind: EvCheckDone, Pid: 7, Wstat: 1 << 8}, t0, Up, "checkfailed", func(m Machine) string {
			return check(m.CheckAt.Equal(at(CheckMax)), "interval capped")
		}},
		{with(up(100), func(m *Machine) { m.CheckPid = 7 }), Event{Kind: EvCheckDone, Pid: 8}, t0, Up, "", nil},
		{with(up(100), func(m *Machine) { m.CheckPid = 7; m.CheckKillAt = t0 }), ev(EvTimeout), t0, Up, "kill:-7/9", nil},
		{with(up(100), func(m *Machine) { m.CheckPid = 7 }), exit(100, 0), t0, Finishing,
			fmt.Sprintf("event:exit kill:-7/9 tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:0,0", sigterm), func(m Machine) string {
				return check(m.CheckPid == 0, "check forgotten at death")
			}},
		{with(up(100), func(m *Machine) { m.Ready = true }), ev(EvNotReady), t0, Up, "status notify:u", nil},
		{up(100), Event{Kind: EvMainPid, Pid: 150}, t0, Up, "status", func(m Machine) string { return check(m.Pid == 150 && m.Pgid == 100, "main pid") }},
		{with(up(100), func(m *Machine) { m.Cfg.Watchdog = time.Second }), ev(EvWatchdog), at(time.Second), Up, "", func(m Machine) string {
			return check(m.WatchdogAt.Equal(at(2*time.Second)), "watchdog re-armed")
		}},
		{with(up(100), func(m *Machine) { m.Cfg.Watchdog = time.Second; m.WatchdogAt = t0 }), ev(EvTimeout), t0, Up,
			fmt.Sprintf("report kill:-100/%d kill:-100/18", sigterm), func(m Machine) string {
				return check(m.WantUp && m.KillAt.Equal(at(GroupDrainKill)), "watchdog kill keeps want-up")
			}},
		// Forking mode: launcher, pidfile, daemon
		{with(down(true), func(m *Machine) { m.State = Starting; m.Cfg = forking() }), spawned(100), t0, Launching, "event:start status notify:u", func(m Machine) string {
			return check(m.Pid == 100 && m.Pgid == 100 && !m.Ready && m.LaunchAt.Equal(at(DefaultTimeoutPidfile)) && m.CheckAt.IsZero(), "launching fields")
		}},
		{with(down(true), func(m *Machine) { m.State = Starting; m.Cfg = forking(); m.Cfg.TimeoutPidfile = 0 }), spawned(100), t0, Launching, "event:start status notify:u", func(m Machine) string {
			return check(m.LaunchAt.IsZero(), "timeout-pidfile 0: no limit")
		}},
		{launching(), exit(100, 0), t0, AwaitPid, "status watchpid", func(m Machine) string {
			st := m.Status()
			return check(m.Pid == 0 && m.Pgid == 100 && st.Pid == 100 && st.Up(), "awaiting shows the group, up")
		}},
		{launching(), exit(100, 1<<8), t0, Finishing,
			fmt.Sprintf("launchfailed event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:1,0", sigterm), func(m Machine) string {
				return check(m.LaunchAt.IsZero() && m.Wstat == 1<<8, "launcher failure is a death")
			}},
		{launching(), exit(100, int(unix.SIGSEGV)), t0, Finishing,
			fmt.Sprintf("launchfailed event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:256,11", sigterm), nil},
		{launching(), exit(101, 0), t0, Fatal, fmt.Sprintf("kill:-100/%d kill:-100/18 report exit", sigterm), nil},
		{launching(), ev(EvTimeout), at(DefaultTimeoutPidfile), LaunchAbort,
			fmt.Sprintf("launchfailed kill:-100/%d kill:-100/18 status finddaemon", sigterm), func(m Machine) string {
				return check(m.LaunchAt.IsZero() && m.KillAt.Equal(at(DefaultTimeoutPidfile+GroupDrainKill)) && m.WantUp, "launcher killed, want kept")
			}},
		{launching(), ev(EvTimeout), at(time.Second), Launching, "", nil},
		{launching(), ctl('d'), t0, LaunchAbort, fmt.Sprintf("kill:-100/%d kill:-100/18 status finddaemon", sigterm), func(m Machine) string {
			return check(!m.WantUp && m.LaunchAt.IsZero(), "d cancels the launch")
		}},
		{launching(), ctl('r'), t0, LaunchAbort, fmt.Sprintf("kill:-100/%d kill:-100/18 status finddaemon", sigterm), func(m Machine) string { return check(m.WantUp, "r keeps want-up") }},
		{launching(), ctl('h'), t0, Launching, "kill:100/1", nil},
		{launching(), ctl('x'), t0, Launching, "", func(m Machine) string { return check(m.Last, "last") }},
		{launching(), ev(EvReady), t0, Launching, "", func(m Machine) string { return check(m.ReadyEarly && !m.Ready, "early readiness kept") }},
		{launching(), ev(EvTerm), t0, LaunchAbort, fmt.Sprintf("kill:-100/%d kill:-100/18 status finddaemon", sigterm), func(m Machine) string { return check(m.Last && !m.WantUp, "term") }},
		{launching(), ev(EvQuit), t0, Exited, "exit:leave", nil},
		{launching(), daemon(500, 500), t0, Launching, "", nil},
		// The launcher's death in an aborted launch: one last look at the
		// pidfile (a launcher that waits for its daemon exits after the
		// pidfile is written), then the death, with the daemon if found.
		{aborting(), exit(100, int(unix.SIGTERM)), t0, LaunchAbort, "finddaemon", func(m Machine) string {
			return check(m.FindPending && m.Pid == 100 && m.Wstat == uint16(unix.SIGTERM), "launcher's death kept for the answer")
		}},
		{aborting(), exit(101, 0), t0, Fatal, fmt.Sprintf("kill:-100/%d kill:-100/18 report exit", sigterm), nil},
		{with(aborting(), func(m *Machine) { m.FindPending, m.Wstat = true, uint16(unix.SIGTERM) }), ev(EvNoDaemon), t0, Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:256,15", sigterm), func(m Machine) string {
				return check(!m.FindPending && m.OwnGroup == 0 && m.Pid == 0, "no daemon: the launcher's death as before")
			}},
		{with(aborting(), func(m *Machine) { m.FindPending, m.Wstat = true, uint16(unix.SIGTERM) }), daemon(500, 500), t0, Finishing,
			fmt.Sprintf("kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18 event:exit tally closenotify kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18 watchgroup finish:256,15", sigterm, sigterm, sigterm, sigterm), func(m Machine) string {
				return check(m.OwnGroup == 500 && m.DaemonGroup == 0 && m.GroupAlive, "the daemon stopped and drained with the launcher's group")
			}},
		{with(aborting(), func(m *Machine) { m.FindPending, m.Adopted = true, true }), ev(EvNoDaemon), t0, Finishing,
			fmt.Sprintf("event:exit closenotify kill:-100/%d kill:-100/18 watchgroup finish:-1,0", sigterm), nil},
		{with(aborting(), func(m *Machine) { m.FindPending = true }), ctl('d'), t0, Fatal, fmt.Sprintf("kill:-100/%d kill:-100/18 report exit", sigterm), nil},
		{aborting(), ev(EvTimeout), at(GroupDrainKill), LaunchAbort, "kill:-100/9", func(m Machine) string {
			return check(m.KillAt.Equal(at(GroupDrainKill+KillRepeat)), "kill repeats")
		}},
		{aborting(), ctl('u'), t0, LaunchAbort, "status", nil},
		// A daemon found while the launcher lives (the pidfile written
		// before d): signalled with its groups, not adopted; SIGKILL later
		// reaches it too.
		{aborting(), daemon(500, 500), t0, LaunchAbort, fmt.Sprintf("kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18", sigterm, sigterm), func(m Machine) string {
			return check(m.OwnGroup == 500 && m.DaemonGroup == 0 && m.Pid == 100, "stopped, not adopted")
		}},
		{with(aborting(), func(m *Machine) { m.OwnGroup = 500 }), ev(EvTimeout), at(GroupDrainKill), LaunchAbort, "kill:-500/9 kill:-100/9", nil},
		// Double fork: the daemon (500) in its parent's session (300).
		{aborting(), daemon(500, 300), t0, LaunchAbort,
			fmt.Sprintf("kill:-300/%d kill:-500/%d kill:-100/%d kill:-300/18 kill:-500/18 kill:-100/18", sigterm, sigterm, sigterm), func(m Machine) string {
				return check(m.OwnGroup == 500 && m.DaemonGroup == 300, "both groups")
			}},
		// Still in the launcher's group (no setsid yet): signalled already.
		{aborting(), daemon(500, 100), t0, LaunchAbort, fmt.Sprintf("kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18", sigterm, sigterm), func(m Machine) string {
			return check(m.OwnGroup == 500, "its pid as a group too (setsid may follow)")
		}},
		{aborting(), ev(EvNoDaemon), t0, LaunchAbort, "", nil},
		// The daemon is found: it is the service from now on.
		{awaiting(), daemon(500, 500), at(time.Second), Up, "unwatchpid status notify:U event:ready", func(m Machine) string {
			return check(m.Pid == 500 && m.Pgid == 500 && m.Ready && m.LaunchAt.IsZero() && m.Stamp.Equal(at(time.Second)) && !m.Adopted, "daemon adopted and ready")
		}},
		{awaiting(), Event{Kind: EvDaemon, Pid: 500, Pgid: 100, Unknown: true}, t0, Up, "unwatchpid status notify:U event:ready", func(m Machine) string {
			return check(m.Pgid == 100 && m.Adopted, "not yet our child: exit by pidfd")
		}},
		{with(awaiting(), func(m *Machine) { m.Cfg.NotifyReady = true }), daemon(500, 500), t0, Up, "unwatchpid status", func(m Machine) string {
			return check(!m.Ready, "notify: ready later")
		}},
		{with(awaiting(), func(m *Machine) { m.Cfg.NotifyReady = true; m.ReadyEarly = true }), daemon(500, 500), t0, Up, "unwatchpid status notify:U event:ready", func(m Machine) string {
			return check(m.Ready && !m.ReadyEarly, "readiness seen during the launch")
		}},
		{with(awaiting(), func(m *Machine) { m.Cfg.Check = true; m.Cfg.Watchdog = time.Second }), daemon(500, 500), t0, Up, "unwatchpid status", func(m Machine) string {
			return check(m.CheckAt.Equal(at(CheckFirst)) && m.WatchdogAt.Equal(at(time.Second)), "check and watchdog armed at adoption")
		}},
		{awaiting(), ev(EvPidfileBad), t0, Finishing,
			fmt.Sprintf("launchfailed unwatchpid event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:0,0", sigterm), nil},
		{awaiting(), ev(EvTimeout), at(DefaultTimeoutPidfile), LaunchAbort, "launchfailed unwatchpid finddaemon", func(m Machine) string {
			return check(m.FindPending && m.Pid == 0 && m.LaunchAt.IsZero() && !m.KillAt.IsZero(), "one last look before the drain")
		}},
		{with(awaiting(), func(m *Machine) {
			m.State, m.FindPending, m.LaunchAt, m.KillAt = LaunchAbort, true, time.Time{}, at(GroupDrainKill)
		}), ev(EvNoDaemon), t0, Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:0,0", sigterm), nil},
		{with(awaiting(), func(m *Machine) {
			m.State, m.FindPending, m.LaunchAt, m.KillAt = LaunchAbort, true, time.Time{}, at(GroupDrainKill)
		}), daemon(500, 500), t0, Finishing,
			fmt.Sprintf("kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18 event:exit tally closenotify kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18 watchgroup finish:0,0", sigterm, sigterm, sigterm, sigterm), func(m Machine) string {
				return check(m.OwnGroup == 500 && m.Pid == 0, "d in AwaitPid: the daemon found at the last look is stopped")
			}},
		{awaiting(), ev(EvTimeout), at(time.Second), AwaitPid, "", nil},
		{awaiting(), ctl('d'), t0, LaunchAbort, "unwatchpid finddaemon", func(m Machine) string { return check(!m.WantUp && m.FindPending, "d") }},
		{awaiting(), ev(EvTerm), t0, LaunchAbort, "unwatchpid finddaemon", func(m Machine) string { return check(!m.WantUp && m.Last && m.FindPending, "term") }},
		{awaiting(), ev(EvNoDaemon), t0, AwaitPid, "", nil},
		{awaiting(), ctl('k'), t0, AwaitPid, "", nil},
		{awaiting(), ctl('O'), t0, AwaitPid, "status", nil},
		{awaiting(), ev(EvQuit), t0, Exited, "unwatchpid exit:leave", nil},
		{awaiting(), exit(100, 0), t0, Fatal, fmt.Sprintf("kill:-100/%d kill:-100/18 report exit", sigterm), nil},
		// Once Up, the daemon's death is the service's death.
		{with(up(500), func(m *Machine) { m.Cfg = forking() }), exit(500, int(unix.SIGKILL)), t0, Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-500/%d kill:-500/18 watchgroup finish:256,9", sigterm), nil},
		// Early deaths: the first run of a start, dead within EarlyDeath
		{down(true), ev(EvStart), t0, Starting, "status notify:s spawn", func(m Machine) string { return check(m.StartReq, "start requested") }},
		{down(false), ev(EvStart), t0, Down, "status notify:s", func(m Machine) string { return check(!m.StartReq, "no start") }},
		{down(false), ctl('u'), t0, Starting, "spawn", func(m Machine) string { return check(m.StartReq, "u starts") }},
		{down(false), ctl('o'), t0, Starting, "spawn", func(m Machine) string { return check(!m.StartReq, "o: no restart, no report") }},
		{with(down(true), func(m *Machine) { m.SpawnAt = at(time.Second) }), ctl('u'), t0, Starting, "spawn", func(m Machine) string {
			return check(m.StartReq, "u during a throttle starts again")
		}},
		{with(up(100), func(m *Machine) { m.WantUp = false }), ctl('u'), t0, Up, "status", func(m Machine) string { return check(m.StartReq, "u while wanted down") }},
		{up(100), ctl('u'), t0, Up, "status", func(m Machine) string { return check(!m.StartReq, "u while wanted up: no start") }},
		{fin(200, true), ctl('u'), t0, Finishing, "status", func(m Machine) string { return check(!m.StartReq, "u in a crash loop: no start") }},
		{with(fin(200, true), func(m *Machine) { m.WantUp = false }), ctl('U'), t0, Finishing, "rmdown status", func(m Machine) string {
			return check(m.StartReq, "U while wanted down")
		}},
		{with(down(true), func(m *Machine) { m.State, m.StartReq = Starting, true }), spawned(42), t0, Up, "event:start status notify:u", func(m Machine) string {
			return check(m.EarlyWatch && !m.StartReq, "the run of a start is watched")
		}},
		{with(down(true), func(m *Machine) { m.State, m.StartReq = Starting, true }), failed(RetryExec), t0, Down, "", func(m Machine) string {
			return check(m.StartReq && !m.EarlyWatch, "a failed spawn keeps the start")
		}},
		{with(down(true), func(m *Machine) { m.State = Starting }), spawned(42), t0, Up, "event:start status notify:u", func(m Machine) string {
			return check(!m.EarlyWatch, "a restart is not watched")
		}},
		{with(up(100), func(m *Machine) { m.EarlyWatch = true }), exit(100, 3<<8), at(300 * time.Millisecond), Finishing,
			fmt.Sprintf("event:exit tally early:300ms closenotify kill:-100/%d kill:-100/18 watchgroup finish:3,0", sigterm), func(m Machine) string {
				return check(!m.EarlyWatch, "reported once")
			}},
		{with(up(100), func(m *Machine) { m.EarlyWatch = true }), exit(100, int(unix.SIGSEGV)), at(999 * time.Millisecond), Finishing,
			fmt.Sprintf("event:exit tally early:999ms closenotify kill:-100/%d kill:-100/18 watchgroup finish:256,11", sigterm), nil},
		{with(up(100), func(m *Machine) { m.EarlyWatch = true }), exit(100, 3<<8), at(EarlyDeath), Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:3,0", sigterm), func(m Machine) string {
				return check(!m.EarlyWatch, "too late: cleared")
			}},
		{up(100), exit(100, 3<<8), at(300 * time.Millisecond), Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:3,0", sigterm), nil},
		{with(up(100), func(m *Machine) { m.EarlyWatch, m.WantUp = true, false }), exit(100, 0), at(300 * time.Millisecond), Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:0,0", sigterm), nil},
		{with(up(100), func(m *Machine) { m.EarlyWatch, m.Last = true, true }), exit(100, 0), at(300 * time.Millisecond), Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-100/%d kill:-100/18 watchgroup finish:0,0", sigterm), nil},
		{with(down(false), func(m *Machine) { m.EarlyWatch = true }), Event{Kind: EvAdopt, Pid: 7}, t0, Up, "status notify:s", func(m Machine) string {
			return check(!m.EarlyWatch, "adopted: not watched")
		}},
		// A forking daemon outside its recorded group: every signal to the
		// service's group goes to the daemon's own group first.
		{awaiting(), daemon(500, 100), t0, Up, "unwatchpid status notify:U event:ready", func(m Machine) string {
			return check(m.Pgid == 100 && m.OwnGroup == 500, "daemon's own group recorded")
		}},
		{awaiting(), daemon(500, 500), t0, Up, "unwatchpid status notify:U event:ready", func(m Machine) string {
			return check(m.Pgid == 500 && m.OwnGroup == 0, "a daemon leading its group: one group")
		}},
		{ownUp(), ctl('d'), t0, Up, fmt.Sprintf("kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18 status", sigterm, sigterm), nil},
		{ownUp(), ctl('r'), t0, Up, fmt.Sprintf("kill:-500/%d kill:-100/%d", sigterm, sigterm), nil},
		{ownUp(), ctl('h'), t0, Up, "kill:500/1", nil},
		{ownUp(), exit(500, 0), t0, Finishing,
			fmt.Sprintf("event:exit tally closenotify kill:-500/%d kill:-100/%d kill:-500/18 kill:-100/18 watchgroup finish:0,0", sigterm, sigterm), func(m Machine) string {
				return check(m.OwnGroup == 500 && m.Pgid == 100, "both groups drain")
			}},
		{with(ownUp(), func(m *Machine) { m.KillAt = t0 }), ev(EvTimeout), t0, Up, "kill:-500/9 kill:-100/9", nil},
		{with(ownUp(), func(m *Machine) { m.CheckPid, m.CheckKillAt = 600, t0 }), ev(EvTimeout), t0, Up, "kill:-600/9", nil},
		{with(fin(0, true), func(m *Machine) { m.OwnGroup, m.Cfg = 500, forking() }), ev(EvGroupEmpty), t0, Down, "status notify:D event:restart/1s", func(m Machine) string {
			return check(m.OwnGroup == 0 && m.Pgid == 0, "down: no group")
		}},
		{with(down(true), func(m *Machine) { m.OwnGroup = 500 }), ctl('u'), t0, Starting, "spawn", func(m Machine) string {
			return check(m.OwnGroup == 0, "a new run: the old daemon's pid may be reused")
		}},
		// Absorbing
		{Machine{State: Exited}, ctl('u'), t0, Exited, "", nil},
		{Machine{State: Fatal}, ev(EvStart), t0, Fatal, "", nil},
	} {
		got, as := Step(tc.m, tc.e, tc.now, nil)
		name := fmt.Sprintf("#%d %s+%s(%q)", i, tc.m.State, tc.e.Kind, tc.e.Byte)
		if got.State != tc.state {
			t.Errorf("%s: state %s, want %s", name, got.State, tc.state)
		}
		if a := acts(as); a != tc.acts {
			t.Errorf("%s: actions %q, want %q", name, a, tc.acts)
		}
		if tc.check != nil {
			if msg := tc.check(got); msg != "" {
				t.Errorf("%s: %s", name, msg)
			}
		}
	}
}

func check(ok bool, what string) string {
	if ok {
		return ""
	}
	return "failed: " + what
}

// impossible lists the (state, event) pairs the loop never produces; every
// other pair must be handled without breaking the machine.
func impossible(s State, k EventKind) bool {
	if k == EvAdoptLaunch {
		return s != Down && s != Exited && s != Fatal
	}
	if isHealthEvent(k) {
		return false // stale results are ignored in every state
	}
	switch s {
	case Down:
		return k == EvSpawned || k == EvSpawnFailed || k == EvExit || k == EvCheckStarted
	case Starting:
		return k != EvSpawned && k != EvSpawnFailed
	case Up:
		return k == EvSpawned || k == EvSpawnFailed || k == EvStart || k == EvAdopt
	case Finishing:
		return k == EvStart || k == EvAdopt || k == EvCheckStarted
	case Launching, LaunchAbort:
		return k == EvSpawned || k == EvSpawnFailed || k == EvStart || k == EvAdopt || k == EvCheckStarted
	case AwaitPid:
		return k == EvSpawned || k == EvSpawnFailed || k == EvStart || k == EvAdopt || k == EvCheckStarted || k == EvExit
	}
	return false
}

// TestTotality steps every state with every event (and every byte) and
// checks that only impossible pairs lead to Fatal.
func TestTotality(t *testing.T) {
	machines := map[State]Machine{
		Down: down(true), Starting: with(down(true), func(m *Machine) { m.State = Starting }),
		Up: up(100), Finishing: fin(200, true), Exited: {State: Exited}, Fatal: {State: Fatal},
		Launching: launching(), AwaitPid: awaiting(), LaunchAbort: aborting(),
	}
	for s := State(0); s < numStates; s++ {
		m0, ok := machines[s]
		if !ok {
			t.Fatalf("no sample machine for state %s", s)
		}
		// Each state also with a start pending and, when up, its first
		// run watched for an early death.
		flagged := with(m0, func(m *Machine) { m.StartReq, m.EarlyWatch = true, s == Up })
		// And, where it has a group, as a forking daemon with its own.
		owned := with(m0, func(m *Machine) {
			if m.Pgid != 0 {
				m.OwnGroup, m.Cfg.Forking = m.Pgid+400, true
			}
		})
		for _, m := range []Machine{m0, flagged, owned} {
			totality(t, s, m)
		}
	}
	if _, as := Step(Machine{State: Down}, Event{Kind: numEvents}, t0, nil); acts(as) != "report exit" {
		t.Errorf("unknown event kind not reported: %q", acts(as))
	}
}

// totality steps m, a machine in state s, with every event and byte.
func totality(t *testing.T, s State, m Machine) {
	t.Helper()
	{
		for k := EventKind(0); k < numEvents; k++ {
			bytes := []byte{0}
			if k == EvCtl {
				bytes = bytes[:0]
				for b := 0; b < 256; b++ {
					bytes = append(bytes, byte(b))
				}
			}
			for _, b := range bytes {
				e := Event{Kind: k, Byte: b, Pid: m.Pid + m.FinishPid}
				if k == EvDaemon {
					e.Pid = 500
				}
				got, _ := Step(m, e, t0, nil)
				if got.State >= numStates {
					t.Fatalf("%s+%s: invalid state %d", s, k, got.State)
				}
				wantFatal := impossible(s, k) || (s == Finishing && (k == EvSpawned || k == EvSpawnFailed))
				if (got.State == Fatal) != wantFatal && s != Fatal {
					t.Errorf("%s+%s(%q) (start %v, watch %v): state %s (fatal expected: %v)", s, k, b, m.StartReq, m.EarlyWatch, got.State, wantFatal)
				}
				if got.EarlyWatch && got.State != Up {
					t.Errorf("%s+%s(%q): early-death watch left in state %s", s, k, b, got.State)
				}
			}
		}
	}
}

// TestStepAllocs guards the zero-allocation event path: stepping with a
// reused action buffer must not allocate.
func TestStepAllocs(t *testing.T) {
	buf := make([]Action, 0, 16)
	m := up(100)
	n := testing.AllocsPerRun(100, func() {
		m2, as := Step(m, ctl('1'), t0, buf[:0])
		m2, as = Step(m2, ev(EvReady), t0, as[:0])
		_, buf = Step(m2, exit(100, 0), t0, as[:0])
	})
	if n != 0 {
		t.Errorf("Step allocates %v times per run", n)
	}
}

// FuzzStep drives a machine with random event sequences that respect the
// loop's protocol and checks the invariants after every step.
func FuzzStep(f *testing.F) {
	f.Add([]byte("u d u x"))
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte("\x03\x03\x05\x05dduuOx"))
	f.Add([]byte("\x09\x01\x03\x04\x03\x05\x05d"))            // forking: launch, daemon found, dies
	f.Add([]byte("\x09\x01\x03\x0e\x05\x05\x05u"))            // forking: pidfile bad, restart
	f.Add([]byte("\x09\x01\x05\x05\x05\x05dx"))               // forking: launcher never exits
	f.Add([]byte("\x09\x01\x8c\x01\x03\x01\x04\x05"))         // forking: d while launching, daemon found twice, drained
	f.Add([]byte("\x09\x01\x03\x8c\x02\x04\x05"))             // forking: d while awaiting the pidfile, daemon found
	f.Add([]byte("\x01\x07\x05\x00\x05\x00\x05\x05\x00\x05")) // health: hook, checks fail, restart
	f.Add([]byte("\x01\x0d\x05\x05\x05\x08\x05\x05d"))        // health: retries 3, checks cut
	letters := []byte("abqhkti12pcyroduDUxOQz")
	f.Fuzz(func(t *testing.T, data []byte) {
		m := down(len(data) > 0 && data[0]&1 == 1)
		if len(data) > 0 {
			m.Cfg.Check = data[0]&2 != 0
			if data[0]&4 != 0 {
				m.Cfg.Watchdog = time.Second
			}
			m.Cfg.Forking = data[0]&8 != 0
			m.Cfg.NotifyReady = data[0]&16 != 0
			if data[0]&32 != 0 {
				m.Cfg.TimeoutPidfile = 0
			}
			m.Cfg.Policy = fuzzPolicies[len(data)%len(fuzzPolicies)]
		}
		if len(data) > 1 && data[1]&1 != 0 {
			m.Cfg.Health = HealthConfig{On: true, Hook: data[1]&2 != 0, Every: time.Second,
				Retries: int(data[1]>>2) % 4, Grace: time.Duration(data[1]>>4) * time.Second}
			m.Cfg.Readiness = data[1]&128 != 0
		}
		now := t0
		first := ev(EvStart)
		if m.Cfg.Forking && data[0]&64 != 0 {
			// A new supervisor takes over a launch: launcher alive or gone.
			first = Event{Kind: EvAdoptLaunch, Pid: int(data[0]>>7) * 100, Pgid: 100}
		}
		m, as := Step(m, first, now, nil)
		nextPid := 1000
		spawnPending := strings.HasSuffix(acts(as), "spawn")
		reports := 0 // early-death reports since the last start
		checkPending := false
		findPending := false // ActFindDaemon: its answer comes next
		for i := 0; i < len(data); i++ {
			c := data[i]
			now = now.Add(time.Duration(c) * 37 * time.Millisecond)
			var e Event
			switch {
			case findPending:
				findPending = false
				if c%3 == 0 {
					e = ev(EvNoDaemon)
				} else {
					// Its group: its own, a parent's session, or the launcher's.
					e = daemon(nextPid+500, [3]int{0, nextPid + 600, m.Pgid}[c%3])
				}
			case checkPending:
				checkPending = false
				if c%5 == 0 {
					e = Event{Kind: EvCheckDone, Unknown: true}
				} else {
					nextPid++
					e = Event{Kind: EvCheckStarted, Pid: nextPid}
				}
			case m.HealthBusy && c%3 == 0:
				e = Event{Kind: EvHealthDone, OK: c&8 != 0, Msg: "result"}
			case m.HookBusy && c%7 == 0:
				e = ev(EvHookDone)
			case spawnPending:
				spawnPending = false
				if c%4 == 0 {
					e = failed(time.Duration(c%2) * RetryExec)
				} else {
					nextPid++
					e = spawned(nextPid)
				}
			default:
				switch c % 10 {
				case 0, 1, 2:
					e = ctl(letters[int(c/10)%len(letters)])
				case 3:
					if m.State == Launching {
						e = exit(m.Pid, int(c%3)<<8) // launcher: exit 0 often
					} else if m.State == Up || m.State == LaunchAbort {
						e = exit(m.Pid, int(c)<<8)
					} else if m.State == AwaitPid {
						// Its group: unknown, its own, or still the launcher's.
						e = daemon(nextPid+500, [3]int{0, nextPid + 500, m.Pgid}[c%3])
					} else if m.FinishPid != 0 {
						e = exit(m.FinishPid, int(c%3)*125<<8)
					} else {
						e = ev(EvRunChanged)
					}
				case 4:
					if m.GroupAlive {
						e = ev(EvGroupEmpty)
					} else if c%20 == 14 {
						e = ev(EvPidfileBad)
					} else {
						e = ev(EvReady)
					}
				case 5:
					if d := m.Deadline(); !d.IsZero() {
						now = d
					}
					e = ev(EvTimeout)
				case 6:
					e = ev(EvReady)
				case 7:
					e = ev([]EventKind{EvTerm, EvHup, EvQuit, EvRunChanged, EvNotReady, EvWatchdog}[int(c/10)%6])
				case 8:
					if m.CheckPid != 0 {
						e = Event{Kind: EvCheckDone, Pid: m.CheckPid, Wstat: uint16(c%2) << 8}
					} else if m.State == Up {
						e = Event{Kind: EvMainPid, Pid: m.Pid + 1}
					} else {
						e = ev(EvWatchdog)
					}
				default:
					e = ctl(c)
				}
			}
			prev := m
			m, as = Step(m, e, now, as[:0])
			msg := invariants(prev, m, e, now, as)
			if msg == "" {
				msg = policyInvariants(prev, m, e, now, as)
			}
			if msg != "" {
				t.Fatalf("step %d: %s+%v -> %s: %s (actions %q)", i, prev.State, e, m.State, msg, acts(as))
			}
			if !prev.StartReq && m.StartReq {
				reports = 0
			}
			for _, a := range as {
				if a.Kind == ActEarlyDeath {
					if reports++; reports > 1 {
						t.Fatalf("step %d: a second early-death report for one start", i)
					}
				}
			}
			for _, a := range as {
				switch a.Kind {
				case ActSpawnRun, ActSpawnFinish:
					spawnPending = true
				case ActSpawnCheck:
					checkPending = true
				case ActFindDaemon:
					findPending = true
				}
			}
			if m.State == Exited {
				return
			}
		}
	})
}

// findAsked: m.FindPending was set by this step's ActFindDaemon, or
// carried over (only the answer clears it).
func findAsked(prev Machine, as []Action) bool {
	for _, a := range as {
		if a.Kind == ActFindDaemon {
			return true
		}
	}
	return prev.FindPending
}

// hasKill: as signals process group g with sig.
func hasKill(as []Action, g int, sig unix.Signal) bool {
	for _, a := range as {
		if a.Kind == ActKill && a.Group && a.Pid == g && a.Sig == sig {
			return true
		}
	}
	return false
}

func invariants(prev, m Machine, e Event, now time.Time, as []Action) string {
	switch {
	case m.State == Fatal:
		return "a valid sequence reached Fatal"
	case m.State == Exited:
		// Absorbing; Leave keeps the pid of the process left running.
	case (m.State == Up || m.State == Launching || m.State == LaunchAbort) != (m.Pid != 0) && !m.FindPending:
		return "Pid set exactly when Up, Launching or LaunchAbort (but after the launcher's end)"
	case m.FindPending && (m.State != LaunchAbort || !findAsked(prev, as)):
		return "looking for a daemon outside an aborted launch, or without asking"
	case m.DaemonGroup != 0 && (m.OwnGroup == 0 || m.DaemonGroup == m.OwnGroup || m.DaemonGroup == m.Pgid):
		return "a cancelled launch's daemon group beside no own group, or equal to one"
	case m.State == AwaitPid && m.Pgid == 0:
		return "waiting for a pidfile without the launcher's group"
	case (m.State == Launching || m.State == AwaitPid) != (!m.LaunchAt.IsZero()) && m.Cfg.TimeoutPidfile > 0:
		return "launch deadline armed exactly while launching"
	case !m.LaunchAt.IsZero() && m.State != Launching && m.State != AwaitPid:
		return "launch deadline outside a launch"
	case m.ReadyEarly && m.State != Launching && m.State != AwaitPid:
		return "early readiness outside a launch"
	case m.Ready && (m.State == Launching || m.State == AwaitPid || m.State == LaunchAbort):
		return "ready before the daemon is known"
	case m.State == LaunchAbort && m.KillAt.IsZero():
		return "aborting a launch with no SIGKILL armed"
	case (m.State == Launching || m.State == AwaitPid || m.State == LaunchAbort) && !m.Cfg.Forking:
		return "launch states without forking mode"
	case m.FinishPid != 0 && m.State != Finishing:
		return "finish pid outside Finishing"
	case m.State == Finishing && !m.FinishPending && m.FinishPid == 0 && !m.GroupAlive:
		return "Finishing with nothing left to wait for"
	case m.State == Down && (m.GroupAlive || m.FinishPending):
		return "Down with processes"
	case m.State == Down && !m.Ready:
		return "Down but not ready"
	case m.State == Down && !m.WantUp && !m.SpawnAt.IsZero():
		return "spawn armed without want-up"
	case m.State == Down && m.WantUp && m.SpawnAt.IsZero() && !m.WaitRun:
		return "wanted up, down, and nothing will start it"
	case m.State == Finishing && m.Ready:
		return "ready while finishing"
	case !m.FinishKillAt.IsZero() && m.FinishPid == 0:
		return "finish kill armed without finish"
	case m.CheckPid != 0 && m.State != Up:
		return "a check outlived its run"
	case (!m.CheckAt.IsZero() || !m.WatchdogAt.IsZero()) && m.State != Up:
		return "check or watchdog armed outside Up"
	case m.Ready && !m.CheckAt.IsZero():
		return "check scheduled although ready"
	case e.Kind == EvTimeout && !m.Deadline().IsZero() && !m.Deadline().After(now):
		return "a deadline that passed is still armed after EvTimeout (the loop would spin)"
	case m.EarlyWatch && m.State != Up:
		return "early-death watch outside Up"
	case m.EarlyWatch && !prev.EarlyWatch && !prev.StartReq:
		return "a run watched for an early death without a start"
	case m.OwnGroup != 0 && (m.Pgid == 0 || m.OwnGroup == m.Pgid || !m.Cfg.Forking):
		return "an own group for the daemon without a different service group"
	}
	if g := prev.OwnGroup; g != 0 {
		for i, a := range as {
			if a.Kind != ActKill || !a.Group || a.Pid != prev.Pgid {
				continue
			}
			if b := as[max(i-1, 0)]; i == 0 || b.Kind != ActKill || !b.Group || b.Pid != g || b.Sig != a.Sig {
				return "a signal to the service's group without the daemon's own group"
			}
		}
	}
	if e.Kind == EvDaemon && prev.State == LaunchAbort && e.Pid != prev.Pgid {
		// A cancelled launch's daemon is stopped, never adopted: its
		// groups get the down-signal, and the drain (or the abort) waits.
		if m.State == Up || m.OwnGroup != e.Pid || !hasKill(as, e.Pid, prev.Cfg.DownSignal) ||
			(e.Pgid > 0 && e.Pgid != prev.Pgid && !hasKill(as, e.Pgid, prev.Cfg.DownSignal)) {
			return "a cancelled launch's daemon not stopped"
		}
	}
	if prev.State == LaunchAbort && m.State == Down && prev.OwnGroup != 0 {
		return "down while a cancelled launch's daemon may live"
	}
	if msg := healthInvariants(m, as); msg != "" {
		return msg
	}
	statusSeen := false
	for _, a := range as {
		switch a.Kind {
		case ActWriteStatus:
			statusSeen = true
		case ActNotify:
			if !statusSeen {
				return "event " + a.Ev + " before the status write"
			}
		case ActSpawnRun:
			explicit := e.Kind == EvCtl && (e.Byte == 'u' || e.Byte == 'U' || e.Byte == 'o')
			if !m.WantUp && !explicit && !(e.Kind == EvStart) {
				return "spawn while want-up is off"
			}
		case ActKill:
			if a.Pid <= 0 {
				return "kill of pid <= 0"
			}
		case ActEarlyDeath:
			if e.Kind != EvExit || !prev.EarlyWatch || !prev.WantUp || a.After >= EarlyDeath || a.After < 0 {
				return "early-death report outside the first second of a start's run"
			}
		}
	}
	return ""
}
