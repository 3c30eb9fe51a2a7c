package scan

import (
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/reap"
	"github.com/gosv/gosv/internal/supervise"
)

// Pidfds of the most recently spawned children (runs and finishes, and a
// forking service's daemon once it is our child), in the loop's epoll
// set: their deaths are reaped one by one, before the SIGCHLD sweep.
//
// Why: the sweep's wait4(-1) walks every child of the scanner in the
// kernel (wait_consider_task on each), newest last, so with 5000
// services a restart waited for a walk of 5000 before its fork (perf:
// a third of the scanner's samples, bench/README.md). A readable pidfd
// names the dead child at once, and waitid(P_PIDFD) looks at that child
// alone (Linux ≥ 5.14). It also wakes the loop straight from the kernel,
// without the signal forwarder's two goroutine hand-offs.
//
// Why bounded: a pidfd per run would be a fourth descriptor per service,
// and 5000 services would no longer fit in a hard RLIMIT_NOFILE of 20000
// (TestThreeFdsPerService). The services that restart often are the ones
// spawned most recently, so the last DefaultRunPidfds spawns keep theirs;
// any other child is reaped by the sweep, as before.
//
// Races: both ways reap through the one loop, so a child is reaped
// once. The sweep may reap a child whose pidfd is registered (it died
// before the pidfd's event was read): the sweep releases the pidfd then,
// and an event of it still in the batch finds no owner (loop.release).
// A pidfd whose child the sweep reaped, or that cannot be reaped yet,
// is released rather than kept: nothing is watched twice, and epoll
// never spins on it. A pidfd names one process for its life, so a
// recycled pid is never reaped in its place.

// DefaultRunPidfds is how many recently spawned children keep a pidfd
// (Config.RunPidfds).
const DefaultRunPidfds = 128

// runFds is a ring of the last len(slots) spawns: a new spawn takes the
// next slot, releasing the pidfd of the child spawned len(slots) spawns
// ago if it still lives. So the set is always the live children among
// the last len(slots) spawns, at O(1) per spawn.
type runFds struct {
	slots []runFd
	next  int
}

type runFd struct {
	svc *service // nil: free
	pid int
	fd  int
}

// trackChild gives pid, just spawned for s, a pidfd in the ring. s's
// previous child, if it still holds one, loses it (it has been reaped
// or left, whichever way it went).
func (l *loop) trackChild(s *service, pid int) {
	r := &l.runFds
	if len(r.slots) == 0 {
		return
	}
	l.untrackChild(s)
	if r.slots[r.next].svc != nil {
		l.untrackChild(r.slots[r.next].svc) // spawned len(slots) spawns ago
	}
	// NOTE: pid is our child and unreaped (only this loop reaps), so it
	// cannot have been recycled; a zombie's pidfd opens and is readable.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return // the sweep reaps it, as it does every untracked child
	}
	if l.register(fd, fdOwner{kind: fdRun, svc: s, pid: pid}) != nil {
		unix.Close(fd)
		return
	}
	r.slots[r.next] = runFd{svc: s, pid: pid, fd: fd}
	s.rslot = r.next + 1
	r.next = (r.next + 1) % len(r.slots)
}

// untrackChild releases s's pidfd, if it holds one.
//
// NOTE: closed at once unless the batch being handled holds an event of
// it (then at the batch's end, as loop.release does, so that its number
// is not reused within the batch): a turn that spawns thousands of
// services (a rescan), or a re-exec's setup adopting them, would
// otherwise keep every pidfd the ring let go open at the same time.
func (l *loop) untrackChild(s *service) {
	if s.rslot == 0 {
		return
	}
	sl := &l.runFds.slots[s.rslot-1]
	if l.inBatch(sl.fd) {
		l.release(sl.fd)
	} else {
		unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, sl.fd, nil)
		delete(l.fds, int32(sl.fd))
		unix.Close(sl.fd)
	}
	*sl = runFd{}
	s.rslot = 0
}

// inBatch reports whether the batch being handled has an event of fd.
func (l *loop) inBatch(fd int) bool {
	for i := 0; i < l.nev; i++ {
		if int(l.events[i].Fd) == fd {
			return true
		}
	}
	return false
}

// trackedPid is the pid of s's child that holds a pidfd, or 0.
func (l *loop) trackedPid(s *service) int {
	if s.rslot == 0 {
		return 0
	}
	return l.runFds.slots[s.rslot-1].pid
}

// childExited handles a readable pidfd of the ring: its child is reaped
// and handed to its machine as the sweep would.
func (l *loop) childExited(fd int, o fdOwner) {
	e, ok := reap.Pidfd(fd)
	l.untrackChild(o.svc)
	if !ok {
		return // not ours to reap now: the sweep will
	}
	l.reapedVia(e, "pidfd")
	l.reaped(e)
	l.recheckDraining()
}

// reapedVia traces a reap (GOSV_TRACE): "via=pidfd" when a pidfd of the
// ring found it, nothing when the sweep did.
func (l *loop) reapedVia(e reap.Exit, via string) {
	if l.trace < 0 {
		return
	}
	l.reapedAt = time.Now()
	if via == "" {
		l.traceEvent("reap", e.Pid, l.reapedAt)
		return
	}
	fmt.Fprintf(traceWriter(l.trace), "ev=reap pid=%d t=%d via=%s\n", e.Pid, l.reapedAt.UnixNano(), via)
}

// reaped routes one reaped child to its owner: a hook, a check, a health
// check, a service's run or finish; unknown pids are orphans reparented
// to us as subreaper (PID 1 is told of them).
func (l *loop) reaped(e reap.Exit) {
	if s, ok := l.hooks[e.Pid]; ok {
		l.hookExited(s, e)
		return
	}
	if s, ok := l.checks[e.Pid]; ok {
		delete(l.checks, e.Pid)
		l.checkExited(s, e)
		return
	}
	if l.healthExited(e) {
		return
	}
	s, ok := l.byPid[e.Pid]
	if !ok {
		if l.cfg.Init != nil {
			l.cfg.Init.Reaped(Ctl{l}, e)
		}
		return
	}
	delete(l.byPid, e.Pid)
	if l.trackedPid(s) == e.Pid {
		l.untrackChild(s) // the sweep found it first
	}
	if s.pidfd >= 0 && s.m.Pid == e.Pid {
		l.release(s.pidfd)
		s.pidfd = -1
	}
	l.feed(s, supervise.Event{Kind: supervise.EvExit, Pid: e.Pid, Wstat: reap.Wstat(e.Status)})
}
