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

// satisfies reports whether s is in the wanted state of phase want.
func (s svState) satisfies(want target) bool {
	return s.up == want.up && (!want.ready || s.ready)
}

// tracker is the pure part of the waiter: s6_svlisten_loop's bookkeeping,
// plus gosv's rule for supervisors that are gone.
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
//
// gosv addition: a service whose supervisor exited ('x') or is gone (not
// running when the wait started, or dead without an 'x': see die) is dead
// for the rest of the wait. Its later event bytes are ignored, and when a
// restart moves on to its up phase, a dead service that is not up counts
// as a failure then (s6 would wait for it forever).
//
// gosv additions for the OpenRC backend: with failOnDeath, a 'd' while the
// phase wants the service up is a failure ([Died]). Once the goal is
// reached, a stay may hold services (see Waiter.Stay): the wait is then
// over only at a failure, which a held service's 'd' or 'x' is.
type tracker struct {
	st     []svState
	phases []target
	ph     int      // index of the current phase
	reason []Reason // per service: why its first failure was counted
	failed []bool   // per service: at least one failure counted
	dead   []bool   // per service: its supervisor is gone
	n      int      // failures counted, s6's e (and the exit code)

	failOnDeath bool   // a 'd' while the phase wants up is a failure
	holding     bool   // the goal was reached and the stay runs
	held        []bool // per service: held by the stay
}

func newTracker(goal Goal, mode Mode, initial []svState) *tracker {
	n := len(initial)
	t := &tracker{st: initial, reason: make([]Reason, n), failed: make([]bool, n), dead: make([]bool, n), held: make([]bool, n)}
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
	if t.dead[i] {
		return false
	}
	want := t.phases[t.ph]
	s := &t.st[i]
	switch b {
	case 'd', 'D', 'u', 'U':
		if b == 'd' && (t.held[i] || t.failOnDeath && want.up && !t.holding) {
			t.fail(i, Died)
			*s = svState{want.up, want.ready}
			break
		}
		*s = svState{up: b == 'u' || b == 'U', ready: b == 'D' || b == 'U'}
	case 'O':
		if want.up {
			t.fail(i, Permanent)
			*s = svState{want.up, want.ready}
		}
	case 'x':
		if t.held[i] || s.up != want.up || s.ready != want.ready {
			t.fail(i, SupervisorExited)
		}
		*s = svState{want.up, want.ready}
		t.dead[i], t.reason[i] = true, firstReason(t.failed[i], t.reason[i], SupervisorExited)
	default:
		// s6-ftrigrd only passes bytes matching [DuUdOx]; 's', gosv's 'e'
		// and 'c', and any future event letters are not state changes.
		return false
	}
	return t.settle()
}

// die records that service i's supervisor is gone without an 'x' (reason
// NoSupervisor or SupervisorDied): a failure unless the service is in the
// wanted state, which it is then forced into, as for 'x'. Unlike 'x', a
// service that is up and ready satisfies a phase that wants it up.
func (t *tracker) die(i int, r Reason) bool {
	if t.dead[i] {
		return false
	}
	want := t.phases[t.ph]
	if !t.st[i].satisfies(want) {
		t.fail(i, r)
	}
	t.st[i] = svState{want.up, want.ready}
	t.dead[i], t.reason[i] = true, firstReason(t.failed[i], t.reason[i], r)
	return t.settle()
}

// settle moves past every reached phase and reports whether the wait is
// over; during a stay, only a failure ends it.
func (t *tracker) settle() bool {
	if t.holding {
		return t.n > 0
	}
	for t.reached(t.phases[t.ph]) {
		if t.ph == len(t.phases)-1 || t.n > 0 {
			return true
		}
		t.ph++
		t.failDead()
	}
	return false
}

// hold makes service i held by the stay: its death or its supervisor's
// exit is a failure until the stay ends.
func (t *tracker) hold(i int) { t.held[i] = true }

// failDead counts, on entering a phase, the dead services that cannot
// reach it any more.
func (t *tracker) failDead() {
	want := t.phases[t.ph]
	for i, dead := range t.dead {
		if dead && !t.st[i].satisfies(want) {
			t.fail(i, t.reason[i])
			t.st[i] = svState{want.up, want.ready}
		}
	}
}

func (t *tracker) fail(i int, r Reason) {
	t.n++
	if !t.failed[i] {
		t.failed[i], t.reason[i] = true, r
	}
}

// firstReason keeps the reason of a service's first failure.
func firstReason(failed bool, old, r Reason) Reason {
	if failed {
		return old
	}
	return r
}

// reached is s6's got(): every service (or, for any, at least one) is in
// the wanted state.
func (t *tracker) reached(want target) bool {
	for _, s := range t.st {
		ok := s.satisfies(want)
		if ok == want.any {
			return ok
		}
	}
	return !want.any
}
