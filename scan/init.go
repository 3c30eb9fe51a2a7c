package scan

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/reap"
)

// Init is the PID-1 side of a scanner run by `gosv init` (package initd
// implements it). The loop calls it from its own goroutine only, so what
// it keeps needs no lock: the loop stays the one owner of the children,
// the reaping and the deadlines, and Init decides what PID 1 does with
// the signals, letters and exits the scanner alone would not know.
type Init interface {
	// Signals lists the signals the loop catches besides its own: PID 1
	// must catch every signal it may receive (see initd's signal table).
	Signals() []os.Signal
	// Started is called once, after the first scan of the scan directory.
	Started(c Ctl)
	// Signal is offered each caught signal before the scanner's own
	// handling; true means Init handled it.
	Signal(c Ctl, sig unix.Signal) bool
	// Letter is offered each exit letter of .s6-svscan/control (t, i, q,
	// b) before the scanner acts on it; true means Init handled it.
	Letter(c Ctl, letter byte) bool
	// Reaped is told each exit of a pid no service owns: the main
	// command's, and every orphan's.
	Reaped(c Ctl, e reap.Exit)
	// Timer is called when the deadline set with Ctl.SetTimer passes.
	Timer(c Ctl, now time.Time)
}

// Ctl is what Init may ask of the loop, from inside a call of the loop.
type Ctl struct{ l *loop }

// Exit starts the scanner's exit with letter t (services stop, loggers
// drain) or q (loggers stop too), as .s6-svscan/control would.
func (c Ctl) Exit(letter byte) {
	if c.l.sc != nil {
		c.l.sc.exit(letter)
	}
}

// KillGroups sends sig to the process group of every service, logger and
// finish still alive, and returns how many groups it signalled.
func (c Ctl) KillGroups(sig unix.Signal) int {
	n := 0
	kill := func(pgid int) {
		if pgid > 0 && c.l.sys.kill(-pgid, sig) == nil {
			n++
		}
	}
	if c.l.sc == nil {
		return 0
	}
	for _, e := range c.l.sc.byID {
		for _, s := range []*service{e.svc, e.log} {
			if s == nil {
				continue
			}
			if s.m.GroupAlive || s.m.Pid > 0 {
				kill(s.m.Pgid)
			}
			for _, g := range [2]int{s.m.OwnGroup, s.m.DaemonGroup} {
				if g > 0 && g != s.m.Pgid {
					kill(g)
				}
			}
			kill(s.m.FinishPid) // finish runs in a session of its own
		}
	}
	return n
}

// Reap reaps every dead child now, as a SIGCHLD would.
func (c Ctl) Reap() { c.l.reapAll() }

// Abandon ends the loop now, whatever the services are doing: the
// last resort of a shutdown whose deadline passed.
func (c Ctl) Abandon() { c.l.done = true }

// SetTimer sets Init's one deadline (zero: none).
func (c Ctl) SetTimer(at time.Time) { c.l.timers.set(&c.l.initTimer, at) }

// Env is the environment the loop gives its children.
func (c Ctl) Env() []string { return c.l.env }

// Devnull is the loop's /dev/null, for children's stdin.
func (c Ctl) Devnull() int { return c.l.devnull }

// Warnf reports a warning the way the scanner reports its own.
func (c Ctl) Warnf(format string, args ...any) {
	fmt.Fprintf(c.l.cfg.Stderr, "%s: warning: %s\n", c.l.cfg.Prog, fmt.Sprintf(format, args...))
}

// initSignals adds Init's signals to the scanner's.
func (l *loop) initSignals(sigs []os.Signal) []os.Signal {
	if l.cfg.Init == nil {
		return sigs
	}
	return append(append([]os.Signal(nil), sigs...), l.cfg.Init.Signals()...)
}

// ChildEnv is the environment the loop gives its children, for those PID
// 1 starts outside the loop (stages 1 and 3).
func ChildEnv() []string { return childEnv() }

// Trace writes one GOSV_TRACE line "ev=EV pid=P t=UNIXNANOS", if tracing
// is on (the tests count reaped orphans with it).
func (c Ctl) Trace(ev string, pid int) {
	if c.l.trace >= 0 {
		c.l.traceEvent(ev, pid, time.Now())
	}
}
