package backends

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdwait"
	"github.com/gosv/gosv/internal/servicedir"
)

// StopOrphan stops pid, the run of dir whose supervisor is gone (the
// caller has checked that pid is still that run): the service's
// down-signal (SIGTERM by default) and SIGCONT to its process group, then
// SIGKILL when ctx ends, then SIGKILL to what is left of the group. It
// waits at most killWait for the death after SIGKILL: a process that
// survives it (stuck in the kernel) is an error, not a hang of the stop.
func StopOrphan(ctx context.Context, dir string, pid int, killWait time.Duration) error {
	sig, err := servicedir.ReadDownSignal(dir)
	if err != nil || sig == 0 {
		sig = unix.SIGTERM
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil // gone meanwhile
	}
	defer unix.Close(fd)
	unix.Kill(-pid, sig)
	unix.Kill(-pid, unix.SIGCONT)
	dl, _ := ctx.Deadline()
	if !fdwait.Readable(fd, dl) {
		unix.Kill(-pid, unix.SIGKILL)
		if !fdwait.Readable(fd, time.Now().Add(killWait)) {
			return fmt.Errorf("%s: pid %d survived SIGKILL", dir, pid)
		}
	}
	unix.Kill(-pid, unix.SIGKILL) // what is left of its group
	return nil
}
