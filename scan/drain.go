package scan

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// Group draining (ActWatchGroup): a dead run's process group is part of
// the service until its last member is gone, so the machine waits for
// EvGroupEmpty before it announces D and restarts. Members are watched by
// pidfd, which works whether or not they are our children (they are not
// when the run was adopted); a member that dies sends the loop back here.

// watchGroup starts watching the process group of a dead run: one pidfd
// per live member. An empty group is reported at once.
func (l *loop) watchGroup(s *service) {
	members, empty := l.groupState(s)
	if empty {
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvGroupEmpty})
		return
	}
	s.draining = true
	l.draining = append(l.draining, s)
	l.watchMembers(s, members)
}

// groupState is [groupState] of the run's group and, for a forking
// daemon, of its own group (supervise.Machine.OwnGroup) and, for a
// cancelled launch's daemon, of the group it was found in (DaemonGroup).
func (l *loop) groupState(s *service) (members []int, empty bool) {
	members, empty = l.sys.groupState(s.m.Pgid)
	for _, g := range [2]int{s.m.OwnGroup, s.m.DaemonGroup} {
		if g > 0 && g != s.m.Pgid {
			more, none := l.sys.groupState(g)
			members, empty = append(members, more...), empty && none
		}
	}
	return members, empty
}

// groupState says whether process group pgid has live members and, when
// it may, lists them. kill(-pgid, 0) answers the common case without
// reading /proc; only when it finds members is /proc read, because
// zombies count for kill(2) and zombies whose parent is not us (adopted
// services) are dead for our purpose.
func groupState(pgid int) (members []int, empty bool) {
	if pgid <= 0 || unix.Kill(-pgid, 0) == unix.ESRCH {
		return nil, true
	}
	members = liveGroupMembers(pgid)
	return members, len(members) == 0
}

// watchMembers opens a pidfd on each member.
func (l *loop) watchMembers(s *service, members []int) {
	for _, pid := range members {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		s.group = append(s.group, fd)
		l.register(fd, fdOwner{kind: fdGroup, svc: s, pid: pid})
	}
}

// checkGroup re-examines a draining group after a member died.
func (l *loop) checkGroup(s *service) {
	if !s.draining {
		return
	}
	members, empty := l.groupState(s)
	if !empty {
		if len(s.group) == 0 {
			// Every watched member died but the group lives on: members
			// forked after the last look. Watch those.
			l.watchMembers(s, members)
		}
		return
	}
	l.stopDraining(s)
	l.feed(s, supervise.Event{Kind: supervise.EvGroupEmpty})
}

// dropGroupFd forgets the pidfd of a member that died.
func (s *service) dropGroupFd(fd int) {
	for i, g := range s.group {
		if g == fd {
			s.group = append(s.group[:i], s.group[i+1:]...)
			return
		}
	}
}

// stopDraining takes s off the list of services whose group drains.
func (l *loop) stopDraining(s *service) {
	if !s.draining {
		return
	}
	s.draining = false
	for i, x := range l.draining {
		if x == s {
			l.draining = append(l.draining[:i], l.draining[i+1:]...)
			break
		}
	}
	for _, fd := range s.group {
		l.release(fd)
	}
	s.group = s.group[:0]
}

// liveGroupMembers lists the pids whose process group is pgid (/proc/PID/stat
// field 5), zombies excluded. Called only when a dead run left members behind.
func liveGroupMembers(pgid int) []int {
	d, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range d {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := servicedir.ReadProcStat(pid); err == nil && st.Pgrp == pgid && st.State != 'Z' {
			out = append(out, pid)
		}
	}
	return out
}
