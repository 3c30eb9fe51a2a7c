package initd

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

const kill = 10 * time.Second

// step is one line of a scenario: the event, when (offset from t0), and
// what must follow: the state, the action kinds in order, and optionally
// a check of the machine.
type step struct {
	ev    Event
	at    time.Duration
	state State
	acts  []ActKind
	check func(Machine) string
}

func sig(s unix.Signal) Event       { return Event{Kind: EvSignal, Sig: s} }
func letter(b byte) Event           { return Event{Kind: EvLetter, Letter: b} }
func ev(k EventKind) Event          { return Event{Kind: k} }
func code(k EventKind, c int) Event { return Event{Kind: k, Code: c} }

func wantCode(c int) func(Machine) string {
	return func(m Machine) string {
		if m.Code != c {
			return fmt.Sprintf("code %d, want %d", m.Code, c)
		}
		return ""
	}
}

func wantHow(h How) func(Machine) string {
	return func(m Machine) string {
		if m.How != h {
			return fmt.Sprintf("how %v, want %v", m.How, h)
		}
		return ""
	}
}

// up is the common start: no stage 1 (its exit 0 is fed), the scanner
// started.
func up(mainCmd bool) []step {
	s := []step{{ev: code(EvStage1Exit, 0), state: Stage2}}
	if mainCmd {
		return append(s, step{ev: ev(EvStarted), state: Stage2, acts: []ActKind{ActStartMain}})
	}
	return append(s, step{ev: ev(EvStarted), state: Stage2})
}

func TestStepScenarios(t *testing.T) {
	tests := []struct {
		name  string
		cfg   Config
		steps []step
	}{
		{"sigterm without main command: stop services, final kill, exit 0", Config{Kill: kill},
			append(up(false),
				step{ev: sig(unix.SIGTERM), state: Stopping, acts: []ActKind{ActStopScanner}},
				step{ev: ev(EvScannerDone), state: Final, acts: []ActKind{ActKillAll}},
				step{ev: ev(EvNoChildren), state: Done, acts: []ActKind{ActEnd}, check: wantCode(0)},
			)},
		{"main command's exit code is the exit code", Config{Kill: kill, Main: true},
			append(up(true),
				step{ev: code(EvMainExit, 7), state: Stopping, acts: []ActKind{ActSay, ActStopScanner}},
				step{ev: ev(EvScannerDone), state: Final, acts: []ActKind{ActKillAll}},
				step{ev: ev(EvNoChildren), state: Done, acts: []ActKind{ActEnd}, check: wantCode(7)},
			)},
		{"main command killed by a signal: 128+signal", Config{Kill: kill, Main: true},
			append(up(true),
				step{ev: code(EvMainExit, 128+9), state: Stopping, acts: []ActKind{ActSay, ActStopScanner}, check: wantCode(137)},
			)},
		{"sigterm with main command: main gets it, services stop, its code counts", Config{Kill: kill, Main: true, Stage3: true},
			append(up(true),
				step{ev: sig(unix.SIGTERM), state: Stopping, acts: []ActKind{ActSignalMain, ActStopScanner}},
				step{ev: ev(EvScannerDone), state: Stopping},
				step{ev: code(EvMainExit, 143), state: Stage3, acts: []ActKind{ActRunStage3}},
				step{ev: code(EvStage3Exit, 0), state: Final, acts: []ActKind{ActKillAll}},
				step{ev: ev(EvNoChildren), state: Done, acts: []ActKind{ActEnd}, check: wantCode(143)},
			)},
		{"a service ignoring its down-signal gets SIGKILL at -t", Config{Kill: kill, Main: true},
			append(up(true),
				step{ev: sig(unix.SIGINT), state: Stopping, acts: []ActKind{ActSignalMain, ActStopScanner}},
				step{ev: ev(EvTimeout), at: kill - time.Millisecond, state: Stopping},
				step{ev: ev(EvTimeout), at: kill, state: Killing, acts: []ActKind{ActSay, ActKillGroups, ActSignalMain}},
				step{ev: ev(EvTimeout), at: kill + KillGrace, state: Killing, acts: []ActKind{ActSay, ActSay, ActAbandon}},
				step{ev: ev(EvScannerDone), at: kill + KillGrace, state: Final, acts: []ActKind{ActKillAll}},
			)},
		{"stage 1 failure: no service, stage 3, its code", Config{Kill: kill, Stage1: true, Stage3: true, Main: true},
			[]step{
				{ev: code(EvStage1Exit, 3), state: Stage3, acts: []ActKind{ActSay, ActRunStage3}, check: wantCode(3)},
				{ev: ev(EvStarted), state: Stage3},
				{ev: code(EvStage3Exit, 0), state: Final, acts: []ActKind{ActKillAll}},
				{ev: ev(EvNoChildren), state: Done, acts: []ActKind{ActEnd}, check: wantCode(3)},
			}},
		{"stage 1 failure on the machine halts", Config{Kill: kill, Stage1: true, Machine: true},
			[]step{{ev: code(EvStage1Exit, 1), state: Final, acts: []ActKind{ActSay, ActKillAll}, check: wantHow(Halt)}}},
		{"sigterm during stage 1: passed to it, then stage 3, no service", Config{Kill: kill, Stage1: true, Stage3: true},
			[]step{
				{ev: sig(unix.SIGTERM), state: Stage1, acts: []ActKind{ActSignalStage}},
				{ev: sig(unix.SIGTERM), state: Stage1},
				{ev: code(EvStage1Exit, 143), state: Stage3, acts: []ActKind{ActRunStage3}, check: wantCode(0)},
			}},
		{"stage 3 bounded by -t", Config{Kill: kill, Stage3: true},
			append(up(false),
				step{ev: letter('t'), state: Stopping, acts: []ActKind{ActStopScanner}},
				step{ev: ev(EvScannerDone), at: time.Second, state: Stage3, acts: []ActKind{ActRunStage3}},
				step{ev: ev(EvTimeout), at: time.Second + kill, state: Final, acts: []ActKind{ActSay, ActSignalStage, ActKillAll}},
				step{ev: ev(EvTimeout), at: time.Second + kill + FinalGrace, state: Last, acts: []ActKind{ActKillAll}},
				step{ev: ev(EvTimeout), at: time.Second + kill + 2*FinalGrace, state: Done, acts: []ActKind{ActSay, ActEnd}},
			)},
		{"letter b is refused", Config{Kill: kill},
			append(up(false), step{ev: letter('b'), state: Stage2, acts: []ActKind{ActSay}})},
		{"q stops loggers too", Config{Kill: kill},
			append(up(false), step{ev: letter('q'), state: Stopping, acts: []ActKind{ActStopScanner},
				check: func(m Machine) string { return "" }})},
		{"other signals go to the main command", Config{Kill: kill, Main: true},
			append(up(true),
				step{ev: sig(unix.SIGHUP), state: Stage2, acts: []ActKind{ActSignalMain}},
				step{ev: sig(unix.SIGUSR1), state: Stage2, acts: []ActKind{ActSignalMain}},
				step{ev: sig(unix.SIGWINCH), state: Stage2, acts: []ActKind{ActSignalMain}},
			)},
		{"without main command, other signals are the scanner's", Config{Kill: kill},
			append(up(false),
				step{ev: sig(unix.SIGHUP), state: Stage2},
				step{ev: sig(unix.SIGUSR1), state: Stage2},
			)},
		{"the first request chooses how it ends", Config{Kill: kill, Machine: true},
			append(up(false),
				step{ev: sig(unix.SIGTERM), state: Stopping, acts: []ActKind{ActStopScanner}, check: wantHow(Reboot)},
				step{ev: letter('q'), state: Stopping, check: wantHow(Reboot)},
			)},
		{"the scanner's setup failed: 111, stage 3, no main command", Config{Kill: kill, Main: true, Stage3: true},
			[]step{
				{ev: code(EvStage1Exit, 0), state: Stage2},
				{ev: code(EvScannerDone, CodeSetupErr), state: Stage3, acts: []ActKind{ActRunStage3}, check: wantCode(CodeSetupErr)},
			}},
		{"main command that cannot start: its code, services stopped", Config{Kill: kill, Main: true},
			append(up(true),
				step{ev: code(EvMainFailed, 127), state: Stopping, acts: []ActKind{ActStopScanner}, check: wantCode(127)},
			)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(tt.cfg)
			for i, s := range tt.steps {
				var acts []Action
				m, acts = Step(m, s.ev, t0.Add(s.at))
				var kinds []ActKind
				for _, a := range acts {
					kinds = append(kinds, a.Kind)
				}
				if m.State != s.state || !reflect.DeepEqual(kinds, s.acts) {
					t.Fatalf("step %d (%+v): state %v, actions %v; want %v, %v (%+v)", i, s.ev, m.State, kinds, s.state, s.acts, acts)
				}
				if s.check != nil {
					if msg := s.check(m); msg != "" {
						t.Fatalf("step %d: %s", i, msg)
					}
				}
			}
		})
	}
}

// TestHowTable checks which end each request chooses, on the machine's
// PID 1 and in a container, and which letter the scanner and which signal
// the main command get.
func TestHowTable(t *testing.T) {
	tests := []struct {
		ev        Event
		machine   How
		letter    byte
		mainSig   unix.Signal
		container bool // a shutdown in a container too
	}{
		{sig(unix.SIGTERM), Reboot, 't', unix.SIGTERM, true},
		{sig(unix.SIGINT), Reboot, 't', unix.SIGINT, true},
		{sig(unix.SIGPWR), Poweroff, 't', unix.SIGTERM, true},
		{sig(unix.SIGUSR1), Halt, 't', unix.SIGTERM, false},
		{sig(unix.SIGUSR2), Poweroff, 't', unix.SIGTERM, false},
		{letter('t'), Poweroff, 't', unix.SIGTERM, true},
		{letter('i'), Reboot, 't', unix.SIGTERM, true},
		{letter('q'), Halt, 'q', unix.SIGTERM, true},
	}
	for _, tt := range tests {
		for _, machine := range []bool{true, false} {
			t.Run(fmt.Sprintf("%+v/machine=%v", tt.ev, machine), func(t *testing.T) {
				m := New(Config{Kill: kill, Main: true, Machine: machine})
				m, _ = Step(m, code(EvStage1Exit, 0), t0)
				m, _ = Step(m, ev(EvStarted), t0)
				h := Handled(m, tt.ev)
				m, acts := Step(m, tt.ev, t0)
				if !machine && !tt.container {
					if m.State != Stage2 || len(acts) != 1 || acts[0].Kind != ActSignalMain || acts[0].Sig != tt.ev.Sig || !h {
						t.Fatalf("in a container %+v must be forwarded: %v %+v", tt.ev, m.State, acts)
					}
					return
				}
				want := Exit
				if machine {
					want = tt.machine
				}
				if m.State != Stopping || m.How != want || !h {
					t.Fatalf("state %v how %v handled %v; want stopping, %v, true", m.State, m.How, h, want)
				}
				var gotSig unix.Signal
				var gotLetter byte
				for _, a := range acts {
					switch a.Kind {
					case ActSignalMain:
						gotSig = a.Sig
					case ActStopScanner:
						gotLetter = a.Letter
					}
				}
				if gotSig != tt.mainSig || gotLetter != tt.letter {
					t.Fatalf("main got %v, scanner %q; want %v, %q", gotSig, gotLetter, tt.mainSig, tt.letter)
				}
			})
		}
	}
}

// TestStepTotal feeds every event in every state: no panic, a valid
// state, Done absorbing, and a deadline whenever a state waits on one.
func TestStepTotal(t *testing.T) {
	events := []Event{}
	for k := EvStage1Exit; k <= EvTimeout; k++ {
		events = append(events, Event{Kind: k}, Event{Kind: k, Code: 1})
	}
	for s := unix.Signal(1); s < 64; s++ {
		events = append(events, sig(s))
	}
	for _, b := range []byte("tiqbaz") {
		events = append(events, letter(b))
	}
	for st := Stage1; st <= Done; st++ {
		for _, cfg := range []Config{{Kill: kill}, {Kill: kill, Stage1: true, Stage3: true, Main: true, Machine: true}} {
			for _, main := range []bool{false, true} {
				for _, e := range events {
					m := Machine{State: st, Cfg: cfg, MainAlive: main, Scanning: st == Stage2 || st == Stopping || st == Killing,
						Stopping: st > Stage2, Deadline: t0}
					got, acts := Step(m, e, t0.Add(time.Hour))
					if got.State > Done {
						t.Fatalf("%v + %+v: state %v", st, e, got.State)
					}
					if st == Done && (got.State != Done || len(acts) != 0) {
						t.Fatalf("Done + %+v: %v %+v", e, got.State, acts)
					}
					if w := got.State; (w == Stopping || w == Stage3 || w == Final || w == Last) && got.Deadline.IsZero() {
						t.Fatalf("%v + %+v: %v without a deadline", st, e, w)
					}
					for _, a := range acts {
						if a.Kind == ActSay && strings.TrimSpace(a.Msg) == "" {
							t.Fatalf("%v + %+v: empty message", st, e)
						}
					}
				}
			}
		}
	}
}

func TestCodeText(t *testing.T) {
	for c, want := range map[int]string{0: "exit 0", 3: "exit 3", 137: "signal 9 (SIGKILL)", 143: "signal 15 (SIGTERM)"} {
		if got := codeText(c); got != want {
			t.Errorf("codeText(%d) = %q, want %q", c, got, want)
		}
	}
}
