package svwait

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// gosv-only state files a waiter reads (PROTOCOL.md §9.2). A supervisor
// writes them before it sends the event byte that announces them (§9.3):
// 'e' for the ready deadline, 'c' for the check output.
const (
	readyDeadlinePath = servicedir.ReadyDeadlinePath
	checkOutputPath   = servicedir.CheckOutputPath
	// maxCheckOutput is the supervisor's bound on check-output.
	maxCheckOutput = 4096
)

// readReadyDeadline reads supervise/gosv/ready-deadline: "@" + 24 hex
// digits of a TAI64N label + "\n". ok is false when the file is missing or
// malformed: a deadline nobody can read extends nothing.
func readReadyDeadline(dir string) (t time.Time, ok bool) {
	b, err := readSmall(filepath.Join(dir, readyDeadlinePath), 64)
	if err != nil {
		return time.Time{}, false
	}
	text, _ := bytes.CutSuffix(b, []byte{'\n'})
	var l servicedir.TAI64N
	if len(text) != 1+2*len(l) || text[0] != '@' {
		return time.Time{}, false
	}
	if _, err := hex.Decode(l[:], text[1:]); err != nil {
		return time.Time{}, false
	}
	return l.Time(), true
}

// readCheckOutput reads supervise/gosv/check-output; "" when missing.
func readCheckOutput(dir string) string {
	b, _ := readSmall(filepath.Join(dir, checkOutputPath), maxCheckOutput)
	return string(b)
}

// readSmall reads at most max bytes of path. Open and reads are
// non-blocking, so that a fifo put there cannot hang the waiter (EAGAIN
// ends the read).
func readSmall(path string, max int) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	buf := make([]byte, max)
	n := 0
	for n < max {
		r, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err == unix.EAGAIN || r == 0 {
			break
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		n += r
	}
	return buf[:n], nil
}
