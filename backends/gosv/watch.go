package gosv

import (
	"context"
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// watch is a subscription to one service directory's events for what
// the backend waits for beyond svwait: a scanner taking the directory
// (Start, which then hands the subscription to svwait) and a supervisor's
// exit (Stop). It is used by one goroutine at a time.
type watch struct {
	dir  string
	sub  *servicedir.Subscription
	exit bool // 'x' seen
}

func newWatch(dir string) (*watch, error) {
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		return nil, err
	}
	return &watch{dir: dir, sub: sub}, nil
}

func (w *watch) close() { w.sub.Close() }

// errDeadline: the wait's own deadline passed.
var errDeadline = errors.New("timed out")

// aLongTimeAgo is a read deadline that has always passed.
var aLongTimeAgo = time.Unix(1, 0)

// next reads the events available (blocking until at least one, the
// deadline or the end of ctx) and records them.
func (w *watch) next(ctx context.Context, deadline time.Time) error {
	var buf [64]byte
	return w.read(ctx, deadline, buf[:])
}

// read is next with at most len(buf) events.
func (w *watch) read(ctx context.Context, deadline time.Time, buf []byte) error {
	if err := w.sub.File.SetReadDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { w.sub.File.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	n, err := w.sub.File.Read(buf)
	for _, b := range buf[:max(n, 0)] {
		if b == 'x' {
			w.exit = true
		}
	}
	if err == nil {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return errDeadline
	}
	return err
}

// supervised waits until a supervisor holds the directory and its status
// file exists: the scanner takes the lock, writes the status, then
// announces 's'. It reads one event at a time and stops at the take, so
// that the events of the new supervisor ('u', a 'd') stay queued for the
// svwait wait that takes the subscription over.
func (w *watch) supervised(ctx context.Context, deadline time.Time) error {
	var b [1]byte
	// NOTE: listening too: the lock and the status file may still be the
	// previous supervisor's, exiting after a stop (a failed start's
	// cleanup) with its control fifo closed; 'u' then failed with
	// "supervisor not listening" and the new take started the daemon
	// behind the failed start's back. The new supervisor opens the fifo
	// before it announces 's', which wakes this loop.
	for !supervised(w.dir) || !hasStatus(w.dir) || servicedir.WriteControl(w.dir, nil) != nil {
		if err := w.read(ctx, deadline, b[:]); err != nil {
			return err
		}
	}
	return nil
}

// exited waits until the supervisor has exited ('x', or the lock is free).
func (w *watch) exited(ctx context.Context) error {
	for !w.exit && supervised(w.dir) {
		if err := w.next(ctx, time.Time{}); err != nil {
			return err
		}
	}
	return nil
}

// waitUnlocked waits until nobody holds dir's supervise/lock, or ctx
// ends. A supervisor sends 'x' just before it closes the lock, so after
// 'x' this is a matter of microseconds: the wait is a blocking request for
// a read lock (F_OFD_SETLKW), granted the moment the write lock goes.
//
// NOTE: a blocked fcntl cannot be cancelled; if ctx ends first, the
// goroutine stays blocked until the lock is released or the process exits.
func waitUnlocked(ctx context.Context, dir string) error {
	f, err := os.Open(dir + "/" + servicedir.LockPath)
	if err != nil {
		return nil // no lock file: nobody holds it
	}
	done := make(chan error, 1)
	go func() {
		defer f.Close()
		lk := unix.Flock_t{Type: unix.F_RDLCK, Whence: 0}
		for {
			err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk)
			if err == unix.EINTR {
				continue
			}
			done <- err
			return
		}
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func hasStatus(dir string) bool {
	_, err := servicedir.ReadStatus(dir)
	return err == nil
}
