package inwait

import (
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// ErrDeadline is returned by Wait when the deadline passes with no event.
var ErrDeadline = errors.New("deadline exceeded")

// Watcher is one inotify instance.
type Watcher struct {
	fd    int
	names map[int32]string
	buf   []byte
}

// New opens an inotify instance.
func New() (*Watcher, error) {
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return nil, os.NewSyscallError("inotify_init1", err)
	}
	return &Watcher{fd: fd, names: map[int32]string{}, buf: make([]byte, 64*1024)}, nil
}

// Add watches path for the events in mask.
func (w *Watcher) Add(path string, mask uint32) error {
	wd, err := unix.InotifyAddWatch(w.fd, path, mask)
	if err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: path, Err: err}
	}
	w.names[int32(wd)] = path
	return nil
}

// Event is one inotify event: Path is the watched path, Name the entry
// inside it when the watch is on a directory.
type Event struct {
	Path string
	Name string
	Mask uint32
}

// Wait blocks until at least one event arrives or the deadline passes, and
// returns every event that is queued. A zero deadline means no deadline.
func (w *Watcher) Wait(deadline time.Time) ([]Event, error) {
	for {
		n, err := unix.Read(w.fd, w.buf)
		if err == nil {
			return w.parse(n), nil
		}
		if err == unix.EINTR {
			continue
		}
		if err != unix.EAGAIN {
			return nil, os.NewSyscallError("read inotify", err)
		}
		timeout := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return nil, ErrDeadline
			}
			// Round up so that poll never returns a hair before the deadline.
			timeout = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, timeout); err != nil && err != unix.EINTR {
			return nil, os.NewSyscallError("poll", err)
		}
	}
}

func (w *Watcher) parse(n int) []Event {
	var evs []Event
	for off := 0; off+unix.SizeofInotifyEvent <= n; {
		raw := w.buf[off:]
		wd := int32(uint32(raw[0]) | uint32(raw[1])<<8 | uint32(raw[2])<<16 | uint32(raw[3])<<24)
		mask := uint32(raw[4]) | uint32(raw[5])<<8 | uint32(raw[6])<<16 | uint32(raw[7])<<24
		nameLen := int(uint32(raw[12]) | uint32(raw[13])<<8 | uint32(raw[14])<<16 | uint32(raw[15])<<24)
		name := raw[unix.SizeofInotifyEvent : unix.SizeofInotifyEvent+nameLen]
		for len(name) > 0 && name[len(name)-1] == 0 {
			name = name[:len(name)-1]
		}
		evs = append(evs, Event{Path: w.names[wd], Name: string(name), Mask: mask})
		off += unix.SizeofInotifyEvent + nameLen
	}
	return evs
}

// Close releases the inotify descriptor.
func (w *Watcher) Close() error {
	if err := unix.Close(w.fd); err != nil {
		return fmt.Errorf("close inotify: %w", err)
	}
	return nil
}

// WaitSize blocks until the file at path is at least size bytes long. The
// file must exist. It returns the time at which the size was first seen.
func WaitSize(path string, size int64, deadline time.Time) (time.Time, error) {
	w, err := New()
	if err != nil {
		return time.Time{}, err
	}
	defer w.Close()
	// Watch before the first stat, so that no append can slip between them.
	if err := w.Add(path, unix.IN_MODIFY); err != nil {
		return time.Time{}, err
	}
	for {
		st, err := os.Stat(path)
		if err != nil {
			return time.Time{}, err
		}
		if st.Size() >= size {
			return time.Now(), nil
		}
		if _, err := w.Wait(deadline); err != nil {
			return time.Time{}, fmt.Errorf("wait for %s to reach %d bytes (has %d): %w", path, size, st.Size(), err)
		}
	}
}
