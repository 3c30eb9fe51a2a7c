package initd

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// State is where PID 1 is in its life (see the package documentation).
type State uint8

const (
	Stage1   State = iota // -1 FILE runs; no service exists yet
	Stage2                // the scanner supervises; the main command runs
	Stopping              // down-signals sent; waiting for services and the main command until -t
	Killing               // -t passed: SIGKILL sent; waiting KillGrace more for the scanner
	Stage3                // -3 FILE runs (bounded by -t)
	Final                 // SIGTERM sent to every remaining process; waiting FinalGrace for none to be left
	Last                  // SIGKILL sent to every remaining process; waiting FinalGrace again
	Done                  // exit, or halt/poweroff/reboot
)

var stateNames = [...]string{"stage1", "stage2", "stopping", "killing", "stage3", "final", "last", "done"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", s)
}

// How is what PID 1 does at the very end.
type How uint8

const (
	Exit     How = iota // exit with the code (in a container, or not PID 1 of the machine)
	Halt                // reboot(2) LINUX_REBOOT_CMD_HALT
	Poweroff            // reboot(2) LINUX_REBOOT_CMD_POWER_OFF
	Reboot              // reboot(2) LINUX_REBOOT_CMD_RESTART
)

var howNames = [...]string{"exit", "halt", "poweroff", "reboot"}

func (h How) String() string {
	if int(h) < len(howNames) {
		return howNames[h]
	}
	return fmt.Sprintf("How(%d)", h)
}

// Timings of stage 3 that -t does not set.
const (
	// KillGrace is how long the scanner gets after SIGKILL reached every
	// service group before the loop is abandoned (its finish scripts and
	// bookkeeping; a process in uninterruptible sleep can outlast SIGKILL).
	KillGrace = 2 * time.Second
	// FinalGrace is how long every remaining process gets after SIGTERM,
	// then again after SIGKILL, before PID 1 ends anyway.
	FinalGrace = 2 * time.Second
)

// Config is what the command line and the environment fixed.
type Config struct {
	Stage1, Stage3, Main bool          // -1 FILE, -3 FILE, -- COMMAND given
	Kill                 time.Duration // -t: from the down-signals to SIGKILL
	Machine              bool          // the machine's real PID 1 (not a container's)
}

// EventKind is what happened.
type EventKind uint8

const (
	EvStage1Exit  EventKind = iota // stage 1 ended: Code (0 = success)
	EvStarted                      // the scanner took the scan directory
	EvMainExit                     // the main command ended: Code (or 128+signal)
	EvMainFailed                   // the main command could not be started: Code (126, 127)
	EvSignal                       // PID 1 received Sig
	EvLetter                       // an exit letter (t, i, q, b) reached .s6-svscan/control
	EvScannerDone                  // the scanner's loop ended: no service is left
	EvStage3Exit                   // stage 3 ended: Code
	EvNoChildren                   // wait4 answered ECHILD: no process is left
	EvTimeout                      // the machine's Deadline passed
)

// Event is one input of Step.
type Event struct {
	Kind   EventKind
	Code   int
	Sig    unix.Signal
	Letter byte
}

// ActKind is what the executor must do.
type ActKind uint8

const (
	ActSay         ActKind = iota // print Msg on stderr
	ActSignalStage                // send Sig to the running stage 1's or stage 3's process group
	ActStartMain                  // start the main command
	ActSignalMain                 // send Sig to the main command (Group: to its process group)
	ActStopScanner                // the scanner exits with Letter (t or q): every service gets its down-signal
	ActKillGroups                 // SIGKILL every service's process group
	ActAbandon                    // end the scanner's loop now
	ActRunStage3                  // start -3 FILE
	ActKillAll                    // send Sig to every remaining process
	ActEnd                        // exit with Code, or sync and reboot(2) as How says
)

// Action is one output of Step.
type Action struct {
	Kind   ActKind
	Sig    unix.Signal
	Letter byte
	Group  bool
	Msg    string
}

// Machine is PID 1's whole state. Step is its only mutator.
type Machine struct {
	State     State
	Cfg       Config
	How       How       // what the end does (set by the first shutdown request)
	Code      int       // the exit code in a container
	MainAlive bool      // the main command runs
	Scanning  bool      // the scanner's loop runs
	Stopping  bool      // a shutdown was asked for (signal, letter, main command's end, failure)
	Deadline  time.Time // zero: none
}

// New returns the machine at its start: in Stage1 when there is a stage
// 1, else already past it (the executor feeds EvStage1Exit with Code 0
// either way, so the two start alike).
func New(cfg Config) Machine {
	return Machine{State: Stage1, Cfg: cfg}
}

// Step is the pure transition function: it applies e at time now and
// returns the new machine and what to do, in order.
func Step(m Machine, e Event, now time.Time) (Machine, []Action) {
	s := stepper{m: m, now: now}
	s.step(e)
	return s.m, s.acts
}

type stepper struct {
	m    Machine
	now  time.Time
	acts []Action
}

func (s *stepper) act(a Action) { s.acts = append(s.acts, a) }

func (s *stepper) say(format string, args ...any) {
	s.act(Action{Kind: ActSay, Msg: fmt.Sprintf(format, args...)})
}

func (s *stepper) step(e Event) {
	m := &s.m
	if m.State == Done {
		return // the end is being carried out
	}
	switch e.Kind {
	case EvSignal, EvLetter:
		s.request(e)
		return
	case EvMainExit, EvMainFailed:
		if !m.MainAlive && e.Kind == EvMainExit {
			return // not ours to report twice
		}
		m.MainAlive = false
		m.Code = e.Code
		if e.Kind == EvMainExit && !m.Stopping {
			s.say("main command exited with %s: stopping the services", codeText(e.Code))
		}
		s.shutdown(Poweroff, unix.SIGTERM, 't', false)
		s.advance()
		return
	case EvScannerDone:
		m.Scanning = false
		if e.Code != 0 {
			m.Code = e.Code // the scanner's setup failed
		}
		s.shutdown(Poweroff, unix.SIGTERM, 't', true)
		s.advance()
		return
	}
	switch m.State {
	case Stage1:
		switch e.Kind {
		case EvStage1Exit:
			if m.Stopping {
				s.stage3() // asked to stop while stage 1 ran
				return
			}
			if e.Code != 0 {
				m.Code = e.Code
				s.say("stage 1 failed (%s): no service is started; going to stage 3", codeText(e.Code))
				m.Stopping, m.How = true, s.how(Halt)
				s.stage3()
				return
			}
			m.State, m.Scanning = Stage2, true
		}
	case Stage2:
		if e.Kind == EvStarted && m.Cfg.Main && !m.MainAlive {
			m.MainAlive = true
			s.act(Action{Kind: ActStartMain})
		}
	case Stopping:
		if e.Kind == EvTimeout && !s.now.Before(m.Deadline) {
			s.say("services still running after %v: sending SIGKILL", m.Cfg.Kill)
			s.act(Action{Kind: ActKillGroups})
			if m.MainAlive {
				s.act(Action{Kind: ActSignalMain, Sig: unix.SIGKILL, Group: true})
			}
			m.State, m.Deadline = Killing, s.now.Add(KillGrace)
		}
	case Killing:
		if e.Kind != EvTimeout || s.now.Before(m.Deadline) {
			return
		}
		m.Deadline = time.Time{}
		if m.MainAlive {
			s.say("the main command did not end %v after SIGKILL: leaving it", KillGrace)
			m.MainAlive = false
		}
		if m.Scanning {
			s.say("the scanner did not end %v after SIGKILL: leaving it", KillGrace)
			s.act(Action{Kind: ActAbandon})
			return // EvScannerDone follows
		}
		s.advance()
	case Stage3:
		switch e.Kind {
		case EvStage3Exit:
			if e.Code != 0 {
				s.say("stage 3 exited with %s", codeText(e.Code))
			}
			s.final()
		case EvTimeout:
			if !s.now.Before(m.Deadline) {
				s.say("stage 3 still running after %v: killing it", m.Cfg.Kill)
				s.act(Action{Kind: ActSignalStage, Sig: unix.SIGKILL})
				s.final()
			}
		}
	case Final, Last:
		switch e.Kind {
		case EvNoChildren:
			s.end()
		case EvTimeout:
			if s.now.Before(m.Deadline) {
				return
			}
			if m.State == Final {
				s.act(Action{Kind: ActKillAll, Sig: unix.SIGKILL})
				m.State, m.Deadline = Last, s.now.Add(FinalGrace)
				return
			}
			s.say("processes left after SIGKILL: ending anyway")
			s.end()
		}
	case Done:
	}
}

// request handles a signal or a letter: a shutdown request, or a signal
// to forward to the main command (ActSignalMain), or nothing to do here
// (the executor then lets the scanner handle it: Handled reports which).
func (s *stepper) request(e Event) {
	m := &s.m
	how, sig, letter, ok := shutdownOf(e, m.Cfg.Machine)
	if !ok {
		if e.Kind == EvSignal && m.MainAlive {
			s.act(Action{Kind: ActSignalMain, Sig: e.Sig})
		}
		if e.Kind == EvLetter && e.Letter == 'b' {
			s.say("ignoring letter b: PID 1 cannot leave its services behind (use t, i or q)")
		}
		return
	}
	if m.State == Stage1 {
		if !m.Stopping {
			m.Stopping, m.How = true, s.how(how)
			s.act(Action{Kind: ActSignalStage, Sig: sig})
		}
		return
	}
	s.shutdown(how, sig, letter, true)
	s.advance()
}

// shutdown starts stopping, once: the first request chooses How.
func (s *stepper) shutdown(how How, sig unix.Signal, letter byte, signalMain bool) {
	m := &s.m
	if m.Stopping && m.State != Stage2 {
		return
	}
	if !m.Stopping {
		m.Stopping, m.How = true, s.how(how)
	}
	if m.State != Stage2 {
		return
	}
	if signalMain && m.MainAlive {
		s.act(Action{Kind: ActSignalMain, Sig: sig})
	}
	if m.Scanning {
		s.act(Action{Kind: ActStopScanner, Letter: letter})
	}
	m.State, m.Deadline = Stopping, s.now.Add(m.Cfg.Kill)
}

// advance leaves Stopping or Killing once the scanner and the main
// command are both gone.
func (s *stepper) advance() {
	m := &s.m
	if (m.State == Stopping || m.State == Killing) && !m.Scanning && !m.MainAlive {
		s.stage3()
	}
}

func (s *stepper) stage3() {
	m := &s.m
	if m.Cfg.Stage3 {
		m.State, m.Deadline = Stage3, s.now.Add(m.Cfg.Kill)
		s.act(Action{Kind: ActRunStage3})
		return
	}
	s.final()
}

func (s *stepper) final() {
	m := &s.m
	m.State, m.Deadline = Final, s.now.Add(FinalGrace)
	s.act(Action{Kind: ActKillAll, Sig: unix.SIGTERM})
}

func (s *stepper) end() {
	m := &s.m
	m.State, m.Deadline = Done, time.Time{}
	s.act(Action{Kind: ActEnd})
}

// how is h on the machine's real PID 1, Exit anywhere else.
func (s *stepper) how(h How) How {
	if s.m.Cfg.Machine {
		return h
	}
	return Exit
}

// shutdownOf says whether e asks PID 1 to stop, and if so how the end
// goes on a machine, which signal the main command gets, and which exit
// letter the scanner gets (see the signal table in the package doc).
func shutdownOf(e Event, machine bool) (How, unix.Signal, byte, bool) {
	if e.Kind == EvLetter {
		switch e.Letter {
		case 't':
			return Poweroff, unix.SIGTERM, 't', true
		case 'i':
			return Reboot, unix.SIGTERM, 't', true
		case 'q':
			return Halt, unix.SIGTERM, 'q', true
		}
		return 0, 0, 0, false
	}
	switch e.Sig {
	case unix.SIGTERM:
		return Reboot, unix.SIGTERM, 't', true
	case unix.SIGINT:
		return Reboot, unix.SIGINT, 't', true
	case unix.SIGPWR:
		return Poweroff, unix.SIGTERM, 't', true
	case unix.SIGUSR1:
		return Halt, unix.SIGTERM, 't', machine
	case unix.SIGUSR2:
		return Poweroff, unix.SIGTERM, 't', machine
	}
	return 0, 0, 0, false
}

// Handled reports whether PID 1 acts on e itself in state m: a shutdown
// request, or a signal forwarded to the running main command. Anything
// else is left to the scanner (.s6-svscan/SIGNAME scripts, h, a).
func Handled(m Machine, e Event) bool {
	if _, _, _, ok := shutdownOf(e, m.Cfg.Machine); ok {
		return true
	}
	if e.Kind == EvLetter {
		return e.Letter == 'b'
	}
	return m.MainAlive
}

// codeText renders an exit code for messages: "exit 3" or "signal 9 (killed)".
func codeText(code int) string {
	if code > 128 && code < 128+65 {
		return fmt.Sprintf("signal %d (%s)", code-128, unix.SignalName(unix.Signal(code-128)))
	}
	return fmt.Sprintf("exit %d", code)
}
