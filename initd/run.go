package initd

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/reap"
	"github.com/gosv/gosv/internal/supervise"
	"github.com/gosv/gosv/scan"
)

// Options are gosv init's command line.
type Options struct {
	Prog     string        // message prefix: "gosv init"
	Stage1   string        // -1 FILE, or ""
	Stage3   string        // -3 FILE, or ""
	Kill     time.Duration // -t
	ScanDir  string
	Main     []string // -- COMMAND [ARG...], or nil
	NotifyFd int      // -d: the scanner's readiness line; -1 = none
	Stderr   io.Writer
	Sys      Sys // nil: the real kernel
}

// DefaultKill is -t's default: 10 seconds, docker stop's own grace.
const DefaultKill = 10 * time.Second

// Exit codes of gosv init beside the main command's.
const (
	CodeNoExec   = 127 // the main command was not found
	CodeNoPerm   = 126 // the main command could not be executed
	CodeSetupErr = 111 // the scan directory could not be taken, or a stage could not be spawned
)

// Run is gosv as PID 1: stage 1, the scanner with the main command, stage
// 3, and the end. It returns the exit code, and the setup error that made
// the scanner impossible, if any (then the code is CodeSetupErr). On the
// machine's real PID 1 it halts or reboots instead of returning, unless
// reboot(2) fails.
func Run(o Options) (int, error) {
	r := &runner{o: o, sys: o.Sys, stderr: o.Stderr}
	if r.sys == nil {
		r.sys = realSys{}
	}
	machine := r.sys.Machine()
	r.m = New(Config{Stage1: o.Stage1 != "", Stage3: o.Stage3 != "", Main: len(o.Main) > 0, Kill: o.Kill, Machine: machine})
	if machine {
		// NOTE: with CAD off, ctrl-alt-del sends SIGINT to PID 1 (a
		// reboot, see the signal table) instead of an immediate reboot.
		r.sys.Reboot(unix.LINUX_REBOOT_CMD_CAD_OFF)
	}
	// Caught from the start to the end: PID 1 gets no default action
	// from the kernel, but the Go runtime's own handler would exit.
	r.sigc = make(chan os.Signal, 64)
	signal.Notify(r.sigc, caughtSignals()...)
	r.env = scan.ChildEnv()
	if err := reap.SetSubreaper(); err != nil {
		r.say("unable to become a subreaper: %v", err)
	}

	if o.Stage1 != "" {
		pid, err := r.spawnStage(o.Stage1)
		if err != nil {
			r.say("unable to spawn stage 1: %v", err)
			r.feed(Event{Kind: EvStage1Exit, Code: CodeSetupErr})
		}
		r.stagePid = pid
	} else {
		r.feed(Event{Kind: EvStage1Exit})
	}
	for r.m.State == Stage1 {
		r.waitOutside()
	}
	var fatal error
	if r.m.State == Stage2 {
		err := scan.Run(scan.Config{Prog: o.Prog, ScanDir: o.ScanDir, NotifyFd: o.NotifyFd, Stderr: o.Stderr, Init: r})
		r.inLoop = false
		done := Event{Kind: EvScannerDone}
		if err != nil {
			fatal, done.Code = err, CodeSetupErr
			if o.NotifyFd >= 0 {
				unix.Close(o.NotifyFd)
			}
		}
		// Signals the loop already handled also queued here: drop them.
		for len(r.sigc) > 0 {
			<-r.sigc
		}
		r.feed(done)
	}
	for r.m.State != Done {
		r.waitOutside()
	}
	if err := r.end(); err != nil {
		return r.m.Code, err
	}
	return r.m.Code, fatal
}

// end carries out the machine's How: nothing to do for an exit, else
// sync and reboot(2), which returns only when it failed.
func (r *runner) end() error {
	if r.m.How == Exit {
		return nil
	}
	r.say("%s", r.m.How)
	r.sys.Sync()
	if err := r.sys.Reboot(rebootCmd(r.m.How)); err != nil {
		return fmt.Errorf("unable to %s: %w", r.m.How, err)
	}
	return nil
}

// runner executes the machine's actions. Outside the scanner's loop it
// waits itself (waitOutside); inside, the loop calls it (scan.Init).
type runner struct {
	o        Options
	sys      Sys
	stderr   io.Writer
	m        Machine
	sigc     chan os.Signal
	env      []string
	stagePid int // running stage 1 or 3, or 0
	mainPid  int // running main command, or 0
	inLoop   bool
	ctl      scan.Ctl
	exits    []reap.Exit
	orphans  int // orphans reaped: their exits reach no one else
}

func (r *runner) say(format string, args ...any) {
	fmt.Fprintf(r.stderr, "%s: %s\n", r.o.Prog, fmt.Sprintf(format, args...))
}

// feed applies one event and executes its actions.
func (r *runner) feed(e Event) {
	var acts []Action
	r.m, acts = Step(r.m, e, time.Now())
	for _, a := range acts {
		r.do(a)
	}
	if r.inLoop {
		r.ctl.SetTimer(r.m.Deadline)
	}
}

func (r *runner) do(a Action) {
	switch a.Kind {
	case ActSay:
		r.say("%s", a.Msg)
	case ActSignalStage:
		if r.stagePid > 0 {
			unix.Kill(-r.stagePid, a.Sig)
		}
	case ActStartMain:
		r.startMain()
	case ActSignalMain:
		if r.mainPid > 0 {
			pid := r.mainPid
			if a.Group {
				pid = -pid
			}
			unix.Kill(pid, a.Sig)
		}
	case ActStopScanner:
		if r.inLoop {
			r.ctl.Exit(a.Letter)
		}
	case ActKillGroups:
		if r.inLoop {
			r.ctl.KillGroups(unix.SIGKILL)
		}
	case ActAbandon:
		if r.inLoop {
			r.ctl.Abandon()
		}
	case ActRunStage3:
		pid, err := r.spawnStage(r.o.Stage3)
		if err != nil {
			r.say("unable to spawn stage 3: %v", err)
			r.feed(Event{Kind: EvStage3Exit, Code: CodeSetupErr})
			return
		}
		r.stagePid = pid
	case ActKillAll:
		r.sys.KillAll(a.Sig)
		if a.Sig != unix.SIGKILL {
			r.sys.KillAll(unix.SIGCONT)
		}
		r.checkChildren()
	case ActEnd:
	}
}

// spawnStage starts a stage file in a session of its own (its process
// group is the stage's), with PID 1's stdio.
func (r *runner) spawnStage(file string) (int, error) {
	return supervise.Start(&supervise.Proc{Dir: "/", Path: file, Argv: []string{file}, Env: r.env, Files: []int{0, 1, 2}})
}

// startMain starts the main command as tini does: in a process group of
// its own, the terminal's foreground group when stdin is PID 1's
// controlling terminal.
func (r *runner) startMain() {
	argv := r.o.Main
	path, err := exec.LookPath(argv[0])
	if err == nil {
		attr := &syscall.SysProcAttr{Setpgid: true}
		if _, terr := unix.IoctlGetInt(0, unix.TIOCGPGRP); terr == nil {
			attr.Foreground, attr.Ctty = true, 0
		}
		var pid int
		pid, err = syscall.ForkExec(path, argv, &syscall.ProcAttr{Env: r.env, Files: []uintptr{0, 1, 2}, Sys: attr})
		if err == nil {
			r.mainPid = pid
			return
		}
		err = &os.PathError{Op: "exec", Path: path, Err: err}
	}
	code := CodeNoExec
	if errors.Is(err, os.ErrPermission) {
		code = CodeNoPerm
	}
	r.say("unable to start the main command: %v", err)
	r.feed(Event{Kind: EvMainFailed, Code: code})
}

// waitOutside waits for one batch of signals, exits or the deadline,
// outside the scanner's loop (stages 1 and 3, the final kill).
func (r *runner) waitOutside() {
	var tc <-chan time.Time
	if !r.m.Deadline.IsZero() {
		t := time.NewTimer(time.Until(r.m.Deadline))
		defer t.Stop()
		tc = t.C
	}
	select {
	case s := <-r.sigc:
		r.signalled(s.(syscall.Signal))
		for len(r.sigc) > 0 && r.m.State != Done {
			r.signalled((<-r.sigc).(syscall.Signal))
		}
	case <-tc:
		r.feed(Event{Kind: EvTimeout})
	}
}

func (r *runner) signalled(sig unix.Signal) {
	switch sig {
	case unix.SIGCHLD:
		r.checkChildren()
	case unix.SIGPIPE:
	default:
		r.feed(Event{Kind: EvSignal, Sig: sig})
	}
}

// checkChildren reaps outside the loop, and tells the machine once no
// process is left.
func (r *runner) checkChildren() {
	var left bool
	r.exits, left = reap.DrainLeft(r.exits[:0])
	for _, e := range r.exits {
		r.reaped(e)
	}
	if !left && (r.m.State == Final || r.m.State == Last) {
		r.feed(Event{Kind: EvNoChildren})
	}
}

func (r *runner) reaped(e reap.Exit) {
	switch {
	case e.Pid == r.stagePid:
		r.stagePid = 0
		k := EvStage3Exit
		if r.m.State == Stage1 {
			k = EvStage1Exit
		}
		r.feed(Event{Kind: k, Code: reap.ExitCode(e.Status)})
	case e.Pid == r.mainPid:
		r.mainPid = 0
		r.feed(Event{Kind: EvMainExit, Code: reap.ExitCode(e.Status)})
	default:
		r.orphans++
		if r.inLoop {
			r.ctl.Trace("orphan", e.Pid)
		}
	}
}

// The scanner's loop calls what follows (scan.Init), from its goroutine.

func (r *runner) Signals() []os.Signal { return caughtSignals() }

func (r *runner) Started(c scan.Ctl) {
	r.ctl, r.inLoop = c, true
	// Shutdown requests that came before the loop subscribed reached
	// only this channel; those that came after reached both, and the
	// loop handles them again (a second request changes nothing). They
	// are applied after the main command started, which then gets its
	// signal as it would a moment later. Other signals from before it
	// existed are not forwarded to it.
	var stops []Event
	for len(r.sigc) > 0 {
		e := Event{Kind: EvSignal, Sig: (<-r.sigc).(syscall.Signal)}
		if _, _, _, ok := shutdownOf(e, r.m.Cfg.Machine); ok {
			stops = append(stops, e)
		}
	}
	// NOTE: a child that died before the loop subscribed to SIGCHLD
	// (an orphan of stage 1, or of anything in the namespace) raised it
	// here only: reap once now, or it would wait for the next death.
	c.Reap()
	r.feed(Event{Kind: EvStarted})
	for _, e := range stops {
		r.feed(e)
	}
}

func (r *runner) Signal(c scan.Ctl, sig unix.Signal) bool {
	e := Event{Kind: EvSignal, Sig: sig}
	h := Handled(r.m, e)
	r.feed(e)
	return h
}

func (r *runner) Letter(c scan.Ctl, letter byte) bool {
	e := Event{Kind: EvLetter, Letter: letter}
	h := Handled(r.m, e)
	r.feed(e)
	return h
}

func (r *runner) Reaped(c scan.Ctl, e reap.Exit) { r.reaped(e) }

func (r *runner) Timer(c scan.Ctl, now time.Time) { r.feed(Event{Kind: EvTimeout}) }

// caughtSignals are every signal PID 1 catches: all but SIGKILL and
// SIGSTOP (which cannot be caught), SIGURG and SIGPROF (the Go runtime's
// own, harmless when not caught) and 32, 33 (the C library's).
func caughtSignals() []os.Signal {
	var sigs []os.Signal
	for s := unix.Signal(1); s < 64; s++ {
		switch s {
		case unix.SIGKILL, unix.SIGSTOP, unix.SIGURG, unix.SIGPROF, 32, 33:
			continue
		}
		sigs = append(sigs, s)
	}
	return sigs
}
