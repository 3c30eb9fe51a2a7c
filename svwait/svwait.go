package svwait

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// Goal is the state to wait for.
type Goal int

const (
	Up           Goal = iota // up: a run process exists and is not finishing (s6-svwait -u)
	UpReady                  // up and ready, readiness notified (-U)
	Down                     // down: run died, finish may still run (-d)
	DownReady                // down and ready: finish done too (-D)
	Restart                  // every service down first, then Up (-r)
	RestartReady             // every service down first, then UpReady (-R)
)

// Mode says how many services must reach the goal.
type Mode int

const (
	All Mode = iota // every service (s6-svwait -a, the default)
	Any             // at least one (-o)
)

// ErrTimeout is returned when the context's deadline passes first.
var ErrTimeout = errors.New("timed out")

// errNoDirs rejects an empty wait, which s6 treats as a usage error.
var errNoDirs = errors.New("no service directory to wait for")

// FailedError reports services that failed permanently (finish exited 125:
// event 'O') or whose supervisor exited in the wrong state (event 'x')
// while the wait was on. N is the number of failures counted, which the
// s6 tools use as their exit code.
type FailedError struct {
	N    int
	Dirs []string // the services that failed, in argument order
}

func (e *FailedError) Error() string {
	if len(e.Dirs) == 1 {
		return e.Dirs[0] + " failed permanently or its supervisor died"
	}
	return fmt.Sprintf("%d services failed permanently or their supervisor died: %s",
		len(e.Dirs), strings.Join(e.Dirs, " "))
}

// Waiter is a wait in progress: subscribed to every directory's events and
// with the initial states read. The two-phase form lets a caller subscribe,
// then send control letters, then wait, without missing the transition its
// own letters cause (s6-svlisten1).
//
// A Waiter is not safe for concurrent use; Wait is called at most once, and
// Close always.
type Waiter struct {
	dirs []string
	subs []*servicedir.Subscription
	t    *tracker
}

// Wait waits until dirs reach goal (see [Listen]). It returns nil once they
// do, [ErrTimeout] if ctx's deadline passes first, ctx's error if it is
// cancelled, and a [*FailedError] if services failed.
func Wait(ctx context.Context, dirs []string, goal Goal, mode Mode) error {
	w, err := Listen(dirs, goal, mode)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Wait(ctx)
}

// Listen subscribes to the events of every directory in dirs (creating
// event/ if needed) and then reads its supervise/status, in that order, as
// s6_svlisten_init does. Errors are *os.PathError values naming the
// directory.
func Listen(dirs []string, goal Goal, mode Mode) (*Waiter, error) {
	if len(dirs) == 0 {
		return nil, errNoDirs
	}
	w := &Waiter{dirs: dirs}
	initial := make([]svState, len(dirs))
	for i, dir := range dirs {
		sub, err := servicedir.Subscribe(dir)
		if err != nil {
			w.Close()
			return nil, &os.PathError{Op: "subscribe to events for", Path: dir, Err: cause(err)}
		}
		w.subs = append(w.subs, sub)
		// NOTE: Wait interrupts blocked reads with a read deadline; make
		// sure now that the fifo supports them, rather than hang later.
		if err := sub.File.SetReadDeadline(time.Time{}); err != nil {
			w.Close()
			return nil, &os.PathError{Op: "set read deadline on", Path: sub.Path, Err: err}
		}
		st, err := servicedir.ReadStatus(dir)
		if err != nil {
			w.Close()
			return nil, &os.PathError{Op: "read status for", Path: dir, Err: cause(err)}
		}
		initial[i] = svState{up: st.Up(), ready: st.Ready}
	}
	w.t = newTracker(goal, mode, initial)
	return w, nil
}

// event is a chunk read from dir i's listener fifo, or the read error.
type event struct {
	i   int
	b   []byte
	err error
}

// Wait consumes events until the goal is reached, ctx is done or a read
// fails. See [Wait] for the results.
func (w *Waiter) Wait(ctx context.Context) error {
	if w.t.settle() {
		return w.result()
	}
	ctx, cancel := context.WithCancel(ctx)
	events := make(chan event)
	var wg sync.WaitGroup
	// NOTE: one reader per directory, parked in the Go poller. When Wait
	// ends for any reason, cancel fires the AfterFunc, whose past read
	// deadline unblocks them; Wait returns only once it ran and they are
	// gone, so Close never races with them.
	interrupted := make(chan struct{})
	context.AfterFunc(ctx, func() {
		w.interrupt()
		close(interrupted)
	})
	defer func() {
		cancel()
		<-interrupted
		wg.Wait()
	}()
	for i := range w.subs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.read(ctx, i, events)
		}()
	}
	// TODO(supervisor-death issue): start one watcher per directory here
	// (lock holder pid → pidfd); when the supervisor dies it sends
	// event{i: i, b: []byte{'x'}}, which the tracker already handles.
	for {
		select {
		case <-ctx.Done():
			return ctxErr(ctx)
		case ev := <-events:
			if ev.err != nil {
				if ctx.Err() != nil {
					return ctxErr(ctx)
				}
				return &os.PathError{Op: "read", Path: w.subs[ev.i].Path, Err: ev.err}
			}
			for _, b := range ev.b {
				if w.t.feed(ev.i, b) {
					return w.result()
				}
			}
		}
	}
}

// readBufSize bounds one read from a listener fifo; events are single bytes
// or pairs, so this only decides how many arrive per wakeup.
const readBufSize = 64

// read forwards the bytes of directory i's fifo to events until an error,
// which is forwarded too, or until ctx is done.
func (w *Waiter) read(ctx context.Context, i int, events chan<- event) {
	var buf [readBufSize]byte
	for {
		n, err := w.subs[i].File.Read(buf[:])
		ev := event{i: i, err: err}
		if n > 0 {
			ev.b, ev.err = append([]byte(nil), buf[:n]...), nil
		}
		if ev.b == nil && ev.err == nil {
			continue
		}
		select {
		case events <- ev:
		case <-ctx.Done():
			return
		}
		if ev.err != nil {
			return
		}
	}
}

// aLongTimeAgo is a read deadline that has always passed (net/http idiom).
var aLongTimeAgo = time.Unix(1, 0)

// interrupt wakes every blocked reader with a deadline in the past.
func (w *Waiter) interrupt() {
	for _, s := range w.subs {
		s.File.SetReadDeadline(aLongTimeAgo)
	}
}

func (w *Waiter) result() error {
	if w.t.n == 0 {
		return nil
	}
	e := &FailedError{N: w.t.n}
	for i, f := range w.t.failed {
		if f {
			e.Dirs = append(e.Dirs, w.dirs[i])
		}
	}
	return e
}

// Close unsubscribes from every directory (removing the listener fifos).
func (w *Waiter) Close() error {
	var errs []error
	for _, s := range w.subs {
		errs = append(errs, s.Close())
	}
	w.subs = nil
	return errors.Join(errs...)
}

func ctxErr(ctx context.Context) error {
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return ErrTimeout
	}
	return ctx.Err()
}

// cause strips an *os.PathError so that the caller's error names the
// service directory once instead of nesting two paths.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
