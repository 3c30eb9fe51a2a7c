package svwait

// svState is what a waiter knows of one service: s6's upstate and readystate
// bits. Initially up = pid != 0 && !finishing and ready = the raw ready flag
// of supervise/status (so a down-and-ready service counts as ready); then
// each event byte sets both: d → (0,0), D → (0,1), u → (1,0), U → (1,1).
type svState struct {
	up, ready bool
}

// target is one phase of a wait: the wanted state and whether one service
// reaching it is enough (any) or all must (s6's "or" flag). A wanted ready
// bit of false means "don't care", as in s6's got().
type target struct {
	up, ready, any bool
}

// tracker is the pure part of the waiter: s6_svlisten_loop's bookkeeping.
//
// A wait has one phase, or two for a restart: first every service down
// (always all, as s6-svwait -r does), then the final goal. After each event
// byte the current phase is tested; once reached, the wait moves on to the
// next phase, or ends if this was the last one or if failures were counted
// (s6-svwait exits after the down phase when anything failed).
//
// Failures, at most one per event byte, are counted the way s6 does:
//   - 'O' (permanent failure) while the phase wants an up state;
//   - 'x' (the supervisor exited) when the service's state differs from the
//     wanted one, comparing both bits exactly — so s6 also counts a service
//     that is up and ready when the phase wants (up, don't-care-ready).
//
// Either way the service is then forced into the wanted state, so that a
// failed service no longer blocks an "all" wait.
type tracker struct {
	st     []svState
	phases []target
	ph     int    // index of the current phase
	failed []bool // per service: at least one failure counted
	n      int    // failures counted, s6's e (and the exit code)
}

func newTracker(goal Goal, mode Mode, initial []svState) *tracker {
	t := &tracker{st: initial, failed: make([]bool, len(initial))}
	final := target{up: true, any: mode == Any}
	switch goal {
	case UpReady, RestartReady:
		final.ready = true
	case Down:
		final.up = false
	case DownReady:
		final.up, final.ready = false, true
	}
	if goal == Restart || goal == RestartReady {
		t.phases = append(t.phases, target{})
	}
	t.phases = append(t.phases, final)
	return t
}

// feed applies one event byte from service i and reports whether the wait
// is over.
func (t *tracker) feed(i int, b byte) bool {
	want := t.phases[t.ph]
	s := &t.st[i]
	switch b {
	case 'd', 'D', 'u', 'U':
		*s = svState{up: b == 'u' || b == 'U', ready: b == 'D' || b == 'U'}
	case 'O':
		if want.up {
			t.fail(i)
			*s = svState{want.up, want.ready}
		}
	case 'x':
		if s.up != want.up || s.ready != want.ready {
			t.fail(i)
		}
		*s = svState{want.up, want.ready}
	default:
		// s6-ftrigrd only passes bytes matching [DuUdOx]; 's' and any
		// future event letters are not state changes.
		return false
	}
	return t.settle()
}

// settle moves past every reached phase and reports whether the wait is over.
func (t *tracker) settle() bool {
	for t.reached(t.phases[t.ph]) {
		if t.ph == len(t.phases)-1 || t.n > 0 {
			return true
		}
		t.ph++
	}
	return false
}

func (t *tracker) fail(i int) {
	t.n++
	t.failed[i] = true
}

// reached is s6's got(): every service (or, for any, at least one) is in
// the wanted state.
func (t *tracker) reached(want target) bool {
	for _, s := range t.st {
		ok := s.up == want.up && (!want.ready || s.ready)
		if ok == want.any {
			return ok
		}
	}
	return !want.any
}
