package svwait

import (
	"strings"
	"testing"
)

// st turns "dU" into states using the event letters: d (down), D (down,
// ready), u (up), U (up, ready).
func st(s string) []svState {
	out := make([]svState, len(s))
	for i, c := range s {
		out[i] = svState{up: c == 'u' || c == 'U', ready: c == 'D' || c == 'U'}
	}
	return out
}

func TestTracker(t *testing.T) {
	tests := []struct {
		goal    Goal
		mode    Mode
		initial string
		events  string // "0u 1U": service index, event byte; "0!": service 0's supervisor died
		done    int    // index of the event that ends the wait; -1 at start, 99 never
		failed  string // per service: 1 if a failure was counted
	}{
		{Up, All, "u", "", -1, "0"},
		{Up, All, "U", "", -1, "0"},
		{Up, All, "d", "0u", 0, "0"},
		{Up, All, "D", "0d 0D 0u", 2, "0"},
		{UpReady, All, "u", "0U", 0, "0"},
		{UpReady, All, "d", "0u 0U", 1, "0"},
		{UpReady, All, "D", "0u 0d 0D", 99, "0"}, // raw ready flag alone is not up
		{Down, All, "d", "", -1, "0"},
		{Down, All, "D", "", -1, "0"},
		{Down, All, "U", "0d", 0, "0"},
		{DownReady, All, "d", "0D", 0, "0"}, // finishing: down, not ready yet
		{DownReady, All, "u", "0d 0D", 1, "0"},
		{Up, All, "dd", "0u 1u", 1, "00"},
		{Up, Any, "dd", "0u", 0, "00"},
		{Up, Any, "dd", "1U", 0, "00"},
		{Down, Any, "uu", "1d", 0, "00"},
		// 'O' counts only while waiting for an up state.
		{Up, All, "d", "0O", 0, "1"},
		{UpReady, All, "u", "0O", 0, "1"},
		{Down, All, "u", "0O 0d", 1, "0"},
		{DownReady, All, "u", "0d 0O 0D", 2, "0"},
		{Up, All, "dd", "0O 1u", 1, "10"}, // the failed one no longer blocks "all"
		// 'x' counts when the state differs from the wanted one.
		{Up, All, "d", "0x", 0, "1"},
		{Down, All, "u", "0x", 0, "1"},
		{Up, All, "ud", "0x 1u", 1, "00"},
		{Up, All, "Ud", "0x 1u", 1, "10"}, // s6 compares the ready bit too
		{Down, All, "Du", "0x 1d", 1, "10"},
		{DownReady, All, "Du", "0x 1D", 1, "00"},
		// Restart: all down first, then the goal.
		{Restart, All, "U", "0d 0D 0u", 2, "0"},
		{Restart, All, "D", "0u", 0, "0"},
		{Restart, All, "U", "0u", 99, "0"}, // an up event alone is not a restart
		{RestartReady, All, "U", "0d 0D 0u 0U", 3, "0"},
		{Restart, Any, "UU", "0d 0u 1d 0d 1u", 4, "00"}, // the down phase is always "all"
		{Restart, All, "U", "0x", 0, "1"},               // failure in the down phase ends it
		{Restart, All, "U", "0d 0O 0D", 1, "1"},
		// Bytes other than [DuUdOx] are ignored.
		{Up, All, "d", "0s 0? 0e 0c 0u", 4, "0"},
		// A dead supervisor (gosv): a failure unless in the wanted state,
		// where up and ready counts as up (unlike 'x').
		{Up, All, "d", "0!", 0, "1"},
		{Up, All, "Ud", "0! 1u", 1, "00"},
		{Up, All, "dd", "0! 1u", 1, "10"},
		{UpReady, All, "uu", "0! 1U", 1, "10"}, // the failure ends the wait once "all" is reached
		{Down, Any, "uu", "0!", 0, "10"},
		{DownReady, All, "u", "0d 0!", 1, "1"},
		// Bytes from a dead service are ignored; it fails when a restart
		// moves on to a phase it cannot reach.
		{Up, All, "dd", "0! 0d 1u", 2, "10"},
		{Up, All, "dd", "0x 0d 0! 1u", 3, "10"},
		{Restart, All, "D", "0!", 0, "1"},
		{Restart, All, "U", "0d 0!", 1, "1"},
		{Restart, All, "Dd", "0x 1u", 1, "10"}, // s6 would wait for the first forever
		{RestartReady, All, "UU", "0d 0D 0! 1d 1D 1u 1U", 6, "10"},
		{Restart, All, "UU", "0d 0D 0u 0! 1d", 4, "10"}, // as 'x': up while all should be down
	}
	for _, tt := range tests {
		tr := newTracker(tt.goal, tt.mode, st(tt.initial))
		done := 99
		if tr.settle() {
			done = -1
		} else {
			for k, ev := range strings.Fields(tt.events) {
				i := int(ev[0] - '0')
				if ev[1] == '!' && tr.die(i, SupervisorDied) || ev[1] != '!' && tr.feed(i, ev[1]) {
					done = k
					break
				}
			}
		}
		var failed strings.Builder
		n := 0
		for _, f := range tr.failed {
			if f {
				failed.WriteByte('1')
				n++
			} else {
				failed.WriteByte('0')
			}
		}
		if done != tt.done || failed.String() != tt.failed || tr.n != n {
			t.Errorf("goal %d mode %d initial %q events %q: done at %d, failed %s (n=%d); want done at %d, failed %s",
				tt.goal, tt.mode, tt.initial, tt.events, done, failed.String(), tr.n, tt.done, tt.failed)
		}
	}
}

// TestTrackerDeathAndStay: with failOnDeath, a 'd' fails while the phase
// wants up; during a stay ('+': the goal reached, service 0 held), only a
// failure ends the wait, and a held service's 'd' or 'x' is one.
func TestTrackerDeathAndStay(t *testing.T) {
	tests := []struct {
		goal    Goal
		initial string
		events  string // as in TestTracker; "0+": hold service 0
		done    int
		failed  string
	}{
		{Up, "d", "0d", 0, "1"},
		{UpReady, "u", "0d", 0, "1"},
		{Up, "d", "0s 0u", 1, "0"},
		{Down, "u", "0d", 0, "0"},       // a wait for down wants the death
		{Restart, "U", "0d 0u", 1, "0"}, // the down phase too
		{UpReady, "d", "0u 0d", 1, "1"}, // up is not ready: the death fails
		{Up, "u", "0+ 0U 0s", 99, "0"},
		{Up, "u", "0+ 0d", 1, "1"},
		{Up, "u", "0+ 0x", 1, "1"},  // the wanted state, but the stay wanted it kept
		{Up, "u", "0+ 0!", 99, "0"}, // as ever: a supervisor dead in the wanted state is not a failure
	}
	for _, tt := range tests {
		tr := newTracker(tt.goal, All, st(tt.initial))
		tr.failOnDeath = true
		done := 99
		for k, ev := range strings.Fields(tt.events) {
			i := int(ev[0] - '0')
			var over bool
			switch ev[1] {
			case '+':
				tr.holding = true
				tr.hold(i)
			case '!':
				over = tr.die(i, SupervisorDied)
			default:
				over = tr.feed(i, ev[1])
			}
			if over {
				done = k
				break
			}
		}
		failed := ""
		for i, f := range tr.failed {
			if f && tr.reason[i] != Died && tr.reason[i] != SupervisorExited {
				t.Errorf("%q: reason %v", tt.events, tr.reason[i])
			}
			failed += map[bool]string{true: "1", false: "0"}[f]
		}
		if done != tt.done || failed != tt.failed {
			t.Errorf("goal %v initial %q events %q: done at %d, failed %s; want %d, %s", tt.goal, tt.initial, tt.events, done, failed, tt.done, tt.failed)
		}
	}
}

func TestGoalLetters(t *testing.T) {
	for i := range len(Letters) {
		g, ok := GoalFor(Letters[i])
		if !ok || g != Goal(i) {
			t.Errorf("GoalFor(%q) = %v, %v", Letters[i], g, ok)
		}
	}
	for _, c := range []byte{0, 'x', 'a', 'o', 't'} {
		if _, ok := GoalFor(c); ok {
			t.Errorf("GoalFor(%q) ok", c)
		}
	}
}
