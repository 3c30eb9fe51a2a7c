// Package s6 is the backend that drives a real s6-svscan tree (s6
// 2.11): gosv_backend=s6. The service directories gosv openrc generates
// are s6's format already (run, finish, notification-fd, timeout-kill,
// down-signal, log/), and gosv's own tree speaks s6's on-disk protocol,
// so the work is the native backend's (package backends/gosv) with three
// differences:
//
//   - s6-svscan does not watch its directory: after a link is made or
//     removed the backend writes "an" to .s6-svscan/control (what
//     `s6-svscanctl -an` does: rescan, and tell the supervisors of
//     removed services to exit);
//   - s6-supervise writes no gosv records: after a start the backend
//     records s6-supervise's pid (the holder of supervise/lock) where
//     OpenRC's daemon record points, so that rc-status tells a crashed
//     supervisor as it does for gosv;
//   - a scanner death (nobody holds .s6-svscan/lock) makes the service
//     unsupervised (the daemon lives) or crashed, whatever s6-supervise
//     still does: nothing would restart it if it died.
//
// What s6-supervise cannot do is refused at start with one error naming
// the file and the feature (see [Unsupported], and a check script
// without a notification-fd: s6-supervise runs no check, the run must,
// through gosv notifyoncheck or s6-notifyoncheck). One gosv-only file is
// ignored by design: finish-wanted-up (s6-supervise runs finish after
// every death, a stop's too; gosv's generated finish does nothing then,
// a hand-written one must check its state itself).
package s6

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
	"mvdan.cc/sh/v3/syntax"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/backends/gosv"
	"github.com/gosv/gosv/internal/fdwait"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// Scanner is the name of s6's scanner, in messages and as the OpenRC
// service a gosv_backend=s6 service needs.
const Scanner = "s6-svscan"

// Unsupported maps the gosv-only files of a service directory that
// s6-supervise would silently ignore to the feature they carry: a start
// with one of them fails with that name (docs/backends.md).
var Unsupported = []struct{ File, Feature string }{
	// A generated notify=socket directory has none (its run goes through
	// gosv notify-fd-from-socket, with a notification-fd): only a
	// hand-written one gets here.
	{servicedir.NotificationSocketFile, "sd_notify readiness (notification-socket): run the daemon under gosv notify-fd-from-socket with a notification-fd instead"},
	{servicedir.PidfileFile, "forking daemons (pidfile)"},
	{servicedir.HealthCheckFile, "health checks (gosv_healthcheck)"},
	{servicedir.OnEventFile, "event hooks (gosv_on_event)"},
	{servicedir.ControlGroupFile, "group-permitted control (gosv_control_group)"},
	{servicedir.RespawnDelayFile, "respawn_delay"},
	{servicedir.RespawnDelayMaxFile, "gosv_respawn_delay_max"},
	{servicedir.RespawnResetFile, "gosv_respawn_reset"},
	{servicedir.RespawnOnFile, "gosv_respawn_on"},
	{servicedir.SuccessExitFile, "gosv_success_exit"},
}

// ErrUnsupported is wrapped by the start error of a directory that needs
// what s6-supervise cannot do.
var ErrUnsupported = errors.New("not supported by s6-supervise")

// Backend supervises services in the s6-svscan scan directory ScanDir.
type Backend struct {
	ScanDir string
	g       *gosv.Backend
}

var _ backends.Backend = (*Backend)(nil)

// New returns the backend for the s6-svscan of scanDir.
func New(scanDir string) *Backend {
	b := &Backend{ScanDir: scanDir}
	b.g = &gosv.Backend{ScanDir: scanDir, Scanner: Scanner, Rescan: b.rescan, CleanupStop: b.Stop}
	return b
}

// Running reports whether an s6-svscan holds the scan directory.
func (b *Backend) Running() bool { return b.g.Running() }

// rescan is `s6-svscanctl -an`.
func (b *Backend) rescan() error {
	return servicedir.WriteScanControl(b.ScanDir, []byte("an"))
}

// Start refuses what s6-supervise cannot do, turns gosv's in-process
// logger into an s6-log log/run, then starts as the native backend does,
// and records s6-supervise's pid for OpenRC.
func (b *Backend) Start(ctx context.Context, svc backends.Service, opts backends.StartOptions) error {
	if err := Check(svc.Dir); err != nil {
		return &backends.StartError{Service: svc.Name, Reason: err.Error(), Err: err}
	}
	if strings.HasPrefix(svc.Name, ".") {
		err := fmt.Errorf("%s: the name begins with a dot, which %s ignores in %s", svc.Name, Scanner, b.ScanDir)
		return &backends.StartError{Service: svc.Name, Reason: err.Error(), Err: err}
	}
	if err := logRun(svc.Dir); err != nil {
		return &backends.StartError{Service: svc.Name, Reason: err.Error(), Err: err}
	}
	if err := probeWrite(svc.Dir); err != nil {
		return &backends.StartError{Service: svc.Name, Reason: err.Error(), Err: err}
	}
	if err := b.g.Start(ctx, svc, opts); err != nil {
		return err
	}
	if err := recordSupervisor(svc.Dir); err != nil {
		// Nothing is left running after a failed start.
		ctx, cancel := context.WithTimeout(context.Background(), gosv.CleanupTimeout)
		defer cancel()
		b.Stop(ctx, svc, backends.StopOptions{Timeout: gosv.CleanupTimeout})
		return &backends.StartError{Service: svc.Name, Reason: "unable to record s6-supervise: " + err.Error(), Err: err}
	}
	return nil
}

// checkFeature is what a check script without a notification-fd needs:
// s6-supervise runs no check; a run that execs the daemon under gosv
// notifyoncheck (or s6-notifyoncheck) runs it and tells readiness on the
// notification fd.
const checkFeature = "readiness check scripts (check) without a notification-fd: s6-supervise runs no check; exec the daemon under gosv notifyoncheck (or s6-notifyoncheck) in run, with a notification-fd"

// Check returns an error naming the first file of dir that needs what
// s6-supervise cannot do.
func Check(dir string) error {
	for _, u := range Unsupported {
		if _, err := os.Lstat(filepath.Join(dir, u.File)); err == nil {
			return fmt.Errorf("%s: %s: %w (gosv_backend=s6)", filepath.Join(dir, u.File), u.Feature, ErrUnsupported)
		}
	}
	if _, err := os.Lstat(filepath.Join(dir, servicedir.CheckFile)); err == nil {
		if _, err := os.Lstat(filepath.Join(dir, servicedir.NotificationFDFile)); errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("%s: %s: %w (gosv_backend=s6)", filepath.Join(dir, servicedir.CheckFile), checkFeature, ErrUnsupported)
		}
	}
	return nil
}

var _ backends.FileChecker = (*Backend)(nil)

// CheckFiles returns an error naming the feature of the first of names
// that s6-supervise cannot honour.
func (b *Backend) CheckFiles(names []string) error {
	for _, u := range Unsupported {
		if slices.Contains(names, u.File) {
			return fmt.Errorf("%s (%s): %w", u.Feature, u.File, ErrUnsupported)
		}
	}
	if slices.Contains(names, servicedir.CheckFile) && !slices.Contains(names, servicedir.NotificationFDFile) {
		return fmt.Errorf("%s (%s): %w", checkFeature, servicedir.CheckFile, ErrUnsupported)
	}
	return nil
}

// logRunHeader follows the #! line of the log/run logRun writes: it
// tells gosv's own file from a hand-written one. oldLogRunHeader is the
// one earlier versions wrote.
const (
	logRunHeader    = "# written by gosv for gosv_backend=s6 from " + servicedir.LogScriptFile + ": rewritten at each start, removed at the stop\n"
	oldLogRunHeader = "# written by gosv for gosv_backend=s6 from " + servicedir.LogScriptFile + "\n"
)

// logRun writes log/run for gosv's in-process logger (log-script holds
// an s6-log script and its directories, s6-log's own syntax): under s6
// the logger is s6-log, fed by s6-svscan's pipe. Each word of the script
// is one argument of s6-log, quoted for sh (a directive such as "-.*" or
// "+^a|b" is not shell syntax). A log/run gosv did not write is left
// alone: it is the logger, as under gosv (PROTOCOL.md §9.1).
func logRun(dir string) error {
	words, err := servicedir.ReadLogScript(dir)
	if err != nil || words == nil {
		return err
	}
	logDir := filepath.Join(dir, servicedir.LogDir)
	if b, err := os.ReadFile(filepath.Join(logDir, servicedir.RunFile)); err == nil && !gosvLogRun(b) {
		return nil
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := os.Mkdir(logDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// Never through a symlink: log/run would land where it points.
	if fi, err := os.Lstat(logDir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory (%v): refused, gosv follows no symlink in a service directory", logDir, fi.Mode().Type())
	}
	// NOTE: looked up here, so that a missing s6-log fails the start
	// rather than making a logger that exits 127 every second.
	s6log, err := exec.LookPath("s6-log")
	if err != nil {
		return fmt.Errorf("s6-log (s6) not found, needed by %s: %w", filepath.Join(dir, servicedir.LogScriptFile), err)
	}
	run := "#!/bin/sh\n" + logRunHeader + "exec " + shQuote(s6log)
	for _, w := range words {
		run += " " + shQuote(w)
	}
	return servicedir.WriteFileMode(logDir, servicedir.RunFile, []byte(run+"\n"), 0o755)
}

// gosvLogRun reports whether b, a log/run, is one logRun wrote.
func gosvLogRun(b []byte) bool {
	s := string(b)
	return strings.HasPrefix(s, "#!/bin/sh\n"+logRunHeader) || strings.HasPrefix(s, "#!/bin/sh\n"+oldLogRunHeader)
}

// removeLogRun removes the log/run logRun wrote, once the service is
// stopped: left there, it would make the directory's logger an s6-log
// service under gosv too, where log-script means in-process logging.
func removeLogRun(dir string) {
	p := filepath.Join(dir, servicedir.LogDir, servicedir.RunFile)
	if b, err := os.ReadFile(p); err == nil && gosvLogRun(b) {
		os.Remove(p)
	}
}

// shQuote quotes s for /bin/sh (POSIX).
//
// NOTE: syntax.Quote refuses, in POSIX mode, a control character or
// invalid UTF-8; POSIX single quotes keep every byte but NUL.
func shQuote(s string) string {
	if q, err := syntax.Quote(s, syntax.LangPOSIX); err == nil {
		return q
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// probeWrite writes (then removes) the record recordSupervisor writes
// after the start: on a full file system s6-supervise runs, cannot write
// its status and only warns, every second, and the start would time out
// without saying why; this says which file and why.
func probeWrite(dir string) error {
	if err := servicedir.MkdirPrivate(filepath.Join(dir, servicedir.SuperviseDir), 0o700); err != nil {
		return err
	}
	if err := servicedir.WriteRecord(dir, servicedir.SupervisorRecordPath, servicedir.PidRecord{}); err != nil {
		return err
	}
	return os.Remove(filepath.Join(dir, servicedir.SupervisorRecordPath))
}

// recordSupervisor writes supervise/gosv/supervisor with the pid and
// start time of the s6-supervise holding dir: the pidfile of OpenRC's
// daemon record, alive exactly while the service is supervised.
func recordSupervisor(dir string) error {
	pid, err := servicedir.HolderPid(filepath.Join(dir, servicedir.LockPath))
	if err != nil {
		return err
	}
	if pid <= 0 {
		return fmt.Errorf("no process holds %s", filepath.Join(dir, servicedir.LockPath))
	}
	ps, err := servicedir.ReadProcStat(pid)
	if err != nil {
		return err
	}
	return servicedir.WriteRecord(dir, servicedir.SupervisorRecordPath, servicedir.PidRecord{Pid: pid, StartTime: ps.StartTime})
}

// Stop brings the service down, then stops as the native backend does
// (unlink, "an" to s6-svscan, "dx" to the service's s6-supervise and "x"
// to its logger's) and waits for the supervisors to exit.
//
// NOTE: s6-supervise signals the run process only, where gosv and
// supervise-daemon signal its process group, so the backend signals the
// group too; but only once s6-supervise has taken 'd' (its status says
// wanted down): a death it saw while the service was still wanted up
// would be a crash to it, and to the generated finish, which counts it
// toward respawn_max and can give up (OpenRC's service marked failed in
// the middle of a stop), and s6-supervise could respawn it. So: 'd',
// wait for wanted down, the down-signal (and SIGCONT) to the group, wait
// for down (s6-supervise applies timeout-kill), SIGKILL to what is left
// of the group, then the native stop. The group's id is the run
// process's pid (s6-supervise runs it in a new session), which Linux
// does not reuse while the group has a member. A run whose s6-supervise
// died ([orphan]) gets the down-signal on its group, SIGKILL at the
// timeout.
func (b *Backend) Stop(ctx context.Context, svc backends.Service, opts backends.StopOptions) error {
	if opts.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, opts.Timeout)
		defer cancel()
		opts.Timeout = 0 // ctx carries it to the native stop
	}
	dir := b.dir(svc)
	pgid := 0
	if st, err := b.g.Status(svc); err == nil && st.Supervised && st.Up && runLeader(dir, st.Pid) {
		if err := wantDown(ctx, dir); err == nil {
			pgid = st.Pid
			sig, err := servicedir.ReadDownSignal(dir)
			if err != nil || sig == 0 {
				sig = unix.SIGTERM
			}
			unix.Kill(-pgid, sig)
			unix.Kill(-pgid, unix.SIGCONT)
			if err := svwait.Wait(ctx, []string{dir}, svwait.Down, svwait.All); err != nil && ctx.Err() != nil {
				// The timeout is over: SIGKILL below, and a short
				// while for the supervisors to see it and exit.
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(context.Background(), gosv.TakeTimeout)
				defer cancel()
			}
			unix.Kill(-pgid, unix.SIGKILL)
		}
	}
	orphanPid, isOrphan := orphan(dir)
	err := b.g.Stop(ctx, svc, opts)
	if isOrphan && err == nil {
		err = backends.StopOrphan(ctx, dir, orphanPid, gosv.TakeTimeout)
	}
	if pgid > 0 {
		unix.Kill(-pgid, unix.SIGKILL)
	}
	if err == nil {
		removeLogRun(dir)
	}
	return err
}

// runLeader reports whether pid, which supervise/status names, is the
// run process of dir's s6-supervise: its child and a process group
// leader. Only then is its group signalled: a corrupt or planted status
// (pid 1: kill(-1)) must not make the stop signal another group.
func runLeader(dir string, pid int) bool {
	if pid <= 1 {
		return false
	}
	sup, err := servicedir.HolderPid(filepath.Join(dir, servicedir.LockPath))
	if err != nil || sup <= 0 {
		return false
	}
	ps, err := servicedir.ReadProcStat(pid)
	return err == nil && ps.Ppid == sup && ps.Pgrp == pid
}

// dir is the service directory the scan directory's link names, or
// svc.Dir.
func (b *Backend) dir(svc backends.Service) string {
	if target, err := filepath.EvalSymlinks(filepath.Join(b.ScanDir, svc.Name)); err == nil {
		return target
	}
	return svc.Dir
}

// wantDown writes 'd' to dir's s6-supervise and waits until its status
// says the service is wanted down (or is down), or ctx ends (bounded by
// gosv.TakeTimeout): s6-supervise rewrites supervise/status (a rename)
// as it takes the command.
func wantDown(ctx context.Context, dir string) error {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	if _, err := unix.InotifyAddWatch(fd, filepath.Join(dir, servicedir.SuperviseDir), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		return err
	}
	if err := servicedir.WriteControl(dir, []byte{'d'}); err != nil {
		return err
	}
	dl := time.Now().Add(gosv.TakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(dl) {
		dl = d
	}
	var buf [4096]byte
	for {
		st, err := servicedir.ReadStatus(dir)
		if err != nil {
			return err
		}
		if !st.WantUp || !st.Up() {
			return nil
		}
		if !fdwait.Readable(fd, dl) {
			return fmt.Errorf("%s: s6-supervise did not take 'd' in time", dir)
		}
		for {
			if _, err := unix.Read(fd, buf[:]); err != nil {
				break
			}
		}
	}
}

// Status reads supervise/status (s6's format). When no s6-svscan holds
// the scan directory the service counts as unsupervised (its process
// lives) or crashed, whatever its s6-supervise does: nothing would
// restart that one.
func (b *Backend) Status(svc backends.Service) (backends.Status, error) {
	s, err := b.g.Status(svc)
	if err == nil && !s.Supervised && !s.Up {
		if pid, ok := orphan(b.dir(svc)); ok {
			s.Pid, s.Up = pid, true
			s.Line = fmt.Sprintf("unsupervised (pid %d): its s6-supervise is not running", pid)
		}
	}
	if err != nil || b.Running() {
		return s, err
	}
	s.Supervised, s.SupervisorDead = false, true
	s.Line = Scanner + " is not running on " + b.ScanDir + "; " + s.Line
	return s, nil
}

// orphan returns the run pid of s6's supervise/status when nobody
// supervises dir (its s6-supervise died) and that process still lives:
// s6-supervise writes no gosv pid record, so the native backend's own
// look finds nothing. The pid is that run only if its process started
// no later than the status stamp (s6-supervise writes it after the fork;
// stampSlack covers the clocks' resolution): a later one reuses the pid.
func orphan(dir string) (int, bool) {
	if ok, err := servicedir.IsLocked(filepath.Join(dir, servicedir.LockPath)); err != nil || ok {
		return 0, false
	}
	st, err := servicedir.ReadStatus(dir)
	if err != nil || !st.Up() || st.Pid <= 0 {
		return 0, false
	}
	ps, err := servicedir.ReadProcStat(st.Pid)
	// NOTE: s6-supervise runs the run as a session (so group) leader; a
	// corrupt status naming init or another group must not make the stop
	// signal that group (pid 1: kill(-1)).
	if err != nil || ps.State == 'Z' || st.Pid <= 1 || ps.Pgrp != st.Pid {
		return 0, false
	}
	var ts unix.Timespec
	if unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts) != nil {
		return 0, false
	}
	// /proc/PID/stat's start time is in clock ticks (USER_HZ, 100 on
	// Linux) since boot.
	stamp := time.Duration(ts.Nano()) - time.Since(st.Stamp)
	// s6-supervise stamps the status right after it forks the run: a
	// process started well before (an older process) or after (a
	// recycled pid) is not that run.
	if d := time.Duration(ps.StartTime)*10*time.Millisecond - stamp; d > stampSlack || d < -stampSlack {
		return 0, false
	}
	return st.Pid, true
}

const stampSlack = 500 * time.Millisecond

// Signal sends sig to the service's process (reload).
func (b *Backend) Signal(svc backends.Service, sig unix.Signal) error { return b.g.Signal(svc, sig) }

// Wait waits until svc reaches goal, or ctx ends.
func (b *Backend) Wait(ctx context.Context, svc backends.Service, goal svwait.Goal) error {
	return b.g.Wait(ctx, svc, goal)
}
