package svwait

import (
	"path/filepath"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// Finding the supervisor of a service directory (PROTOCOL.md §8, §9):
//
//   - s6-supervise holds a classic POSIX lock on supervise/lock, so F_GETLK
//     names its pid;
//   - gosv holds an OFD lock, which F_GETLK reports with l_pid = -1, and
//     writes "PID STARTTIME" to supervise/gosv/supervisor after taking it.
//     The record is trusted only while the lock is held and /proc/PID/stat
//     shows the same start time, so that a stale record or a recycled pid
//     is never watched instead of the supervisor.
//
// A pidfd (pidfd_open, Linux 5.3) then turns the supervisor's death into a
// readable descriptor, without polling, and it cannot be fooled by pid
// reuse once open: the identity checks run after it is opened.

// identifyTries bounds the attempts when the lock changes hands while the
// supervisor is being identified.
const identifyTries = 3

// watchSupervisor finds the process supervising dir and opens a pidfd on
// it. running is false only when nobody holds supervise/lock (a missing lock
// file included). A supervisor that runs but cannot be identified or
// watched (a probe error, an OFD lock without a valid record, a kernel
// without pidfd_open) gives (-1, true): the wait then relies on events
// alone, as s6-svwait does, rather than fail on a check s6 does not make.
func watchSupervisor(dir string) (pidfd int, running bool) {
	lock := filepath.Join(dir, servicedir.LockPath)
	for range identifyTries {
		holder, err := servicedir.HolderPid(lock)
		switch {
		case err != nil:
			return -1, true
		case holder == 0:
			return -1, false
		}
		pid, start := holder, uint64(0)
		if holder < 0 {
			rec, err := servicedir.ReadRecord(dir, servicedir.SupervisorRecordPath)
			if err != nil {
				return -1, true
			}
			pid, start = rec.Pid, rec.StartTime
		}
		fd, err := unix.PidfdOpen(pid, 0)
		if err == unix.ESRCH {
			continue // gone since the probe (or a stale record): look again
		}
		if err != nil {
			return -1, true
		}
		if stillHolds(lock, holder, pid, start) {
			return fd, true
		}
		unix.Close(fd)
	}
	return -1, true
}

// stillHolds checks, with a pidfd on pid already open, that pid is the
// holder seen before: the same POSIX lock holder, or for an OFD lock
// (holder -1) a held lock and the recorded start time.
func stillHolds(lock string, holder, pid int, start uint64) bool {
	now, err := servicedir.HolderPid(lock)
	if err != nil || now != holder {
		return false
	}
	if holder > 0 {
		return true
	}
	st, err := servicedir.ProcStartTime(pid)
	return err == nil && st == start
}
