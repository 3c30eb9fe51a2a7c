package svwait

import (
	"errors"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// stExit3 is a service whose run just exited with code 3.
var stExit3 = servicedir.Status{Wstat: 3 << 8, WantUp: true}

// TestFailOnDeath: with FailOnDeath, a death while waiting for up ends the
// wait at once with Died and the death's wait status; without it, the
// wait goes on to the restart, as s6-svwait's does.
func TestFailOnDeath(t *testing.T) {
	for _, goal := range []Goal{Up, UpReady} {
		f := newFakeSup(t, stDown)
		w := listen(t, goal, All, f)
		w.FailOnDeath = true
		res := waitAsync(testCtx(t), w)
		if goal == UpReady {
			f.emit("u", stUp) // up is not yet the goal
		}
		f.emit("d", stExit3)
		fe := failedWith(t, <-res, f.dir, Died)
		if s := fe.Services[0]; s.Wstat != 3<<8 || s.Deaths != 1 || s.InStay {
			t.Errorf("%v: %+v", goal, s)
		}
	}
	f := newFakeSup(t, stDown)
	w := listen(t, Up, All, f)
	res := waitAsync(testCtx(t), w)
	f.emit("d", stExit3)
	f.emit("u", stUp)
	if err := <-res; err != nil {
		t.Errorf("without FailOnDeath: %v", err)
	}
}

// TestFailOnDeathWantsDown: a wait for down, or a restart's down phase,
// wants the death.
func TestFailOnDeathWantsDown(t *testing.T) {
	for _, goal := range []Goal{Down, Restart} {
		f := newFakeSup(t, stUp)
		w := listen(t, goal, All, f)
		w.FailOnDeath = true
		res := waitAsync(testCtx(t), w)
		f.emit("d", stExit3)
		if goal == Restart {
			f.emit("u", stUp)
		}
		if err := <-res; err != nil {
			t.Errorf("%v: %v", goal, err)
		}
	}
}

// TestListenSubscribed: the events queued in a handed-over subscription
// are the wait's first (a death before Listen counts), and Close leaves
// the subscription to its owner.
func TestListenSubscribed(t *testing.T) {
	f := newFakeSup(t, stDown)
	sub, err := servicedir.Subscribe(f.dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	f.emit("d", stExit3)
	w, err := ListenSubscribed(f.dir, sub, Up)
	if err != nil {
		t.Fatal(err)
	}
	if n := f.listeners(); n != 1 {
		t.Errorf("%d listeners, want the caller's only", n)
	}
	w.FailOnDeath = true
	failedWith(t, w.Wait(testCtx(t)), f.dir, Died)
	w.Close()
	if n := f.listeners(); n != 1 {
		t.Fatalf("%d listeners after Close, want the caller's", n)
	}
	f.emit("U")
	var b [1]byte
	sub.File.SetReadDeadline(time.Now().Add(maxTestWait))
	if _, err := sub.File.Read(b[:]); err != nil || b[0] != 'U' {
		t.Errorf("subscription after Close: %q %v", b, err)
	}
}

// TestStay: a goal that must last (start_wait) succeeds at the end of the
// stay if the same process is still up, and fails at once at a death or
// an 'x', or at the end when the process was replaced without an event
// seen.
func TestStay(t *testing.T) {
	const stay = 300 * time.Millisecond
	stOther := servicedir.Status{Pid: 4343, WantUp: true}
	tests := []struct {
		name   string
		during func(f *fakeSup)
		reason Reason // -1: success
		early  bool   // fails before the end of the stay
	}{
		{"stays up", func(f *fakeSup) { f.emit("U") }, -1, false},
		{"dies", func(f *fakeSup) { f.emit("d", stExit3) }, Died, true},
		{"supervisor exits", func(f *fakeSup) { f.emit("x") }, SupervisorExited, true},
		{"replaced unseen", func(f *fakeSup) { f.set(stOther) }, Died, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSup(t, stDown)
			w := listen(t, Up, All, f)
			w.FailOnDeath, w.Stay = true, stay
			w.Deadline = time.Now().Add(time.Millisecond) // a stay is not bound by the deadline
			t0 := time.Now()
			f.emit("u", stUp)
			up := f.st.Stamp
			err := waitBetween(t, w, func() { tt.during(f) })
			d := time.Since(t0)
			if tt.reason < 0 {
				if err != nil || d < stay {
					t.Fatalf("Wait = %v after %v, want nil after the stay", err, d)
				}
				return
			}
			fe := failedWith(t, err, f.dir, tt.reason)
			if s := fe.Services[0]; !s.InStay || !s.UpSince.Equal(up) {
				t.Errorf("service %+v, want InStay and UpSince %v", s, up)
			}
			if tt.early && d >= stay {
				t.Errorf("failed after %v, not at once", d)
			}
		})
	}
}

// TestStayNotUp: a goal reached by an event whose process is already gone
// (supervise/status says down) fails when the stay begins.
func TestStayNotUp(t *testing.T) {
	f := newFakeSup(t, stDown)
	w := listen(t, Up, All, f)
	w.Stay = time.Hour
	f.emit("u")
	err := w.Wait(testCtx(t))
	if fe := failedWith(t, err, f.dir, Died); !fe.Services[0].InStay {
		t.Errorf("%+v", fe.Services[0])
	}
	var te *TimeoutError
	if errors.As(err, &te) {
		t.Error("a timeout")
	}
}

// waitBetween is w.Wait in two steps, with between run after the events
// already queued are consumed (a stay begun) and before the loop waits:
// what between does is seen by a wait in progress, deterministically.
func waitBetween(t *testing.T, w *Waiter, between func()) error {
	t.Helper()
	w.t.failOnDeath = w.FailOnDeath
	if done, err := w.start(); done {
		t.Fatalf("wait over before its events: %v", err)
	}
	between()
	l, err := newLoop(w)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	return l.run(testCtx(t), w.Deadline)
}
