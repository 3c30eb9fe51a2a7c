package openrc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/backends/registry"
	"github.com/gosv/gosv/internal/fdwait"
	"github.com/gosv/gosv/internal/servicedir"
)

// The catch-all logger of gosv-svscan (s6-linux-init's design): the
// scanner's stdout and stderr, which every service without a logger
// inherits, go to a fifo the scanner itself holds open read-write (so no
// write blocks and nothing is lost while the logger restarts); the logger
// is an ordinary service of the scan directory reading that fifo.
const (
	catchAllRecord  = servicedir.ScanCatchAllRecord // in the scan dir: the log directory, one line
	catchAllFifo    = servicedir.ScanCatchAllFifo   // in the scan dir
	CatchAllService = "gosv-catch-all"              // the logger's service name
	// DefaultCatchAllDir and DefaultCatchAllScript are conf.d/gosv-svscan's defaults.
	DefaultCatchAllDir    = "/var/log/gosv"
	DefaultCatchAllScript = "t s1048576 n10"
)

// SvscanConfig is how gosv-svscan runs the scanner.
type SvscanConfig struct {
	RCSvcDir   string
	LibexecDir string // RC_LIBEXECDIR: its bin and sbin are dropped from the scanner's PATH
	Gosv       string
	NotifyFd   int    // pass -d NotifyFd to the scanner; 0 = none
	LogDir     string // the catch-all log directory
	Script     string // its log script (without the directory)
	// Logger is the logger program and its leading arguments: ["gosv",
	// "log"], ["s6-log"], or nil for none (output is then discarded).
	Logger []string
	// NoFile is the hard RLIMIT_NOFILE to raise to (0: leave it).
	NoFile uint64
	// MetricsListen and MetricsTextfile: the scanner's -m and -M
	// (gosv_metrics_listen, gosv_metrics_textfile in conf.d/gosv-svscan).
	MetricsListen, MetricsTextfile string
}

// DefaultNoFile is the file-descriptor limit gosv-svscan asks for: the
// scanner holds about two descriptors per service.
const DefaultNoFile = 65536

// Svscan prepares $RC_SVCDIR/gosv-scan and gosv-services, the catch-all
// logger, a clean environment and stdio, then execs `gosv svscan` on the
// scan directory. It returns only on failure.
func Svscan(cfg SvscanConfig) error {
	scan, services := ScanDir(cfg.RCSvcDir), ServicesDir(cfg.RCSvcDir)
	for _, d := range []string{scan, services, filepath.Join(scan, servicedir.ScanCtlDir)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	raiseNoFile(cfg.NoFile)
	out, err := catchAll(cfg, scan, services)
	if err != nil {
		return err
	}
	for _, fd := range []int{1, 2} {
		if err := unix.Dup2(out, fd); err != nil {
			return os.NewSyscallError("dup2", err)
		}
	}
	if null, err := unix.Open("/dev/null", unix.O_RDONLY, 0); err == nil {
		unix.Dup2(null, 0)
	}
	args := []string{"gosv", "svscan"}
	if cfg.NotifyFd > 0 {
		args = append(args, "-d", strconv.Itoa(cfg.NotifyFd))
	}
	if cfg.MetricsListen != "" {
		args = append(args, "-m", cfg.MetricsListen)
	}
	if cfg.MetricsTextfile != "" {
		args = append(args, "-M", cfg.MetricsTextfile)
	}
	args = append(args, scan)
	env := filterEnv(os.Environ(), cfg.LibexecDir)
	return &os.PathError{Op: "exec", Path: cfg.Gosv, Err: syscall.Exec(cfg.Gosv, args, env)}
}

// catchAll sets the catch-all logger up and returns the fifo's fd (not
// close-on-exec: the scanner keeps it as stdout and stderr).
func catchAll(cfg SvscanConfig, scan, services string) (int, error) {
	fifo := filepath.Join(scan, catchAllFifo)
	if err := unix.Mkfifo(fifo, 0o600); err != nil && err != unix.EEXIST {
		return -1, &os.PathError{Op: "mkfifo", Path: fifo, Err: err}
	}
	fd, err := unix.Open(fifo, unix.O_RDWR, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: fifo, Err: err}
	}
	if len(cfg.Logger) == 0 {
		return fd, nil
	}
	if err := os.MkdirAll(cfg.LogDir, 0o755); err != nil {
		return -1, err
	}
	if _, err := writeIfChanged(filepath.Join(scan, catchAllRecord), cfg.LogDir+"\n", 0o644); err != nil {
		return -1, err
	}
	dir := filepath.Join(services, CatchAllService)
	run := "#!/bin/sh\n# gosv-svscan's catch-all logger: the scanner's output and every service's without a logger.\n" +
		"exec <" + shQuote(fifo) + "\n" +
		"# NOTE: its own errors go to the console, never back into the fifo it reads.\n" +
		"{ exec 2>/dev/console; } 2>/dev/null || exec 2>/dev/null\n" +
		"exec"
	for _, a := range cfg.Logger {
		run += " " + shQuote(a)
	}
	run += " " + cfg.Script + " " + shQuote(cfg.LogDir) + "\n"
	if _, err := writeIfChanged(filepath.Join(dir, servicedir.RunFile), run, 0o755); err != nil {
		return -1, err
	}
	link := filepath.Join(scan, CatchAllService)
	if _, err := os.Lstat(link); errors.Is(err, os.ErrNotExist) {
		if err := os.Symlink(dir, link); err != nil {
			return -1, err
		}
	}
	return fd, nil
}

// WaitScanner waits until the scanner of scanDir accepts services: its
// control fifo has a reader (it opens it, then watches the scan directory,
// then scans it). Event-driven: inotify on .s6-svscan reports the fifo's
// creation and opening. For OpenRC without supervise-daemon --notify.
func WaitScanner(ctx context.Context, scanDir string) error {
	ctl := filepath.Join(scanDir, servicedir.ScanCtlDir)
	if err := os.MkdirAll(ctl, 0o755); err != nil {
		return err
	}
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, ctl, unix.IN_CREATE|unix.IN_OPEN|unix.IN_MOVED_TO|unix.IN_ATTRIB); err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: ctl, Err: err}
	}
	buf := make([]byte, 4096)
	for {
		if fd, err := unix.Open(filepath.Join(scanDir, servicedir.ScanCtlPath), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0); err == nil {
			unix.Close(fd)
			return nil
		}
		dl, ok := ctx.Deadline()
		if ok && !time.Now().Before(dl) {
			return fmt.Errorf("gosv svscan on %s: not accepting services in time", scanDir)
		}
		fdwait.Readable(ino, dl)
		unix.Read(ino, buf)
	}
}

// StopLeftovers is gosv-svscan's stop_post: it stops what a scanner that
// died (SIGKILL, with its supervise-daemon gone too) left running in
// scanDir: the catch-all logger, and any service still linked, each by
// its recorded pid and only if it is still that process (the backend's
// stop of an unsupervised service: down-signal, SIGKILL when ctx ends),
// and unlinks them. After a clean stop the scanner has stopped them all
// and this does nothing. It refuses to run while a scanner accepts
// services on scanDir. backend names the scanner's backend: gosv's stop
// serves s6-svscan's directories too (the same protocol); a runsvdir's
// need runit's. In another backend's scan directory only the entries gosv
// linked are stopped ([linkedByGosv]).
func StopLeftovers(ctx context.Context, backend, scanDir string) error {
	fd, err := unix.Open(filepath.Join(scanDir, servicedir.ScanCtlPath), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == nil {
		unix.Close(fd)
		return fmt.Errorf("a scanner is running on %s: stop gosv-svscan first", scanDir)
	}
	b := registry.NewDefault(scanDir)
	type ownScanner interface {
		Running() bool
		WaitRunning(context.Context) error
	}
	if own, err := registry.New(backend, scanDir); err == nil {
		if o, ok := own.(ownScanner); ok {
			if o.Running() {
				return fmt.Errorf("a scanner is running on %s: stop it first", scanDir)
			}
			b = own
		}
	}
	ents, err := os.ReadDir(scanDir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var errs []error
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), ".") {
			continue
		}
		svc := backends.Service{Name: e.Name(), Dir: filepath.Join(scanDir, e.Name())}
		if backend != registry.Default && !linkedByGosv(backend, scanDir, svc.Dir) {
			// The scan directories of s6-svscan and runsvdir are shared
			// with OpenRC's own supervisor=s6 and supervisor=runit
			// services (and hand-made links), which OpenRC stops itself:
			// only what gosv linked is gosv's to stop.
			continue
		}
		if err := b.Stop(ctx, svc, backends.StopOptions{}); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", e.Name(), err))
		}
	}
	return errors.Join(errs...)
}

// linkedByGosv reports whether the scan-directory entry link of backend's
// scanDir is one gosv's backend made: for runit a link to the runit
// directory gosv writes inside a service directory, for s6 a link to a
// directory gosv generated (below [ServicesDir] of the RC_SVCDIR that
// holds scanDir). A hand-written directory (gosv_service_path) linked
// there cannot be told from OpenRC's own service and counts as not gosv's.
func linkedByGosv(backend, scanDir, link string) bool {
	target, err := os.Readlink(link)
	if err != nil {
		return false
	}
	if !filepath.IsAbs(target) {
		target = filepath.Join(scanDir, target)
	}
	target = filepath.Clean(target)
	switch backend {
	case "runit":
		if filepath.Base(target) != servicedir.RunitDir {
			return false
		}
		st, err := os.Lstat(filepath.Join(filepath.Dir(target), servicedir.RunFile))
		return err == nil && st.Mode().IsRegular()
	default:
		return strings.HasPrefix(target, ServicesDir(filepath.Dir(scanDir))+string(filepath.Separator))
	}
}

// raiseNoFile raises the hard RLIMIT_NOFILE to n when it is lower, and
// keeps it when that is not permitted (a container without
// CAP_SYS_RESOURCE). NOTE: only the hard limit: the scanner raises its own
// soft limit to it, and hands its services the soft limit it was started
// with, so that a daemon still using select(2) keeps its 1024.
func raiseNoFile(n uint64) {
	var lim unix.Rlimit
	if n == 0 || unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil || lim.Max >= n {
		return
	}
	want := unix.Rlimit{Cur: lim.Cur, Max: n}
	unix.Setrlimit(unix.RLIMIT_NOFILE, &want)
}
