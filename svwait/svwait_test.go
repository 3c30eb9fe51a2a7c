package svwait

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// maxTestWait bounds every wait of a test: the events they wait for are
// sent by the test itself, so anything longer is a hang.
const maxTestWait = 30 * time.Second

// testCtx returns a context that ends before the test's deadline, so that
// a stuck wait fails with a message instead of a panic dump.
func testCtx(t *testing.T) context.Context {
	t.Helper()
	d := time.Now().Add(maxTestWait)
	if td, ok := t.Deadline(); ok && td.Add(-5*time.Second).Before(d) {
		d = td.Add(-5 * time.Second)
	}
	ctx, cancel := context.WithDeadline(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}

// fakeSup is a supervisor made only of servicedir calls: it holds the lock,
// writes supervise/status and notifies event/, in that order, like
// s6-supervise.
type fakeSup struct {
	t   *testing.T
	dir string
	st  servicedir.Status
}

var (
	stDown      = servicedir.Status{Wstat: 15}
	stDownReady = servicedir.Status{Wstat: 15, Ready: true}
	stUp        = servicedir.Status{Pid: 4242, WantUp: true}
	stUpReady   = servicedir.Status{Pid: 4242, WantUp: true, Ready: true}
	stFinishing = servicedir.Status{Pid: 4343, Finishing: true, Wstat: 15}
)

// newFakeSup returns a service directory in state st whose lock is held
// by the test process (an OFD lock without a supervisor record: a running
// supervisor the waiter cannot watch).
func newFakeSup(t *testing.T, st servicedir.Status) *fakeSup {
	t.Helper()
	f := newUnsupervised(t, st)
	lock, err := servicedir.Lock(filepath.Join(f.dir, servicedir.LockPath), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	return f
}

// newUnsupervised returns a service directory in state st with nobody
// holding its lock: a stale directory, or one for a helper to lock.
func newUnsupervised(t *testing.T, st servicedir.Status) *fakeSup {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, servicedir.SuperviseDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := servicedir.MakeEventDir(filepath.Join(dir, servicedir.EventDir), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	f := &fakeSup{t: t, dir: dir}
	f.set(st)
	return f
}

func (f *fakeSup) set(st servicedir.Status) {
	f.t.Helper()
	st.Stamp, st.ReadyStamp = time.Now(), time.Now()
	f.st = st
	if err := servicedir.WriteStatus(f.dir, &f.st); err != nil {
		f.t.Fatal(err)
	}
}

// emit writes st (when given) and then sends ev as one write.
func (f *fakeSup) emit(ev string, st ...servicedir.Status) {
	f.t.Helper()
	if len(st) > 0 {
		f.set(st[0])
	}
	if err := servicedir.Notify(filepath.Join(f.dir, servicedir.EventDir), ev); err != nil {
		f.t.Fatal(err)
	}
}

// listeners counts the subscription fifos left in event/.
func (f *fakeSup) listeners() int {
	f.t.Helper()
	ents, err := os.ReadDir(filepath.Join(f.dir, servicedir.EventDir))
	if err != nil {
		f.t.Fatal(err)
	}
	return len(ents)
}

func listen(t *testing.T, goal Goal, mode Mode, sups ...*fakeSup) *Waiter {
	t.Helper()
	var dirs []string
	for _, s := range sups {
		dirs = append(dirs, s.dir)
	}
	w, err := Listen(dirs, goal, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { w.Close() })
	return w
}

// waitAsync runs w.Wait in a goroutine, so that events are sent while it
// blocks, and returns its result channel.
func waitAsync(ctx context.Context, w *Waiter) <-chan error {
	c := make(chan error, 1)
	go func() { c <- w.Wait(ctx) }()
	return c
}

func TestWaitInitialState(t *testing.T) {
	tests := []struct {
		st   servicedir.Status
		goal Goal
	}{
		{stUp, Up},
		{stUpReady, UpReady},
		{stDown, Down},
		{stFinishing, Down},
		{stDownReady, DownReady},
	}
	for _, tt := range tests {
		f := newFakeSup(t, tt.st)
		if err := Wait(testCtx(t), []string{f.dir}, tt.goal, All); err != nil {
			t.Errorf("goal %d on %+v: %v", tt.goal, tt.st, err)
		}
		if n := f.listeners(); n != 0 {
			t.Errorf("goal %d: %d listener fifos left after Wait", tt.goal, n)
		}
	}
}

func TestWaitEvents(t *testing.T) {
	tests := []struct {
		name    string
		initial servicedir.Status
		goal    Goal
		events  []string
		want    *FailedError
	}{
		{"up", stDown, Up, []string{"u"}, nil},
		{"up ready", stDown, UpReady, []string{"u", "U"}, nil},
		{"down", stUp, Down, []string{"d"}, nil},
		{"down ready", stUp, DownReady, []string{"d", "D"}, nil},
		{"down ready one write", stUp, DownReady, []string{"dD"}, nil},
		{"restart", stUpReady, Restart, []string{"d", "D", "u"}, nil},
		{"restart ready", stUpReady, RestartReady, []string{"d", "D", "u", "U"}, nil},
		{"permanent failure", stFinishing, Up, []string{"OD"}, &FailedError{N: 1, Services: []Service{{Reason: Permanent}}}},
		{"supervisor exit", stUp, UpReady, []string{"d", "D", "x"}, &FailedError{N: 1, Services: []Service{{Reason: SupervisorExited}}}},
		{"gosv bytes", stUp, UpReady, []string{"c", "e", "U"}, nil},
		{"ignored bytes", stDown, Up, []string{"s", "zz", "u"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeSup(t, tt.initial)
			w := listen(t, tt.goal, All, f)
			res := waitAsync(testCtx(t), w)
			for _, ev := range tt.events {
				f.emit(ev)
			}
			err := <-res
			var fe *FailedError
			switch {
			case tt.want == nil && err != nil:
				t.Fatalf("Wait = %v, want nil", err)
			case tt.want != nil && !errors.As(err, &fe):
				t.Fatalf("Wait = %v, want a *FailedError", err)
			case tt.want != nil && (fe.N != 1 || len(fe.Services) != 1 || fe.Services[0].Dir != f.dir ||
				fe.Services[0].Reason != tt.want.Services[0].Reason):
				t.Fatalf("Wait = %+v, want N=1, %s %v", fe, f.dir, tt.want.Services[0].Reason)
			}
		})
	}
}

// TestListenBeforeControl is svc -w's sequence: events sent between Listen
// and Wait are not lost.
func TestListenBeforeControl(t *testing.T) {
	f := newFakeSup(t, stDown)
	w := listen(t, UpReady, Any, f)
	f.emit("u", stUp)
	f.emit("U", stUpReady)
	if err := w.Wait(testCtx(t)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := f.listeners(); n != 0 {
		t.Errorf("%d listener fifos left after Close", n)
	}
}

func TestWaitModes(t *testing.T) {
	a, b := newFakeSup(t, stDown), newFakeSup(t, stDown)

	w := listen(t, Up, Any, a, b)
	res := waitAsync(testCtx(t), w)
	b.emit("u", stUp)
	if err := <-res; err != nil {
		t.Fatalf("any: %v", err)
	}

	a.set(stDown)
	b.set(stDown)
	w = listen(t, Up, All, a, b)
	res = waitAsync(testCtx(t), w)
	a.emit("u", stUp)
	b.emit("x")
	var fe *FailedError
	if err := <-res; !errors.As(err, &fe) || fe.N != 1 || len(fe.Services) != 1 || fe.Services[0].Dir != b.dir {
		t.Fatalf("all with one dead supervisor: %v, want 1 failure in %s", err, b.dir)
	}
}

func TestWaitTimeout(t *testing.T) {
	f := newFakeSup(t, stDown)
	w := listen(t, Up, All, f)
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	f.emit("d")
	if err := w.Wait(ctx); !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait = %v, want ErrTimeout", err)
	}
}

func TestWaitCancel(t *testing.T) {
	f := newFakeSup(t, stDown)
	w := listen(t, Up, All, f)
	ctx, cancel := context.WithCancel(testCtx(t))
	res := waitAsync(ctx, w)
	cancel()
	if err := <-res; !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}

func TestListenErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "nonexistent", "svc")
	noSupervise := t.TempDir()
	tests := []struct {
		dir string
		op  string
	}{
		{missing, "subscribe to events for"},
		{noSupervise, "read status for"},
	}
	for _, tt := range tests {
		_, err := Listen([]string{tt.dir}, Up, All)
		var pe *os.PathError
		if !errors.As(err, &pe) || pe.Op != tt.op || pe.Path != tt.dir {
			t.Errorf("Listen(%s) = %v, want a %q error on it", tt.dir, err, tt.op)
		}
	}
	// Like s6-svwait, the failed attempt leaves event/ behind but no fifo.
	ents, err := os.ReadDir(filepath.Join(noSupervise, servicedir.EventDir))
	if err != nil || len(ents) != 0 {
		t.Errorf("event/ after failed Listen: %v, %d entries", err, len(ents))
	}
	if _, err := Listen(nil, Up, All); err == nil {
		t.Error("Listen(nil) succeeded")
	}
}
