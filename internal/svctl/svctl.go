package svctl

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// Command letters accepted by s6-svc and s6-svscanctl, and how many one
// invocation may send (s6-svc.c DATASIZE-1, s6-svscanctl.c DATASIZE).
const (
	SvcLetters     = "abqhkti12pcyroduDUxOQ"
	MaxSvcLetters  = 62
	ScanLetters    = "zabhitqnN"
	MaxScanLetters = 64
	// WaitLetters are the arguments of s6-svc -w.
	WaitLetters = "dDuUrR"
)

// ErrTooManyCommands is a usage error: more letters than s6 accepts.
var ErrTooManyCommands = errors.New("too many commands")

// CtlDirError is s6's "something is wrong with the DIR/supervise directory":
// the control fifo could not be opened although the directory holding it is
// there (or is not a directory). s6 exits 100 for it.
type CtlDirError struct {
	Path string // DIR/supervise or DIR/.s6-svscan
	Err  error
}

func (e *CtlDirError) Error() string {
	return fmt.Sprintf("something is wrong with the %s directory: %v", e.Path, e.Err)
}

func (e *CtlDirError) Unwrap() error { return e.Err }

// SvcRequest is one `gosv svc` invocation.
type SvcRequest struct {
	Dir     string
	Letters []byte        // control letters, in command-line order
	Wait    byte          // 0, or the -w letter: one of WaitLetters
	Timeout time.Duration // deadline of the wait; 0 = none
	Warn    func(msg string)
}

// Svc sends r.Letters to the supervisor of r.Dir and, with r.Wait, waits for
// the state they cause, subscribing before sending (s6-svlisten1). Without
// letters and wait, it only checks that a supervisor listens.
//
// Errors: *os.PathError wrapping [servicedir.ErrNotListening], a
// [*CtlDirError], [svwait.ErrTimeout], a [*svwait.FailedError], or other
// *os.PathError values (system errors).
func Svc(ctx context.Context, r SvcRequest) error {
	if r.Wait == 0 {
		return writeCtl(r.Dir, servicedir.SuperviseDir, r.Letters)
	}
	wait := r.Wait
	if wait == 'U' || wait == 'R' {
		ok, err := hasReadiness(r.Dir)
		if err != nil {
			return err
		}
		if !ok {
			wait += 'a' - 'A'
			r.Warn(filepath.Join(r.Dir, "notification-fd") + " not present - ignoring request for readiness notification")
		}
	}
	goal, ok := GoalFor(wait)
	if !ok {
		return fmt.Errorf("svc: invalid wait letter %q", wait)
	}
	if r.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, r.Timeout)
		defer cancel()
	}
	if len(r.Letters) == 0 {
		return svwait.Wait(ctx, []string{r.Dir}, goal, svwait.All) // s6-svwait
	}
	w, err := svwait.Listen([]string{r.Dir}, goal, svwait.Any) // s6-svlisten1
	if err != nil {
		return err
	}
	defer w.Close()
	// NOTE: s6-svlisten1 ignores a failing inner s6-svc and waits until
	// its timeout; failing at once with s6-svc's own error is kinder and
	// returns the exit code s6-svc would.
	if err := writeCtl(r.Dir, servicedir.SuperviseDir, r.Letters); err != nil {
		return err
	}
	return w.Wait(ctx)
}

// GoalFor maps an s6 wait letter (s6-svc -w, s6-svwait's options) to a goal.
func GoalFor(letter byte) (svwait.Goal, bool) {
	switch letter {
	case 'u':
		return svwait.Up, true
	case 'U':
		return svwait.UpReady, true
	case 'd':
		return svwait.Down, true
	case 'D':
		return svwait.DownReady, true
	case 'r':
		return svwait.Restart, true
	case 'R':
		return svwait.RestartReady, true
	}
	return 0, false
}

// hasReadiness reports whether dir's service notifies readiness, without
// which a wait for up-and-ready never ends: s6-svc downgrades -wU/-wR to
// -wu/-wr when it returns false.
//
// TODO(readiness issue): also accept gosv's own readiness configuration
// once it exists; this is the one place that decides.
func hasReadiness(dir string) (bool, error) {
	fn := filepath.Join(dir, "notification-fd")
	switch err := unix.Access(fn, unix.F_OK); {
	case err == nil:
		return true, nil
	case errors.Is(err, unix.ENOENT):
		return false, nil
	default:
		return false, &os.PathError{Op: "access", Path: fn, Err: err}
	}
}

// Svok reports whether a supervisor holds dir's supervise lock (s6_svc_ok).
// A missing directory or lock file is "not running", not an error.
func Svok(dir string) (bool, error) {
	ok, err := servicedir.IsLocked(filepath.Join(dir, servicedir.LockPath))
	if err != nil {
		return false, &os.PathError{Op: "check", Path: dir, Err: cause(err)}
	}
	return ok, nil
}

// Svscanctl sends letters to the scanner of scandir dir in one write.
// Errors are classified as for [Svc].
func Svscanctl(dir string, letters []byte) error {
	return writeCtl(dir, servicedir.ScanCtlDir, letters)
}

// writeCtl writes letters in one write to dir/sub/control, classifying a
// failure to open it as s6_svc_writectl does. Zero letters still open the
// fifo: a liveness probe.
//
// NOTE: servicedir.WriteControl covers supervise/control only and folds a
// missing service directory into ErrNotListening; s6-svc and s6-svscanctl
// tell those apart (111 vs 100), hence this local copy.
func writeCtl(dir, sub string, letters []byte) error {
	fifo := filepath.Join(dir, sub, "control")
	fd, err := openRetry(fifo, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC)
	switch {
	case errors.Is(err, unix.ENXIO):
		return &os.PathError{Op: "control", Path: dir, Err: servicedir.ErrNotListening}
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.EISDIR):
		return investigate(dir, sub, err)
	case err != nil:
		return &os.PathError{Op: "control", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	// Blocking from here, as s6_svc_write does: a full fifo delays us
	// rather than splitting or dropping the command.
	if err := unix.SetNonblock(fd, false); err != nil {
		return &os.PathError{Op: "control", Path: dir, Err: err}
	}
	if len(letters) == 0 {
		return nil
	}
	for {
		_, err = unix.Write(fd, letters)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "control", Path: dir, Err: err}
	}
	return nil
}

// investigate tells a missing service directory (a system error) from a
// missing or broken control directory (s6_svc_writectl's second half).
func investigate(dir, sub string, openErr error) error {
	if fd, err := openRetry(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC); err != nil {
		return &os.PathError{Op: "control", Path: dir, Err: err}
	} else {
		unix.Close(fd)
	}
	path := filepath.Join(dir, sub)
	fd, err := openRetry(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if errors.Is(err, unix.ENOENT) {
		return &os.PathError{Op: "control", Path: dir, Err: servicedir.ErrNotListening}
	}
	if err != nil {
		return &CtlDirError{Path: path, Err: err}
	}
	unix.Close(fd)
	return &CtlDirError{Path: path, Err: openErr}
}

func openRetry(path string, flags int) (int, error) {
	for {
		fd, err := unix.Open(path, flags, 0)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// cause strips an *os.PathError so that the error names dir only once.
func cause(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
