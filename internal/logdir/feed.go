package logdir

import (
	"os"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Feeder requests, set from any goroutine.
const (
	reqStop uint32 = 1 << iota
	reqRotate
)

// Feeder runs one Logger over one input with its own small event loop:
// what gosv log does with its stdin. The scanner does not use it; it calls
// Consume from its own loop.
//
// The loop waits in epoll_wait on the input (edge-triggered, see Consume)
// and on an eventfd that Stop and Rotate write, with the Logger's retry
// deadline as timeout. It never polls.
type Feeder struct {
	l    *Logger
	fd   int
	sc   *Scratch
	ep   int // -1 when the input cannot be waited on (a regular file)
	ev   int
	reqs atomic.Uint32
	// Warn receives the errors Consume reports (nil: discarded).
	Warn func(error)
}

// NewFeeder prepares to feed fd (made non-blocking) to l.
func NewFeeder(l *Logger, fd int) (*Feeder, error) {
	if err := unix.SetNonblock(fd, true); err != nil {
		return nil, os.NewSyscallError("fcntl O_NONBLOCK", err)
	}
	sc, err := NewScratch()
	if err != nil {
		return nil, err
	}
	f := &Feeder{l: l, fd: fd, sc: sc, ep: -1, ev: -1}
	if f.ev, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		f.Close()
		return nil, os.NewSyscallError("eventfd", err)
	}
	if f.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		f.Close()
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	for _, ev := range []unix.EpollEvent{{Events: unix.EPOLLIN, Fd: int32(f.ev)},
		{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}} {
		if err := unix.EpollCtl(f.ep, unix.EPOLL_CTL_ADD, int(ev.Fd), &ev); err != nil {
			if err == unix.EPERM && int(ev.Fd) == fd {
				continue // a regular file: always readable, read to its end
			}
			f.Close()
			return nil, os.NewSyscallError("epoll_ctl", err)
		}
	}
	return f, nil
}

// Close releases the Feeder's descriptors (not the Logger, not the input).
func (f *Feeder) Close() {
	for _, fd := range []int{f.ep, f.ev} {
		if fd >= 0 {
			unix.Close(fd)
		}
	}
	f.sc.Close()
}

// Stop asks Run to write what the input holds now and return. An
// incomplete last line stays in the input, for the next logger of the
// pipe. Safe from any goroutine.
func (f *Feeder) Stop() { f.request(reqStop) }

// Rotate asks Run to rotate the log directories (s6-log's SIGALRM). Safe
// from any goroutine.
func (f *Feeder) Rotate() { f.request(reqRotate) }

func (f *Feeder) request(r uint32) {
	f.reqs.Or(r)
	unix.Write(f.ev, []byte{1, 0, 0, 0, 0, 0, 0, 0})
}

// Run feeds the input to the Logger until EOF (everything written) or
// Stop, and returns nil then; the caller closes the Logger. It returns an
// error only if the input or the event loop fails.
func (f *Feeder) Run() error {
	for {
		reqs := f.reqs.Swap(0)
		if reqs&reqRotate != 0 {
			f.warn(f.l.Rotate())
		}
		at, eof, err := f.consume(reqs&reqStop != 0)
		if err == nil && !eof && reqs&reqStop != 0 {
			f.warn(f.l.Flush(f.sc))
		}
		if err != nil || eof || reqs&reqStop != 0 {
			return err
		}
		if err := f.wait(at); err != nil {
			return err
		}
	}
}

// consume runs Consume until the input has nothing more to give now. With
// stop it also returns once every available line is handled, or once a
// failing directory blocks (the lines then stay in the pipe).
func (f *Feeder) consume(stop bool) (time.Time, bool, error) {
	for {
		at, eof, err := f.l.Consume(f.fd, f.sc)
		if inputError(err) != nil {
			return at, false, err
		}
		f.warn(err)
		if eof || at.IsZero() || at.After(f.l.opts.Now()) || (stop && f.l.blocked()) {
			return at, eof, nil
		}
	}
}

// wait sleeps until the input is readable, a request arrives, or at (if
// set) passes.
func (f *Feeder) wait(at time.Time) error {
	timeout := -1
	if !at.IsZero() {
		timeout = int(max(0, time.Until(at).Milliseconds()+1))
	}
	if f.reqs.Load() != 0 {
		return nil
	}
	var evs [2]unix.EpollEvent
	for {
		_, err := unix.EpollWait(f.ep, evs[:], timeout)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("epoll_wait", err)
		}
		var buf [8]byte
		unix.Read(f.ev, buf[:]) // reset the eventfd; the requests are in reqs
		return nil
	}
}

func (f *Feeder) warn(err error) {
	if err != nil && f.Warn != nil {
		f.Warn(err)
	}
}

// blocked reports whether a failing directory holds the input back.
func (l *Logger) blocked() bool {
	_, b := l.deadline(l.opts.Now())
	return b
}

// inputError returns the first of the errors in err that is not a
// [*WriteError]: a failure of the input, not of a log directory.
func inputError(err error) error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		for _, e := range j.Unwrap() {
			if ie := inputError(e); ie != nil {
				return ie
			}
		}
		return nil
	}
	if _, ok := err.(*WriteError); ok {
		return nil
	}
	return err
}
