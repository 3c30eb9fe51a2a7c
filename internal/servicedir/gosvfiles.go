package servicedir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Codecs of the gosv-only files (PROTOCOL.md §9): what the supervisor
// writes and every client reads, with one set of bounds.

// NotifyMode says whose sd_notify datagrams count (notification-socket).
type NotifyMode uint8

const (
	NotifyNone NotifyMode = iota // no notification-socket file
	NotifyMain                   // only the run (or MAINPID) process
	NotifyAll                    // any process of the run's session
)

// ReadNotifyMode reads dir/notification-socket: "main" or "all" (blanks
// around the word and an empty file, which means main, are accepted).
// Anything else is NotifyMain with an *os.PathError wrapping [ErrBadValue].
func ReadNotifyMode(dir string) (NotifyMode, error) {
	p := filepath.Join(dir, NotificationSocketFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return NotifyNone, nil
	}
	if err != nil {
		return NotifyNone, err
	}
	m, ok := ParseNotifyMode(b)
	if !ok {
		return m, &os.PathError{Op: "parse", Path: p,
			Err: fmt.Errorf("%w %q (want main or all; using main)", ErrBadValue, strings.TrimSpace(string(b)))}
	}
	return m, nil
}

// ParseNotifyMode decodes the content of notification-socket; on false
// the mode is NotifyMain, the supervisor's fallback.
func ParseNotifyMode(b []byte) (NotifyMode, bool) {
	switch string(bytes.TrimSpace(b)) {
	case "main", "":
		return NotifyMain, true
	case "all":
		return NotifyAll, true
	}
	return NotifyMain, false
}

// String is the word notification-socket holds ("" for NotifyNone).
func (m NotifyMode) String() string {
	switch m {
	case NotifyMain:
		return "main"
	case NotifyAll:
		return "all"
	}
	return ""
}

// readinessFiles are the service-directory files that make a service
// notify readiness: s6's notification-fd, and gosv's sd_notify socket and
// check script.
var readinessFiles = [...]string{NotificationFDFile, NotificationSocketFile, CheckFile}

// HasReadiness reports whether dir's service notifies readiness, without
// which a wait for up-and-ready never ends (s6-svc downgrades -wU to -wu
// then; the real s6-svc looks at notification-fd only). An error other
// than a missing file is an *os.PathError.
func HasReadiness(dir string) (bool, error) {
	for _, name := range readinessFiles {
		fn := filepath.Join(dir, name)
		switch err := unix.Access(fn, unix.F_OK); {
		case err == nil:
			return true, nil
		case !errors.Is(err, unix.ENOENT):
			return false, &os.PathError{Op: "access", Path: fn, Err: err}
		}
	}
	return false, nil
}

// ReadLogScript returns the words of dir/log-script (an s6-log script,
// parsed by internal/logdir), or nil when there is none. A file without
// a word is an *os.PathError "empty script".
func ReadLogScript(dir string) ([]string, error) {
	p := filepath.Join(dir, LogScriptFile)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	args := strings.Fields(string(b))
	if len(args) == 0 {
		return nil, &os.PathError{Op: "parse", Path: p, Err: errors.New("empty script")}
	}
	return args, nil
}

// Bounds of the per-run readiness state files (§9.2): the supervisor keeps
// no more, so readers read no more.
const (
	MaxStatusText  = 256  // bytes of sd_notify STATUS= kept in status-text
	MaxCheckOutput = 4096 // bytes of a failed check's output kept in check-output
	// maxStateFile bounds every read of a state file: check-output is
	// MaxCheckOutput bytes of output plus one line naming the exit status.
	maxStateFile = MaxCheckOutput + 64
)

// FormatStatusText is the content of supervise/gosv/status-text for an
// sd_notify STATUS= value: its first MaxStatusText bytes and a newline,
// appended in val's spare capacity (the rest of a datagram being parsed).
func FormatStatusText(val []byte) []byte {
	return append(val[:min(len(val), MaxStatusText)], '\n')
}

// FormatReadyDeadline is the content of supervise/gosv/ready-deadline:
// the TAI64N label of t and a newline.
func FormatReadyDeadline(t time.Time) []byte {
	return append(TAI64NFromTime(t).Append(make([]byte, 0, TAI64NTextLen+1)), '\n')
}

// ParseReadyDeadline decodes [FormatReadyDeadline]'s output. ok is false
// for anything else: a deadline nobody can read extends nothing.
func ParseReadyDeadline(b []byte) (t time.Time, ok bool) {
	text, _ := bytes.CutSuffix(b, []byte{'\n'})
	l, ok := ParseTAI64N(text)
	if !ok || len(text) != TAI64NTextLen {
		return time.Time{}, false
	}
	return l.Time(), true
}

// ReadReadyDeadline reads dir/supervise/gosv/ready-deadline; ok is false
// when it is missing or malformed.
func ReadReadyDeadline(dir string) (t time.Time, ok bool) {
	b, err := ReadStateFile(dir, ReadyDeadlinePath)
	if err != nil {
		return time.Time{}, false
	}
	return ParseReadyDeadline(b)
}

// ReadStatusText returns dir/supervise/gosv/status-text as written (with
// its newline); "" when missing.
func ReadStatusText(dir string) string {
	b, _ := ReadStateFile(dir, StatusTextPath)
	return string(b)
}

// ReadCheckOutput returns dir/supervise/gosv/check-output as written (with
// its newline); "" when missing.
func ReadCheckOutput(dir string) string {
	b, _ := ReadStateFile(dir, CheckOutputPath)
	return string(b)
}

// ReadStateFile reads at most the bound of a state file at dir/rel (a path
// under supervise/gosv/). Open and reads are non-blocking, so that a fifo
// put there cannot hang a client.
func ReadStateFile(dir, rel string) ([]byte, error) {
	buf := make([]byte, maxStateFile)
	n, err := readAtMost(filepath.Join(dir, rel), buf)
	if err != nil {
		return nil, err
	}
	return buf[:n], nil
}
