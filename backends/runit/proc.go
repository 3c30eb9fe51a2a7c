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

	"golang.org/x/sys/unix"
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

// wake asks the runsvdir pid to rescan its directory now rather than at
// its next 5-second check:
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
// start repeats the wake each second until runsv appears (untilWaking).
func wake(pid int) {
	if catches(pid, unix.SIGALRM) {
		unix.Kill(pid, unix.SIGALRM)
	}
	fd := "/proc/" + strconv.Itoa(pid) + "/fd/2"
	if l, err := os.Readlink(fd); err != nil || !strings.HasPrefix(l, "pipe:") {
		return
	}
	f, err := os.OpenFile(fd, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		return
	}
	f.Write([]byte{'.'})
	f.Close()
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

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	if pid <= 0 {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i > 0 && i+2 < len(b) && b[i+2] != 'Z'
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
