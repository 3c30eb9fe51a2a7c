package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// The in-place re-exec of the scanner (svscanctl -X, issue 15; the
// design and its limits are in REEXEC.md). On the letter the scanner
// checks that the binary can be executed here, leaves every service
// running as b does (the fd holder keeps the in-process log pipes, their
// stages and the notification pipes), and execve(2)s the binary with its
// own argv: the same pid, so supervise-daemon, the services (still its
// children) and svwait's pidfds notice nothing. The new image is a
// scanner like any other, which adopts what the old one left (pid
// records, status, policy and health state, the holder's fds); it only
// learns from reexecEnv that it was re-exec'd, when, and how to roll
// back.

// ReexecLetter is the .s6-svscan/control letter of an in-place re-exec.
// s6-svscanctl does not use it (its getopt string is zabhitqnNprs0678).
const ReexecLetter = 'X'

// reexecEnv is set in the environment of a re-exec only, and removed
// from the scanner's own at start (children never see it): "NANOS[,EXEC]
// FD [REASON]": when the re-exec was decided and execve called (UnixNano), the fd of the
// previous binary to roll back to if setup fails (-1: none), and why a
// previous attempt failed (this image is then the previous binary,
// executed again).
const reexecEnv = "GOSV_REEXEC"

// reexecFdsEnv names, in the environment of a re-exec only, a memfd
// listing the descriptors the re-exec keeps open (not close-on-exec):
// each service's supervise/lock and supervise/control, and the scan
// directory's, one line "KEY LOCKFD CTLFD" each, KEY being the service
// directory's "DEV:INO" or "scan". An OFD lock belongs to its open file
// description, so the locks are never released, and bytes written to a
// control fifo meanwhile wait in it for the new image: s6-svok, s6-svc
// and svwait see the same supervisor throughout.
const reexecFdsEnv = "GOSV_REEXEC_FDS"

// reexecState is the loop's side of a re-exec.
type reexecState struct {
	exe      string // what -X executes: Config.Exe, else this binary's path at start
	to       string // set once a re-exec is decided: the loop is leaving for it
	resumed  bool   // this process is a re-exec'd scanner
	since    int64  // resumed: when the re-exec was decided (UnixNano)
	execAt   int64  // resumed: when the previous image called execve (UnixNano)
	rollback int    // resumed: fd of the previous binary until setup succeeded; -1
	failed   string // resumed: why the new binary did not take over (this is the old one again)

	keep    bool               // leaving: the new binary takes kept descriptors (reexecFdsEnv)
	kept    []keptFds          // leaving: locks and control fifos kept for the new image
	keepRef []*os.File         // leaving: the kept locks' files (no finalizer may close them)
	given   map[string]keptFds // resumed: what the previous image kept, until taken
}

// keptFds are one directory's lock and control fifo across a re-exec.
type keptFds struct {
	key       string
	lock, ctl int
}

// takeReexecEnv reads and removes reexecEnv.
func takeReexecEnv() reexecState {
	rx := reexecState{rollback: -1}
	v, ok := os.LookupEnv(reexecEnv)
	if !ok {
		return rx
	}
	os.Unsetenv(reexecEnv)
	rx.resumed = true
	f := strings.SplitN(v, " ", 3)
	since, exec, _ := strings.Cut(f[0], ",")
	rx.since, _ = strconv.ParseInt(since, 10, 64)
	rx.execAt, _ = strconv.ParseInt(exec, 10, 64)
	if len(f) > 1 {
		if n, err := strconv.Atoi(f[1]); err == nil && n > 2 {
			unix.CloseOnExec(n) // no child inherits it
			rx.rollback = n
		}
	}
	if len(f) > 2 {
		rx.failed = f[2]
	}
	rx.given = takeKeptFds()
	return rx
}

// takeKeptFds reads the list reexecFdsEnv names. Every descriptor in it
// becomes close-on-exec at once: a rollback, or any child, never
// inherits a lock it would not know it holds.
func takeKeptFds() map[string]keptFds {
	v, ok := os.LookupEnv(reexecFdsEnv)
	if !ok {
		return nil
	}
	os.Unsetenv(reexecFdsEnv)
	mfd, err := strconv.Atoi(v)
	if err != nil || mfd < 3 {
		return nil
	}
	f := os.NewFile(uintptr(mfd), "reexec-fds")
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, 0, 1<<30))
	given := map[string]keptFds{}
	for _, line := range strings.Split(string(b), "\n") {
		var k keptFds
		if n, _ := fmt.Sscanf(line, "%s %d %d", &k.key, &k.lock, &k.ctl); n != 3 || k.lock < 3 || k.ctl < 3 {
			continue
		}
		unix.CloseOnExec(k.lock)
		unix.CloseOnExec(k.ctl)
		given[k.key] = k
	}
	return given
}

// keepFds keeps a leaving service's (or the scanner's) lock and control
// fifo open across the execve.
func (l *loop) keepFds(key string, lock *os.File, ctl int) bool {
	if !l.rx.keep || lock == nil || ctl < 0 {
		return false
	}
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, ctl, nil)
	delete(l.fds, int32(ctl))
	l.rx.keepRef = append(l.rx.keepRef, lock)
	l.rx.kept = append(l.rx.kept, keptFds{key: key, lock: int(lock.Fd()), ctl: ctl})
	return true
}

// mentions tells whether the file at path holds the bytes of s: how a
// binary that knows reexecFdsEnv is told from one that does not.
func mentions(path, s string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	buf := make([]byte, 1<<20+len(s))
	keep := 0
	for {
		n, err := f.Read(buf[keep:])
		if bytes.Contains(buf[:keep+n], []byte(s)) {
			return true
		}
		if err != nil {
			return false
		}
		// Keep the tail: s may straddle two reads.
		keep = copy(buf, buf[max(0, keep+n-len(s)+1):keep+n])
	}
}

// keptFdsFile writes the kept descriptors' list to a memfd the execve
// keeps, clearing their close-on-exec flags; -1 if there is none.
func (l *loop) keptFdsFile() int {
	if len(l.rx.kept) == 0 {
		return -1
	}
	var b strings.Builder
	for _, k := range l.rx.kept {
		if clearCloexec(k.lock) != nil || clearCloexec(k.ctl) != nil {
			continue
		}
		fmt.Fprintf(&b, "%s %d %d\n", k.key, k.lock, k.ctl)
	}
	fd, err := unix.MemfdCreate("gosv-reexec-fds", 0)
	if err != nil {
		return -1
	}
	if _, err := unix.Write(fd, []byte(b.String())); err != nil {
		unix.Close(fd)
		return -1
	}
	return fd
}

func clearCloexec(fd int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, 0)
	return err
}

// dirKey is the key of a directory in the kept list: its device and inode.
func dirKey(dirfd int) string {
	var st unix.Stat_t
	if unix.Fstat(dirfd, &st) != nil {
		return ""
	}
	return fmt.Sprintf("%d:%d", st.Dev, st.Ino)
}

// givenFds returns the lock and control fifo the previous image kept for
// key, if they are still the files at lockPath and ctlPath.
func (l *loop) givenFds(key, lockPath, ctlPath string) (*os.File, int, bool) {
	k, ok := l.rx.given[key]
	if !ok {
		return nil, -1, false
	}
	delete(l.rx.given, key)
	if !sameFile(k.lock, lockPath) || !sameFile(k.ctl, ctlPath) {
		unix.Close(k.lock)
		unix.Close(k.ctl)
		return nil, -1, false
	}
	return os.NewFile(uintptr(k.lock), lockPath), k.ctl, true
}

func sameFile(fd int, path string) bool {
	var a, b unix.Stat_t
	return unix.Fstat(fd, &a) == nil && unix.Lstat(path, &b) == nil && a.Dev == b.Dev && a.Ino == b.Ino
}

// closeGiven closes what the previous image kept and no directory took
// (a service removed during the exec).
func (l *loop) closeGiven() {
	for k, f := range l.rx.given {
		unix.Close(f.lock)
		unix.Close(f.ctl)
		delete(l.rx.given, k)
	}
}

// reexec starts a re-exec on the letter: nothing is left if the binary
// cannot run here, and the scanner goes on as before (the reason is
// reported once and written to ScanReexecPath).
func (sc *scanner) reexec() {
	l := sc.l
	switch {
	case sc.exiting:
		l.warn(nil, "reexec", "ignoring a re-exec request: the scanner is exiting")
		return
	case l.cfg.Init != nil:
		sc.reexecFailed("not supported when the scanner runs as gosv init")
		return
	case l.rx.exe == "":
		sc.reexecFailed("the scanner's own executable is unknown")
		return
	}
	if err := checkExec(l.rx.exe); err != nil {
		sc.reexecFailed(fmt.Sprintf("%s cannot be executed: %v", l.rx.exe, err))
		return
	}
	// NOTE: a binary that does not know reexecFdsEnv (a gosv from before
	// re-exec, or a wrapper script) would find every lock held by a
	// descriptor it does not know it has, and take no directory: it gets
	// nothing but what a scanner's death leaves.
	l.rx.keep = mentions(l.rx.exe, reexecFdsEnv)
	fmt.Fprintf(l.cfg.Stderr, "%s: re-executing %s: the services stay running for the new scanner (should it fail to set up, the next scanner started adopts them)\n", l.cfg.Prog, l.rx.exe)
	if !l.rx.keep {
		l.warn(nil, "reexec-old", "%s does not know %s: it takes the services over as after a scanner's death (locks and control fifos let go meanwhile; no outcome reported to svscanctl -X)", l.rx.exe, reexecFdsEnv)
	}
	l.rx.to = l.rx.exe
	l.rx.since = time.Now().UnixNano()
	sc.exit('b')
}

// reexecFailed reports why a re-exec did not happen: once on stderr (then
// at most hourly, warn.go), and in ScanReexecPath for svscanctl -X.
func (sc *scanner) reexecFailed(why string) {
	sc.l.warn(nil, "reexec", "unable to re-exec: %s (this scanner keeps running)", why)
	sc.reexecResult("failed " + why)
}

// reexecResult writes ScanReexecPath; svscanctl -X waits for it.
func (sc *scanner) reexecResult(line string) {
	if err := servicedir.WriteFileMode(sc.dir, servicedir.ScanReexecPath, []byte(line+"\n"), 0o644); err != nil {
		sc.l.warn(nil, "reexec-result", "unable to write %s: %v", servicedir.ScanReexecPath, err)
	}
}

// execNew runs after the loop left for a re-exec: it execs the new
// binary, else the previous one again. It returns only if neither could
// be executed; the services are then left running, to be adopted by the
// next scanner.
func (sc *scanner) execNew() error {
	l := sc.l
	sc.closeHolder() // after b: the holder keeps everything for the new scanner
	l.keepFds("scan", sc.lock, sc.ctl)
	fds := l.keptFdsFile()
	// NOTE: an fd of the binary now running, without O_CLOEXEC: the new
	// image execs it back if it cannot set up. /proc/self/exe still
	// names this binary even once the upgrade replaced its file.
	self, err := unix.Open("/proc/self/exe", unix.O_RDONLY, 0)
	if err != nil {
		self = -1
	}
	since := strconv.FormatInt(l.rx.since, 10)
	env := reexecEnviron(since + "," + strconv.FormatInt(time.Now().UnixNano(), 10) + " " + strconv.Itoa(self))
	if fds >= 0 {
		env = append(env, reexecFdsEnv+"="+strconv.Itoa(fds))
	}
	err = execEmptyMask(l.rx.to, os.Args, env)
	why := fmt.Sprintf("unable to execute %v", err)
	fmt.Fprintf(l.cfg.Stderr, "%s: warning: re-exec: %s; executing the previous binary again\n", l.cfg.Prog, why)
	if self >= 0 {
		unix.CloseOnExec(self)
		env := reexecEnviron(since + " -1 " + why)
		if fds >= 0 {
			env = append(env, reexecFdsEnv+"="+strconv.Itoa(fds))
		}
		err = execEmptyMask(fmt.Sprintf("/proc/self/fd/%d", self), os.Args, env)
	}
	return fmt.Errorf("re-exec: %s, and the previous binary: %v: the services are left running, unsupervised until the next scanner adopts them", why, err)
}

// rollbackSetup runs when a re-exec'd scanner fails to set up: it execs
// the previous binary, which adopts everything. It returns only if that
// fails, with err.
func (l *loop) rollbackSetup(err error) error {
	if l.rx.rollback < 0 {
		return fmt.Errorf("%w (after a re-exec: the services are left running, unsupervised until the next scanner adopts them)", err)
	}
	why := fmt.Sprintf("the new scanner could not set up: %v", err)
	fmt.Fprintf(l.cfg.Stderr, "%s: warning: re-exec: %s; executing the previous binary again\n", l.cfg.Prog, why)
	xerr := execEmptyMask(fmt.Sprintf("/proc/self/fd/%d", l.rx.rollback), os.Args,
		reexecEnviron(strconv.FormatInt(l.rx.since, 10)+" -1 "+why))
	return fmt.Errorf("%w (after a re-exec; and the previous binary: %v: the services are left running, unsupervised until the next scanner adopts them)", err, xerr)
}

// resumed runs once a re-exec'd scanner has set up and accepts control.
func (sc *scanner) resumed() {
	l := sc.l
	if l.rx.rollback >= 0 {
		unix.Close(l.rx.rollback)
		l.rx.rollback = -1
	}
	if l.rx.failed != "" {
		sc.reexecFailed(l.rx.failed)
	} else {
		now := time.Now().UnixNano()
		ms := func(d int64) float64 { return float64(d) / 1e6 }
		fmt.Fprintf(l.cfg.Stderr, "%s: re-executed in %.1f ms (%.1f ms to leave, %.1f ms to set up)\n", l.cfg.Prog,
			ms(now-l.rx.since), ms(l.rx.execAt-l.rx.since), ms(now-l.rx.execAt))
		sc.reexecResult("ok " + strconv.Itoa(os.Getpid()))
	}
	l.closeGiven()
	// Runs that died during the exec are children whose SIGCHLD went
	// to the previous image: reap them now that they have machines.
	l.reapAll()
	sc.syncTakes = false
}

// reexecEnviron is the scanner's environment with reexecEnv set to v.
func reexecEnviron(v string) []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, reexecEnv+"=") && !strings.HasPrefix(kv, reexecFdsEnv+"=") {
			out = append(out, kv)
		}
	}
	return append(out, reexecEnv+"="+v)
}

// execEmptyMask execs path with an empty signal mask, as
// EnsureEmptySignalMask does (the new image keeps cleanSigEnv, so it
// does not exec itself a second time). It returns only on failure.
func execEmptyMask(path string, argv, env []string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty unix.Sigset_t
	unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil)
	return &os.PathError{Op: "exec", Path: path, Err: syscall.Exec(path, argv, env)}
}

// checkExec tells whether path looks executable here before the scanner
// lets anything go: a regular executable file that is a script or an
// ELF binary of this process's class, byte order and machine. What it
// cannot see (a missing interpreter or library) makes the execve or the
// new image's setup fail, and the previous binary is executed again.
func checkExec(path string) error {
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return errors.New("not a regular file")
	}
	if err := unix.Faccessat(unix.AT_FDCWD, path, unix.X_OK, unix.AT_EACCESS); err != nil {
		return err
	}
	head, err := readHead(path)
	if err != nil {
		return err
	}
	if bytes.HasPrefix(head, []byte("#!")) {
		return nil
	}
	own, err := readHead("/proc/self/exe")
	if err != nil {
		return err
	}
	if len(head) < 20 || !bytes.HasPrefix(head, []byte("\x7fELF")) {
		return fmt.Errorf("%w (neither an ELF binary nor a script)", unix.ENOEXEC)
	}
	if head[4] != own[4] || head[5] != own[5] || !bytes.Equal(head[18:20], own[18:20]) {
		return fmt.Errorf("%w (an ELF binary for %s; this machine runs %s)", unix.ENOEXEC, elfMachine(head), elfMachine(own))
	}
	return nil
}

func readHead(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, 20)
	n, err := io.ReadFull(f, b)
	if err == io.ErrUnexpectedEOF || err == io.EOF {
		err = nil
	}
	return b[:n], err
}

// elfMachine names an ELF header's class and machine, for messages.
func elfMachine(h []byte) string {
	if len(h) < 20 {
		return "?"
	}
	m := uint16(h[18]) | uint16(h[19])<<8
	if h[5] == 2 { // big-endian
		m = uint16(h[19]) | uint16(h[18])<<8
	}
	names := map[uint16]string{3: "i386", 8: "mips", 20: "ppc", 21: "ppc64", 22: "s390", 40: "arm", 62: "x86-64", 183: "aarch64", 243: "riscv", 258: "loongarch"}
	name, ok := names[m]
	if !ok {
		name = "machine " + strconv.Itoa(int(m))
	}
	return fmt.Sprintf("%s (%d-bit)", name, 32*int(h[4]))
}
