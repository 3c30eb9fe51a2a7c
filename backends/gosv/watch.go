package gosv

import (
	"context"
	"errors"
	"os"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// watch is a subscription to one service directory's events that keeps
// what the backend needs beyond svwait: the deaths of run and the
// supervisor's exit. It is used by one goroutine at a time.
type watch struct {
	dir    string
	sub    *servicedir.Subscription
	deaths int  // 'd' events seen
	exit   bool // 'x' seen
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
// deadline or the end of ctx) and records them; onByte sees each byte.
func (w *watch) next(ctx context.Context, deadline time.Time, onByte func(byte)) error {
	if err := w.sub.File.SetReadDeadline(deadline); err != nil {
		return err
	}
	stop := context.AfterFunc(ctx, func() { w.sub.File.SetReadDeadline(aLongTimeAgo) })
	defer stop()
	var buf [64]byte
	n, err := w.sub.File.Read(buf[:])
	for _, b := range buf[:max(n, 0)] {
		switch b {
		case 'd':
			w.deaths++
		case 'x':
			w.exit = true
		}
		if onByte != nil {
			onByte(b)
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
// announces 's'.
func (w *watch) supervised(ctx context.Context, deadline time.Time) error {
	for !supervised(w.dir) || !hasStatus(w.dir) {
		if err := w.next(ctx, deadline, nil); err != nil {
			return err
		}
	}
	return nil
}

// exited waits until the supervisor has exited ('x', or the lock is free).
func (w *watch) exited(ctx context.Context) error {
	for !w.exit && supervised(w.dir) {
		if err := w.next(ctx, time.Time{}, nil); err != nil {
			return err
		}
	}
	return nil
}

// earlyDeathError: the run process died during the start_wait window,
// after this long.
type earlyDeathError struct{ after time.Duration }

func (e *earlyDeathError) Error() string { return "died after " + e.after.String() }

// errSupervisorExited: the supervisor exited during the start_wait window.
var errSupervisorExited = errors.New("the supervisor exited")

// stayUp waits until the deadline and fails if the run process dies
// before: at a 'd' event (which the scanner sends for every death, so a
// restart within the window cannot hide one), at the supervisor's exit,
// or when the status at the deadline no longer shows the process that
// was up when the window began (a death whose 'd' is not yet out).
//
// Every death since the subscription counts: the start asked for one
// process that stays up.
func (w *watch) stayUp(ctx context.Context, deadline time.Time) error {
	st, err := servicedir.ReadStatus(w.dir)
	if err != nil {
		return err
	}
	begin := st.Stamp // the up transition: "after" counts from there
	if !st.Up() || w.deaths > 0 {
		return &earlyDeathError{after: time.Since(begin)}
	}
	pid := st.Pid
	for {
		switch err := w.next(ctx, deadline, nil); {
		case w.deaths > 0:
			return &earlyDeathError{after: time.Since(begin)}
		case w.exit:
			return errSupervisorExited
		case errors.Is(err, errDeadline):
			if now, err := servicedir.ReadStatus(w.dir); err != nil || !now.Up() || now.Pid != pid {
				return &earlyDeathError{after: time.Since(begin)}
			}
			return nil
		case err != nil:
			return err
		}
	}
}

// watchDeaths reads events in a goroutine and calls onDeath at the first
// 'd'. The returned function stops the goroutine and waits for it.
func (w *watch) watchDeaths(onDeath func()) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	var once sync.Once
	wg.Add(1)
	go func() {
		defer wg.Done()
		for ctx.Err() == nil {
			err := w.next(ctx, time.Time{}, func(b byte) {
				if b == 'd' {
					once.Do(onDeath)
				}
			})
			if err != nil {
				return
			}
		}
	}()
	return func() {
		cancel()
		wg.Wait()
	}
}

// waitFd waits until fd (a pidfd) is readable, that is until its process
// has exited, or ctx's deadline passes; it reports whether it exited.
func waitFd(ctx context.Context, fd int) bool {
	for {
		ms := -1
		if dl, ok := ctx.Deadline(); ok {
			ms = max(0, int(time.Until(dl).Milliseconds()))
		}
		n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, ms)
		if err == unix.EINTR {
			continue
		}
		return err == nil && n > 0
	}
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
