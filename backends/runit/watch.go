package runit

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// watch waits on a runit directory's events: runsv writes every file of
// supervise/ through a rename (pid, stat, status: measured with strace on
// runsv 2.1.2), so one inotify watch for IN_MOVED_TO on supervise/ sees
// each state change; the notification FIFO, when the service has one,
// and the end of the context are the other two descriptors of one poll.
// It is used by one goroutine.
type watch struct {
	ino    int
	fifo   *os.File // the notification FIFO's read side, or nil
	cancel [2]int   // a pipe: readable once ctx ends
	stop   func() bool
	hup    bool // the FIFO's writers are gone: poll no longer watches it
}

var (
	errDeadline = errors.New("timed out")
	errDied     = errors.New("died")
)

// newWatch watches rdir/supervise (created when missing: runsv accepts
// an existing one); with notify, it also opens the notification FIFO
// for reading and drains what an earlier run left in it.
func newWatch(ctx context.Context, rdir string, notify int) (*watch, error) {
	sup := filepath.Join(rdir, servicedir.SuperviseDir)
	if err := os.Mkdir(sup, 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return nil, err
	}
	w := &watch{ino: -1, cancel: [2]int{-1, -1}}
	var err error
	if w.ino, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	if _, err := unix.InotifyAddWatch(w.ino, sup, unix.IN_MOVED_TO|unix.IN_DELETE_SELF); err != nil {
		w.close()
		return nil, &os.PathError{Op: "inotify_add_watch", Path: sup, Err: err}
	}
	if notify > 0 {
		p := filepath.Join(rdir, servicedir.RunitNotifyFifo)
		if err := unix.Mkfifo(p, 0o600); err != nil && err != unix.EEXIST {
			w.close()
			return nil, &os.PathError{Op: "mkfifo", Path: p, Err: err}
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
		if err != nil {
			w.close()
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		w.fifo = os.NewFile(uintptr(fd), p)
		w.drain()
	}
	if err := unix.Pipe2(w.cancel[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		w.close()
		return nil, os.NewSyscallError("pipe2", err)
	}
	wfd := w.cancel[1]
	w.stop = context.AfterFunc(ctx, func() { unix.Write(wfd, []byte{0}) })
	return w, nil
}

func (w *watch) close() {
	if w.stop != nil {
		w.stop()
	}
	if w.ino >= 0 {
		unix.Close(w.ino)
	}
	if w.fifo != nil {
		w.fifo.Close()
	}
	for _, fd := range w.cancel {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
}

// drain reads what the FIFO holds now; it reports whether that included
// a newline (readiness, s6's notification-fd protocol).
func (w *watch) drain() bool {
	var buf [512]byte
	nl := false
	for {
		n, err := unix.Read(int(w.fifo.Fd()), buf[:])
		if err == unix.EINTR {
			continue
		}
		if n <= 0 || err != nil {
			return nl
		}
		for _, c := range buf[:n] {
			nl = nl || c == '\n'
		}
	}
}

// wait blocks until an event, the deadline (errDeadline; zero: none) or
// the end of the context (context.Canceled). It reports whether the
// FIFO is readable.
func (w *watch) wait(deadline time.Time) (fifo bool, err error) {
	fds := []unix.PollFd{{Fd: int32(w.ino), Events: unix.POLLIN}, {Fd: int32(w.cancel[0]), Events: unix.POLLIN}}
	if w.fifo != nil && !w.hup {
		fds = append(fds, unix.PollFd{Fd: int32(w.fifo.Fd()), Events: unix.POLLIN})
	}
	for {
		ms := -1
		if !deadline.IsZero() {
			ms = int(max(0, (time.Until(deadline)+time.Millisecond-1)/time.Millisecond))
		}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return false, os.NewSyscallError("poll", err)
		}
		if n == 0 {
			return false, errDeadline
		}
		if fds[1].Revents != 0 {
			return false, context.Canceled
		}
		if fds[0].Revents != 0 {
			var buf [4096]byte
			unix.Read(w.ino, buf[:]) // the events themselves say nothing more
		}
		if len(fds) > 2 && fds[2].Revents&unix.POLLIN == 0 && fds[2].Revents&unix.POLLHUP != 0 {
			// NOTE: once its last writer closed it, a FIFO reports
			// POLLHUP at every poll: the run that had it open is gone,
			// which the status tells; stop watching it.
			w.hup = true
		}
		return len(fds) > 2 && fds[2].Revents&unix.POLLIN != 0, nil
	}
}

// until waits until cond holds (checked first, then after each event).
func (w *watch) until(deadline time.Time, cond func() bool) error {
	for !cond() {
		if _, err := w.wait(deadline); err != nil {
			return err
		}
	}
	return nil
}

// untilWaking is until, calling again once, rewakeAfter after it
// started waiting, if cond does not hold by then.
//
// NOTE: a timer with a reason, and no retry loop: runsvdir looks at its
// directory at most once a second (runsvdir.c's stampcheck) and ignores
// a wake that comes within a second of its last look. The first wake
// (the caller's, just after the link) is lost only if runsvdir looked
// less than a second before it; a look after the link sees the link. So
// a second wake a second after the first comes at least a second after
// any look that could have missed the link, and cannot be lost. The
// deadline still bounds the wait (a runsvdir without a log argument
// cannot be woken, and scans every 5 s).
func (w *watch) untilWaking(deadline time.Time, cond func() bool, again func()) error {
	next := time.Now().Add(rewakeAfter)
	for !cond() {
		_, err := w.wait(earliest(deadline, next))
		if errors.Is(err, errDeadline) && !next.IsZero() && time.Now().Before(deadline) {
			again()
			next = time.Time{}
			continue
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// earliest is the earlier of two deadlines, zero meaning none.
func earliest(a, b time.Time) time.Time {
	if b.IsZero() {
		return a
	}
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// ready waits for a newline on the FIFO; died is checked after each
// event (errDied when it holds first).
func (w *watch) ready(deadline time.Time, died func() bool) error {
	for {
		if w.drain() {
			return nil
		}
		if died() {
			return errDied
		}
		if _, err := w.wait(deadline); err != nil {
			return err
		}
	}
}

// pollFd waits until fd is readable (true) or ctx ends (false).
func pollFd(ctx context.Context, fd int) bool {
	deadline, _ := ctx.Deadline()
	for {
		ms := -1
		if !deadline.IsZero() {
			ms = int(max(0, (time.Until(deadline)+time.Millisecond-1)/time.Millisecond))
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
}
