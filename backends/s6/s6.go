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
// the file and the feature (see [Unsupported]), never ignored.
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

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/backends/gosv"
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

// Check returns an error naming the first file of dir that needs what
// s6-supervise cannot do.
func Check(dir string) error {
	for _, u := range Unsupported {
		if _, err := os.Lstat(filepath.Join(dir, u.File)); err == nil {
			return fmt.Errorf("%s: %s: %w (gosv_backend=s6)", filepath.Join(dir, u.File), u.Feature, ErrUnsupported)
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
	return nil
}

// logRun writes log/run for gosv's in-process logger (log-script holds
// an s6-log script and its directory, s6-log's own syntax): under s6 the
// logger is s6-log, fed by s6-svscan's pipe.
func logRun(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, servicedir.LogScriptFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	script := strings.TrimSpace(string(b))
	// NOTE: looked up here, so that a missing s6-log fails the start
	// rather than making a logger that exits 127 every second.
	s6log, err := exec.LookPath("s6-log")
	if err != nil {
		return fmt.Errorf("s6-log (s6) not found, needed by %s: %w", filepath.Join(dir, servicedir.LogScriptFile), err)
	}
	logDir := filepath.Join(dir, servicedir.LogDir)
	if err := os.Mkdir(logDir, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// Never through a symlink: log/run would land where it points.
	if fi, err := os.Lstat(logDir); err != nil {
		return err
	} else if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory (%v): refused, gosv follows no symlink in a service directory", logDir, fi.Mode().Type())
	}
	run := "#!/bin/sh\n# written by gosv for gosv_backend=s6 from " + servicedir.LogScriptFile + "\nexec " + shQuote(s6log) + " " + script + "\n"
	return servicedir.WriteFileMode(filepath.Join(dir, servicedir.LogDir), servicedir.RunFile, []byte(run), 0o755)
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

// Stop stops as the native backend does: unlink, "an" to s6-svscan,
// "dx" to the service's s6-supervise and "x" to its logger's, each
// s6-supervise applying down-signal and timeout-kill; then waits for
// them to exit.
//
// NOTE: s6-supervise signals the run process only, where gosv and
// supervise-daemon signal its process group: the backend sends the
// down-signal to the group too, and SIGKILL to what is left of it once
// the service is down, so that a daemon's forked children do not outlive
// the stop. The group's id is the run process's pid (s6-supervise runs it
// in a new session), which Linux does not reuse while the group has a
// member.
func (b *Backend) Stop(ctx context.Context, svc backends.Service, opts backends.StopOptions) error {
	pgid := 0
	if st, err := b.g.Status(svc); err == nil && st.Supervised && st.Up && runLeader(svc.Dir, st.Pid) {
		pgid = st.Pid
		sig, err := servicedir.ReadDownSignal(svc.Dir)
		if err != nil || sig == 0 {
			sig = unix.SIGTERM
		}
		unix.Kill(-pgid, sig)
		unix.Kill(-pgid, unix.SIGCONT)
	}
	err := b.g.Stop(ctx, svc, opts)
	if pgid > 0 {
		unix.Kill(-pgid, unix.SIGKILL)
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

// Status reads supervise/status (s6's format). When no s6-svscan holds
// the scan directory the service counts as unsupervised (its process
// lives) or crashed, whatever its s6-supervise does: nothing would
// restart that one.
func (b *Backend) Status(svc backends.Service) (backends.Status, error) {
	s, err := b.g.Status(svc)
	if err != nil || b.Running() {
		return s, err
	}
	s.Supervised, s.SupervisorDead = false, true
	s.Line = Scanner + " is not running on " + b.ScanDir + "; " + s.Line
	return s, nil
}

// Signal sends sig to the service's process (reload).
func (b *Backend) Signal(svc backends.Service, sig unix.Signal) error { return b.g.Signal(svc, sig) }

// Wait waits until svc reaches goal, or ctx ends.
func (b *Backend) Wait(ctx context.Context, svc backends.Service, goal svwait.Goal) error {
	return b.g.Wait(ctx, svc, goal)
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
