package svctl

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// Command letters accepted by s6-svscanctl (s6-svc's are
// [servicedir.ControlLetters]), and how many one invocation may send
// (s6-svc.c DATASIZE-1, s6-svscanctl.c DATASIZE).
const (
	MaxSvcLetters  = 62
	ScanLetters    = "zabhitqnNX"
	MaxScanLetters = 64
)

// ErrTooManyCommands is a usage error: more letters than s6 accepts.
var ErrTooManyCommands = errors.New("too many commands")

// CtlDirError is s6's "something is wrong with the DIR/supervise directory":
// DIR/supervise is not a directory, or its control fifo is one. s6 exits
// 100 for it, as for "supervisor not listening".
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
	Wait    byte          // 0, or the -w letter: one of svwait.Letters
	Timeout time.Duration // deadline of the wait; 0 = none
	Warn    func(msg string)
}

// Svc sends r.Letters to the supervisor of r.Dir and, with r.Wait, waits for
// the state they cause, subscribing before sending (s6-svlisten1). Without
// letters and wait, it only checks that a supervisor listens.
//
// The wait is svwait's: unlike s6-svc, a supervisor that is not running or
// dies during the wait ends it at once as a failure.
//
// Errors: *os.PathError wrapping [servicedir.ErrNotListening], a
// [*CtlDirError], a [*svwait.TimeoutError] (errors.Is [svwait.ErrTimeout]),
// a [*svwait.FailedError], or other *os.PathError values (system errors).
func Svc(ctx context.Context, r SvcRequest) error {
	if r.Wait == 0 {
		return control(r.Dir, r.Letters)
	}
	var deadline time.Time
	if r.Timeout > 0 {
		deadline = time.Now().Add(r.Timeout)
	}
	wait := r.Wait
	if wait == 'U' || wait == 'R' {
		ok, err := servicedir.HasReadiness(r.Dir)
		if err != nil {
			return err
		}
		if !ok {
			wait += 'a' - 'A'
			r.Warn(filepath.Join(r.Dir, servicedir.NotificationFDFile) + " not present - ignoring request for readiness notification")
		}
	}
	goal, ok := svwait.GoalFor(wait)
	if !ok {
		return fmt.Errorf("svc: invalid wait letter %q", wait)
	}
	// Subscribe before sending, as s6-svlisten1 does (without letters,
	// s6-svc runs s6-svwait: the same wait). All and Any are the same for
	// one directory.
	w, err := svwait.Listen([]string{r.Dir}, goal, svwait.All)
	if err != nil {
		return err
	}
	defer w.Close()
	w.Deadline = deadline
	// NOTE: s6-svlisten1 ignores a failing inner s6-svc and waits until
	// its timeout; failing at once with s6-svc's own error is kinder and
	// returns the exit code s6-svc would.
	if len(r.Letters) > 0 {
		if err := control(r.Dir, r.Letters); err != nil {
			return err
		}
	}
	return w.Wait(ctx)
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
// Errors are classified as for [Svc]. With [ReexecLetter] it then waits
// for the re-exec's outcome: a [*ReexecError] if it did not happen.
func Svscanctl(dir string, letters []byte) error {
	if bytes.IndexByte(letters, ReexecLetter) >= 0 {
		return sendWaitReexec(dir, letters, ReexecTimeout)
	}
	return classify(dir, servicedir.ScanCtlDir, servicedir.WriteScanControl(dir, letters))
}

// control sends letters to dir's supervisor in one write (none: a liveness
// probe).
func control(dir string, letters []byte) error {
	return classify(dir, servicedir.SuperviseDir, servicedir.WriteControl(dir, letters))
}

// classify words a control error as s6-svc and s6-svscanctl do, keeping
// servicedir's exit-code classes: not listening (100) says so; a sub
// directory that is a file, or a control fifo that is a directory, is
// "something is wrong with DIR/sub" (also 100); anything else, a missing
// dir included, is a system error on dir (111).
func classify(dir, sub string, err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, servicedir.ErrNotListening) && (errors.Is(err, unix.ENOTDIR) || errors.Is(err, unix.EISDIR)):
		errno := unix.ENOTDIR
		if errors.Is(err, unix.EISDIR) {
			errno = unix.EISDIR
		}
		return &CtlDirError{Path: filepath.Join(dir, sub), Err: errno}
	case errors.Is(err, servicedir.ErrNotListening):
		return &os.PathError{Op: "control", Path: dir, Err: servicedir.ErrNotListening}
	default:
		return &os.PathError{Op: "control", Path: dir, Err: cause(err)}
	}
}

// cause strips an *os.PathError so that the error names dir only once.
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
