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
// from the scanner's own at start (children never see it): "NANOS FD
// [REASON]": when the re-exec was decided (UnixNano), the fd of the
// previous binary to roll back to if setup fails (-1: none), and why a
// previous attempt failed (this image is then the previous binary,
// executed again).
const reexecEnv = "GOSV_REEXEC"

// reexecState is the loop's side of a re-exec.
type reexecState struct {
	exe      string // what -X executes: Config.Exe, else this binary's path at start
	to       string // set once a re-exec is decided: the loop is leaving for it
	resumed  bool   // this process is a re-exec'd scanner
	since    int64  // resumed: when the re-exec was decided (UnixNano)
	rollback int    // resumed: fd of the previous binary until setup succeeded; -1
	failed   string // resumed: why the new binary did not take over (this is the old one again)
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
	rx.since, _ = strconv.ParseInt(f[0], 10, 64)
	if len(f) > 1 {
		if n, err := strconv.Atoi(f[1]); err == nil && n > 2 {
			unix.CloseOnExec(n) // no child inherits it
			rx.rollback = n
		}
	}
	if len(f) > 2 {
		rx.failed = f[2]
	}
	return rx
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
	fmt.Fprintf(l.cfg.Stderr, "%s: re-executing %s: the services stay running for the new scanner (should it fail to set up, the next scanner started adopts them)\n", l.cfg.Prog, l.rx.exe)
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
	// NOTE: an fd of the binary now running, without O_CLOEXEC: the new
	// image execs it back if it cannot set up. /proc/self/exe still
	// names this binary even once the upgrade replaced its file.
	self, err := unix.Open("/proc/self/exe", unix.O_RDONLY, 0)
	if err != nil {
		self = -1
	}
	since := strconv.FormatInt(l.rx.since, 10)
	err = execEmptyMask(l.rx.to, os.Args, reexecEnviron(since+" "+strconv.Itoa(self)))
	why := fmt.Sprintf("unable to execute %v", err)
	fmt.Fprintf(l.cfg.Stderr, "%s: warning: re-exec: %s; executing the previous binary again\n", l.cfg.Prog, why)
	if self >= 0 {
		unix.CloseOnExec(self)
		err = execEmptyMask(fmt.Sprintf("/proc/self/fd/%d", self), os.Args, reexecEnviron(since+" -1 "+why))
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
		ms := float64(time.Now().UnixNano()-l.rx.since) / 1e6
		fmt.Fprintf(l.cfg.Stderr, "%s: re-executed in %.1f ms\n", l.cfg.Prog, ms)
		sc.reexecResult("ok " + strconv.Itoa(os.Getpid()))
	}
	// Runs that died during the exec are children whose SIGCHLD went
	// to the previous image: reap them now that they have machines.
	l.reapAll()
}

// reexecEnviron is the scanner's environment with reexecEnv set to v.
func reexecEnviron(v string) []string {
	env := os.Environ()
	out := make([]string, 0, len(env)+1)
	for _, kv := range env {
		if !strings.HasPrefix(kv, reexecEnv+"=") {
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
