package scan

import (
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

// cleanSigEnv marks a process that re-executed itself with an empty
// signal mask; children never see it (childEnv).
const cleanSigEnv = "GOSV_SIGMASK_CLEARED"

// EnsureEmptySignalMask re-executes the program once with an empty signal
// mask, unless it already did.
//
// NOTE: Go restores the signal mask the process was started with in every
// child it forks (runtime.syscall_runtime_AfterForkInChild restores
// m.sigmask, which is the initial mask), and offers no way to change that
// mask afterwards. s6 guarantees services an empty mask; a scanner started
// by a parent that blocked, say, SIGTERM would otherwise hand services a
// blocked SIGTERM that no stop command can overcome. The blocked set
// cannot be read reliably after the runtime has started (it unblocks the
// signals it needs), so the re-exec is unconditional; it costs about a
// millisecond, once, at the start of a long-running process.
func EnsureEmptySignalMask() error {
	if os.Getenv(cleanSigEnv) != "" {
		return nil
	}
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var empty unix.Sigset_t
	if err := unix.PthreadSigmask(unix.SIG_SETMASK, &empty, nil); err != nil {
		return os.NewSyscallError("sigprocmask", err)
	}
	env := append(os.Environ(), cleanSigEnv+"=1")
	return &os.PathError{Op: "exec", Path: exe, Err: syscall.Exec(exe, os.Args, env)}
}
