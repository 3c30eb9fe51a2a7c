package svctl

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdwait"
	"github.com/gosv/gosv/internal/servicedir"
)

// ReexecLetter is scan.ReexecLetter (svctl cannot import scan): the
// in-place re-exec of the scanner, gosv only (scan/REEXEC.md).
const ReexecLetter = 'X'

// ReexecTimeout bounds the wait of svscanctl -X for the outcome: a new
// scanner with thousands of services adopts them in well under a second
// (bench/README.md, "reexec"); past this the scanner is taken as lost.
const ReexecTimeout = 60 * time.Second

// ReexecError is a re-exec that did not happen, or whose outcome was not
// seen: Reason is the scanner's (ScanReexecPath) or the client's.
type ReexecError struct {
	Dir    string
	Reason string
}

func (e *ReexecError) Error() string {
	return fmt.Sprintf("re-exec of the scanner of %s: %s", e.Dir, e.Reason)
}

// Reexec asks the scanner of dir to re-exec itself in place and waits
// up to timeout for the outcome (svscanctl -X).
func Reexec(dir string, timeout time.Duration) error {
	return sendWaitReexec(dir, []byte{ReexecLetter}, timeout)
}

// sendWaitReexec sends letters, which hold ReexecLetter, and waits until
// the scanner reports the re-exec's outcome in ScanReexecPath: the new
// scanner writes "ok PID" once it accepts control, the old one "failed
// REASON" when it keeps running. Event-driven: inotify on .s6-svscan.
func sendWaitReexec(dir string, letters []byte, timeout time.Duration) error {
	ctl := filepath.Join(dir, servicedir.ScanCtlDir)
	result := filepath.Join(dir, servicedir.ScanReexecPath)
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, ctl, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		// No .s6-svscan: the write below says what is wrong.
		return classify(dir, servicedir.ScanCtlDir, servicedir.WriteScanControl(dir, letters))
	}
	// A result left by an earlier re-exec must not be taken for this one's.
	if err := os.Remove(result); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := classify(dir, servicedir.ScanCtlDir, servicedir.WriteScanControl(dir, letters)); err != nil {
		return err
	}
	deadline := time.Now().Add(timeout)
	buf := make([]byte, 4096)
	for {
		b, err := os.ReadFile(result)
		if err == nil && bytes.HasSuffix(b, []byte("\n")) {
			line := strings.TrimSuffix(string(b), "\n")
			if strings.HasPrefix(line, "ok") {
				return nil
			}
			return &ReexecError{Dir: dir, Reason: strings.TrimPrefix(line, "failed ")}
		}
		if !time.Now().Before(deadline) {
			return &ReexecError{Dir: dir, Reason: fmt.Sprintf("no outcome within %v (see the scanner's log; if it died, the next scanner started adopts the services)", timeout)}
		}
		fdwait.Readable(ino, deadline)
		unix.Read(ino, buf)
	}
}
