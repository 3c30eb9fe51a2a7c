package scan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// The executor through its seam (sys.go), as dinit's proctests do: feed
// and do run for real on a temporary service directory, while a fake
// starts no process, sends no signal and keeps the clock. Each case
// checks the order of the calls the executor made.

// fakePid0: fake pids start above PID_MAX_LIMIT (2^22), so no real
// process can ever have one (the executor reads /proc for its pid record).
const fakePid0 = 1 << 22

// fakeSys records the executor's calls in order.
type fakeSys struct {
	t       *testing.T
	clock   time.Time
	last    int                     // the last pid started
	calls   []string                // "start ./finish 3 0 tally=1", "kill -#100 15"
	fail    map[string]error        // start of this path fails so
	members map[int][]int           // process groups with live members
	tick    time.Duration           // the clock moves this much at each reading
	onStart func(p *supervise.Proc) // called at each start, before it
}

func (f *fakeSys) start(p *supervise.Proc) (int, error) {
	if f.onStart != nil {
		f.onStart(p)
	}
	call := "start " + p.Path
	if p.Path == "./"+servicedir.FinishFile {
		// What finish would find in death_tally at its start.
		d, _ := servicedir.ReadDeathTally(p.Dir)
		call = fmt.Sprintf("start %s tally=%d", strings.Join(append([]string{p.Path}, p.Argv[1:3]...), " "), len(d))
	}
	if err := f.fail[p.Path]; err != nil {
		f.calls = append(f.calls, call+": "+unix.ErrnoName(err.(syscall.Errno)))
		return -1, err
	}
	f.calls = append(f.calls, call)
	if f.last == 0 {
		f.last = fakePid0
	}
	f.last++
	return f.last, nil
}

func (f *fakeSys) kill(pid int, sig unix.Signal) error {
	if pid == 0 {
		f.t.Errorf("kill(0, %d): that is the scanner's own group", sig)
	}
	// Rendered relative to fakePid0: "kill -#100 15" is SIGTERM to the
	// group of fakePid0+100.
	group := ""
	if pid < 0 {
		group, pid = "-", -pid
	}
	f.calls = append(f.calls, fmt.Sprintf("kill %s#%d %d", group, pid-fakePid0, sig))
	return nil
}

func (f *fakeSys) groupState(pgid int) ([]int, bool) {
	m := f.members[pgid]
	return m, len(m) == 0
}

func (f *fakeSys) now() time.Time {
	t := f.clock
	f.clock = f.clock.Add(f.tick)
	return t
}

// newExecLoop is a supervise-mode loop over a temporary service directory
// holding files (each an executable script), with f as its seam.
func newExecLoop(t *testing.T, f *fakeSys, files ...string) (*loop, *service, *bytes.Buffer) {
	dir := t.TempDir()
	for _, name := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := servicedir.MkdirPrivate(filepath.Join(dir, servicedir.SuperviseDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := servicedir.MakeEventDir(filepath.Join(dir, servicedir.EventDir), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(ino) })
	var out bytes.Buffer
	l := &loop{cfg: Config{Prog: "test", Stderr: &out}, ep: -1, evfd: -1, ino: ino,
		fds: map[int32]fdOwner{}, byPid: map[int]*service{}, wds: map[int32]*service{}, pidWatch: map[int32][]*service{},
		checks: map[int]*service{}, devnull: -1, trace: -1, sys: f}
	s := &service{dir: dir, dirfd: -1, path: dir, name: "svc", ctl: -1, notify: -1, pidfd: -1, wd: -1,
		stdin: -1, stdout: -1, sdfd: -1, checkFd: -1}
	s.launch.wd = -1
	s.m.Cfg = l.config(s)
	l.single = s
	return l, s, &out
}

// pid stands for the last pid the fake started (0 for none) in the
// cases' events; fakePid0+n for the others.
const lastPid = -1

func TestExecutorOrder(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	run, finish := servicedir.RunFile, servicedir.FinishFile
	upRun := func(m *supervise.Machine) {
		m.State, m.WantUp, m.Pid, m.Pgid, m.SpawnedAt, m.Stamp = supervise.Up, true, fakePid0+100, fakePid0+100, t0.Add(-time.Hour), t0
	}
	wantDown := func(m *supervise.Machine) { upRun(m); m.WantUp = false }
	exitOf := func(pid, ws int) supervise.Event {
		return supervise.Event{Kind: supervise.EvExit, Pid: pid, Wstat: uint16(ws)}
	}
	ctl := func(b byte) supervise.Event { return supervise.Event{Kind: supervise.EvCtl, Byte: b} }
	type step struct {
		after time.Duration // clock advance before the event
		e     supervise.Event
	}
	for _, tc := range []struct {
		name  string
		files []string
		m     func(*supervise.Machine)
		fail  map[string]error
		live  map[int][]int
		steps []step
		calls string
		state supervise.State
		check func(l *loop, s *service, out string) string
	}{
		{"death with a finish: the tally holds the death before finish starts", []string{run, finish}, upRun, nil, nil,
			[]step{{0, exitOf(fakePid0+100, 3<<8)}, {time.Second, exitOf(lastPid, 0)}},
			"kill -#100 15 kill -#100 18 start ./finish 3 0 tally=1 start ./run", supervise.Up, nil},
		{"death without a finish: no fork, spawn-failed ends finishing", []string{run}, wantDown, nil, nil,
			[]step{{0, exitOf(fakePid0+100, 3<<8)}},
			"kill -#100 15 kill -#100 18", supervise.Down, func(l *loop, s *service, out string) string {
				if d, _ := servicedir.ReadDeathTally(s.dir); len(d) != 1 {
					return fmt.Sprintf("%d death_tally records at the end of the feed, want 1", len(d))
				}
				return ""
			}},
		{"death without a finish, wanted up: restarted at once", []string{run}, upRun, nil, nil,
			[]step{{0, exitOf(fakePid0+100, 0)}},
			"kill -#100 15 kill -#100 18 start ./run", supervise.Up, nil},
		{"finish that cannot start: spawn-failed, down", []string{run, finish}, wantDown,
			map[string]error{"./" + finish: unix.ENOEXEC}, nil,
			[]step{{0, exitOf(fakePid0+100, 0)}},
			"kill -#100 15 kill -#100 18 start ./finish 0 0 tally=1: ENOEXEC", supervise.Down, nil},
		{"group members left: drained, then down", []string{run}, wantDown, nil, map[int][]int{fakePid0 + 100: {fakePid0 + 101}},
			[]step{{0, exitOf(fakePid0+100, 0)}},
			"kill -#100 15 kill -#100 18", supervise.Finishing, func(l *loop, s *service, out string) string {
				if !s.draining || len(l.draining) != 1 {
					return "not draining"
				}
				l.sys.(*fakeSys).members = nil
				l.checkGroup(s)
				if s.draining || s.m.State != supervise.Down {
					return "still draining after the group emptied: " + s.m.State.String()
				}
				return ""
			}},
		{"exec failure: retried after RetryExec", []string{run}, nil, map[string]error{"./" + run: unix.ENOEXEC}, nil,
			[]step{{0, ctl('u')}},
			"start ./run: ENOEXEC", supervise.Down, func(l *loop, s *service, out string) string {
				return wantRetry(s, t0, supervise.RetryExec, false)
			}},
		{"fork failure: retried after RetryFork", []string{run}, nil, map[string]error{"./" + run: unix.EAGAIN}, nil,
			[]step{{0, ctl('u')}},
			"start ./run: EAGAIN", supervise.Down, func(l *loop, s *service, out string) string {
				return wantRetry(s, t0, supervise.RetryFork, false)
			}},
		{"./run missing: waits for it, no timer", nil, nil, map[string]error{"./" + run: unix.ENOENT}, nil,
			[]step{{0, ctl('u')}},
			"start ./run: ENOENT", supervise.Down, func(l *loop, s *service, out string) string {
				if !s.m.WaitRun || s.wd < 0 {
					return "not watching for ./run"
				}
				return wantRetry(s, t0, 0, false)
			}},
		{"./run executable yet ENOENT: one retry at once, then RetryExec", []string{run}, nil, map[string]error{"./" + run: unix.ENOENT}, nil,
			[]step{{0, ctl('u')}},
			"start ./run: ENOENT start ./run: ENOENT", supervise.Down, func(l *loop, s *service, out string) string {
				return wantRetry(s, t0, supervise.RetryExec, true)
			}},
		{"forking daemon with its own group: both groups signalled", []string{run}, func(m *supervise.Machine) {
			upRun(m)
			m.Pid, m.OwnGroup, m.Cfg.Forking = fakePid0+500, fakePid0+500, true
		}, nil, nil,
			[]step{{0, ctl('d')}},
			"kill -#500 15 kill -#100 15 kill -#500 18 kill -#100 18", supervise.Up, nil},
		{"forking daemon leading its group: one group", []string{run}, func(m *supervise.Machine) {
			upRun(m)
			m.Cfg.Forking = true
		}, nil, nil,
			[]step{{0, ctl('d')}},
			"kill -#100 15 kill -#100 18", supervise.Up, nil},
		{"early death: one report per start", []string{run}, nil, nil, nil,
			[]step{
				{0, ctl('u')}, {300 * time.Millisecond, exitOf(lastPid, 1<<8)}, // reported
				{700 * time.Millisecond, supervise.Event{Kind: supervise.EvTimeout}}, {100 * time.Millisecond, exitOf(lastPid, 1<<8)}, // the crash loop: not again
				{0, ctl('d')}, {time.Second, ctl('u')}, {100 * time.Millisecond, exitOf(lastPid, 1<<8)}, // a new start: reported
			},
			"start ./run kill -#1 15 kill -#1 18 start ./run kill -#2 15 kill -#2 18 start ./run kill -#3 15 kill -#3 18", supervise.Down,
			func(l *loop, s *service, out string) string {
				if n := strings.Count(out, "died"); n != 2 {
					return fmt.Sprintf("%d early-death reports for 2 starts:\n%s", n, out)
				}
				return ""
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeSys{t: t, clock: t0, fail: tc.fail, members: tc.live}
			l, s, out := newExecLoop(t, f, tc.files...)
			if tc.m != nil {
				tc.m(&s.m)
			}
			if s.m.State == supervise.Down {
				s.m.Ready = true
			}
			for _, st := range tc.steps {
				f.clock = f.clock.Add(st.after)
				e := st.e
				if e.Pid == lastPid {
					e.Pid = f.last
				}
				l.feed(s, e)
			}
			if got := strings.Join(f.calls, " "); got != tc.calls {
				t.Errorf("calls\n %q, want\n %q", got, tc.calls)
			}
			if s.m.State != tc.state {
				t.Errorf("state %s, want %s", s.m.State, tc.state)
			}
			if tc.check != nil {
				if msg := tc.check(l, s, out.String()); msg != "" {
					t.Error(msg)
				}
			}
		})
	}
}

// wantRetry checks the machine's retry deadline after a failed spawn at t0.
func wantRetry(s *service, t0 time.Time, delay time.Duration, retried bool) string {
	want := time.Time{}
	if delay > 0 {
		want = t0.Add(delay)
	}
	if !s.m.SpawnAt.Equal(want) || s.retried != retried {
		return fmt.Sprintf("SpawnAt %v retried %v, want %v %v", s.m.SpawnAt, s.retried, want, retried)
	}
	return ""
}

// TestDeathTallyStampIsTheStep: a death's death_tally record has the time
// of the machine step that handled the death, from which the respawn
// delay counts, even if the actions before it took time (the fake clock
// moves at each reading): two deaths are never closer in death_tally than
// the delay between them (TestPolicyBackoff saw 791 ms for 800 ms under
// load).
func TestDeathTallyStampIsTheStep(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f := &fakeSys{t: t, clock: t0, tick: time.Millisecond}
	l, s, _ := newExecLoop(t, f, servicedir.RunFile)
	if err := os.WriteFile(filepath.Join(s.dir, servicedir.RespawnDelayFile), []byte("200\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	s.m.Cfg = l.config(s)
	s.m.State, s.m.WantUp, s.m.Pid, s.m.Pgid, s.m.SpawnedAt, s.m.Stamp = supervise.Up, true, fakePid0+100, fakePid0+100, t0, t0
	l.byPid[s.m.Pid] = s
	l.feed(s, supervise.Event{Kind: supervise.EvExit, Pid: fakePid0 + 100, Wstat: 1 << 8})
	d, err := servicedir.ReadDeathTally(s.dir)
	if err != nil || len(d) != 1 {
		t.Fatalf("death tally %v, %v: want one death", d, err)
	}
	if step := s.m.Pol.Until.Add(-s.m.Pol.Delay); s.m.Pol.Until.IsZero() || !d[0].Stamp.Equal(step) {
		t.Fatalf("death stamped %v, the step that decided the respawn at %v ran at %v", d[0].Stamp, s.m.Pol.Until, step)
	}
}

func TestSpawnRetry(t *testing.T) {
	for _, tc := range []struct {
		err              error
		executable, prev bool
		delay            time.Duration
		retried          bool
		msg              retryMsg
	}{
		{unix.ENOENT, false, false, 0, false, retryWhenRunChanges},            // ./run missing: watch for it
		{unix.EACCES, false, true, 0, true, retryWhenRunChanges},              // not executable: watch; the flag stays
		{unix.ENOENT, true, false, 0, true, retryWhenRunChanges},              // just appeared: once at once
		{unix.ENOENT, true, true, supervise.RetryExec, true, retryOnTimer},    // missing interpreter: timer
		{unix.EACCES, true, true, supervise.RetryExec, true, retryOnTimer},    // noexec mount: timer
		{unix.ENOEXEC, true, false, supervise.RetryExec, false, retryOnTimer}, // bad format
		{unix.EAGAIN, true, false, supervise.RetryFork, false, retryOnTimer},  // fork failed
		{unix.ENOMEM, false, true, supervise.RetryFork, true, retryOnTimer},   // the flag is kept, unused
		{&os.PathError{Op: "fork/exec", Path: "./run", Err: unix.EMFILE}, true, false, supervise.RetryFork, false, retryOnTimer},
		{errors.New("other"), true, false, supervise.RetryExec, false, retryOnTimer},
	} {
		delay, retried, msg := spawnRetry(tc.err, tc.executable, tc.prev)
		if delay != tc.delay || retried != tc.retried || msg != tc.msg {
			t.Errorf("spawnRetry(%v, %v, %v) = %v, %v, %v; want %v, %v, %v", tc.err, tc.executable, tc.prev,
				delay, retried, msg, tc.delay, tc.retried, tc.msg)
		}
	}
}

func TestNeedsConfig(t *testing.T) {
	ev := func(k supervise.EventKind) supervise.Event { return supervise.Event{Kind: k} }
	ctl := func(b byte) supervise.Event { return supervise.Event{Kind: supervise.EvCtl, Byte: b} }
	for _, tc := range []struct {
		e    supervise.Event
		want bool
	}{
		{ev(supervise.EvTerm), true},
		{ev(supervise.EvExit), true},
		{ctl('d'), true},
		{ctl('D'), true},
		{ctl('r'), true},
		{ctl('u'), false},
		{ctl('x'), false},
		{ctl('t'), false},
		{ev(supervise.EvStart), false},
		{ev(supervise.EvTimeout), false},
		{ev(supervise.EvSpawned), false},
		{ev(supervise.EvGroupEmpty), false},
		{ev(supervise.EvHup), false},
		{ev(supervise.EvDaemon), false},
	} {
		if got := needsConfig(tc.e); got != tc.want {
			t.Errorf("needsConfig(%v %q) = %v, want %v", tc.e.Kind, tc.e.Byte, got, tc.want)
		}
	}
}

// TestKillNeverZero: an ActKill of pid 0 (a machine bug, or a group not
// known yet) sends nothing: kill(0) and kill(-0) signal the scanner's own
// process group.
func TestKillNeverZero(t *testing.T) {
	f := &fakeSys{t: t}
	l, s, _ := newExecLoop(t, f)
	for _, group := range []bool{false, true} {
		l.do(s, &supervise.Action{Kind: supervise.ActKill, Pid: 0, Sig: unix.SIGTERM, Group: group})
	}
	if len(f.calls) != 0 {
		t.Errorf("calls %q, want none", f.calls)
	}
}

// TestStatusWrittenOnceAtStart: a start that spawns at once writes the
// status once (one new file, one inode), after the spawn, with the
// spawned run's content, and still announces s then u, each after it.
// A directory whose status on disk may name a pid (not known to be down)
// keeps the write before the spawn, which the look for orphaned runs
// needs (orphans.go).
func TestStatusWrittenOnceAtStart(t *testing.T) {
	for _, tc := range []struct {
		downOnDisk bool
		writes     int
	}{{true, 1}, {false, 2}} {
		t.Run(fmt.Sprint("downOnDisk=", tc.downOnDisk), func(t *testing.T) {
			f := &fakeSys{t: t, clock: time.Date(2026, 12, 5, 4, 0, 0, 0, time.UTC)}
			l, s, _ := newExecLoop(t, f, servicedir.RunFile)
			s.downOnDisk, s.diskWantUp = tc.downOnDisk, true // as start makes it with no down file
			ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
			if err != nil {
				t.Fatal(err)
			}
			defer unix.Close(ino)
			// NOTE: IN_CREATE too: the kernel merges an event identical to
			// the one before it in the queue, cookie aside (two renames
			// onto status in a row would read as one).
			if _, err := unix.InotifyAddWatch(ino, filepath.Join(s.dir, servicedir.SuperviseDir), unix.IN_MOVED_TO|unix.IN_CREATE); err != nil {
				t.Fatal(err)
			}
			sub, err := servicedir.Subscribe(s.dir)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			s.m.WantUp = true
			l.feed(s, supervise.Event{Kind: supervise.EvStart})

			writes := 0
			buf := make([]byte, 4096)
			for {
				n, err := unix.Read(ino, buf)
				if err != nil || n <= 0 {
					break
				}
				for off := 0; off < n; {
					ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
					name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)]), "\x00")
					if ev.Mask&unix.IN_MOVED_TO != 0 && name == filepath.Base(servicedir.StatusPath) {
						writes++
					}
					off += unix.SizeofInotifyEvent + int(ev.Len)
				}
			}
			if writes != tc.writes {
				t.Errorf("status written %d times, want %d", writes, tc.writes)
			}
			st, err := servicedir.ReadStatus(s.dir)
			if err != nil || st.Pid != f.last || !st.WantUp || st.Ready {
				t.Errorf("status after the start: %+v, %v; want up with pid %d, not ready", st, err, f.last)
			}
			sub.File.SetReadDeadline(time.Now().Add(5 * time.Second))
			var got []byte
			for len(got) < 2 {
				n, err := sub.File.Read(buf)
				if err != nil {
					t.Fatalf("events so far %q: %v", got, err)
				}
				got = append(got, buf[:n]...)
			}
			if string(got) != "su" {
				t.Errorf("events %q, want \"su\"", got)
			}
		})
	}
}

// TestStatusAtSpawnKeepsWantUp: the status on disk when run is forked is
// what a scanner SIGKILLed right after the fork leaves to the next one,
// which adopts the run with that status's want-up (resolveOrphans). The
// held status may skip the write before the spawn only when the status
// on disk already says what it would: after d, a u must have "want up"
// on disk before the fork, or the adopted run is wanted down and not
// restarted when it dies.
func TestStatusAtSpawnKeepsWantUp(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		ctl  byte
		want bool
	}{{'u', true}, {'o', false}} {
		t.Run(string(c.ctl), func(t *testing.T) {
			f := &fakeSys{t: t, clock: t0}
			l, s, _ := newExecLoop(t, f, servicedir.RunFile)
			s.m.State, s.m.WantUp, s.m.Ready = supervise.Down, false, true
			l.writeStatus(s, &servicedir.Status{Stamp: t0, ReadyStamp: t0, Ready: true}) // down, want down
			seen := false
			f.onStart = func(p *supervise.Proc) {
				st, err := servicedir.ReadStatus(s.dir)
				if err != nil {
					t.Errorf("status at the fork of %s: %v", p.Path, err)
				}
				seen = true
				if st.WantUp != c.want {
					t.Errorf("status at the fork after %c: %+v, want up %v", c.ctl, st, c.want)
				}
			}
			l.feed(s, supervise.Event{Kind: supervise.EvCtl, Byte: c.ctl})
			if !seen || s.m.State != supervise.Up {
				t.Fatalf("run not started (state %s)", s.m.State)
			}
			if st, err := servicedir.ReadStatus(s.dir); err != nil || st.Pid != f.last || st.WantUp != c.want {
				t.Fatalf("status after the feed %+v (%v), want pid %d, want up %v", st, err, f.last, c.want)
			}
		})
	}
}
