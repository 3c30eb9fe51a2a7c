// Package gosv is the native backend: services run in a `gosv svscan`
// tree, one scan directory whose entries are symlinks to service
// directories. Start links a directory into the scan directory (the
// scanner takes it at once, through inotify) and waits with the svwait
// package; Stop brings it down, unlinks it and lets its supervisor exit,
// so that the scanner forgets it.
package gosv

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/svstat"
	"github.com/gosv/gosv/svwait"
)

// Backend timings.
const (
	// TakeTimeout bounds the wait for the scanner to take a linked
	// directory (inotify: normally well under a millisecond).
	TakeTimeout = 5 * time.Second
	// CleanupTimeout bounds the stop that follows a failed start.
	CleanupTimeout = 20 * time.Second
)

// Backend supervises services in the scan directory ScanDir.
type Backend struct {
	ScanDir string
	// Scanner names the scanner in messages; "" is gosv-svscan.
	Scanner string
	// Rescan, when set, is called after a link was made or removed: a
	// scanner that does not watch its directory (s6-svscan) must be told
	// to look (backends/s6).
	Rescan func() error
	// CleanupStop, when set, is the stop a failed start's cleanup uses
	// (a wrapping backend's own Stop); nil is this backend's Stop.
	CleanupStop func(ctx context.Context, svc backends.Service, opts backends.StopOptions) error
}

func (b *Backend) scanner() string {
	if b.Scanner == "" {
		return "gosv-svscan"
	}
	return b.Scanner
}

var _ backends.Backend = (*Backend)(nil)

// New returns the backend for the scanner of scanDir.
func New(scanDir string) *Backend { return &Backend{ScanDir: scanDir} }

// Running reports whether a scanner holds the scan directory.
func (b *Backend) Running() bool {
	ok, err := servicedir.IsLocked(filepath.Join(b.ScanDir, servicedir.ScanLockPath))
	return err == nil && ok
}

func (b *Backend) link(name string) string { return filepath.Join(b.ScanDir, name) }

// Start links svc.Dir into the scan directory as svc.Name, waits for the
// scanner to take it, asks for it up (unless its take already started it)
// and waits for opts.Goal. A death of the run process before the goal
// fails the start at once (as supervise-daemon's readiness pipe reaching
// EOF does); with
// opts.StartWait, so does one within the window. On failure the service
// is brought down and unlinked before Start returns.
func (b *Backend) Start(ctx context.Context, svc backends.Service, opts backends.StartOptions) error {
	fail := func(reason string, err error) error {
		return &backends.StartError{Service: svc.Name, Reason: reason, Err: err}
	}
	if !b.Running() {
		return fail(b.scanner()+" is not running on "+b.ScanDir, backends.ErrNoSupervisor)
	}
	dir, err := filepath.Abs(svc.Dir)
	if err != nil {
		return fail(err.Error(), err)
	}
	begin := time.Now()
	var deadline time.Time
	if opts.Timeout > 0 {
		deadline = time.Now().Add(opts.Timeout)
	}
	// The start's one subscription, opened before the link so that every
	// event of the start is seen: the wait for the scanner reads it up to
	// the take, and the svwait wait takes it over from there.
	w, err := newWatch(dir)
	if err != nil {
		return fail(fmt.Sprintf("unable to subscribe to %s: %v", dir, err), err)
	}
	defer w.close()
	fresh := !supervised(dir) // the take below is this start's
	if err := backends.LinkDir(b.link(svc.Name), dir); err != nil {
		return fail(err.Error(), err)
	}
	if b.Rescan != nil {
		if err := b.Rescan(); err != nil {
			b.cleanup(svc.Name, dir)
			return fail("unable to make "+b.scanner()+" rescan: "+err.Error(), err)
		}
	}
	if err := w.supervised(ctx, minTime(deadline, time.Now().Add(TakeTimeout))); err != nil {
		b.cleanup(svc.Name, dir)
		return fail("the scanner did not take "+dir+": "+err.Error(), err)
	}
	if err := b.waitUp(ctx, w, dir, opts, deadline, fresh); err != nil {
		// NOTE: the reason first: the cleanup's own stop of a restarted
		// process would overwrite what the status says (and may start
		// another launch of a forking daemon).
		reason := b.reason(err, dir, opts, begin)
		b.cleanup(svc.Name, dir)
		return fail(reason, err)
	}
	return nil
}

// waitUp asks dir up and waits for opts.Goal in one svwait wait on w's
// subscription: it fails at the first death of run while the goal wants
// it up, and, with StartWait and the goal Up, lasts the window.
//
// fresh: no supervisor held dir before this start linked it.
func (b *Backend) waitUp(ctx context.Context, w *watch, dir string, opts backends.StartOptions, deadline time.Time, fresh bool) error {
	sw, err := svwait.ListenSubscribed(dir, w.sub, opts.Goal)
	if err != nil {
		return err
	}
	defer sw.Close()
	sw.Deadline = deadline
	sw.FailOnDeath = true
	if opts.Goal == svwait.Up {
		sw.Stay = opts.StartWait
	}
	// NOTE: no 'u' when this start's own take already wants it up: the
	// supervisor started the run at the take, and a 'u' that reaches it
	// after that run died (a daemon that fails at once, on a loaded
	// machine) is an explicit start: it bypasses the respawn delay and
	// resets the policy's failure count (TestPolicyBackoff saw two starts
	// 39 ms apart and 3 failures for 4 deaths). The wait still sees the
	// take's 'u' on the subscription.
	if st, err := servicedir.ReadStatus(dir); !fresh || err != nil || !st.WantUp {
		if err := servicedir.WriteControl(dir, []byte{'u'}); err != nil {
			return err
		}
	}
	return sw.Wait(ctx)
}

// reason turns a start error into words: how it died, what timed out,
// the last check output or sd_notify status.
func (b *Backend) reason(err error, dir string, opts backends.StartOptions, begin time.Time) string {
	var te *svwait.TimeoutError
	var fe *svwait.FailedError
	extra := ""
	if txt := lastLine(servicedir.ReadStatusText(dir)); txt != "" {
		extra += "; status: " + txt
	}
	launch := launchError(dir, begin)
	switch {
	case errors.As(err, &fe) && len(fe.Services) > 0:
		s := fe.Services[0]
		switch {
		case s.Reason == svwait.Died && launch != "":
			return "launch failed: " + launch + extra
		case s.InStay && s.Reason == svwait.Died:
			var after time.Duration
			if !s.UpSince.IsZero() {
				after = time.Since(s.UpSince)
			}
			return fmt.Sprintf("died %dms after it was up (start_wait %v): %s", after.Milliseconds(), opts.StartWait, deathText(s.Wstat)) + extra
		case s.InStay:
			return "its supervisor exited before start_wait (" + opts.StartWait.String() + ") was over" + extra
		case s.Reason == svwait.Died:
			return "died before it was " + opts.Goal.String() + ": " + deathText(s.Wstat) + extra
		case s.Reason == svwait.Permanent:
			return "failed permanently (finish exited 125), last " + deathText(s.Wstat) + extra
		case s.Reason == svwait.SupervisorDied, s.Reason == svwait.SupervisorExited, s.Reason == svwait.NoSupervisor:
			return s.Reason.String() + extra
		}
		return err.Error()
	case errors.As(err, &te):
		r := fmt.Sprintf("not %s within %v", opts.Goal, opts.Timeout)
		if launch != "" {
			r += "; launch failed: " + launch
		} else if pf, ok, _ := servicedir.ReadPidfileFile(dir); ok && !daemonFound(dir, pf) {
			r += "; the pidfile " + pf + " named no daemon"
		}
		if len(te.Services) > 0 {
			if c := te.Services[0].Check; c != "" {
				r += "; check: " + lastLine(c)
			}
		}
		return r + extra
	case errors.Is(err, context.Canceled):
		return "interrupted"
	}
	return err.Error()
}

// launchError is supervise/gosv/launch-error when a launch failed since
// begin (a forking daemon's launcher, pidfile or daemon).
func launchError(dir string, begin time.Time) string {
	p := filepath.Join(dir, servicedir.LaunchErrorPath)
	if fi, err := os.Stat(p); err != nil || fi.ModTime().Before(begin.Add(-time.Second)) {
		return ""
	}
	b, _ := servicedir.ReadStateFile(dir, servicedir.LaunchErrorPath)
	return strings.TrimSpace(string(b))
}

// daemonFound reports whether a forking service's status names the
// process its pidfile pf names, that is, whether its daemon was found.
func daemonFound(dir, pf string) bool {
	d, err := servicedir.ReadDaemonPidfile(pf)
	st, serr := servicedir.ReadStatus(dir)
	return err == nil && serr == nil && st.Up() && d.Pid == st.Pid
}

func deathText(wstat uint16) string {
	d := servicedir.DeathFromWstat(time.Time{}, wstat)
	if d.Sig != 0 {
		return "killed by " + d.String()
	}
	return d.String()
}

// cleanup stops what a failed start left, bounded by CleanupTimeout.
func (b *Backend) cleanup(name, dir string) {
	ctx, cancel := context.WithTimeout(context.Background(), CleanupTimeout)
	defer cancel()
	stop := b.Stop
	if b.CleanupStop != nil {
		stop = b.CleanupStop
	}
	stop(ctx, backends.Service{Name: name, Dir: dir}, backends.StopOptions{Timeout: CleanupTimeout})
}

// Stop unlinks the service from the scan directory and tells its
// supervisor (and its logger's) to bring it down and exit; then it waits
// for them to exit, which the supervisor announces with 'x' once run and
// finish are over and its process group is empty. The down-signal and
// timeout-kill of the directory apply. A service whose supervisor is gone
// but whose run process lives on (the scanner was killed) gets the
// down-signal on its process group, then SIGKILL at the deadline.
func (b *Backend) Stop(ctx context.Context, svc backends.Service, opts backends.StopOptions) error {
	dir := svc.Dir
	if target, err := filepath.EvalSymlinks(b.link(svc.Name)); err == nil {
		dir = target
	}
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	dirs := []string{dir}
	if fi, err := os.Stat(filepath.Join(dir, servicedir.LogDir)); err == nil && fi.IsDir() {
		dirs = append(dirs, filepath.Join(dir, servicedir.LogDir))
	}
	var watches []*watch
	defer func() {
		for _, w := range watches {
			w.close()
		}
	}()
	for _, d := range dirs {
		if supervised(d) {
			w, err := newWatch(d)
			if err != nil {
				return err
			}
			watches = append(watches, w)
		}
	}
	if err := os.Remove(b.link(svc.Name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if b.Rescan != nil {
		// NOTE: a dead scanner cannot hear it; the supervisors are told
		// to exit below all the same.
		b.Rescan()
	}
	if len(watches) == 0 {
		return killOrphan(ctx, dir)
	}
	for i, w := range watches {
		letters := []byte("x")
		if i == 0 {
			letters = []byte("dx")
		}
		if err := servicedir.WriteControl(w.dir, letters); err != nil && !errors.Is(err, servicedir.ErrNotListening) {
			return err
		}
	}
	for _, w := range watches {
		if err := w.exited(ctx); err != nil {
			st, _ := servicedir.ReadStatus(w.dir)
			if st.Up() {
				return fmt.Errorf("%s is still up (pid %d): %w", w.dir, st.Pid, err)
			}
			return fmt.Errorf("%s: its supervisor did not exit: %w", w.dir, err)
		}
		if err := waitUnlocked(ctx, w.dir); err != nil {
			return fmt.Errorf("%s: its supervisor did not release it: %w", w.dir, err)
		}
	}
	return nil
}

// supervised reports whether a supervisor holds dir.
func supervised(dir string) bool {
	ok, err := servicedir.IsLocked(filepath.Join(dir, servicedir.LockPath))
	return err == nil && ok
}

// killOrphan stops a run process whose supervisor is gone: its recorded
// pid, if still the same process ([backends.StopOrphan]).
func killOrphan(ctx context.Context, dir string) error {
	pid, ok := orphan(dir)
	if !ok {
		return nil
	}
	return backends.StopOrphan(ctx, dir, pid, TakeTimeout)
}

// orphan returns the recorded run pid of dir when that process still
// lives (same start time) and nobody supervises it.
func orphan(dir string) (int, bool) {
	if supervised(dir) {
		return 0, false
	}
	rec, err := servicedir.ReadPidRecord(dir)
	if err != nil {
		return 0, false
	}
	// NOTE: a zombie is dead: its parent (init, once the scanner is
	// gone) has not reaped it yet, but it runs nothing.
	ps, err := servicedir.ReadProcStat(rec.Pid)
	if err != nil || ps.StartTime != rec.StartTime || ps.State == 'Z' {
		return 0, false
	}
	return rec.Pid, true
}

// Status reads svc's state: from supervise/status while a supervisor holds
// it; otherwise whether a recorded run process survives its supervisor.
func (b *Backend) Status(svc backends.Service) (backends.Status, error) {
	dir := svc.Dir
	if target, err := filepath.EvalSymlinks(b.link(svc.Name)); err == nil {
		dir = target
	}
	var s backends.Status
	if !supervised(dir) {
		if _, err := servicedir.ReadRecord(dir, servicedir.SupervisorRecordPath); err == nil {
			s.SupervisorDead = true
		}
		if pid, ok := orphan(dir); ok {
			s.Pid, s.Up = pid, true
			s.Line = fmt.Sprintf("unsupervised (pid %d): %s is not running", pid, b.scanner())
		} else {
			s.Line = "not supervised"
		}
		return s, nil
	}
	st, normallyUp, err := svstat.Read(dir)
	if err != nil {
		return s, err
	}
	now := time.Now()
	s.Supervised = true
	s.Up, s.Ready, s.WantUp, s.Wstat = st.Up(), st.Ready && st.Up(), st.WantUp, st.Wstat
	s.Since, s.ReadySince = st.Stamp, st.ReadyStamp
	if s.Up {
		s.Pid = int(st.Pid)
	}
	tally, _ := servicedir.ReadDeathTally(dir)
	s.Deaths = len(tally)
	s.Line = svstat.Legacy(st, now, normallyUp, false)
	if s.Up && len(tally) > 0 {
		s.Line += "; last exit: " + tally[len(tally)-1].String()
	}
	if s.Deaths > 0 {
		s.Line += fmt.Sprintf("; restarts: %d", s.Deaths)
	}
	if why := svstat.Explain(st, svstat.ReadState(dir), now, time.Local); why != "" {
		s.Line += "; " + why
	}
	return s, nil
}

// Signal sends sig to svc's run process.
func (b *Backend) Signal(svc backends.Service, sig unix.Signal) error {
	return backends.SignalUp(b, svc, sig)
}

// Wait waits until svc reaches goal, or ctx ends.
func (b *Backend) Wait(ctx context.Context, svc backends.Service, goal svwait.Goal) error {
	return svwait.Wait(ctx, []string{svc.Dir}, goal, svwait.All)
}

func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// lastLine is the last line of s without trailing blanks and newlines.
func lastLine(s string) string {
	s = strings.TrimRight(s, "\n ")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
