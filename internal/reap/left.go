package reap

import "golang.org/x/sys/unix"

// DrainLeft is Drain that also says whether any child is left (alive, or
// dead after the drain): false only once wait4 answered ECHILD. PID 1's
// last stage waits for that answer before it exits or reboots.
func DrainLeft(buf []Exit) ([]Exit, bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.ECHILD:
			return buf, false
		case err != nil || pid <= 0:
			return buf, true
		}
		buf = append(buf, Exit{Pid: pid, Status: ws})
	}
}
