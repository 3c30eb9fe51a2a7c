package spawner

import (
	"os"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// A helper killed between its fork and its reply leaves a run that it
// started and never named. With CLONE_PARENT that run is the caller's
// child, a session leader (setsid) whose cwd is the request's directory,
// all three set before its execve; a Go fork+exec returns only after the
// execve, so a helper killed after that point left a run that already
// shows them. Start then looks once through /proc for it and returns it
// as the spawned run, instead of letting the caller start the service a
// second time.
//
// NOTE: a helper killed during its vfork wait (before the child's execve)
// may leave a child that has not yet called setsid or chdir: the walk
// misses it, and the service is started again as before. That window is
// the child's few system calls before execve, not the whole exchange.

// bootTicks is now in the clock of /proc/PID/stat's start time: clock
// ticks (USER_HZ, 100 on Linux) since boot.
func bootTicks() uint64 {
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0
	}
	return uint64(ts.Nano()) / 1e7
}

// lostRun returns the one child of this process that is a session leader
// in directory dir, started no earlier than since (bootTicks), and that
// known does not claim; 0 when there is none or more than one (which
// cannot be told apart: the caller spawns again, as without the walk).
func lostRun(dir string, since uint64, known func(pid int) bool) int {
	var want unix.Stat_t
	if unix.Stat(dir, &want) != nil {
		return 0
	}
	d, err := os.Open("/proc")
	if err != nil {
		return 0
	}
	defer d.Close()
	names, _ := d.Readdirnames(-1)
	self, found := os.Getpid(), 0
	for _, n := range names {
		pid, err := strconv.Atoi(n)
		if err != nil || pid == self {
			continue
		}
		st, err := servicedir.ReadProcStat(pid)
		if err != nil || st.Ppid != self || st.Sid != pid || st.StartTime < since || st.State == 'Z' {
			continue
		}
		var cwd unix.Stat_t
		if unix.Stat("/proc/"+n+"/cwd", &cwd) != nil || cwd.Dev != want.Dev || cwd.Ino != want.Ino {
			continue
		}
		if known != nil && known(pid) {
			continue
		}
		if found != 0 {
			return 0
		}
		found = pid
	}
	return found
}
