package scan

import (
	"fmt"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/events"
	"github.com/gosv/gosv/internal/reap"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// The executor of supervise.ActEvent (issue 11): each event is appended to
// the events log and handed to the service's hook.
//
// The log is written from the loop, one write(2) per event on an O_APPEND
// fd: a regular file's write does not wait for the disk, so supervision
// never blocks on it, and a scanner killed after the write lost nothing.
// A write that fails (disk full) loses that event: the failure is reported
// once (then hourly, warn.go), and the count of lost events is reported
// when writing works again.
//
// The hook (servicedir.OnEventFile, executable) runs as `./on-event EVENT
// NAME` in the service directory, with the event in its environment
// (events.Record.Env), stdin /dev/null and its output on the scanner's
// stderr, in a session of its own. It is a child of the scanner, reaped by
// reapAll like run and finish. One runs at a time per service: the events
// that come meanwhile wait in a queue of hookQueueMax; beyond that they
// are dropped for the hook (the log still has them), and counted. A hook
// running past its timeout (servicedir.TimeoutOnEventFile, default
// DefaultHookTimeout) gets SIGKILL on its process group.

const (
	// DefaultHookTimeout bounds one hook run without timeout-on-event:
	// long enough for a mail or a webhook over a slow link.
	DefaultHookTimeout = 30 * time.Second
	// hookQueueMax bounds the events waiting for a service's hook.
	hookQueueMax = 64
)

// eventLog is the loop's side of the events log.
type eventLog struct {
	dir  string // where the log lives
	log  *events.Log
	lost int // events not written since the last failure
}

// hookState is one service's hook: the running one and the queue.
type hookState struct {
	pid     int
	started time.Time
	event   string // the running hook's event, for messages
	killed  bool   // the running hook was killed at its timeout
	queue   []events.Record
	dropped int // events the full queue did not take since the last report
	tm      timer
}

// openEventLog sets where the log lives: the scan directory's
// servicedir.ScanEventsDir, or, under gosv supervise, the service's
// servicedir.EventsLogDir. It is opened at the first event.
func (l *loop) openEventLog() {
	if l.sc != nil {
		l.evlog.dir = filepath.Join(l.sc.dir, servicedir.ScanEventsDir)
	} else {
		l.evlog.dir = filepath.Join(l.single.dir, servicedir.EventsLogDir)
	}
}

// event records happening a of s and hands it to s's hook.
func (l *loop) event(s *service, a *supervise.Action) {
	rec := events.New(time.Now(), s.name, a)
	l.appendEvent(&rec)
	l.hook(s, rec)
	l.metricsChanged()
}

func (l *loop) appendEvent(rec *events.Record) {
	e := &l.evlog
	if e.dir == "" {
		return
	}
	if e.log == nil {
		if l.sc == nil {
			// supervise/gosv may not exist yet.
			servicedir.MkdirPrivate(filepath.Dir(e.dir), 0o700)
		}
		lg, err := events.Open(e.dir)
		if err != nil {
			e.lost++
			l.warn(nil, "events-log", "unable to open the events log: %v (events are not recorded)", err)
			return
		}
		e.log = lg
	}
	if err := e.log.Append(rec.Line()); err != nil {
		e.lost++
		l.warn(nil, "events-log", "unable to append to the events log: %v (events are not recorded)", err)
		return
	}
	if e.lost > 0 {
		l.warn(nil, "events-log-lost", "events log %s: writing works again; %d events were not recorded", e.dir, e.lost)
		l.limits.Clear("events-log")
		e.lost = 0
	}
}

// hook queues rec for s's hook, if s has one, and starts it if idle.
func (l *loop) hook(s *service, rec events.Record) {
	if s.dirfd < 0 || !l.has(s, servicedir.OnEventFile) || !hasHook(s.dir) {
		return
	}
	h := &s.hook
	if h.pid != 0 || len(h.queue) > 0 {
		if len(h.queue) >= hookQueueMax {
			h.dropped++
			l.warnSig(s, "hook-queue", "full", fmt.Sprintf("%s: %s is busy: %d events waiting; later events are not handed to it (they are in the events log)",
				s.name, servicedir.OnEventFile, len(h.queue)))
			return
		}
		h.queue = append(h.queue, rec)
		return
	}
	l.startHook(s, rec)
}

func hasHook(dir string) bool {
	return unix.Access(filepath.Join(dir, servicedir.OnEventFile), unix.X_OK) == nil
}

// startHook spawns the hook for rec.
func (l *loop) startHook(s *service, rec events.Record) {
	h := &s.hook
	pid, err := supervise.Start(&supervise.Proc{Dir: s.dir, Path: "./" + servicedir.OnEventFile,
		Argv: []string{servicedir.OnEventFile, rec.Event, s.name}, Env: rec.Env(l.env[:len(l.env):len(l.env)]),
		Files: []int{l.devnull, 2, 2}, Via: l.via()})
	if err != nil {
		l.warn(s, "hook|spawn", "%s: unable to run %s: %v", s.name, servicedir.OnEventFile, err)
		return
	}
	s.limits.Clear("hook|spawn")
	h.pid, h.started, h.event = pid, time.Now(), rec.Event
	l.hooks[pid] = s
	timeout := DefaultHookTimeout
	if !l.has(s, servicedir.TimeoutOnEventFile) {
		// the default
	} else if ms, ok, err := servicedir.ReadUintFile(s.dir, servicedir.TimeoutOnEventFile); err != nil {
		l.configWarn(s, err, "using the default")
	} else if ok && ms > 0 {
		timeout = time.Duration(ms) * time.Millisecond
	}
	h.tm.kind, h.tm.svc = tmHook, s
	l.timers.set(&h.tm, h.started.Add(timeout))
}

// hookTimeout kills a hook that ran past its timeout, with its group.
func (l *loop) hookTimeout(s *service) {
	h := &s.hook
	if h.pid == 0 {
		return
	}
	unix.Kill(-h.pid, unix.SIGKILL)
	unix.Kill(h.pid, unix.SIGKILL)
	if !h.killed {
		h.killed = true
		msg := fmt.Sprintf("%s: %s %s (pid %d) ran longer than %v: killed", s.name, servicedir.OnEventFile, h.event, h.pid,
			time.Since(h.started).Round(time.Millisecond))
		l.warnSig(s, "hook|timeout", "timeout", msg)
	}
	// Killed again only if it survives SIGKILL (stopped in the kernel):
	// its death is what ends it.
	l.timers.set(&h.tm, time.Now().Add(supervise.KillRepeat))
}

// hookExited ends s's running hook and starts the next queued one. A
// failure is reported once per cause (exit code or signal).
func (l *loop) hookExited(s *service, e reap.Exit) {
	h := &s.hook
	delete(l.hooks, e.Pid)
	if e.Pid != h.pid {
		return
	}
	killed := h.killed
	h.pid, h.killed = 0, false
	l.timers.stop(&h.tm)
	// The signature is the cause alone: the same failure at the next
	// event is a repeat (reported hourly), another cause is new.
	ws := unix.WaitStatus(reap.Wstat(e.Status))
	switch {
	case killed:
	case ws.Signaled():
		sig := "SIG" + servicedir.SignalName(ws.Signal())
		l.warnSig(s, "hook|fail", sig, fmt.Sprintf("%s: %s %s was killed by %s", s.name, servicedir.OnEventFile, h.event, sig))
	case ws.ExitStatus() != 0:
		code := strconv.Itoa(ws.ExitStatus())
		l.warnSig(s, "hook|fail", "exit "+code, fmt.Sprintf("%s: %s %s exited %s", s.name, servicedir.OnEventFile, h.event, code))
	default:
		s.limits.Clear("hook|fail")
	}
	if h.dropped > 0 {
		l.warn(s, "hook-dropped", "%s: %d events were not handed to %s (its queue was full)", s.name, h.dropped, servicedir.OnEventFile)
		s.limits.Clear("hook-queue")
		h.dropped = 0
	}
	if len(h.queue) > 0 && s.dirfd >= 0 {
		next := h.queue[0]
		h.queue = append(h.queue[:0], h.queue[1:]...)
		l.startHook(s, next)
	} else if s.dirfd < 0 {
		h.queue = nil // the service is gone
	}
}

// unseenDeath: a service started afresh while its pid record names a run
// (dead, or it would have been adopted) died while no supervisor ran: its
// exit status went to whoever reaped it. The event says so.
func (l *loop) unseenDeath(s *service) {
	rec, err := servicedir.ReadPidRecord(s.dir)
	if err != nil {
		return
	}
	l.event(s, &supervise.Action{Kind: supervise.ActEvent, Hap: supervise.HapExit, Pid: rec.Pid,
		Msg: "died while no supervisor ran"})
}

// killHooks ends the hooks still running when the loop exits: nobody
// would enforce their timeout or reap them any more. A slow hook may so
// miss the events of the shutdown itself; the log has them.
func (l *loop) killHooks() {
	for pid, s := range l.hooks {
		unix.Kill(-pid, unix.SIGKILL)
		l.warn(s, "hook|exit-kill", "%s: %s %s (pid %d) still running at exit: killed", s.name, servicedir.OnEventFile, s.hook.event, pid)
	}
}
