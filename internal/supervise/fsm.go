package supervise

import (
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// The per-service state machine.
//
// A Machine is the whole supervision state of one service directory. [Step]
// is a pure function of (machine, event, time): it reads no clock, touches
// no file and starts nothing; it returns the next machine and the actions
// the event loop must perform, in order. The loop feeds back the results of
// the actions that can fail (spawns) as events, before any other event.
//
// States (what processes exist):
//
//	Down       no run, no finish, the run's process group is empty.
//	           WantUp && SpawnAt set: a throttled or retried spawn is due.
//	           WantUp && WaitRun: ./run is missing or not executable; the
//	           loop watches the directory and sends EvRunChanged.
//	Starting   a SpawnRun action was issued; only EvSpawned/EvSpawnFailed
//	           may follow (the loop spawns synchronously).
//	Up         run is alive (Pid). Ready says whether it has signalled
//	           readiness since it was spawned. KillAt is armed after a
//	           d/D/SIGTERM when timeout-kill is set.
//	Finishing  run is dead; one or more of: finish is being spawned
//	           (FinishPending), finish is running (FinishPid), members of
//	           the run's process group are still alive (GroupAlive).
//	           The status file says "finishing" until all three are over;
//	           only then is D announced (gosv's process-group rule).
//	Launching  forking mode (pidfile): run is the launcher (Pid); the
//	           status says up with its pid, not ready. LaunchAt bounds
//	           the whole launch (timeout-pidfile).
//	AwaitPid   forking mode: the launcher exited 0; the loop watches the
//	           pidfile and feeds EvDaemon once it names a live process
//	           that descends from the launcher, or EvPidfileBad when a
//	           pidfile written by this launch names another. Pid is 0,
//	           Pgid the launcher's group; the status shows Pgid.
//	LaunchAbort forking mode: the launch failed or was cancelled; the
//	           launcher's group got the down-signal, and a daemon the
//	           pidfile already names (ActFindDaemon) is stopped too, not
//	           adopted. The launcher's death (or, from AwaitPid, the
//	           cancellation) looks at the pidfile once more (FindPending)
//	           and then leads to Finishing like any death.
//	           A launch that finds its daemon goes to Up with the
//	           daemon's pid and group; from then on forking mode is Up.
//	Exited     the machine is done (x, exit of the scanner); absorbing.
//	Fatal      an invariant was broken; the service was stopped and
//	           reported; absorbing.
//
// Flags: WantUp (s6's want-up bit), Ready, Paused, Last (exit after the
// next death: s6's LASTUP/LASTFINISH), Perm (finish exited 125: announce O),
// ReadyEarly (readiness signalled during a launch, announced as U once the
// daemon is found).
// StartReq and EarlyWatch (the early-death report, below).
//
// Early deaths: a start (the first spawn of a wanted-up machine, u or U
// while down or wanted down) sets StartReq; the run spawned next
// takes it over as EarlyWatch. If that run dies on its own (still wanted
// up, no x pending) within EarlyDeath of its spawn, ActEarlyDeath reports
// it: one line per start, however long the crash loop that follows.
//
// Meaningful combinations: Down with any WantUp; Up with any WantUp,
// Ready, Paused, Last; Finishing with any WantUp, Last, Perm. Paused and
// Ready are always false outside Up except Ready, which is true in Down
// (s6 reports a down service as "down and ready").
//
// Health checks (HealthSince … Unhealthy) are documented in
// fsm_health.go; Step brings them in line after every event.
//
// What interrupts what: control letters apply to the current state one
// byte at a time; a run death always leads through Finishing; a deadline
// (SpawnAt, KillAt, FinishKillAt) fires EvTimeout, and Step acts on every
// deadline that has passed.
type Machine struct {
	State State

	WantUp bool
	Ready  bool
	Paused bool
	Last   bool // exit after the next death (x, SIGHUP, SIGTERM)
	Perm   bool // finish exited 125: announce O before D

	StartReq   bool // a start was asked for: the next run is watched for an early death
	EarlyWatch bool // the current run is the first of a start (Up only)

	Pid           int    // run pid while Up
	Pgid          int    // process group of the last run (its pid)
	OwnGroup      int    // a forking daemon's pid when it is not Pgid: its own group too (see ownGroup)
	DaemonGroup   int    // LaunchAbort and after: the group of a cancelled launch's daemon, when neither Pgid nor OwnGroup
	FinishPid     int    // finish pid while it runs
	FinishPending bool   // SpawnFinish issued, result not yet fed
	GroupAlive    bool   // members of Pgid may still live
	Adopted       bool   // Pid is not our child: its exit status is unknown
	WaitRun       bool   // waiting for ./run to become executable
	Wstat         uint16 // raw wait status of the last run death

	Stamp      time.Time // last up/down transition (wall clock)
	ReadyStamp time.Time // last readiness transition (wall clock)
	SpawnedAt  time.Time // last spawn, for the crash-loop throttle

	SpawnAt      time.Time // due spawn (throttle or retry); zero if none
	KillAt       time.Time // next SIGKILL to the run's group; zero if none
	FinishKillAt time.Time // next SIGKILL to finish; zero if none

	// Readiness by ./check (runit's convention), run while up and not ready.
	CheckPid    int           // running check, or 0
	CheckAt     time.Time     // next check run; zero if none
	CheckKillAt time.Time     // SIGKILL to a check that overran timeout-check
	CheckEvery  time.Duration // current interval, doubling from CheckFirst to CheckMax

	// WatchdogAt: with sd_notify and timeout-watchdog, the instant by which
	// the next WATCHDOG=1 must arrive.
	WatchdogAt time.Time

	// Forking mode: LaunchAt ends a launch that has not found its daemon
	// (Launching, AwaitPid); ReadyEarly records readiness seen before.
	LaunchAt   time.Time
	ReadyEarly bool
	// FindPending: LaunchAbort after the launcher's end (its Wstat, and
	// Adopted for an unknown status, kept): ActFindDaemon was issued and
	// its answer (EvDaemon or EvNoDaemon) is the next event; then the
	// death is handled as any run's.
	FindPending bool

	Pol PolicyRun // the restart policy's state (fsm_policy.go)
	// Health checks (fsm_health.go).
	HealthSince time.Time // checking turned on for this run; zero: not yet (or not Up)
	HealthAt    time.Time // next check; zero if none
	HealthCutAt time.Time // cut of the running check
	HookCutAt   time.Time // cut of the running unhealthy hook
	HealthBusy  bool      // a check runs
	HookBusy    bool      // the unhealthy hook runs
	HealthFails int       // consecutive counted failures
	Unhealthy   bool      // retries failures: the hook and the stop are under way
	// WasUnhealthy: a run was stopped unhealthy and no check has passed
	// since; it outlives the run, so that the next pass, usually the
	// new run's first, reports HapRecovered (fsm_health.go).
	WasUnhealthy bool

	Cfg Config // re-read by the loop before the events that use it
}

// Config is the part of the service directory the machine needs. The loop
// re-reads it where s6-supervise does: before each spawn and before the
// control letters and signals that stop the service.
type Config struct {
	DownSignal    unix.Signal   // down-signal, default SIGTERM
	TimeoutKill   time.Duration // timeout-kill; 0 = never
	TimeoutFinish time.Duration // timeout-finish; 0 = unlimited
	Check         bool          // ./check exists: readiness by check script
	TimeoutCheck  time.Duration // timeout-check: limit of one check run
	Watchdog      time.Duration // timeout-watchdog (with sd_notify); 0 = none
	// Forking: the directory has a pidfile file: run is a launcher and
	// the daemon it leaves behind is the service.
	Forking        bool
	TimeoutPidfile time.Duration // timeout-pidfile; 0 = no limit
	// NotifyReady: notification-fd or notification-socket exists, so the
	// daemon, not its discovery, says when it is ready.
	NotifyReady bool
	Policy      Policy // the restart policy (fsm_policy.go)
	// Readiness: the service signals readiness (notification-fd,
	// notification-socket, check): health checks wait for it.
	Readiness bool
	Health    HealthConfig
}

// DefaultConfig is what a service directory without config files means.
var DefaultConfig = Config{DownSignal: unix.SIGTERM, TimeoutFinish: DefaultTimeoutFinish, TimeoutCheck: DefaultTimeoutCheck,
	TimeoutPidfile: DefaultTimeoutPidfile, Policy: DefaultPolicy}

// Timing rules, documented in README "Restart timing".
const (
	// ThrottleInterval: at most one spawn per second in a crash loop; a
	// service that ran at least this long is restarted at once (s6 waits
	// 1 s unless the service had been ready for 1 s).
	ThrottleInterval = time.Second
	// KillRepeat: SIGKILL is repeated this often until the target dies (s6).
	KillRepeat = 5 * time.Second
	// DefaultTimeoutFinish is s6's default for timeout-finish.
	DefaultTimeoutFinish = 5 * time.Second
	// RetryExec: ./run exists but exec fails (ENOEXEC, ...): retry (s6).
	RetryExec = 10 * time.Second
	// RetryFork: fork itself failed (EAGAIN, ENOMEM, EMFILE): retry (s6).
	RetryFork = 60 * time.Second
	// GroupDrainKill: when run dies on its own leaving members in its
	// process group and timeout-kill is 0, they get SIGKILL after this.
	// s6 never signals the group; gosv does so that a restart never
	// overlaps the previous instance.
	GroupDrainKill = 10 * time.Second
	// CheckFirst is the delay from spawn to the first ./check run, and its
	// first interval; intervals double up to CheckMax.
	CheckFirst = 200 * time.Millisecond
	CheckMax   = 5 * time.Second
	// DefaultTimeoutCheck bounds one ./check run when timeout-check is absent.
	DefaultTimeoutCheck = 2 * time.Second
	// DefaultTimeoutPidfile bounds a forking daemon's launch when
	// timeout-pidfile is absent (OpenRC's timeout_ready default).
	DefaultTimeoutPidfile = 30 * time.Second
	// EarlyDeath: the first run of a start that dies sooner than this
	// after its spawn is reported (ActEarlyDeath), once per start.
	EarlyDeath = time.Second
)

// State is the process state of a service.
type State uint8

const (
	Down        State = iota // no process
	Starting                 // spawn in progress (transient, within one loop turn)
	Up                       // run alive
	Finishing                // run dead; finish and/or the old process group alive
	Exited                   // machine done
	Fatal                    // invariant broken; machine stopped
	Launching                // forking mode: the launcher runs
	AwaitPid                 // forking mode: the launcher exited 0; waiting for the pidfile
	LaunchAbort              // forking mode: failed or cancelled launch; the launcher is being killed
	numStates
)

var stateNames = [numStates]string{"down", "starting", "up", "finishing", "exited", "fatal",
	"launching", "await-pid", "launch-abort"}

func (s State) String() string {
	if s < numStates {
		return stateNames[s]
	}
	return "invalid"
}

// EventKind says what happened.
type EventKind uint8

const (
	EvStart        EventKind = iota // machine created: announce s, spawn if wanted
	EvAdopt                         // machine created over a live run (Pid): announce s
	EvCtl                           // one control byte (Byte)
	EvSpawned                       // the last spawn succeeded (Pid)
	EvSpawnFailed                   // the last spawn failed; retry after Delay (0: when ./run changes)
	EvRunChanged                    // ./run was created or changed
	EvExit                          // a child of this machine exited (Pid, Wstat, Unknown)
	EvGroupEmpty                    // the run's process group has no member left
	EvReady                         // readiness was signalled
	EvTimeout                       // a deadline passed
	EvTerm                          // stop and exit when down (s6-supervise SIGTERM)
	EvHup                           // exit after the next death (s6-supervise SIGHUP, x)
	EvQuit                          // exit now, leave the service running (SIGQUIT, svscan b)
	EvNotReady                      // sd_notify RELOADING=1: ready again only at the next READY=1
	EvMainPid                       // sd_notify MAINPID=Pid: Pid is now the service's main process
	EvWatchdog                      // sd_notify WATCHDOG=1: the keepalive
	EvCheckStarted                  // a ./check run was spawned (Pid)
	EvCheckDone                     // the ./check run ended: Wstat 0 = ready; Unknown: not even spawned
	EvDaemon                        // the pidfile names the daemon (Pid, Pgid; Unknown: not our child)
	EvPidfileBad                    // a pidfile written by this launch names a dead or foreign process
	EvAdoptLaunch                   // machine created over a forking launch in progress: launcher Pid (0: gone), its group Pgid
	EvHealthDone                    // the running health check ended: OK, Msg (the result in words)
	EvHookDone                      // the unhealthy hook ended (or could not start)
	EvNoDaemon                      // ActFindDaemon's answer: the pidfile names no daemon of this launch
	numEvents
)

var eventNames = [numEvents]string{"start", "adopt", "ctl", "spawned", "spawn-failed", "run-changed",
	"exit", "group-empty", "ready", "timeout", "term", "hup", "quit",
	"not-ready", "main-pid", "watchdog", "check-started", "check-done", "daemon", "pidfile-bad", "adopt-launch",
	"health-done", "hook-done", "no-daemon"}

func (k EventKind) String() string {
	if k < numEvents {
		return eventNames[k]
	}
	return "invalid"
}

// Event is one input to [Step].
type Event struct {
	Kind    EventKind
	Byte    byte          // EvCtl
	Pid     int           // EvSpawned, EvExit, EvAdopt, EvDaemon
	Pgid    int           // EvDaemon, EvAdopt: its process group (0: Pid)
	Wstat   uint16        // EvExit
	Unknown bool          // EvExit: status unknown (adopted process)
	Delay   time.Duration // EvSpawnFailed
	OK      bool          // EvHealthDone: the check passed
	Msg     string        // EvHealthDone: the result in words
}

// ActionKind says what the loop must do.
type ActionKind uint8

const (
	ActWriteStatus    ActionKind = iota // write Status to supervise/status
	ActNotify                           // send Ev to event/ listeners
	ActSpawnRun                         // spawn ./run; feed EvSpawned/EvSpawnFailed
	ActSpawnFinish                      // spawn ./finish Code Sig; feed EvSpawned/EvSpawnFailed
	ActKill                             // send Sig to Pid (Group: to the process group Pid)
	ActWatchGroup                       // feed EvGroupEmpty once process group Pid is empty
	ActDeathTally                       // append a death_tally record (Wstat)
	ActCreateDown                       // create ./down
	ActRemoveDown                       // remove ./down
	ActCloseNotify                      // close the readiness channel of the dead run
	ActWaitRun                          // watch the directory for ./run
	ActReport                           // log Msg ("please report" class)
	ActExit                             // the machine is done; Leave: processes keep running
	ActSpawnCheck                       // spawn ./check NAME; feed EvCheckStarted or EvCheckDone{Unknown}
	ActCheckFailed                      // a check run failed (Wstat): record its output, send event c
	ActEarlyDeath                       // log that the first run of a start died After its spawn (Wstat)
	ActWatchPidfile                     // watch the pidfile; feed EvDaemon or EvPidfileBad when it says
	ActUnwatchPidfile                   // stop watching the pidfile
	ActLaunchFailed                     // record Msg in launch-error (and log it): the launch failed
	ActEvent                            // record happening Hap (Pid, Wstat, After, Msg) in the events log and hand it to the hook
	ActWritePolicy                      // write Policy to supervise/gosv/policy
	ActHealthCheck                      // start a health check; feed EvHealthDone when it ends
	ActHealthCancel                     // cut the running health check; feed nothing for it
	ActHealthState                      // record Health in supervise/gosv/health (if it changed)
	ActUnhealthy                        // run the unhealthy hook; feed EvHookDone when it ends
	ActHookCancel                       // kill the running unhealthy hook
	ActFindDaemon                       // read the pidfile now; feed EvDaemon (not adopted) or EvNoDaemon next
	numActions
)

// Action is one output of [Step].
type Action struct {
	Kind   ActionKind
	Sig    unix.Signal
	Pid    int
	Group  bool
	Leave  bool
	Ev     string
	Code   int // ActSpawnFinish: exit code, 256 if signalled, -1 if unknown
	FinSig int // ActSpawnFinish: signal number or 0
	Wstat  uint16
	After  time.Duration // ActEarlyDeath: how long the run lived; ActEvent: the delay of a restart or backoff
	Msg    string
	Status servicedir.Status
	Hap    Happening              // ActEvent
	Policy servicedir.PolicyState // ActWritePolicy
	Health servicedir.HealthState // ActHealthState (the loop fills in Check)
}

// Deadline returns the earliest armed deadline, or the zero time.
func (m *Machine) Deadline() time.Time {
	d := m.SpawnAt
	for _, t := range [...]time.Time{m.KillAt, m.FinishKillAt, m.CheckAt, m.CheckKillAt, m.WatchdogAt, m.LaunchAt,
		m.HealthAt, m.HealthCutAt, m.HookCutAt} {
		if !t.IsZero() && (d.IsZero() || t.Before(d)) {
			d = t
		}
	}
	return d
}

// Status is what supervise/status says about m.
func (m *Machine) Status() servicedir.Status {
	s := servicedir.Status{
		Stamp: m.Stamp, ReadyStamp: m.ReadyStamp, Wstat: m.Wstat,
		Paused: m.Paused, WantUp: m.WantUp, Ready: m.Ready,
	}
	switch m.State {
	case Up, Launching, LaunchAbort:
		s.Pid = m.Pid
	case AwaitPid:
		// The launcher is gone and the daemon not known yet: its group
		// (where the daemon usually is) stands in, so the service stays up.
		s.Pid = m.Pgid
	case Finishing:
		s.Finishing = true
		s.Pid = m.FinishPid
		if s.Pid == 0 {
			// No finish runs: the pid of the draining group stands in,
			// so clients see "finishing" with a pid, as with s6.
			s.Pid = m.Pgid
		}
	}
	return s
}

// Step applies e to m at time now and appends the actions to buf.
func Step(m Machine, e Event, now time.Time, buf []Action) (Machine, []Action) {
	t := stepper{m: m, now: now, acts: buf}
	t.step(e)
	if m.State != Exited && m.State != Fatal {
		t.healthSync() // health checks follow whatever the event did
	}
	return t.m, t.acts
}

func (t *stepper) step(e Event) {
	m := t.m
	if e.Kind >= numEvents {
		t.fatal("unknown event kind")
		return
	}
	switch {
	case m.State == Exited || m.State == Fatal:
		if isHealthEvent(e.Kind) {
			return // absorbing
		}
	case isHealthEvent(e.Kind):
		t.healthEvent(e)
		return
	case m.State == Starting:
	case e.Kind == EvCheckDone:
		t.checkDone(e)
		return
	case e.Kind == EvTimeout:
		t.checkKill()
		t.healthTimeout()
	}
	switch m.State {
	case Down:
		t.down(e)
	case Starting:
		t.starting(e)
	case Up:
		t.up(e)
	case Finishing:
		t.finishing(e)
	case Launching:
		t.launching(e)
	case AwaitPid:
		t.awaitPid(e)
	case LaunchAbort:
		t.launchAbort(e)
	case Exited, Fatal:
		// Absorbing: the loop drops the machine after ActExit; events
		// that were already queued for it are ignored.
	default:
		t.fatal("unknown state")
	}
}

// stepper carries one Step's work so the handlers stay small.
type stepper struct {
	m    Machine
	now  time.Time
	acts []Action
}

func (t *stepper) act(a Action) { t.acts = append(t.acts, a) }
func (t *stepper) event(h Happening, pid int) {
	t.act(Action{Kind: ActEvent, Hap: h, Pid: pid})
}
func (t *stepper) notify(ev string) { t.act(Action{Kind: ActNotify, Ev: ev}) }
func (t *stepper) writeStatus()     { t.act(Action{Kind: ActWriteStatus, Status: t.m.Status()}) }
func (t *stepper) kill(pid int, sig unix.Signal, group bool) {
	if g := t.m.DaemonGroup; group && pid == t.m.Pgid && g > 0 && g != pid {
		t.act(Action{Kind: ActKill, Pid: g, Sig: sig, Group: true}) // a cancelled launch's daemon (stopDaemon)
	}
	if g := t.m.OwnGroup; group && pid == t.m.Pgid && g > 0 && g != pid {
		t.act(Action{Kind: ActKill, Pid: g, Sig: sig, Group: true}) // ESRCH when the daemon made no group
	}
	t.act(Action{Kind: ActKill, Pid: pid, Sig: sig, Group: group})
}

// fatal stops the service and makes the machine absorbing: an invariant
// violation inside one service never takes the scanner down.
func (t *stepper) fatal(why string) {
	m := &t.m
	if m.Pgid != 0 && m.State != Down && m.State != Starting {
		t.kill(m.Pgid, m.Cfg.DownSignal, true)
		t.kill(m.Pgid, unix.SIGCONT, true)
	}
	t.act(Action{Kind: ActReport, Msg: "invariant violated: " + why + " in state " + m.State.String() + " (please report)"})
	m.State, m.WantUp = Fatal, false
	m.StartReq, m.EarlyWatch = false, false
	m.SpawnAt, m.KillAt, m.FinishKillAt, m.LaunchAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	t.act(Action{Kind: ActExit})
}

func (t *stepper) exit(leave bool) {
	t.m.State = Exited
	t.m.StartReq, t.m.EarlyWatch = false, false
	t.m.SpawnAt, t.m.KillAt, t.m.FinishKillAt, t.m.LaunchAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	t.act(Action{Kind: ActExit, Leave: leave})
}

func (t *stepper) spawn() {
	t.policySpawn()
	t.m.State = Starting
	t.m.SpawnAt = time.Time{}
	t.m.OwnGroup, t.m.DaemonGroup = 0, 0 // a new run: the last daemon's pids may be reused
	t.m.WaitRun = false
	t.act(Action{Kind: ActSpawnRun})
}

// wantLetter applies the want-up side of a control letter (common to
// every state) and reports whether the letter was one of them.
func (t *stepper) wantLetter(b byte) bool {
	m := &t.m
	switch b {
	case 'd', 'o', 'O':
		m.WantUp = false
	case 'D', 'Q':
		t.act(Action{Kind: ActCreateDown})
		m.WantUp = false
	case 'u':
		m.StartReq = m.StartReq || !m.WantUp
		m.WantUp = true
	case 'U':
		t.act(Action{Kind: ActRemoveDown})
		m.StartReq = m.StartReq || !m.WantUp
		m.WantUp = true
	default:
		return false
	}
	return true
}

func (t *stepper) down(e Event) {
	m := &t.m
	switch e.Kind {
	case EvStart:
		m.Ready, m.Stamp, m.ReadyStamp = true, t.now, t.now
		t.writeStatus()
		t.notify("s")
		if m.WantUp {
			m.StartReq = true
			t.spawn()
		}
	case EvAdopt:
		m.State, m.Pid, m.Pgid, m.Adopted = Up, e.Pid, e.Pid, true
		if e.Pgid > 0 {
			m.Pgid = e.Pgid // a forking daemon's own group
		}
		m.ownGroup(e.Pid)
		if m.Stamp.IsZero() {
			m.Stamp = t.now
		}
		if m.ReadyStamp.IsZero() {
			m.ReadyStamp = t.now
		}
		m.SpawnedAt = time.Time{} // unknown age: restart at once if it dies
		m.EarlyWatch = false      // started by an earlier scanner, long ago or not
		t.writeStatus()
		t.notify("s")
	case EvAdoptLaunch:
		t.adoptLaunch(e)
	case EvCtl:
		switch e.Byte {
		case 'x':
			t.exit(false)
			return
		}
		if !t.wantLetter(e.Byte) {
			return // signal letters, p, c, r and unknown bytes: nothing to do
		}
		switch e.Byte {
		case 'u', 'U', 'o':
			// o wants no restart: there is no crash loop to tell from.
			m.StartReq = m.StartReq || e.Byte != 'o'
			t.spawn() // explicit start bypasses the throttle (s6)
		default:
			m.SpawnAt, m.WaitRun = time.Time{}, false
			t.writeStatus()
		}
	case EvRunChanged:
		if m.WantUp && m.WaitRun {
			t.spawn()
		}
	case EvTimeout:
		if !m.SpawnAt.IsZero() && !t.now.Before(m.SpawnAt) {
			t.spawn()
		}
	case EvTerm, EvHup, EvQuit:
		t.exit(false)
	case EvGroupEmpty, EvReady, EvNotReady, EvMainPid, EvWatchdog, EvDaemon, EvPidfileBad, EvNoDaemon:
		// Stale: the group or readiness channel of a finished run.
	case EvSpawned, EvSpawnFailed, EvExit, EvCheckStarted:
		t.fatal(e.Kind.String() + " without a process")
	}
}

func (t *stepper) starting(e Event) {
	m := &t.m
	switch e.Kind {
	case EvSpawned:
		m.State, m.Pid, m.Pgid = Up, e.Pid, e.Pid
		m.Adopted, m.Ready, m.Stamp, m.SpawnedAt = false, false, t.now, t.now
		t.event(HapStart, e.Pid)
		if m.Cfg.Forking {
			t.launch() // the start's watch begins with the daemon (AwaitPid)
			return
		}
		m.EarlyWatch, m.StartReq = m.StartReq, false
		if m.Cfg.Check {
			m.CheckEvery = CheckFirst
			m.CheckAt = t.now.Add(CheckFirst)
		}
		if m.Cfg.Watchdog > 0 {
			m.WatchdogAt = t.now.Add(m.Cfg.Watchdog)
		}
		t.writeStatus()
		t.notify("u")
	case EvSpawnFailed:
		m.State = Down
		if e.Delay == 0 {
			m.WaitRun = true
			t.act(Action{Kind: ActWaitRun})
		} else {
			m.SpawnAt = t.now.Add(e.Delay)
		}
	default:
		t.fatal(e.Kind.String() + " during a spawn")
	}
}

func (t *stepper) up(e Event) {
	m := &t.m
	switch e.Kind {
	case EvCtl:
		t.upCtl(e.Byte)
	case EvExit:
		t.runExit(e)
	case EvReady:
		t.ready()
	case EvNotReady:
		if m.Ready {
			m.Ready = false
			t.writeStatus()
			t.notify("u")
		}
	case EvMainPid:
		if e.Pid > 0 && e.Pid != m.Pid {
			m.Pid, m.Adopted = e.Pid, e.Unknown
			t.writeStatus()
		}
	case EvWatchdog:
		if m.Cfg.Watchdog > 0 {
			m.WatchdogAt = t.now.Add(m.Cfg.Watchdog)
		}
	case EvCheckStarted:
		m.CheckPid = e.Pid
		if m.Cfg.TimeoutCheck > 0 {
			m.CheckKillAt = t.now.Add(m.Cfg.TimeoutCheck)
		}
	case EvTimeout:
		t.upTimeout()
	case EvTerm:
		m.Last = true
		t.upCtl('d')
	case EvHup:
		m.Last = true
	case EvQuit:
		t.exit(true)
	case EvGroupEmpty, EvRunChanged, EvDaemon, EvPidfileBad, EvNoDaemon:
		// Stale or irrelevant while run lives.
	default:
		t.fatal(e.Kind.String() + " while up")
	}
}

// runExit handles the exit of the run (Pid); any other pid is a bug.
func (t *stepper) runExit(e Event) {
	if e.Pid != t.m.Pid {
		t.fatal("exit of a foreign pid")
		return
	}
	t.runDied(e)
}

// upSignals maps the single-signal letters to the signal s6 sends to the
// run pid (not the group).
var upSignals = [256]unix.Signal{
	'a': unix.SIGALRM, 'b': unix.SIGABRT, 'q': unix.SIGQUIT, 'h': unix.SIGHUP,
	'k': unix.SIGKILL, 't': unix.SIGTERM, 'i': unix.SIGINT, '1': unix.SIGUSR1,
	'2': unix.SIGUSR2, 'y': unix.SIGWINCH,
}

// IsControlLetter reports whether b is one of [servicedir.ControlLetters].
func IsControlLetter(b byte) bool {
	return strings.IndexByte(servicedir.ControlLetters, b) >= 0
}

func (t *stepper) upCtl(b byte) {
	m := &t.m
	if sig := upSignals[b]; sig != 0 {
		t.kill(m.Pid, sig, false)
		return
	}
	switch b {
	case 'p':
		t.kill(m.Pid, unix.SIGSTOP, false)
		m.Paused = true
		t.writeStatus()
	case 'c':
		t.kill(m.Pid, unix.SIGCONT, false)
		m.Paused = false
		t.writeStatus()
	case 'r':
		t.kill(m.Pgid, m.Cfg.DownSignal, true)
	case 'x':
		m.Last = true
	case 'd', 'D':
		t.wantLetter(b)
		t.kill(m.Pgid, m.Cfg.DownSignal, true)
		t.kill(m.Pgid, unix.SIGCONT, true)
		m.Paused = false
		if m.Cfg.TimeoutKill > 0 && m.KillAt.IsZero() {
			m.KillAt = t.now.Add(m.Cfg.TimeoutKill)
		}
		t.writeStatus()
	default:
		if t.wantLetter(b) {
			t.writeStatus()
		}
	}
}

// runDied handles the death of run: announce d once finish is spawned,
// and watch the rest of the process group.
func (t *stepper) runDied(e Event) {
	t.exitEvent(e)
	t.policyDeath(e)
	m := &t.m
	m.State, m.Pid = Finishing, 0
	m.Ready, m.Paused, m.Stamp = false, false, t.now
	m.KillAt, m.CheckAt, m.WatchdogAt = time.Time{}, time.Time{}, time.Time{}
	if m.CheckPid != 0 {
		// The check belongs to the dead run: kill it and forget it; its
		// exit will not match CheckPid any more.
		t.kill(m.CheckPid, unix.SIGKILL, true)
		m.CheckPid, m.CheckKillAt = 0, time.Time{}
	}
	code, sig := -1, 0
	if !e.Unknown {
		m.Wstat = e.Wstat
		ws := unix.WaitStatus(e.Wstat)
		code = ws.ExitStatus()
		if ws.Signaled() {
			code, sig = 256, int(ws.Signal())
		}
		t.act(Action{Kind: ActDeathTally, Wstat: e.Wstat})
		if lived := t.now.Sub(m.SpawnedAt); m.EarlyWatch && m.WantUp && !m.Last && lived < EarlyDeath {
			t.act(Action{Kind: ActEarlyDeath, Wstat: e.Wstat, After: lived})
		}
	}
	m.EarlyWatch = false
	m.Adopted = false
	t.act(Action{Kind: ActCloseNotify})
	// The group may outlive run (daemons that fork, shells' children):
	// they are part of the service, so they get the down-signal now and
	// SIGKILL later, and the next run waits for them.
	m.GroupAlive = true
	t.kill(m.Pgid, m.Cfg.DownSignal, true)
	t.kill(m.Pgid, unix.SIGCONT, true)
	m.KillAt = t.now.Add(drainDelay(m.Cfg))
	t.act(Action{Kind: ActWatchGroup, Pid: m.Pgid})
	m.FinishPending = true
	t.act(Action{Kind: ActSpawnFinish, Code: code, FinSig: sig})
}

func (t *stepper) finishing(e Event) {
	m := &t.m
	switch e.Kind {
	case EvCtl:
		if e.Byte == 'x' {
			m.Last = true
		} else if t.wantLetter(e.Byte) {
			t.writeStatus()
		}
	case EvSpawned, EvSpawnFailed:
		if !m.FinishPending {
			t.fatal(e.Kind.String() + " without a finish spawn")
			return
		}
		m.FinishPending = false
		if e.Kind == EvSpawned {
			m.FinishPid = e.Pid
			if m.Cfg.TimeoutFinish > 0 {
				m.FinishKillAt = t.now.Add(m.Cfg.TimeoutFinish)
			}
		}
		t.writeStatus()
		t.notify("d")
		t.maybeDone()
	case EvExit:
		if e.Pid != m.FinishPid || m.FinishPid == 0 {
			t.fatal("exit of a foreign pid")
			return
		}
		m.FinishPid, m.FinishKillAt = 0, time.Time{}
		if !e.Unknown && unix.WaitStatus(e.Wstat).Exited() && unix.WaitStatus(e.Wstat).ExitStatus() == 125 {
			m.WantUp, m.Perm = false, true
		}
		t.maybeDone()
	case EvGroupEmpty:
		m.GroupAlive, m.KillAt = false, time.Time{}
		t.maybeDone()
	case EvTimeout:
		if !m.FinishKillAt.IsZero() && !t.now.Before(m.FinishKillAt) {
			t.kill(m.FinishPid, unix.SIGCONT, false)
			t.kill(m.FinishPid, unix.SIGKILL, false)
			m.FinishKillAt = t.now.Add(KillRepeat)
		}
		if !m.KillAt.IsZero() && !t.now.Before(m.KillAt) {
			t.kill(m.Pgid, unix.SIGKILL, true)
			m.KillAt = t.now.Add(KillRepeat)
		}
	case EvTerm:
		m.WantUp, m.Last = false, true
	case EvHup:
		m.Last = true
	case EvQuit:
		t.exit(true)
	case EvReady, EvRunChanged, EvNotReady, EvMainPid, EvWatchdog, EvDaemon, EvPidfileBad, EvNoDaemon:
		// Stale.
	default:
		t.fatal(e.Kind.String() + " while finishing")
	}
}

// maybeDone ends Finishing once finish has exited and the group is empty:
// announce D (or OD), then exit, restart or stay down.
func (t *stepper) maybeDone() {
	m := &t.m
	if m.FinishPending || m.FinishPid != 0 || m.GroupAlive {
		return
	}
	m.State, m.Pgid, m.OwnGroup, m.DaemonGroup = Down, 0, 0, 0
	m.Ready, m.ReadyStamp = true, t.now
	m.KillAt, m.FinishKillAt = time.Time{}, time.Time{}
	t.writeStatus()
	if m.Perm {
		m.Perm = false
		t.notify("OD")
	} else {
		t.notify("D")
	}
	switch {
	case m.Last:
		t.exit(false)
	case m.WantUp:
		t.respawn()
	}
}

// exitEvent reports the run's death (HapExit), before what the restart
// policy makes of it (restart, backoff, give-up), so that the events log
// reads in cause-and-effect order.
func (t *stepper) exitEvent(e Event) {
	exit := Action{Kind: ActEvent, Hap: HapExit, Pid: t.m.Pid, Wstat: e.Wstat}
	switch {
	case e.Unknown:
		exit.Wstat, exit.Msg = 0, "unknown"
	case t.m.Pid == 0:
		// launchOver, cancelAwait: the launcher exited 0 earlier; no daemon was found.
		exit.Msg = "no daemon"
	}
	t.act(exit)
}

// ownGroup records daemon, a forking service's daemon found in group
// m.Pgid, as a group of its own too when it is not that group's leader.
// A run that is not a forking daemon is its group's leader (setsid).
//
// A daemon may name itself in its pidfile just before its setsid(2)
// takes effect in /proc (nginx was seen so), so the group read then can
// still be the launcher's. Signals to the service's group and its drain
// cover the daemon's pid as a group too: a group whose id is the
// daemon's pid can only have been made by the daemon or its parent.
// NOTE: cleared at the next spawn and once down. Between the daemon's
// death and the end of the drain a reused pid could in principle name
// another process's new group; the kernel hands pids out in sequence,
// so that needs pid_max spawns within the drain (10 s at most).
func (m *Machine) ownGroup(daemon int) {
	m.OwnGroup = 0
	if m.Cfg.Forking && daemon != m.Pgid {
		m.OwnGroup = daemon
	}
}
