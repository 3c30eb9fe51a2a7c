package scan

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdwait"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
	"github.com/gosv/gosv/internal/svctl"
	"github.com/gosv/gosv/svwait"
)

// The ring of child pidfds (runfds.go) with real children, in a loop of
// this process that has no signal forwarder: a death it handles can only
// have come through a pidfd, or through a sweep the test calls.
//
// NOTE: not parallel: the sweep (reapAll) is wait4(-1) in the test
// process, which would also reap other tests' children.

// newRealLoop is a loop with an epoll set, a trace file and a ring of k
// pidfds, over n services (temporary directories) whose ./run exits 3 at
// once, forked for real.
func newRealLoop(t *testing.T, k, n int) (*loop, []*service, string) {
	ep, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	trace := filepath.Join(t.TempDir(), "trace")
	tfd, err := unix.Open(trace, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	var svcs []*service
	var l *loop
	for i := 0; i < n; i++ {
		var s *service
		l, s, _ = newExecLoop(t, &fakeSys{t: t}, servicedir.RunFile)
		os.WriteFile(filepath.Join(s.dir, servicedir.RunFile), []byte("#!/bin/sh\nexit 3\n"), 0o755)
		svcs = append(svcs, s)
	}
	// One loop for all: newExecLoop made one each, keep the last.
	l.ep, l.trace, l.sys = ep, tfd, kernel{}
	l.runFds.slots = make([]runFd, k)
	t.Cleanup(func() {
		for pid := range l.byPid { // zombies or soon: each ./run exits at once
			unix.Wait4(pid, nil, 0, nil)
		}
		for fd := range l.fds {
			unix.Close(int(fd))
		}
		unix.Close(ep)
		unix.Close(tfd)
	})
	return l, svcs, trace
}

// up starts s (the 'u' letter) and returns its run's pid.
func up(t *testing.T, l *loop, s *service) int {
	t.Helper()
	l.feed(s, supervise.Event{Kind: supervise.EvCtl, Byte: 'u'})
	if s.m.Pid <= 0 || l.byPid[s.m.Pid] != s {
		t.Fatalf("no run spawned: %+v", s.m)
	}
	return s.m.Pid
}

// turnsUntil turns the loop until cond holds, up to the test's deadline.
func turnsUntil(t *testing.T, l *loop, cond func() bool) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	if d, ok := t.Deadline(); ok && d.Before(end) {
		end = d
	}
	for !cond() {
		left := time.Until(end)
		if left <= 0 {
			t.Fatal("condition not met by the deadline")
		}
		l.turn(int(left / time.Millisecond))
	}
}

// pidfdReaps counts the trace's reap lines of pid: through a pidfd, and
// through the sweep.
func pidfdReaps(t *testing.T, trace string, pid int) (viaPidfd, viaSweep int) {
	t.Helper()
	b, err := os.ReadFile(trace)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.HasPrefix(line, "ev=reap pid="+strconv.Itoa(pid)+" ") {
			continue
		}
		if strings.HasSuffix(line, " via=pidfd") {
			viaPidfd++
		} else {
			viaSweep++
		}
	}
	return
}

// deaths is the number of death_tally records of s.
func deaths(t *testing.T, s *service) int {
	t.Helper()
	d, err := servicedir.ReadDeathTally(s.dir)
	if err != nil {
		t.Fatal(err)
	}
	return len(d)
}

// TestDeathThroughPidfd: a run's death reaches its machine, with its
// status, with no SIGCHLD at all: the loop woke on the run's pidfd and
// reaped it with waitid(P_PIDFD).
func TestDeathThroughPidfd(t *testing.T) {
	l, svcs, trace := newRealLoop(t, 4, 1)
	s := svcs[0]
	pid := up(t, l, s)
	if s.rslot == 0 || l.trackedPid(s) != pid {
		t.Fatalf("run %d has no pidfd (slot %d)", pid, s.rslot)
	}
	turnsUntil(t, l, func() bool { return l.byPid[pid] == nil })
	if s.m.Wstat != 3<<8 || deaths(t, s) != 1 {
		t.Errorf("after the death: wstat %#x, %d death_tally records; want exit 3, 1", s.m.Wstat, deaths(t, s))
	}
	if p, w := pidfdReaps(t, trace, pid); p != 1 || w != 0 {
		t.Errorf("reaped %d times through its pidfd, %d by the sweep; want 1, 0", p, w)
	}
	if s.rslot != 0 || countKind(l, fdRun) != 0 {
		t.Errorf("pidfd kept after the reap: slot %d, %d registered", s.rslot, countKind(l, fdRun))
	}
}

// TestSweepFirst: the sweep reaps a dead run whose pidfd is registered
// (SIGCHLD handled before its pidfd's event was read). The pidfd is
// released with the reap, the death is fed once, and no later turn sees
// it again.
func TestSweepFirst(t *testing.T) {
	l, svcs, trace := newRealLoop(t, 4, 1)
	s := svcs[0]
	pid := up(t, l, s)
	fd := l.runFds.slots[s.rslot-1].fd
	waitReadable(t, fd) // dead, not reaped
	l.reapAll()
	if s.rslot != 0 || countKind(l, fdRun) != 0 {
		t.Fatalf("the sweep left the pidfd registered: slot %d", s.rslot)
	}
	if _, ok := l.fds[int32(fd)]; ok {
		t.Fatal("pidfd still in the loop's table")
	}
	l.turn(0) // closes the released fd; nothing more to see
	l.turn(0)
	if d := deaths(t, s); d != 1 {
		t.Errorf("%d deaths fed, want 1", d)
	}
	if p, w := pidfdReaps(t, trace, pid); p != 0 || w != 1 {
		t.Errorf("reaped %d times through its pidfd, %d by the sweep; want 0, 1", p, w)
	}
}

// TestPidfdBeforeSweep: in one batch holding both a run's pidfd and
// SIGCHLD, the pidfd reaps the run and the sweep after it finds nothing
// of it: one death.
func TestPidfdBeforeSweep(t *testing.T) {
	l, svcs, trace := newRealLoop(t, 4, 1)
	ev, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	l.evfd = ev
	l.register(ev, fdOwner{kind: fdSignal})
	s := svcs[0]
	pid := up(t, l, s)
	waitReadable(t, l.runFds.slots[s.rslot-1].fd)
	l.pendSig.Or(1 << uint(unix.SIGCHLD)) // as the forwarder does
	unix.Write(ev, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	l.turn(0)
	if d := deaths(t, s); d != 1 {
		t.Errorf("%d deaths fed, want 1", d)
	}
	if p, w := pidfdReaps(t, trace, pid); p != 1 || w != 0 {
		t.Errorf("reaped %d times through its pidfd, %d by the sweep; want 1, 0", p, w)
	}
}

// TestRingBound: only the last k spawns hold a pidfd; an older run lost
// its pidfd when the ring came round, and is reaped by the sweep.
func TestRingBound(t *testing.T) {
	const k = 2
	l, svcs, trace := newRealLoop(t, k, 3)
	var pids []int
	for _, s := range svcs {
		pids = append(pids, up(t, l, s))
	}
	if n := countKind(l, fdRun); n != k {
		t.Fatalf("%d pidfds registered for 3 spawns, want %d", n, k)
	}
	if svcs[0].rslot != 0 || l.trackedPid(svcs[1]) != pids[1] || l.trackedPid(svcs[2]) != pids[2] {
		t.Fatalf("ring holds the wrong runs: slots %d %d %d", svcs[0].rslot, svcs[1].rslot, svcs[2].rslot)
	}
	turnsUntil(t, l, func() bool { return l.byPid[pids[1]] == nil && l.byPid[pids[2]] == nil })
	if l.byPid[pids[0]] == nil {
		t.Fatal("the run without a pidfd was reaped without a sweep")
	}
	l.reapAll()
	for i, pid := range pids {
		p, w := pidfdReaps(t, trace, pid)
		if want := i > 0; (p == 1) != want || p+w != 1 {
			t.Errorf("run %d: reaped %d times through its pidfd, %d by the sweep", i, p, w)
		}
	}
}

// TestEvictionCloses: a pidfd the ring lets go is closed at once (a
// turn that spawns thousands must not hold them all), except when the
// batch being handled has an event of it: then at the batch's end, so
// that its number is not reused for another fd while that event waits.
func TestEvictionCloses(t *testing.T) {
	l, svcs, _ := newRealLoop(t, 1, 3)
	open := func(fd int) bool {
		_, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		return err == nil
	}
	up(t, l, svcs[0])
	fd0 := l.runFds.slots[svcs[0].rslot-1].fd
	l.events[0] = unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd0)}
	l.nev = 1 // as in a turn whose batch reported fd0
	up(t, l, svcs[1])
	l.nev = 0
	if svcs[0].rslot != 0 || !open(fd0) || len(l.closing) != 1 || l.closing[0] != fd0 {
		t.Fatalf("fd %d reported in the batch: open %v, closing %v; want open until the batch's end", fd0, open(fd0), l.closing)
	}
	up(t, l, svcs[2])
	// fd0 (closed at the batch's end) and svcs[2]'s.
	if n := pidfds(t, os.Getpid()); n != 2 || len(l.closing) != 1 {
		t.Fatalf("%d pidfds open, closing %v; want svcs[1]'s closed at once", n, l.closing)
	}
}

// TestRestartReapedThroughPidfd: in a real scanner (with its signal
// forwarder), a killed run is reaped through its pidfd, and a ring of
// none (RunPidfds < 0) leaves every death to the sweep.
func TestRestartReapedThroughPidfd(t *testing.T) {
	for _, tc := range []struct {
		ring string
		via  string
	}{{"", "via=pidfd"}, {"-1", ""}} {
		trace := filepath.Join(t.TempDir(), "trace")
		t.Setenv("GOSV_TRACE", trace)
		t.Setenv("GOSV_TEST_RUN_PIDFDS", tc.ring)
		scan := t.TempDir()
		tr := startScanner(t, scan)
		svc := link(t, scan, mksvc(t, scan, "a", pauseRun, nil))
		waitFor(t, svc, svwait.Up)
		pid := status(t, svc).Pid
		w, _ := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
		unix.Kill(pid, unix.SIGKILL)
		if err := w.Wait(deadline(t)); err != nil {
			t.Fatal(err)
		}
		w.Close()
		waitFor(t, svc, svwait.Up)
		b, _ := os.ReadFile(trace)
		var line string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(l, "ev=reap pid="+strconv.Itoa(pid)+" ") {
				line = l
			}
		}
		if got := strings.HasSuffix(line, " via=pidfd"); line == "" || got != (tc.via != "") {
			t.Errorf("ring %q: reap of the killed run traced as %q, want via %q", tc.ring, line, tc.via)
		}
		tr.stop()
	}
}

// TestForkingDaemonReapedThroughPidfd: a forking service's daemon, our
// child once its launcher exited, gets a pidfd of the ring too: its
// death is reaped through it.
func TestForkingDaemonReapedThroughPidfd(t *testing.T) {
	trace := filepath.Join(t.TempDir(), "trace")
	t.Setenv("GOSV_TRACE", trace)
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fd", "ok", nil)
	tr := startScanner(t, scan)
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	pid := status(t, svc).Pid
	if pid != pidIn(t, pidfile) {
		t.Fatalf("status pid %d, pidfile %d", pid, pidIn(t, pidfile))
	}
	w, err := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	unix.Kill(pid, unix.SIGKILL)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if p, s := pidfdReaps(t, trace, pid); p != 1 || s != 0 {
		t.Errorf("daemon %d reaped %d times through its pidfd, %d by the sweep; want 1, 0", pid, p, s)
	}
	tr.stop()
}

func countKind(l *loop, k fdKind) int {
	n := 0
	for _, o := range l.fds {
		if o.kind == k {
			n++
		}
	}
	return n
}

// waitReadable blocks until fd is readable (a pidfd: its process died),
// up to the test's deadline.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	end, _ := t.Deadline()
	if !fdwait.Readable(fd, end) {
		t.Fatalf("fd %d not readable by the deadline", fd)
	}
}

// TestReexecAdoptsChildrenWithoutPidfds: the runs a re-exec'd image
// adopts are its children: reaped like any run, with their status, and
// holding no pidfd each (a fourth descriptor per service, which made a
// re-exec of ~5000 services fail to adopt some with EMFILE and start
// them twice); only the ring's few.
func TestReexecAdoptsChildrenWithoutPidfds(t *testing.T) {
	const ring, n = 2, 6
	t.Setenv("GOSV_TEST_RUN_PIDFDS", strconv.Itoa(ring))
	scan := t.TempDir()
	tr := startScanner(t, scan)
	var dirs []string
	for i := 0; i < n; i++ {
		dirs = append(dirs, link(t, scan, mksvc(t, scan, "s"+strconv.Itoa(i), pauseRun, nil)))
	}
	if err := svwait.Wait(deadline(t), dirs, svwait.Up, svwait.All); err != nil {
		t.Fatal(err)
	}
	if err := svctl.Svscanctl(scan, []byte{svctl.ReexecLetter}); err != nil {
		t.Fatal(err)
	}
	// A pidfd per adopted run would be n of them.
	if got := pidfds(t, tr.cmd.Process.Pid); got > ring {
		t.Errorf("%d pidfds after the re-exec for %d runs, want at most %d (the ring)", got, n, ring)
	}
	for _, d := range dirs {
		pid := status(t, d).Pid
		w, err := svwait.Listen([]string{d}, svwait.Down, svwait.All)
		if err != nil {
			t.Fatal(err)
		}
		unix.Kill(pid, unix.SIGKILL)
		if err := w.Wait(deadline(t)); err != nil {
			t.Fatal(err)
		}
		w.Close()
		waitFor(t, d, svwait.Up)
		if st := status(t, d); st.Pid == pid || st.Wstat != uint16(unix.SIGKILL) {
			t.Errorf("%s after SIGKILL of %d: %+v", d, pid, st)
		}
	}
	tr.stop()
}

// pidfds counts the pidfds process pid holds.
func pidfds(t *testing.T, pid int) int {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	d, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range d {
		if l, _ := os.Readlink(filepath.Join(dir, e.Name())); l == "anon_inode:[pidfd]" {
			n++
		}
	}
	return n
}
