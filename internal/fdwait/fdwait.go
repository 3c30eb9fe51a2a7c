// Package fdwait waits for one descriptor to become readable, until a
// deadline: the blocking waits of the short-lived clients (gosv openrc on
// an inotify fd, the gosv backend on a pidfd). Event loops use epoll
// instead and never call it.
package fdwait

import (
	"time"

	"golang.org/x/sys/unix"
)

// Readable waits until fd is readable (true) or deadline passes (false);
// a zero deadline means no limit. A deadline already passed still checks
// fd once. EINTR resumes the wait with the time that is left. A negative
// fd is never readable: Readable(-1, t) waits until t.
func Readable(fd int, deadline time.Time) bool {
	fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	for {
		ms := -1
		if !deadline.IsZero() {
			// Rounded up, so that a wait never ends before the deadline.
			ms = int(max(0, (time.Until(deadline)+time.Millisecond-1)/time.Millisecond))
		}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}
