package svwait

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// noticeBound is how fast a supervisor's death must end a wait: "at once"
// means an event wakeup, far below this, and far below the test's wait.
const noticeBound = 2 * time.Second

func TestWatchSupervisor(t *testing.T) {
	self, err := servicedir.ProcStartTime(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	record := func(pid int, start uint64) func(*testing.T, string) {
		return func(t *testing.T, dir string) {
			rec := servicedir.PidRecord{Pid: pid, StartTime: start}
			if err := servicedir.WriteRecord(dir, servicedir.SupervisorRecordPath, rec); err != nil {
				t.Fatal(err)
			}
		}
	}
	tests := []struct {
		name    string
		lock    bool                     // the test process holds an OFD lock
		setup   func(*testing.T, string) // more state
		helper  string                   // or a helper process holds the lock
		watched bool                     // a pidfd is expected
		running bool
	}{
		{name: "no lock file", running: false},
		{name: "lock file, unlocked", setup: func(t *testing.T, d string) { mustWrite(t, filepath.Join(d, servicedir.LockPath)) }},
		{name: "unlocked, record of a live process", setup: record(os.Getpid(), self)},
		{name: "OFD lock, no record", lock: true, running: true},
		{name: "OFD lock, record", lock: true, setup: record(os.Getpid(), self), watched: true, running: true},
		{name: "OFD lock, record with another start time", lock: true, setup: record(os.Getpid(), self+1), running: true},
		{name: "OFD lock, record of no process", lock: true, setup: record(1<<22+1, 1), running: true},
		{name: "OFD lock, corrupt record", lock: true, running: true,
			setup: func(t *testing.T, d string) { mustWrite(t, filepath.Join(d, servicedir.SupervisorRecordPath)) }},
		{name: "gosv helper", helper: "ofd", watched: true, running: true},
		{name: "s6-style helper", helper: "posix", watched: true, running: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newUnsupervised(t, stUp)
			if tt.lock {
				lock, err := servicedir.Lock(filepath.Join(f.dir, servicedir.LockPath), 0o644)
				if err != nil {
					t.Fatal(err)
				}
				defer lock.Close()
			}
			if err := os.MkdirAll(filepath.Join(f.dir, servicedir.GosvStateDir), 0o700); err != nil {
				t.Fatal(err)
			}
			if tt.setup != nil {
				tt.setup(t, f.dir)
			}
			if tt.helper != "" {
				startHelper(t, tt.helper, f.dir)
			}
			fd, running := watchSupervisor(f.dir)
			if fd >= 0 {
				unix.Close(fd)
			}
			if (fd >= 0) != tt.watched || running != tt.running {
				t.Errorf("watchSupervisor: fd %d running %v; want watched %v running %v", fd, running, tt.watched, tt.running)
			}
		})
	}
}

func mustWrite(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// failedWith checks that err is a FailedError with one service failed for
// reason r.
func failedWith(t *testing.T, err error, dir string, r Reason) *FailedError {
	t.Helper()
	var fe *FailedError
	if !errors.As(err, &fe) || fe.N != 1 || len(fe.Services) != 1 || fe.Services[0].Dir != dir || fe.Services[0].Reason != r {
		t.Fatalf("Wait = %v (%#v), want one failure of %s: %v", err, err, dir, r)
	}
	return fe
}

// TestNoSupervisor: a directory nobody supervises fails at once unless it
// is already in the wanted state (s6-svwait would wait forever).
func TestNoSupervisor(t *testing.T) {
	tests := []struct {
		st   servicedir.Status
		goal Goal
		fail bool
	}{
		{stDown, Up, true},
		{stUp, UpReady, true},
		{stDown, DownReady, true}, // finishing, without anyone to finish
		{stUp, Up, false},
		{stUpReady, Up, false}, // unlike s6's 'x' rule, up and ready is up
		{stDownReady, Down, false},
		{stDownReady, Restart, true}, // down already, but nobody will start it
		{stUpReady, RestartReady, true},
	}
	for _, tt := range tests {
		f := newUnsupervised(t, tt.st)
		start := time.Now()
		err := Wait(testCtx(t), []string{f.dir}, tt.goal, All)
		switch {
		case !tt.fail && err != nil:
			t.Errorf("goal %d on %+v: %v, want nil", tt.goal, tt.st, err)
		case tt.fail:
			fe := failedWith(t, err, f.dir, NoSupervisor)
			if want := f.dir + ": supervisor not running: "; len(fe.Error()) < len(want) || fe.Error()[:len(want)] != want {
				t.Errorf("message %q, want prefix %q", fe.Error(), want)
			}
		}
		if d := time.Since(start); d > noticeBound {
			t.Errorf("goal %d: took %v", tt.goal, d)
		}
	}
}

// TestSupervisorKilled: a supervisor SIGKILLed during a wait ends it at
// once with SupervisorDied, whether it is gosv-like (OFD lock and record)
// or s6-like (POSIX lock).
func TestSupervisorKilled(t *testing.T) {
	for _, mode := range []string{"ofd", "posix"} {
		t.Run(mode, func(t *testing.T) {
			f := newUnsupervised(t, stUp)
			h := startHelper(t, mode, f.dir)
			w := listen(t, UpReady, All, f)
			res := waitAsync(testCtx(t), w)
			killed := time.Now()
			if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			err := <-res
			if d := time.Since(killed); d > noticeBound {
				t.Errorf("death noticed after %v", d)
			}
			fe := failedWith(t, err, f.dir, SupervisorDied)
			if want := f.dir + ": supervisor died: up, not ready"; fe.Error() != want {
				t.Errorf("message %q, want %q", fe.Error(), want)
			}
		})
	}
}

// TestSupervisorDiesAfterEvents: the events a supervisor sent before it
// died are applied before its death, so a wait its last events satisfy
// succeeds, and one they do not fails.
func TestSupervisorDiesAfterEvents(t *testing.T) {
	tests := []struct {
		goal Goal
		fail bool
	}{
		{DownReady, false},
		{UpReady, true},
	}
	for _, tt := range tests {
		f := newUnsupervised(t, stUp)
		h := startHelper(t, "ofd", f.dir)
		w := listen(t, tt.goal, All, f)
		res := waitAsync(testCtx(t), w)
		if _, err := h.stdin.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		err := <-res
		if !tt.fail && err != nil {
			t.Errorf("goal %d: %v, want nil", tt.goal, err)
		}
		if tt.fail {
			failedWith(t, err, f.dir, SupervisorDied)
		}
	}
}

// TestSupervisorDiesBetweenListenAndWait: a pidfd opened by Listen sees a
// death that happens before Wait.
func TestSupervisorDiesBetweenListenAndWait(t *testing.T) {
	f := newUnsupervised(t, stDown)
	h := startHelper(t, "posix", f.dir)
	w := listen(t, Up, All, f)
	h.cmd.Process.Kill()
	h.cmd.Wait()
	failedWith(t, w.Wait(testCtx(t)), f.dir, SupervisorDied)
}

// TestSupervisorDeathAnyMode: with -o, another service reaching the goal
// first wins; the dead one is reported only when it comes first.
func TestSupervisorDeathAnyMode(t *testing.T) {
	a := newUnsupervised(t, stDown)
	h := startHelper(t, "ofd", a.dir)
	b := newFakeSup(t, stDown)
	w := listen(t, Up, Any, a, b)
	res := waitAsync(testCtx(t), w)
	b.emit("u", stUp)
	if err := <-res; err != nil {
		t.Fatalf("any: %v", err)
	}
	b.set(stDown)
	w = listen(t, Up, Any, a, b)
	res = waitAsync(testCtx(t), w)
	h.cmd.Process.Kill()
	failedWith(t, <-res, a.dir, SupervisorDied)
}
