package svwait

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

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

// Letters are the s6 letters of the goals, in Goal order: s6-svwait's
// options -u -U -d -D -r -R, and s6-svc -w's argument.
const Letters = "uUdDrR"

// GoalFor maps an s6 wait letter to its goal.
func GoalFor(letter byte) (Goal, bool) {
	i := strings.IndexByte(Letters, letter)
	return Goal(i), i >= 0
}

var goalText = [...]string{
	Up:           "up",
	UpReady:      "ready",
	Down:         "down",
	DownReady:    "down and finished",
	Restart:      "restarted",
	RestartReady: "restarted and ready",
}

// String says what a service waited for is, in the words of a failed
// start: "not ready within 5s".
func (g Goal) String() string {
	if g >= 0 && int(g) < len(goalText) {
		return goalText[g]
	}
	return "goal " + strconv.Itoa(int(g))
}

// endsUp reports whether the goal's last phase wants the service up.
func (g Goal) endsUp() bool { return g != Down && g != DownReady }

// wantsReady reports whether the goal ends with readiness, the only goals a
// service's ready deadline extends.
func (g Goal) wantsReady() bool { return g == UpReady || g == RestartReady }

// Mode says how many services must reach the goal.
type Mode int

const (
	All Mode = iota // every service (s6-svwait -a, the default)
	Any             // at least one (-o)
)

// errNoDirs rejects an empty wait, which s6 treats as a usage error.
var errNoDirs = errors.New("no service directory to wait for")

// Waiter is a wait in progress: subscribed to every directory's events,
// with the initial states read and the supervisors identified. The
// two-phase form lets a caller subscribe, then send control letters, then
// wait, without missing the transition its own letters cause
// (s6-svlisten1).
//
// A Waiter is not safe for concurrent use; Wait is called at most once, and
// Close always.
//
// Beyond s6-svwait, for the OpenRC backend: [Waiter.FailOnDeath] ends a
// wait for up at the first death of run, and [Waiter.Stay] makes it last
// (start_wait), in the same wait on the same subscription.
type Waiter struct {
	// Deadline is the wait's own deadline (zero: none), set before Wait.
	// Unlike ctx's deadline it can move: for the UpReady and RestartReady
	// goals, a service that announces a later supervise/gosv/ready-deadline
	// (sd_notify EXTEND_TIMEOUT_USEC; event 'e', or the file present when
	// Listen reads it) extends it, so that the wait ends at max(Deadline,
	// the latest ready deadline seen). Extensions are never withdrawn
	// during a wait. gosv svwait -t and svc -T set it.
	Deadline time.Time
	// FailOnDeath, set before Wait, makes a death of run (event 'd') while
	// the wait wants the service up a failure ([Died]) that ends the wait
	// at once, with how it died, instead of waiting for the supervisor's
	// restart. Every death since Listen subscribed counts. The OpenRC
	// backend sets it: a start fails at the first death, as
	// supervise-daemon's does when its readiness pipe reaches EOF.
	FailOnDeath bool
	// Stay, set before Wait, makes a goal that ends up last this long
	// (OpenRC's start_wait): once the goal is reached, the wait goes on
	// until Stay has passed, and fails ([Died], [Service.InStay]) at a
	// death of run, at an 'x', or when supervise/status at the end no
	// longer shows the process that was up when the goal was reached (a
	// death whose 'd' is not out yet). The stay ends at its own end,
	// whatever Deadline says. Zero: the wait ends at the goal.
	Stay time.Duration

	dirs   []string
	goal   Goal
	subs   []*servicedir.Subscription
	fifos  []int // raw read ends of subs (non-blocking)
	pidfds []int // per service: pidfd of its supervisor, -1 if not watched
	gone   []bool
	info   []Service // per service: what errors report
	t      *tracker
	// ready is the latest supervise/gosv/ready-deadline seen (zero: none).
	ready time.Time
	// adopted: subs[0] is the caller's (ListenSubscribed), not closed here.
	adopted bool
	// stayEnd is when the stay ends (zero: not staying); stayPid is, per
	// service, the run pid that must still be up then (0: not held).
	stayEnd time.Time
	stayPid []int
}

// Wait waits until dirs reach goal; see [Listen] and [Waiter.Wait]. Its
// only deadline is ctx's, which nothing extends; callers that honour
// readiness-deadline extensions set [Waiter.Deadline] instead.
func Wait(ctx context.Context, dirs []string, goal Goal, mode Mode) error {
	w, err := Listen(dirs, goal, mode)
	if err != nil {
		return err
	}
	defer w.Close()
	return w.Wait(ctx)
}

// Listen starts a wait on dirs. For each directory, in this order, as
// s6_svlisten_init does: it subscribes to the events (creating event/ if
// needed), reads supervise/status, and then (gosv only) finds the
// supervisor and opens a pidfd on it; a directory whose supervise/lock
// nobody holds is noted, and counts as failed when the wait starts unless
// it is already in the wanted state. For the UpReady and RestartReady
// goals it also reads each supervise/gosv/ready-deadline.
//
// Errors are *os.PathError values naming the directory: a missing
// directory or status file is an error, as in s6-svwait (exit 111).
func Listen(dirs []string, goal Goal, mode Mode) (*Waiter, error) {
	if len(dirs) == 0 {
		return nil, errNoDirs
	}
	return listenOn(dirs, nil, goal, mode)
}

// ListenSubscribed is [Listen] for one directory whose events the caller
// already receives through sub: a caller that must see every event since
// before a supervisor took the directory (the OpenRC backend subscribes,
// links the directory into the scanner's, and waits for it to be taken)
// hands its subscription over instead of opening a second one. The
// events still queued in sub are the wait's first events; the caller
// keeps sub, and closes it after the Waiter.
func ListenSubscribed(dir string, sub *servicedir.Subscription, goal Goal) (*Waiter, error) {
	return listenOn([]string{dir}, sub, goal, All)
}

func listenOn(dirs []string, sub *servicedir.Subscription, goal Goal, mode Mode) (*Waiter, error) {
	n := len(dirs)
	w := &Waiter{dirs: dirs, goal: goal, pidfds: make([]int, 0, n), gone: make([]bool, n), info: make([]Service, n), adopted: sub != nil}
	initial := make([]svState, n)
	for i, dir := range dirs {
		st, err := w.listen(dir, sub)
		if err != nil {
			w.Close()
			return nil, err
		}
		initial[i] = svState{up: st.Up(), ready: st.Ready}
		w.info[i] = Service{Dir: dir, Up: st.Up(), Ready: st.Ready, Wstat: st.Wstat, Check: servicedir.ReadCheckOutput(dir)}
		pidfd, running := watchSupervisor(dir)
		w.pidfds = append(w.pidfds, pidfd)
		w.gone[i] = !running
		if goal.wantsReady() {
			w.extend(dir)
		}
	}
	w.t = newTracker(goal, mode, initial)
	return w, nil
}

// listen subscribes to dir's events (unless sub already receives them)
// and then reads its status.
func (w *Waiter) listen(dir string, sub *servicedir.Subscription) (servicedir.Status, error) {
	if dir == "" {
		// NOTE: s6-svwait turns "" into "/event" and creates it at the
		// root; refuse instead, with s6's exit code (111).
		return servicedir.Status{}, &os.PathError{Op: "subscribe to events for", Path: dir, Err: unix.ENOENT}
	}
	if sub == nil {
		var err error
		if sub, err = servicedir.Subscribe(dir); err != nil {
			return servicedir.Status{}, &os.PathError{Op: "subscribe to events for", Path: dir, Err: cause(err)}
		}
	}
	w.subs = append(w.subs, sub)
	fd, err := rawFd(sub.File)
	if err != nil {
		return servicedir.Status{}, &os.PathError{Op: "subscribe to events for", Path: dir, Err: err}
	}
	w.fifos = append(w.fifos, fd)
	st, err := servicedir.ReadStatus(dir)
	if err != nil {
		return servicedir.Status{}, &os.PathError{Op: "read status for", Path: dir, Err: cause(err)}
	}
	return st, nil
}

// rawFd returns f's descriptor without f.Fd's side effect of making it
// blocking.
func rawFd(f *os.File) (int, error) {
	rc, err := f.SyscallConn()
	if err != nil {
		return -1, err
	}
	fd := -1
	if err := rc.Control(func(u uintptr) { fd = int(u) }); err != nil {
		return -1, err
	}
	return fd, nil
}

// Wait consumes events until the goal is reached, w.Deadline (as extended)
// or ctx's deadline passes, ctx is cancelled or a read fails. ctx's
// deadline, if any, is a hard limit that nothing extends.
//
// Results: nil once the goal is reached; a [*FailedError] if services
// failed (s6's rules, plus supervisors that are gone); a [*TimeoutError]
// (errors.Is [ErrTimeout]) when the deadline passes first; ctx's error if
// it is cancelled; an *os.PathError if reading events fails.
//
// Events already queued when Wait starts are consumed first, then the
// services without a supervisor fail. A supervisor that dies during the
// wait is noticed through its pidfd at once, after every event it sent
// before dying: it counts as an 'x' from a supervisor that could not say
// so ([SupervisorDied]).
//
// Wait blocks in the Go poller on one epoll descriptor holding the
// listener fifos and the pidfds; it starts no goroutine and never polls.
func (w *Waiter) Wait(ctx context.Context) error {
	w.t.failOnDeath = w.FailOnDeath
	if done, err := w.start(); done {
		return err
	}
	l, err := newLoop(w)
	if err != nil {
		return err
	}
	defer l.close()
	return l.run(ctx, w.Deadline)
}

// start consumes the events queued since Listen and fails the services
// found without a supervisor; done reports that the wait is over.
func (w *Waiter) start() (done bool, err error) {
	for i := range w.fifos {
		if done, err := w.drain(i); done {
			return true, err
		}
	}
	for i, gone := range w.gone {
		if gone && w.settled(w.t.die(i, NoSupervisor)) {
			return true, w.result()
		}
	}
	if w.settled(w.t.settle()) {
		return true, w.result()
	}
	return false, nil
}

// readBufSize bounds one read from a listener fifo; events are single
// bytes or pairs, so this only decides how many arrive per read.
const readBufSize = 64

// drain reads service i's fifo until it is empty (EAGAIN) and applies
// every byte; done reports that the wait is over, with its result.
func (w *Waiter) drain(i int) (done bool, err error) {
	var buf [readBufSize]byte
	for {
		n, err := unix.Read(w.fifos[i], buf[:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false, nil
		case err != nil:
			return true, &os.PathError{Op: "read", Path: w.subs[i].Path, Err: err}
		case n == 0:
			// Unreachable: the Subscription keeps a write end open.
			return true, &os.PathError{Op: "read", Path: w.subs[i].Path, Err: errors.New("unexpected EOF")}
		}
		for _, b := range buf[:n] {
			if w.apply(i, b) {
				return true, w.result()
			}
		}
	}
}

// apply records what event byte b from service i says about it for the
// error messages, then feeds it to the tracker.
func (w *Waiter) apply(i int, b byte) bool {
	s := &w.info[i]
	switch b {
	case 'd', 'D', 'u', 'U':
		s.Up, s.Ready = b == 'u' || b == 'U', b == 'D' || b == 'U'
		if b == 'd' {
			s.Deaths++
			w.readWstat(i)
		}
	case 'O':
		w.readWstat(i)
	case 'c':
		s.Check = servicedir.ReadCheckOutput(w.dirs[i])
	case 'e':
		if w.goal.wantsReady() {
			w.extend(w.dirs[i])
		}
	}
	return w.settled(w.t.feed(i, b))
}

// settled turns the tracker's "over" into the wait's: with Stay, a goal
// reached without failures starts the stay, which only failures end
// before its end.
func (w *Waiter) settled(over bool) bool {
	if !over || w.t.n > 0 || w.Stay <= 0 || w.t.holding || !w.goal.endsUp() {
		return over
	}
	w.stayEnd = time.Now().Add(w.Stay)
	w.stayPid = make([]int, len(w.dirs))
	w.t.holding = true
	for i, dir := range w.dirs {
		if w.t.dead[i] || !w.t.st[i].up {
			continue // an "any" wait holds the services that are up
		}
		// NOTE: the status, not the event: an up event already queued
		// behind a death must not hide it.
		st, err := servicedir.ReadStatus(dir)
		if err == nil {
			w.info[i].UpSince = st.Stamp
		}
		if err != nil || !st.Up() {
			if err == nil {
				w.info[i].Wstat = st.Wstat
			}
			w.t.fail(i, Died)
			continue
		}
		w.stayPid[i] = st.Pid
		w.t.hold(i)
	}
	return w.t.n > 0
}

// stayOver ends a stay that lasted: every held service must still run the
// process it ran when the stay began.
func (w *Waiter) stayOver() error {
	for i, pid := range w.stayPid {
		if pid == 0 || !w.t.held[i] {
			continue
		}
		if st, err := servicedir.ReadStatus(w.dirs[i]); err != nil || !st.Up() || st.Pid != pid {
			w.readWstat(i)
			w.t.fail(i, Died)
		}
	}
	return w.result()
}

// readWstat refreshes service i's last wait status; a status file that
// cannot be read leaves the old value, as it only enriches messages.
func (w *Waiter) readWstat(i int) {
	if st, err := servicedir.ReadStatus(w.dirs[i]); err == nil {
		w.info[i].Wstat = st.Wstat
	}
}

// extend takes dir's ready deadline into account.
func (w *Waiter) extend(dir string) {
	if t, ok := servicedir.ReadReadyDeadline(dir); ok && t.After(w.ready) {
		w.ready = t
	}
}

// effective returns the wait's deadline after extensions (zero: none),
// or the end of the stay.
func (w *Waiter) effective(deadline time.Time) time.Time {
	if w.t.holding {
		return w.stayEnd
	}
	if deadline.IsZero() || !w.ready.After(deadline) {
		return deadline
	}
	return w.ready
}

// dead handles the death of service i's supervisor, seen on its pidfd: the
// events it sent before dying come first.
func (w *Waiter) dead(i int) (done bool, err error) {
	if done, err := w.drain(i); done {
		return true, err
	}
	if w.settled(w.t.die(i, SupervisorDied)) {
		return true, w.result()
	}
	return false, nil
}

func (w *Waiter) result() error {
	if w.t.n == 0 {
		return nil
	}
	e := &FailedError{N: w.t.n}
	for i, f := range w.t.failed {
		if f {
			e.Services = append(e.Services, w.service(i))
		}
	}
	return e
}

// timeout builds the error for a deadline that passed: every service that
// failed or is not in the wanted state of the current phase.
func (w *Waiter) timeout(deadline time.Time, extended bool) error {
	e := &TimeoutError{Deadline: deadline, Extended: extended}
	want := w.t.phases[w.t.ph]
	for i := range w.dirs {
		if w.t.failed[i] || !w.t.st[i].satisfies(want) {
			e.Services = append(e.Services, w.service(i))
		}
	}
	return e
}

func (w *Waiter) service(i int) Service {
	s := w.info[i]
	s.Reason = TimedOut
	if w.t.failed[i] {
		s.Reason = w.t.reason[i]
		s.InStay = w.t.holding
	}
	return s
}

// expired is the result of a wait whose deadline d passed: the end of a
// stay, or a timeout.
func (w *Waiter) expired(d time.Time, extended bool) error {
	if w.t.holding {
		return w.stayOver()
	}
	return w.timeout(d, extended)
}

// Close unsubscribes from every directory (removing the listener fifos,
// except a subscription handed over by [ListenSubscribed]) and closes the
// pidfds.
func (w *Waiter) Close() error {
	for i, fd := range w.pidfds {
		if fd >= 0 {
			unix.Close(fd)
			w.pidfds[i] = -1
		}
	}
	var errs []error
	for i, s := range w.subs {
		if i > 0 || !w.adopted {
			errs = append(errs, s.Close())
		}
	}
	w.subs, w.fifos = nil, nil
	return errors.Join(errs...)
}

// cause strips an *os.PathError so that the caller's error names the
// service directory once instead of nesting two paths.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		if errors.Is(pe.Err, fs.ErrPermission) {
			// Name the file refused: with group control (PROTOCOL.md
			// §9.7) it tells which permission is missing.
			return fmt.Errorf("%s: %w", pe.Path, pe.Err)
		}
		return pe.Err
	}
	return err
}
