package svwait

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// past is a caller deadline that has passed when Wait starts: Wait still
// applies every queued event first, then times out.
var past = time.Unix(1, 0)

func (f *fakeSup) writeGosv(rel, content string) {
	f.t.Helper()
	if err := os.MkdirAll(filepath.Join(f.dir, servicedir.GosvStateDir), 0o700); err != nil {
		f.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(f.dir, rel), []byte(content), 0o644); err != nil {
		f.t.Fatal(err)
	}
}

func (f *fakeSup) setReadyDeadline(t time.Time) {
	f.writeGosv(servicedir.ReadyDeadlinePath, servicedir.TAI64NFromTime(t).String()+"\n")
}

// waitUntil is Listen and Wait with w.Deadline set.
func waitUntil(t *testing.T, d time.Time, goal Goal, sups ...*fakeSup) error {
	t.Helper()
	return listen(t, goal, All, sups...).waitUntil(t, d)
}

func (w *Waiter) waitUntil(t *testing.T, d time.Time) error {
	w.Deadline = d
	return w.Wait(testCtx(t))
}

func timedOut(t *testing.T, err error) *TimeoutError {
	t.Helper()
	var te *TimeoutError
	if !errors.As(err, &te) || !errors.Is(err, ErrTimeout) {
		t.Fatalf("Wait = %v, want a *TimeoutError", err)
	}
	return te
}

// TestReadyDeadline: a service's ready deadline replaces an earlier
// caller deadline, read when the wait starts and again at each 'e'.
func TestReadyDeadline(t *testing.T) {
	later := time.Now().Add(time.Hour)
	tests := []struct {
		name   string
		goal   Goal
		before time.Time // ready-deadline written before Listen (zero: none)
		after  time.Time // written after Listen, announced by 'e'
		extend bool      // the wait outlives the caller's (past) deadline
	}{
		{"none", UpReady, time.Time{}, time.Time{}, false},
		{"before listen", UpReady, later, time.Time{}, true},
		{"announced by e", UpReady, time.Time{}, later, true},
		{"restart ready", RestartReady, later, time.Time{}, true},
		{"already passed", UpReady, past.Add(-time.Second), time.Time{}, false},
		{"not a ready goal", Up, later, later, false},
		{"not a ready goal, e", Down, time.Time{}, later, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := map[Goal]servicedir.Status{Up: stDown, Down: stUpReady}[tt.goal]
			if st == (servicedir.Status{}) {
				st = stUp
			}
			f := newFakeSup(t, st)
			if !tt.before.IsZero() {
				f.setReadyDeadline(tt.before)
			}
			w, err := Listen([]string{f.dir}, tt.goal, All)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			if !tt.after.IsZero() {
				f.setReadyDeadline(tt.after)
				f.emit("e")
			}
			res := make(chan error, 1)
			w.Deadline = past
			go func() { res <- w.Wait(testCtx(t)) }()
			if !tt.extend {
				te := timedOut(t, <-res)
				if !te.Deadline.Equal(past) || te.Extended {
					t.Errorf("deadline %v extended %v, want %v", te.Deadline, te.Extended, past)
				}
				return
			}
			if tt.goal == RestartReady {
				f.emit("d", stDown)
				f.emit("D", stDownReady)
				f.emit("u", stUp)
			}
			f.emit("U", stUpReady)
			if err := <-res; err != nil {
				t.Fatalf("Wait = %v, want nil (deadline extended)", err)
			}
		})
	}
}

// TestReadyDeadlineTimeout: a wait that times out at an extended deadline
// says so.
func TestReadyDeadlineTimeout(t *testing.T) {
	f := newFakeSup(t, stUp)
	ext := time.Now().Add(-time.Millisecond) // later than past, but passed too
	f.setReadyDeadline(ext)
	te := timedOut(t, waitUntil(t, past, UpReady, f))
	if !te.Deadline.Equal(ext) || !te.Extended {
		t.Errorf("deadline %v extended %v, want %v extended", te.Deadline, te.Extended, ext)
	}
	if !strings.HasPrefix(te.Error(), "timed out (at the readiness deadline the service extended): ") {
		t.Errorf("message %q", te.Error())
	}
}

// TestTimeoutSaysWhy: the timeout error carries the deaths, the exit
// status of the last one and the last check output seen during the wait,
// even once the check output file is gone (a respawn removes it). The
// events are applied one by one, as the loop would as they arrive.
func TestTimeoutSaysWhy(t *testing.T) {
	f := newFakeSup(t, stUp)
	w := listen(t, UpReady, All, f)
	step := func(b byte, st ...servicedir.Status) {
		if len(st) > 0 {
			f.set(st[0])
		}
		if w.apply(0, b) {
			t.Fatalf("wait ended at %q", b)
		}
	}
	f.writeGosv(servicedir.CheckOutputPath, "curl: (7) connection refused\nexit status 7\n")
	step('c')
	step('d', servicedir.Status{Pid: 4343, Finishing: true, Wstat: 3 << 8})
	step('D', servicedir.Status{Wstat: 3 << 8, Ready: true, WantUp: true})
	if err := os.Remove(filepath.Join(f.dir, servicedir.CheckOutputPath)); err != nil {
		t.Fatal(err)
	}
	step('u', servicedir.Status{Pid: 4444, Wstat: 3 << 8, WantUp: true})
	te := timedOut(t, w.waitUntil(t, past))
	want := Service{Dir: f.dir, Reason: TimedOut, Up: true, Deaths: 1, Wstat: 3 << 8,
		Check: "curl: (7) connection refused\nexit status 7\n"}
	if len(te.Services) != 1 || te.Services[0] != want {
		t.Fatalf("services %+v, want %+v", te.Services, want)
	}
	msg := "timed out: " + f.dir + ": up, not ready; run died 1 time during the wait, last exit code 3; " +
		"check: curl: (7) connection refused / exit status 7"
	if te.Error() != msg {
		t.Errorf("message\n%q, want\n%q", te.Error(), msg)
	}
}

// TestTimeoutLists: only the services that kept the wait from its goal.
func TestTimeoutLists(t *testing.T) {
	a, b, c := newFakeSup(t, stUpReady), newFakeSup(t, stDown), newFakeSup(t, stUp)
	w := listen(t, UpReady, All, a, b, c)
	c.emit("x")
	te := timedOut(t, w.waitUntil(t, past))
	var got []string
	for _, s := range te.Services {
		got = append(got, filepath.Base(s.Dir)+" "+s.Reason.String())
	}
	want := []string{filepath.Base(b.dir) + " timed out", filepath.Base(c.dir) + " supervisor exited"}
	if strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("listed %q, want %q", got, want)
	}
}

// TestCheckOutputAtStart: a check that was failing before the wait is
// reported too.
func TestCheckOutputAtStart(t *testing.T) {
	f := newFakeSup(t, stUp)
	f.writeGosv(servicedir.CheckOutputPath, "not yet\n")
	te := timedOut(t, waitUntil(t, past, UpReady, f))
	if len(te.Services) != 1 || te.Services[0].Check != "not yet\n" {
		t.Errorf("services %+v", te.Services)
	}
}

func TestServiceString(t *testing.T) {
	long := strings.Repeat("x", 300)
	tests := []struct {
		s    Service
		want string
	}{
		{Service{Dir: "d", Up: true}, "d: up, not ready"},
		{Service{Dir: "d", Up: true, Ready: true, Reason: SupervisorExited}, "d: supervisor exited: up and ready"},
		{Service{Dir: "d", Wstat: 9, Reason: Permanent}, "d: failed permanently: down, signal SIGKILL"},
		{Service{Dir: "d", Wstat: 1 << 8, Deaths: 2}, "d: down, exit code 1; run died 2 times during the wait, last exit code 1"},
		{Service{Dir: "d", Reason: NoSupervisor}, "d: supervisor not running: down, exit code 0"},
		{Service{Dir: "d", Up: true, Reason: SupervisorDied, Check: "\n  a  \n\n b\n"}, "d: supervisor died: up, not ready; check: a / b"},
		{Service{Dir: "d", Up: true, Check: long}, "d: up, not ready; check: …" + long[:maxCheckInMessage]},
		{Service{Dir: "d", Up: true, Reason: Reason(42)}, "d: reason 42: up, not ready"},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("%+v:\n got %q\nwant %q", tt.s, got, tt.want)
		}
	}
	fe := &FailedError{N: 2, Services: []Service{{Dir: "a", Reason: Permanent, Wstat: 1 << 8}, {Dir: "b", Reason: SupervisorDied, Up: true}}}
	if want := "2 services failed: a: failed permanently: down, exit code 1; b: supervisor died: up, not ready"; fe.Error() != want {
		t.Errorf("FailedError: %q, want %q", fe.Error(), want)
	}
}

func TestReadReadyDeadline(t *testing.T) {
	now := time.Unix(1_800_000_000, 123456789)
	tests := []struct {
		content string
		ok      bool
	}{
		{servicedir.TAI64NFromTime(now).String() + "\n", true},
		{servicedir.TAI64NFromTime(now).String(), true},
		{servicedir.TAI64NFromTime(now).String()[1:] + "\n", false},
		{"@40000000zz0246ad1e723ec3\n", false},
		{"", false},
		{"@4000000000\n", false},
	}
	for _, tt := range tests {
		f := newFakeSup(t, stUp)
		f.writeGosv(servicedir.ReadyDeadlinePath, tt.content)
		got, ok := servicedir.ReadReadyDeadline(f.dir)
		if ok != tt.ok || (ok && !got.Equal(now)) {
			t.Errorf("%q: %v %v, want %v %v", tt.content, got, ok, now, tt.ok)
		}
	}
	if _, ok := servicedir.ReadReadyDeadline(t.TempDir()); ok {
		t.Error("missing file: ok")
	}
}
