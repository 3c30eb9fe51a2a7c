package svwait

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// The wait loop is s6's iopause with a deadline, built from one epoll
// descriptor that holds every listener fifo and every supervisor pidfd.
// The epoll descriptor is itself pollable, so it is handed to Go's
// poller: the waiting goroutine parks there (no OS thread blocks), the
// deadline is the descriptor's read deadline (moved when a service extends
// its ready deadline), and cancellation sets a read deadline in the past.
//
// One descriptor for all sources is what keeps the order right: when a
// supervisor's pidfd and its fifo become ready together, the fifo is
// drained first, so the 'd', 'D', 'x' an s6-supervise sends before it
// exits are never overtaken by the news of its death.

// maxEpollEvents bounds the events taken per wakeup; more wait for the
// next turn of the loop.
const maxEpollEvents = 64

type loop struct {
	w    *Waiter
	ep   *os.File // the epoll descriptor once registered with Go's poller (cancellable waits)
	epfd int      // its number, for epoll_ctl
	evs  []unix.EpollEvent
}

// Tags in EpollEvent.Fd: i for fifo i, n+i for pidfd i.
func newLoop(w *Waiter) (*loop, error) {
	fd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	l := &loop{w: w, epfd: fd, evs: make([]unix.EpollEvent, min(2*len(w.fifos), maxEpollEvents))}
	n := len(w.fifos)
	for i, f := range w.fifos {
		if err := l.add(f, i); err != nil {
			l.close()
			return nil, err
		}
		if p := w.pidfds[i]; p >= 0 {
			if err := l.add(p, n+i); err != nil {
				l.close()
				return nil, err
			}
		}
	}
	return l, nil
}

func (l *loop) add(fd, tag int) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(tag)}
	return os.NewSyscallError("epoll_ctl", unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &ev))
}

func (l *loop) close() {
	if l.ep != nil {
		l.ep.Close()
	} else {
		unix.Close(l.epfd)
	}
}

// aLongTimeAgo is a read deadline that has always passed (net/http idiom).
var aLongTimeAgo = time.Unix(1, 0)

func (l *loop) run(ctx context.Context, deadline time.Time) error {
	if ctx.Done() == nil {
		return l.runBlocking(deadline)
	}
	// NOTE: os.NewFile registers a descriptor with the runtime poller only
	// when it is non-blocking. Done here, not in newLoop, so that the
	// blocking path never pays for the poller's registration.
	if err := unix.SetNonblock(l.epfd, true); err != nil {
		return os.NewSyscallError("fcntl", err)
	}
	l.ep = os.NewFile(uintptr(l.epfd), "epoll")
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		l.ep.SetReadDeadline(aLongTimeAgo)
		close(fired)
	})
	defer func() {
		if !stop() {
			<-fired // it runs or ran: let it finish before the descriptor closes
		}
	}()
	rc, err := l.ep.SyscallConn()
	if err != nil {
		return err
	}
	set, first := time.Time{}, true // the read deadline in force
	for {
		if d := l.w.effective(deadline); first || !d.Equal(set) {
			if err := l.ep.SetReadDeadline(d); err != nil {
				return &os.PathError{Op: "set deadline on", Path: "epoll", Err: err}
			}
			set, first = d, false
		}
		// NOTE: checked after every SetReadDeadline: a cancellation whose
		// past deadline was just overwritten by an extension is seen here.
		if err := ctx.Err(); err != nil {
			return l.ctxErr(ctx)
		}
		var k int
		var werr error
		err := rc.Read(func(fd uintptr) bool {
			k, werr = unix.EpollWait(int(fd), l.evs, 0)
			return werr != nil || k > 0 // false: park until the descriptor is readable
		})
		switch {
		case errors.Is(err, os.ErrDeadlineExceeded) && ctx.Err() != nil:
			return l.ctxErr(ctx)
		case errors.Is(err, os.ErrDeadlineExceeded):
			return l.w.expired(set, !set.Equal(deadline))
		case err != nil:
			return err
		case werr == unix.EINTR:
			continue
		case werr != nil:
			return os.NewSyscallError("epoll_wait", werr)
		}
		if done, err := l.handle(l.evs[:k]); done {
			return err
		}
	}
}

// runBlocking is run for a context that can never be cancelled (the
// command-line tools): the thread blocks in epoll_wait itself, so a wakeup
// reaches the waiter without a hop through the runtime's poller and
// scheduler, which costs a command like `gosv svwait -U` about half a
// millisecond per wait (bench/README.md, readiness).
func (l *loop) runBlocking(deadline time.Time) error {
	for {
		d := l.w.effective(deadline)
		ms := -1
		if !d.IsZero() {
			left := time.Until(d)
			if left <= 0 {
				return l.w.expired(d, !d.Equal(deadline))
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		k, err := unix.EpollWait(l.epfd, l.evs, ms)
		switch {
		case err == unix.EINTR:
			continue
		case err != nil:
			return os.NewSyscallError("epoll_wait", err)
		case k == 0:
			continue // the deadline is checked at the top
		}
		if done, err := l.handle(l.evs[:k]); done {
			return err
		}
	}
}

// handle applies one batch of readiness: fifos first, then deaths.
func (l *loop) handle(evs []unix.EpollEvent) (done bool, err error) {
	n := len(l.w.fifos)
	for _, ev := range evs {
		if i := int(ev.Fd); i < n {
			if done, err := l.w.drain(i); done {
				return true, err
			}
		}
	}
	for _, ev := range evs {
		if i := int(ev.Fd) - n; i >= 0 {
			// Level-triggered and readable for good: stop watching it.
			unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, l.w.pidfds[i], nil)
			if done, err := l.w.dead(i); done {
				return true, err
			}
		}
	}
	return false, nil
}

// ctxErr is the result of a wait that ctx ended: a timeout if ctx's own
// deadline passed, ctx's error otherwise.
func (l *loop) ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		d, _ := ctx.Deadline()
		return l.w.timeout(d, false)
	}
	return ctx.Err()
}
