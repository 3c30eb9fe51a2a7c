package events

import (
	"errors"
	"os"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// Bounds of the log: current is rotated before it would pass MaxSize, and
// at most Keep rotated files are kept, so the log never holds more than
// (Keep+1) × MaxSize bytes (6 MiB): some 30 000 events.
const (
	MaxSize = 1 << 20
	Keep    = 5
)

const (
	currentName   = "current"
	rotatedPrefix = "@"
	rotatedSuffix = ".s"
)

// Log is the writing end of an events log, owned by one loop. Every line
// is one write(2) on an O_APPEND fd, so a process killed after Append
// returned has lost nothing (the data is in the kernel), and readers see
// whole lines.
type Log struct {
	dir  string
	dfd  int // the log directory, opened without following a symlink
	fd   int // current, O_APPEND
	size int64
	// torn: a write was cut short (disk full): the next line starts with
	// a newline so that the torn one stays a line of its own (readers
	// skip it).
	torn bool
	max  int64
	keep int
	// now stamps rotated files; tests set it.
	now func() time.Time
}

// Open opens (creating) the log directory dir and its current file. dir's
// parent must exist; dir itself and current are never followed if they
// are symlinks.
func Open(dir string) (*Log, error) {
	if err := unix.Mkdir(dir, 0o755); err != nil && err != unix.EEXIST {
		return nil, &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	dfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: dir, Err: err}
	}
	l := &Log{dir: dir, dfd: dfd, fd: -1, max: MaxSize, keep: Keep}
	if err := l.openCurrent(); err != nil {
		unix.Close(dfd)
		return nil, err
	}
	return l, nil
}

func (l *Log) openCurrent() error {
	fd, err := unix.Openat(l.dfd, currentName, unix.O_RDWR|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: l.path(currentName), Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
		unix.Close(fd)
		if err == nil {
			err = errors.New("not a regular file")
		}
		return &os.PathError{Op: "open", Path: l.path(currentName), Err: err}
	}
	l.fd, l.size = fd, st.Size
	// A line torn by a previous writer (killed mid-write: it cannot be,
	// write(2) of a line is atomic for the file; or a full disk) is
	// closed by a newline first.
	if st.Size > 0 {
		var last [1]byte
		if n, _ := unix.Pread(fd, last[:], st.Size-1); n == 1 && last[0] != '\n' {
			l.torn = true
		}
	}
	return nil
}

func (l *Log) path(name string) string { return l.dir + "/" + name }

// Dir is the log directory.
func (l *Log) Dir() string { return l.dir }

// Append writes line (one JSON line, newline included), rotating first if
// current would grow past the bound. An error means the line was not, or
// not wholly, written (ENOSPC, EIO…); the next Append tries again with the
// next line.
func (l *Log) Append(line []byte) error {
	if l.fd < 0 {
		if err := l.openCurrent(); err != nil {
			return err
		}
	}
	if l.size > 0 && l.size+int64(len(line)) > l.max {
		if err := l.rotate(); err != nil {
			return err
		}
	}
	if l.torn {
		n, err := unix.Write(l.fd, []byte{'\n'})
		if err != nil {
			return &os.PathError{Op: "write", Path: l.path(currentName), Err: err}
		}
		l.size += int64(n)
		l.torn = false
	}
	n, err := unix.Write(l.fd, line)
	if n > 0 {
		l.size += int64(n)
	}
	if err == nil && n < len(line) {
		err = unix.ENOSPC
	}
	if err != nil {
		l.torn = n > 0
		return &os.PathError{Op: "write", Path: l.path(currentName), Err: err}
	}
	return nil
}

// rotate renames current to @TAI64N.s, opens a new current and removes
// the oldest rotated files beyond keep. Killed between the steps, the
// next Open finds either the old current or none, and makes one: no line
// is lost.
func (l *Log) rotate() error {
	now := time.Now
	if l.now != nil {
		now = l.now
	}
	name := servicedir.TAI64NFromTime(now()).String() + rotatedSuffix // "@" + 24 hex
	if err := unix.Renameat(l.dfd, currentName, l.dfd, name); err != nil {
		return &os.PathError{Op: "rename", Path: l.path(currentName), Err: err}
	}
	unix.Close(l.fd)
	l.fd = -1
	if err := l.openCurrent(); err != nil {
		return err
	}
	old, err := rotated(l.dir)
	if err != nil {
		return err
	}
	for len(old) > l.keep {
		unix.Unlinkat(l.dfd, old[0], 0)
		old = old[1:]
	}
	return nil
}

// Close closes the log.
func (l *Log) Close() error {
	if l.fd >= 0 {
		unix.Close(l.fd)
		l.fd = -1
	}
	return unix.Close(l.dfd)
}

// rotated lists dir's rotated files, oldest first.
func rotated(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasPrefix(n, rotatedPrefix) && strings.HasSuffix(n, rotatedSuffix) && e.Type().IsRegular() {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out, nil
}
