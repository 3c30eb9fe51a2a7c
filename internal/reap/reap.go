package reap

import (
	"os/exec"

	"golang.org/x/sys/unix"
)

// Exit is one reaped child: its pid and raw wait status.
type Exit struct {
	Pid    int
	Status unix.WaitStatus
}

// Drain reaps every child that has exited, without blocking, and appends
// them to buf. It loops wait4(-1, WNOHANG) until there is nothing left,
// because SIGCHLD notifications coalesce: one signal may stand for many
// deaths (tini reap_zombies, s6-svscan reap).
func Drain(buf []Exit) []Exit {
	for {
		e, ok := One()
		if !ok {
			return buf
		}
		buf = append(buf, e)
	}
}

// One reaps one child that has exited, without blocking; ok is false
// when none has. A caller that acts on each exit before asking for the
// next (as the scanner does: the restart of the dead service comes
// first) keeps the last call, which finds nothing, off the path from a
// death to its handling: wait4(-1) looks at every child in the kernel,
// so with thousands of children each call costs that many looks.
func One() (e Exit, ok bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		// NOTE: ECHILD (no children at all) and pid 0 (children, none dead)
		// both mean "nothing more to reap"; any other error cannot happen
		// with these arguments (wait4(2)).
		if err != nil || pid <= 0 {
			return Exit{}, false
		}
		return Exit{Pid: pid, Status: ws}, true
	}
}

// Wstat returns the raw 16-bit wait status s6 stores in supervise/status.
func Wstat(ws unix.WaitStatus) uint16 { return uint16(ws) }

// ExitCode maps a wait status to one number: the exit code, or 128 + the
// signal number for a signalled process (tini, containerd exitStatus).
func ExitCode(ws unix.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}

// SetSubreaper makes the calling process a child subreaper
// (PR_SET_CHILD_SUBREAPER): orphaned descendants are reparented to it, so
// Drain reaps them instead of leaving them to PID 1.
func SetSubreaper() error {
	return unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
}

// Wait waits for cmd, started with its Start method, as os/exec's Wait
// does; the same rule as [CombinedOutput] applies (the limited resolver
// child of gosv openrc check is one such use).
func Wait(cmd *exec.Cmd) error {
	return cmd.Wait()
}

// CombinedOutput runs cmd to completion and returns its standard output and
// standard error together, as os/exec's method of that name does. It is for
// short-lived gosv processes that run no [Drain] loop (the OpenRC finish
// helper); a process whose loop drains must start children itself and learn
// of their exits from Drain, or the two waiters steal each other's statuses.
func CombinedOutput(cmd *exec.Cmd) ([]byte, error) {
	return cmd.CombinedOutput()
}
