// Package runit is the backend that drives a real runit 2.1.2 tree:
// gosv_backend=runit. runsvdir runs on the scan directory OpenRC's own
// supervisor=runit uses ($RC_SVCDIR/sv), one runsv per linked service.
//
// A gosv service directory (s6's format) is not runit's: the backend
// writes a runit directory inside it (servicedir.RunitDir) and links that
// one, so that runsv's supervise/ (runit's 20-byte status, its lock, its
// ok and control FIFOs) never meets the s6-format files of the source.
// The runit directory holds
//
//   - run: cd to the source, put the process in a session of its own
//     (chpst -P, so that a stop reaches the daemon's children, runsv
//     signalling the process only), open the notification FIFO as
//     notification-fd when the source has one, exec the source's run;
//   - finish: the source's finish, run from the source;
//   - control/t: the source's down-signal, to the run's process group
//     (runsv runs it at d and x instead of its SIGTERM);
//   - log/run: svlogd, for gosv's in-process logger (log-script,
//     translated to svlogd's config) or a default per-service log; or the
//     source's own log/run.
//
// runit has no readiness protocol: a notification-fd is the source's
// daemon writing a newline to a FIFO the start reads (for an sd_notify
// daemon, gosv notify-fd-from-socket writes it: gosv openrc generates
// that run for notify=socket). A check script is run by gosv
// notifyoncheck, which the run puts between chpst and the source's run:
// it runs ./check on gosv's schedule and writes that newline. What runsv cannot
// do is refused with one error naming the file (see [Unsupported]).
package runit

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// Scanner is runit's scanner, in messages and as the OpenRC service a
// gosv_backend=runit service needs.
const Scanner = "runsvdir"

// Timings of the backend.
const (
	// TakeTimeout bounds the wait for runsvdir to start a runsv on a new
	// link: one runsvdir check period (5 s) and a margin, for a runsvdir
	// that cannot be woken (no log argument).
	TakeTimeout = 7 * time.Second
	// rewakeAfter: runsvdir looks at its directory at most once a
	// second, and a wake within that second is lost (see wake): a
	// take not seen this long after the first wake gets one more.
	rewakeAfter = time.Second
	// scannerGrace is how long a start waits for a runsvdir being
	// started (its supervise-daemon returned before the exec).
	scannerGrace = time.Second
	// CleanupTimeout bounds the stop that follows a failed start.
	CleanupTimeout = 20 * time.Second
)

// Unsupported maps the files runsv cannot honour to their feature: a
// start with one of them fails with that name (docs/backends.md).
var Unsupported = []struct{ File, Feature string }{
	// A generated notify=socket directory has none (its run goes through
	// gosv notify-fd-from-socket, with a notification-fd): only a
	// hand-written one gets here.
	{servicedir.NotificationSocketFile, "sd_notify readiness (notification-socket): run the daemon under gosv notify-fd-from-socket with a notification-fd instead"},
	{servicedir.PidfileFile, "forking daemons (pidfile)"},
	{servicedir.HealthCheckFile, "health checks (gosv_healthcheck)"},
	{servicedir.OnEventFile, "event hooks (gosv_on_event)"},
	{servicedir.ControlGroupFile, "group-permitted control (gosv_control_group)"},
	{servicedir.RespawnDelayFile, "respawn_delay (runsv waits 1 s)"},
	{servicedir.RespawnDelayMaxFile, "gosv_respawn_delay_max"},
	{servicedir.RespawnResetFile, "gosv_respawn_reset"},
	{servicedir.RespawnOnFile, "gosv_respawn_on"},
	{servicedir.SuccessExitFile, "gosv_success_exit"},
	{servicedir.TimeoutFinishFile, "a finish time limit"},
	{servicedir.LockFDFile, "a lock descriptor"},
}

// ErrUnsupported is wrapped by the error of a directory that needs what
// runsv cannot do.
var ErrUnsupported = errors.New("not supported by runsv")

// maxNotifyFd: the run script's shell opens the notification FIFO, and a
// POSIX shell redirects single-digit descriptors only.
const maxNotifyFd = 9

// Backend supervises services in the runsvdir scan directory ScanDir.
type Backend struct {
	ScanDir string
	// Gosv is the gosv binary a check script's run uses (gosv
	// notifyoncheck); "" is this executable.
	Gosv string
}

var (
	_ backends.Backend     = (*Backend)(nil)
	_ backends.FileChecker = (*Backend)(nil)
	_ backends.GosvUser    = (*Backend)(nil)
)

// UseGosv sets Gosv ([backends.GosvUser]).
func (b *Backend) UseGosv(path string) { b.Gosv = path }

// New returns the backend for the runsvdir of scanDir.
func New(scanDir string) *Backend { return &Backend{ScanDir: scanDir} }

// Running reports whether a runsvdir runs on the scan directory.
func (b *Backend) Running() bool { return findRunsvdir(b.ScanDir) != 0 }

// DefaultLogDir is the svlogd directory of a service without a logger of
// its own: $RC_SVCDIR/runit-logs/NAME (package openrc reads its tail
// after a failed start).
func DefaultLogDir(scanDir, name string) string {
	return filepath.Join(filepath.Dir(scanDir), "runit-logs", name)
}

// dirs returns the source directory and its runit directory, from either
// (a link in the scan directory resolves to the runit one).
func dirs(dir string) (src, rdir string) {
	if real, err := filepath.EvalSymlinks(dir); err == nil {
		dir = real
	}
	if abs, err := filepath.Abs(dir); err == nil {
		dir = abs
	}
	if filepath.Base(dir) == servicedir.RunitDir {
		if _, err := os.Stat(filepath.Join(filepath.Dir(dir), servicedir.RunFile)); err == nil {
			return filepath.Dir(dir), dir
		}
	}
	return dir, filepath.Join(dir, servicedir.RunitDir)
}

// Check returns an error naming the first file of dir that needs what
// runsv cannot do.
func Check(dir string) error {
	for _, u := range Unsupported {
		if _, err := os.Lstat(filepath.Join(dir, u.File)); err == nil {
			return fmt.Errorf("%s: %s: %w (gosv_backend=runit)", filepath.Join(dir, u.File), u.Feature, ErrUnsupported)
		}
	}
	fd, ok, err := servicedir.ReadUintFile(dir, servicedir.NotificationFDFile)
	if err == nil && ok && fd > maxNotifyFd {
		return fmt.Errorf("%s: %d: %w: above %d (gosv_backend=runit)", filepath.Join(dir, servicedir.NotificationFDFile), fd, ErrUnsupported, maxNotifyFd)
	}
	if _, cerr := os.Lstat(filepath.Join(dir, servicedir.CheckFile)); cerr == nil && ok {
		// gosv notifyoncheck writes to the one fd runsv's start reads, and
		// closes it in the daemon.
		return fmt.Errorf("%s: a check script beside %s: %w: one readiness source (gosv_backend=runit)",
			filepath.Join(dir, servicedir.CheckFile), servicedir.NotificationFDFile, ErrUnsupported)
	}
	if words, err := servicedir.ReadLogScript(dir); err == nil && words != nil {
		if _, _, _, err := svlogdScript(words); err != nil {
			return fmt.Errorf("%s: %w (gosv_backend=runit)", filepath.Join(dir, servicedir.LogScriptFile), err)
		}
	}
	return nil
}

// CheckFiles returns an error naming the feature of the first of names
// that runsv cannot honour.
func (b *Backend) CheckFiles(names []string) error {
	for _, u := range Unsupported {
		if slices.Contains(names, u.File) {
			return fmt.Errorf("%s (%s): %w", u.Feature, u.File, ErrUnsupported)
		}
	}
	return nil
}

// Start writes the runit directory, links it into the scan directory,
// wakes runsvdir, waits for its runsv, asks the service up and waits for
// opts.Goal (ready: the newline on notification-fd). On failure nothing
// is left supervised or running.
func (b *Backend) Start(ctx context.Context, svc backends.Service, opts backends.StartOptions) error {
	fail := func(reason string, err error) error {
		return &backends.StartError{Service: svc.Name, Reason: reason, Err: err}
	}
	src, rdir := dirs(svc.Dir)
	if err := Check(src); err != nil {
		return fail(err.Error(), err)
	}
	if strings.HasPrefix(svc.Name, ".") {
		err := fmt.Errorf("%s: the name begins with a dot, which %s ignores in %s", svc.Name, Scanner, b.ScanDir)
		return fail(err.Error(), err)
	}
	scanner, ok := b.findScanner(ctx)
	if !ok {
		return fail(Scanner+" is not running on "+b.ScanDir, backends.ErrNoSupervisor)
	}
	defer scanner.close()
	notify, err := b.prepare(svc.Name, src, rdir)
	if err != nil {
		return fail(err.Error(), err)
	}
	w, err := newWatch(ctx, rdir, notify)
	if err != nil {
		return fail(fmt.Sprintf("unable to watch %s: %v", rdir, err), err)
	}
	defer w.close()
	if err := backends.LinkDir(filepath.Join(b.ScanDir, svc.Name), rdir); err != nil {
		return fail(err.Error(), err)
	}
	scanner.wake()
	cleanup := func() {
		ctx, cancel := context.WithTimeout(context.Background(), CleanupTimeout)
		defer cancel()
		b.Stop(ctx, svc, backends.StopOptions{Timeout: CleanupTimeout})
	}
	// NOTE: a runsvdir gone meanwhile ends the wait too (checked at the
	// rewake), and is the reason given.
	taken := func() bool { return listening(rdir) || exited(scanner.fd) }
	if err := w.untilWaking(time.Now().Add(TakeTimeout), taken, scanner.wake); err != nil {
		cleanup()
		return fail(Scanner+" did not start runsv on "+rdir+": "+err.Error(), err)
	}
	if !listening(rdir) {
		cleanup()
		err := fmt.Errorf("%s (pid %d) exited before it started runsv on %s", Scanner, scanner.pid, rdir)
		return fail(err.Error(), backends.ErrNoSupervisor)
	}
	// NOTE: timeout_ready counts from here, when runsv took the
	// directory: runsvdir may take up to a second (see wake), a delay
	// of the scanner, not of the daemon.
	var deadline time.Time
	if opts.Timeout > 0 {
		deadline = time.Now().Add(opts.Timeout)
	}
	if err := servicedir.WriteControl(rdir, []byte{'u'}); err != nil {
		cleanup()
		return fail(err.Error(), err)
	}
	if err := b.waitUp(w, rdir, opts, deadline); err != nil {
		cleanup()
		return fail(err.Error(), err)
	}
	if err := recordSupervisor(src, rdir); err != nil {
		cleanup()
		return fail("unable to record runsv: "+err.Error(), err)
	}
	return nil
}

// findScanner returns the runsvdir of the scan directory with a pidfd
// on it, or false. OpenRC 0.63's init.d/runsvdir does not wait for its
// runsvdir: a service that needs it may start before the exec, so a
// runsvdir not found yet gets scannerGrace.
func (b *Backend) findScanner(ctx context.Context) (scannerProc, bool) {
	if sc, ok := b.openScanner(); ok {
		return sc, true
	}
	wctx, cancel := context.WithTimeout(ctx, scannerGrace)
	defer cancel()
	b.WaitRunning(wctx)
	return b.openScanner()
}

// prepare writes the runit directory rdir and the source's supervise/,
// which holds what gosv keeps beside runsv (the death tally the
// generated finish writes, runsv's record for OpenRC), and empties the
// death tally: deaths count from this start. It returns the source's
// notification-fd.
func (b *Backend) prepare(name, src, rdir string) (int, error) {
	notify, err := b.writeDir(name, src, rdir)
	if err != nil {
		return 0, fmt.Errorf("unable to write %s: %w", rdir, err)
	}
	if err := os.Mkdir(filepath.Join(src, servicedir.SuperviseDir), 0o700); err != nil && !errors.Is(err, os.ErrExist) {
		return 0, err
	}
	servicedir.ResetDeathTally(src)
	return notify, nil
}

// waitUp waits for the run process, then for its readiness newline when
// the service has a notification-fd, then (goal Up) for start_wait; a
// death before that fails.
func (b *Backend) waitUp(w *watch, rdir string, opts backends.StartOptions, deadline time.Time) error {
	var pid int
	up := func() bool {
		st, err := servicedir.ReadRunitStatus(rdir)
		if err == nil && st.Up() {
			pid = st.Pid
		}
		return pid != 0
	}
	if err := w.until(deadline, up); err != nil {
		return fmt.Errorf("not up within %v", opts.Timeout)
	}
	died := func() bool {
		st, err := servicedir.ReadRunitStatus(rdir)
		return err == nil && (st.Pid != pid || !st.Up())
	}
	if opts.Goal == svwait.UpReady && w.fifo != nil {
		err := w.ready(deadline, died)
		switch {
		case errors.Is(err, errDied):
			return fmt.Errorf("died before it was ready%s", b.lastDeath(rdir))
		case errors.Is(err, errDeadline):
			return fmt.Errorf("not ready within %v", opts.Timeout)
		case err != nil:
			return err
		}
	}
	if opts.Goal == svwait.Up && opts.StartWait > 0 {
		stay := time.Now().Add(opts.StartWait)
		if err := w.until(stay, died); err == nil {
			return fmt.Errorf("died before start_wait (%v) was over%s", opts.StartWait, b.lastDeath(rdir))
		}
	}
	return nil
}

// lastDeath is "; last exit: …" from the source's death tally, which the
// generated finish keeps under runsv.
func (b *Backend) lastDeath(rdir string) string {
	src, _ := dirs(rdir)
	if t, err := servicedir.ReadDeathTally(src); err == nil && len(t) > 0 {
		return ": " + t[len(t)-1].String()
	}
	return ""
}

// listening reports whether a runsv holds rdir: it keeps supervise/ok
// open for reading (sv's probe: ENXIO without a reader).
func listening(rdir string) bool {
	fd, err := unix.Open(filepath.Join(rdir, servicedir.RunitOkPath), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	unix.Close(fd)
	return true
}

// recordSupervisor writes supervise/gosv/supervisor of the source with
// runsv's pid: OpenRC's daemon record, alive while runsv supervises.
func recordSupervisor(src, rdir string) error {
	pid := flockHolder(filepath.Join(rdir, servicedir.LockPath))
	if pid <= 0 {
		return fmt.Errorf("no runsv holds %s", filepath.Join(rdir, servicedir.LockPath))
	}
	ps, err := servicedir.ReadProcStat(pid)
	if err != nil {
		return err
	}
	return servicedir.WriteRecord(src, servicedir.SupervisorRecordPath, servicedir.PidRecord{Pid: pid, StartTime: ps.StartTime})
}

// Stop unlinks the service (runsvdir then forgets it), tells runsv d and
// waits for the run process to go: the down-signal reaches its process
// group through control/t, SIGKILL the group after timeout-kill (none
// without it: the stop then waits for the down until ctx ends, as gosv
// and s6 do). Then it kills what is left of the group, tells runsv x
// (exit, once its logger drained the pipe) and waits for it to exit.
// With runsv dead, the backend sends the down-signal itself. The waits
// are on pidfds of the run and of runsv: a dead runsv updates no status.
func (b *Backend) Stop(ctx context.Context, svc backends.Service, opts backends.StopOptions) error {
	src, rdir := dirs(svc.Dir)
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
	}
	if _, err := os.Lstat(rdir); errors.Is(err, os.ErrNotExist) {
		// Never started: nothing runs, nothing to create.
		if err := os.Remove(filepath.Join(b.ScanDir, svc.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return nil
	}
	runsv, runsvFd := openRunsv(filepath.Join(rdir, servicedir.LockPath))
	if runsvFd >= 0 {
		defer unix.Close(runsvFd)
	}
	st, _ := servicedir.ReadRunitStatus(rdir)
	run, hasRun := openRun(st, runsv)
	if hasRun {
		defer unix.Close(run.fd)
	}
	if err := os.Remove(filepath.Join(b.ScanDir, svc.Name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if sc, ok := b.openScanner(); ok {
		sc.wake()
		sc.close()
	}
	if runsv > 0 {
		// NOTE: d alone, x once the service is down: runsv 2.1.2 read
		// the x of "dx", and acted on a SIGTERM sent once it was down,
		// only when runsvdir's own SIGTERM came a second later (strace).
		if err := servicedir.WriteControl(rdir, []byte{'d'}); err != nil && !errors.Is(err, servicedir.ErrNotListening) {
			return err
		}
	} else if hasRun {
		sig, err := servicedir.ReadDownSignal(src)
		if err != nil || sig == 0 {
			sig = unix.SIGTERM
		}
		// The run lives (its pidfd says so): its group id is its pid.
		unix.Kill(-run.pid, sig)
		unix.Kill(-run.pid, unix.SIGCONT)
	}
	if hasRun {
		kctx := ctx
		tk := timeoutKill(src)
		if tk > 0 {
			var cancel context.CancelFunc
			kctx, cancel = context.WithTimeout(ctx, tk)
			defer cancel()
		}
		if !pollFd(kctx, run.fd) && tk > 0 && ctx.Err() == nil {
			// Still running after timeout-kill, so still the group's
			// leader: the group id is its pid.
			unix.Kill(-run.pid, unix.SIGKILL)
			pollFd(ctx, run.fd)
		}
		if !exited(run.fd) {
			return fmt.Errorf("%s: the run process (pid %d) did not stop: %w", rdir, run.pid, context.Cause(ctx))
		}
		// NOTE: the daemon's children. Linux does not reuse a group's id
		// while the group has a member.
		unix.Kill(-run.pid, unix.SIGKILL)
	}
	if runsv > 0 {
		if err := servicedir.WriteControl(rdir, []byte{'x'}); err != nil && !errors.Is(err, servicedir.ErrNotListening) {
			return err
		}
		if err := waitExit(ctx, runsvFd); err != nil {
			return fmt.Errorf("%s: runsv (pid %d) did not exit: %w", rdir, runsv, err)
		}
	}
	return nil
}

// timeoutKill is the source's timeout-kill; 0 (none, or 0 in the file):
// never SIGKILL, as s6-supervise and gosv read it. gosv openrc always
// writes one (timeout_kill, default 10 s).
func timeoutKill(src string) time.Duration {
	ms, ok, err := servicedir.ReadUintFile(src, servicedir.TimeoutKillFile)
	if err != nil || !ok {
		return 0
	}
	return time.Duration(ms) * time.Millisecond
}

// waitExit waits until the process of pidfd exits, or ctx ends (then
// runsv is killed: the stop must not leave a supervisor that would
// restart the service).
func waitExit(ctx context.Context, pidfd int) error {
	if pollFd(ctx, pidfd) {
		return nil
	}
	unix.PidfdSendSignal(pidfd, unix.SIGKILL, nil, 0)
	return ctx.Err()
}

// Status reads runit's supervise/status. While runsv runs but runsvdir
// does not, the service counts as unsupervised (its process lives) or
// crashed: nothing would restart runsv if it died.
func (b *Backend) Status(svc backends.Service) (backends.Status, error) {
	src, rdir := dirs(svc.Dir)
	var s backends.Status
	st, err := servicedir.ReadRunitStatus(rdir)
	listen := listening(rdir)
	running := false
	if err == nil && st.Up() {
		runsv := 0
		if listen {
			runsv = flockHolder(filepath.Join(rdir, servicedir.LockPath))
		}
		if run, ok := openRun(st, runsv); ok {
			running = true
			unix.Close(run.fd)
		}
	}
	if !listen {
		if _, err := servicedir.ReadRecord(src, servicedir.SupervisorRecordPath); err == nil {
			s.SupervisorDead = true
		}
		if running {
			s.Up, s.Pid = true, st.Pid
			s.Line = fmt.Sprintf("unsupervised (pid %d): runsv is not running", st.Pid)
		} else {
			s.Line = "not supervised"
		}
		return s, nil
	}
	if err != nil {
		return s, err
	}
	now := time.Now()
	s.Supervised = true
	s.Up, s.Ready, s.WantUp, s.Since = st.Up(), st.Up(), st.WantUp, st.Stamp
	if s.Up {
		s.Pid, s.ReadySince = st.Pid, st.Stamp
	}
	s.Line = svLine(&st, now)
	if tally, _ := servicedir.ReadDeathTally(src); len(tally) > 0 {
		s.Deaths = len(tally)
		s.Line += fmt.Sprintf("; last exit: %s; restarts: %d", tally[len(tally)-1].String(), len(tally))
	}
	if runsv := flockHolder(filepath.Join(rdir, servicedir.LockPath)); runsv > 0 && !b.underScanner(runsv) {
		s.Supervised, s.SupervisorDead = false, true
		if !running {
			s.Up = false
		}
		s.Line = Scanner + " is not running on " + b.ScanDir + "; " + s.Line
	}
	return s, nil
}

// underScanner reports whether runsv is a child of this scan
// directory's runsvdir (a runsvdir's death reparents its runsvs).
func (b *Backend) underScanner(runsv int) bool {
	ppid := parentPid(runsv)
	want, err := os.Stat(b.ScanDir)
	return ppid > 0 && err == nil && isRunsvdirOn(ppid, want)
}

// svLine is sv status's words: "run: (pid 123) 5s, want up" / "down: 3s,
// want up", paused and got TERM as sv prints them.
func svLine(st *servicedir.RunitStatus, now time.Time) string {
	secs := int64(now.Sub(st.Stamp).Seconds())
	if secs < 0 {
		secs = 0
	}
	var b strings.Builder
	switch st.State {
	case servicedir.RunitRun:
		fmt.Fprintf(&b, "run: (pid %d) %ds", st.Pid, secs)
	case servicedir.RunitFinish:
		fmt.Fprintf(&b, "finish: (pid %d) %ds", st.Pid, secs)
	default:
		fmt.Fprintf(&b, "down: %ds", secs)
	}
	if st.Paused {
		b.WriteString(", paused")
	}
	if st.Pid != 0 && !st.WantUp {
		b.WriteString(", want down")
	}
	if st.Pid == 0 && st.WantUp {
		b.WriteString(", want up")
	}
	if st.GotTerm {
		b.WriteString(", got TERM")
	}
	return b.String()
}

// Signal sends sig to the service's process (reload), through a pidfd
// on the run process that runit's status names (see openRun).
func (b *Backend) Signal(svc backends.Service, sig unix.Signal) error {
	_, rdir := dirs(svc.Dir)
	st, err := servicedir.ReadRunitStatus(rdir)
	if errors.Is(err, os.ErrNotExist) {
		return backends.ErrNotUp
	}
	if err != nil {
		return err
	}
	run, ok := openRun(st, flockHolder(filepath.Join(rdir, servicedir.LockPath)))
	if !ok {
		return backends.ErrNotUp
	}
	defer unix.Close(run.fd)
	if err := unix.PidfdSendSignal(run.fd, sig, nil, 0); err != nil {
		return os.NewSyscallError("pidfd_send_signal", err)
	}
	return nil
}

// Wait waits until svc reaches goal, or ctx ends. runit has no
// readiness state: ready is up.
func (b *Backend) Wait(ctx context.Context, svc backends.Service, goal svwait.Goal) error {
	_, rdir := dirs(svc.Dir)
	w, err := newWatch(ctx, rdir, 0)
	if err != nil {
		return err
	}
	defer w.close()
	want := func() bool {
		st, err := servicedir.ReadRunitStatus(rdir)
		if err != nil {
			return false
		}
		switch goal {
		case svwait.Up, svwait.UpReady:
			return st.Up()
		case svwait.Down, svwait.DownReady:
			return st.State == servicedir.RunitDown
		}
		return false
	}
	deadline := time.Time{}
	if d, ok := ctx.Deadline(); ok {
		deadline = d
	}
	return w.until(deadline, want)
}

// itoa is strconv.Itoa, for the scripts.
func itoa(n int) string { return strconv.Itoa(n) }
