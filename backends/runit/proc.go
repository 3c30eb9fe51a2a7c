package runit

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// findRunsvdir returns the pid of the runsvdir running on scanDir, or 0.
// runsvdir keeps no lock or pidfile of its own (OpenRC's init.d/runsvdir
// knows only its supervise-daemon's pid), so the processes are looked
// up by command line: argv[0] runsvdir and an operand that is scanDir.
// NOTE: a walk of /proc, a few hundred small reads: done once per start,
// stop or status, never per service of a tree.
func findRunsvdir(scanDir string) int {
	want, err := os.Stat(scanDir)
	if err != nil {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if isRunsvdirOn(pid, want) {
			return pid
		}
	}
	return 0
}

// isRunsvdirOn reports whether pid is a runsvdir whose scan directory is
// the directory of want.
func isRunsvdirOn(pid int, want os.FileInfo) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	if err != nil || string(bytes.TrimSpace(comm)) != Scanner {
		return false
	}
	cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(cmd), "\x00"), "\x00")
	for _, a := range args[1:] {
		if a == "-P" || a == "-H" {
			continue
		}
		// The first operand is the scan directory (runsvdir(8)); relative
		// to runsvdir's working directory.
		if !filepath.IsAbs(a) {
			cwd, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/cwd")
			if err != nil {
				return false
			}
			a = filepath.Join(cwd, a)
		}
		fi, err := os.Stat(a)
		return err == nil && os.SameFile(fi, want)
	}
	return false
}

// scannerProc is the runsvdir of a scan directory, with a pidfd on it:
// the wakes go through the pidfd, never to a bare pid that may have been
// recycled meanwhile.
type scannerProc struct{ pid, fd int }

// openScanner returns the runsvdir of the scan directory with a pidfd
// on it, or false. The pidfd is opened once the process is found, and
// the process is checked again to be a runsvdir on that directory.
func (b *Backend) openScanner() (scannerProc, bool) {
	pid := findRunsvdir(b.ScanDir)
	if pid <= 0 {
		return scannerProc{}, false
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return scannerProc{}, false
	}
	want, err := os.Stat(b.ScanDir)
	if err != nil || !isRunsvdirOn(pid, want) || exited(fd) {
		unix.Close(fd)
		return scannerProc{}, false
	}
	return scannerProc{pid: pid, fd: fd}, true
}

func (s scannerProc) close() { unix.Close(s.fd) }

// wake asks runsvdir to rescan its directory now rather than at its
// next 5-second check:
//
//   - Debian's runsvdir (2.1.2-35 and later, bug #933078) catches
//     SIGALRM and then rescans whatever the directory's mtime says,
//     without the one-second pause it takes when the directory changed
//     within the current second; upstream 2.1.2 does not catch it, and
//     SIGALRM would kill it: sent only when /proc/PID/status says it is
//     caught;
//   - but a signal does not end its wait (it polls again until its
//     deadline): a byte on its readproctitle log pipe does. runsvdir
//     reads that pipe (its fd 2 when it got a log argument, as OpenRC's
//     init.d/runsvdir gives it) and writes a dot there itself every 15
//     minutes to expire old messages: the backend writes the same dot.
//
// NOTE: runsvdir looks at its directory at most once a second
// (runsvdir.c's stampcheck): a wake within a second of its last look
// makes it read the dot and wait again, until its next 5-second check.
// Measured with strace (runsvdir 2.1.2-54): the pair made runsvdir start
// the runsv in 2 ms; the dot alone after the second of the directory's
// change had passed; a pair 0.4 s after a look only 5 s later. So a
// start wakes it once more a second later if runsv has not appeared
// (untilWaking). The signal goes through the pidfd; the pipe is opened
// through /proc/PID and written only if the pidfd's process still runs
// after the open, so that the pipe is that runsvdir's.
func (s scannerProc) wake() {
	if catches(s.pid, unix.SIGALRM) {
		unix.PidfdSendSignal(s.fd, unix.SIGALRM, nil, 0)
	}
	fd := "/proc/" + strconv.Itoa(s.pid) + "/fd/2"
	if l, err := os.Readlink(fd); err != nil || !strings.HasPrefix(l, "pipe:") {
		return
	}
	f, err := os.OpenFile(fd, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	defer f.Close()
	if !exited(s.fd) {
		f.Write([]byte{'.'})
	}
}

// catches reports whether pid has a handler for sig (SigCgt).
func catches(pid int, sig unix.Signal) bool {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "SigCgt:"); ok {
			mask, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && mask&(1<<(uint(sig)-1)) != 0
		}
	}
	return false
}

// flockHolder returns the pid holding a flock(2) lock on path (runsv's
// supervise/lock), from /proc/locks, or 0.
func flockHolder(path string) int {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return 0
	}
	dev := strconv.FormatUint(uint64(unix.Major(st.Dev)), 16) + ":" + strconv.FormatUint(uint64(unix.Minor(st.Dev)), 16)
	ino := strconv.FormatUint(st.Ino, 10)
	f, err := os.Open("/proc/locks")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// "1: FLOCK  ADVISORY  WRITE 21905 fe:00:9996126 0 EOF"
		fs := strings.Fields(sc.Text())
		if len(fs) < 6 || fs[1] != "FLOCK" {
			continue
		}
		parts := strings.Split(fs[5], ":")
		if len(parts) != 3 || parts[2] != ino || !sameDev(parts[0]+":"+parts[1], dev) {
			continue
		}
		pid, _ := strconv.Atoi(fs[4])
		return pid
	}
	return 0
}

// sameDev compares "maj:min" in hex, /proc/locks printing two digits at
// least ("fe:00") where FormatUint prints "fe:0".
func sameDev(a, b string) bool {
	pa, pb := strings.Split(a, ":"), strings.Split(b, ":")
	for i := range 2 {
		x, err1 := strconv.ParseUint(pa[i], 16, 32)
		y, err2 := strconv.ParseUint(pb[i], 16, 32)
		if err1 != nil || err2 != nil || x != y {
			return false
		}
	}
	return true
}

// parentPid returns the parent of pid, or 0.
func parentPid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0
	}
	fs := strings.Fields(string(b[i+1:]))
	if len(fs) < 2 {
		return 0
	}
	p, _ := strconv.Atoi(fs[1])
	return p
}

// WaitRunning waits until a runsvdir runs on the scan directory, or ctx
// ends: init.d/runsvdir's start_post, so that the services that need it
// find it (supervise-daemon returns before its child has exec'd).
// runsvdir opens the directory to scan it as soon as it starts: inotify
// reports each open, and the process list is read again then.
func (b *Backend) WaitRunning(ctx context.Context) error {
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, b.ScanDir, unix.IN_OPEN|unix.IN_ONLYDIR); err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: b.ScanDir, Err: err}
	}
	var buf [4096]byte
	for !b.Running() {
		// NOTE: the walk of /proc opens no file in the scan directory,
		// so it wakes nothing here.
		if !pollFd(ctx, ino) {
			return fmt.Errorf("%s on %s: not running in time", Scanner, b.ScanDir)
		}
		unix.Read(ino, buf[:])
	}
	return nil
}

// clockTicks is sysconf(_SC_CLK_TCK), the unit of a process's start time
// in /proc/PID/stat: USER_HZ, 100 on every Linux Go supports.
const clockTicks = 100

// stampSlack is how far a run process's start may lie from the stamp of
// runit's status: runsv stamps it just after the fork (runsv.c's
// startservice), /proc counts in ticks, and the wall clock may have
// been slewed since.
const stampSlack = time.Second

// procStart is the wall-clock time of a start time from /proc/PID/stat
// (ticks of CLOCK_BOOTTIME): boot is now's CLOCK_REALTIME less its
// CLOCK_BOOTTIME, as precise as the two reads, where /proc/stat's btime
// has whole seconds.
func procStart(ticks uint64) time.Time {
	var rt, bt unix.Timespec
	unix.ClockGettime(unix.CLOCK_REALTIME, &rt)
	unix.ClockGettime(unix.CLOCK_BOOTTIME, &bt)
	boot := time.Unix(rt.Unix()).Add(-time.Duration(bt.Nano()))
	return boot.Add(time.Duration(ticks) * (time.Second / clockTicks))
}

// exited reports whether the process of a pidfd has exited (a zombie
// has): a pidfd is readable then.
func exited(pidfd int) bool {
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, 0)
		if err == unix.EINTR {
			continue
		}
		return err != nil || n > 0
	}
}

// runProc is the run process of a service, with a pidfd on it.
type runProc struct{ pid, fd int }

// openRun returns the run process that runit's status st names, with a
// pidfd on it, or false. runsv, when non-zero, is the runsv holding the
// directory.
//
// NOTE: once runsv is dead, nothing updates st: its pid may have been
// reaped by init and recycled. The pid is taken only if /proc shows a
// process-group leader (chpst -P runs the run in a session of its own)
// other than init that is runsv's child while a runsv holds the
// directory, or, with runsv gone, that started when runsv stamped the status:
// within stampSlack of it, as runsv forks just before it stamps. A
// recycled pid's process started after the run died (later than the
// stamp), and a status left from a previous boot names a pid whose
// process started after it too. The pidfd is opened first and checked
// to be still running after /proc was read, so it refers to the process
// checked; from then on signals go through it, and waits on it.
func openRun(st servicedir.RunitStatus, runsv int) (runProc, bool) {
	if !st.Up() {
		return runProc{}, false
	}
	fd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		return runProc{}, false
	}
	ps, err := servicedir.ReadProcStat(st.Pid)
	ok := err == nil && st.Pid > 1 && ps.State != 'Z' && ps.Pgrp == st.Pid
	switch {
	case !ok:
	case runsv > 0:
		// While a runsv holds the directory its run is its child: a
		// corrupt or planted status naming another process (pid 1 would
		// make the group kill kill(-1)) is not believed.
		ok = ps.Ppid == runsv
	default:
		d := procStart(ps.StartTime).Sub(st.Stamp)
		ok = d > -stampSlack && d < stampSlack
	}
	if !ok || exited(fd) {
		unix.Close(fd)
		return runProc{}, false
	}
	return runProc{pid: st.Pid, fd: fd}, true
}

// openRunsv returns the runsv holding the lock of a runit directory with
// a pidfd on it, or 0 and -1. The pidfd is opened right after the lock
// is looked up, which is then looked up again: a runsv that exited in
// between may have left its pid to another process.
func openRunsv(lock string) (pid, pidfd int) {
	pid = flockHolder(lock)
	if pid <= 0 {
		return 0, -1
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return 0, -1
	}
	if flockHolder(lock) != pid || exited(fd) {
		unix.Close(fd)
		return 0, -1
	}
	return pid, fd
}
