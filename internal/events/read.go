package events

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// ErrNoLog: the directory has no events log (no scanner ever ran there).
var ErrNoLog = errors.New("no events log")

// LogDir finds the events log of dir: a scan directory's
// (servicedir.ScanEventsDir), or that of a service directory run by gosv
// supervise (servicedir.EventsLogDir).
func LogDir(dir string) (string, error) {
	for _, rel := range []string{servicedir.ScanEventsDir, servicedir.EventsLogDir} {
		p := filepath.Join(dir, rel)
		if st, err := os.Stat(p); err == nil && st.IsDir() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: %w (neither %s nor %s)", dir, ErrNoLog, servicedir.ScanEventsDir, servicedir.EventsLogDir)
}

// Reader reads an events log in order: the rotated files, oldest first,
// then current; with Follow, what is appended after.
type Reader struct {
	Dir string
	// Want selects records; nil takes all.
	Want func(*Record) bool
	// Each is called with every selected record and its line.
	Each func(r *Record, line []byte) error
}

// maxLine bounds one line read back (a line is far shorter: maxMessage).
const maxLine = 64 << 10

// ReadAll reads what the log holds now. It returns current's fd positioned
// after what was read, for Follow.
func (rd *Reader) ReadAll() error {
	f, err := rd.readAll()
	if f != nil {
		f.Close()
	}
	return err
}

func (rd *Reader) readAll() (*os.File, error) {
	old, err := rotated(rd.Dir)
	if err != nil {
		return nil, err
	}
	for _, n := range old {
		f, err := os.Open(filepath.Join(rd.Dir, n))
		if err != nil {
			continue // removed by a rotation meanwhile
		}
		_, err = rd.copy(f)
		f.Close()
		if err != nil {
			return nil, err
		}
	}
	f, err := os.Open(filepath.Join(rd.Dir, currentName))
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	if _, err := rd.copy(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// copy hands every whole line of f from its offset on to Each, and leaves
// f's offset after the last whole line (a line being written is read at
// the next call).
func (rd *Reader) copy(f *os.File) (int64, error) {
	br := bufio.NewReaderSize(f, 64<<10)
	var done int64
	var line []byte
	for {
		chunk, err := br.ReadSlice('\n')
		line = append(line, chunk...)
		if err == bufio.ErrBufferFull {
			if len(line) > maxLine {
				line = line[:0] // not a line of ours: skip it
			}
			continue
		}
		if err != nil {
			if err == io.EOF {
				// Unread a partial line.
				_, serr := f.Seek(-int64(len(line)), io.SeekCurrent)
				_ = serr
				return done, nil
			}
			return done, err
		}
		done += int64(len(line))
		if err := rd.one(line); err != nil {
			return done, err
		}
		line = line[:0]
	}
}

func (rd *Reader) one(line []byte) error {
	r, err := Parse(bytes.TrimSpace(line))
	if err != nil {
		return nil // a torn line (disk full) or garbage: skipped
	}
	if rd.Want != nil && !rd.Want(&r) {
		return nil
	}
	return rd.Each(&r, line)
}

// Follow reads the log, then waits (inotify) for new lines and rotations
// until ctx is done.
func (rd *Reader) Follow(ctx context.Context) error {
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	defer unix.Close(ino)
	// Watch before reading: nothing appended in between is missed.
	if _, err := unix.InotifyAddWatch(ino, rd.Dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ONLYDIR); err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: rd.Dir, Err: err}
	}
	cur, err := rd.readAll()
	if err != nil {
		return err
	}
	defer func() {
		if cur != nil {
			cur.Close()
		}
	}()
	stop, err := stopFd(ctx)
	if err != nil {
		return err
	}
	defer unix.Close(stop)
	var buf [4096]byte
	for {
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}, {Fd: int32(stop), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, -1); err != nil && err != unix.EINTR {
			return os.NewSyscallError("poll", err)
		}
		if fds[1].Revents != 0 {
			return nil
		}
		if fds[0].Revents == 0 {
			continue
		}
		n, err := unix.Read(ino, buf[:])
		if err != nil {
			return os.NewSyscallError("read inotify", err)
		}
		created := false
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := bytes.TrimRight(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+int(ev.Len)], "\x00")
			if string(name) == currentName && ev.Mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0 {
				created = true
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
		if cur != nil {
			if _, err := rd.copy(cur); err != nil {
				return err
			}
		}
		if created || cur == nil {
			// A rotation (or several): cur, still open, was read to its
			// end above; the files rotated after it, then the new
			// current, follow.
			next, err := rd.afterRotation(cur)
			if err != nil {
				return err
			}
			if next == nil {
				continue
			}
			if cur != nil {
				cur.Close()
			}
			cur = next
		}
	}
}

// afterRotation reads the rotated files newer than cur (found by its
// inode), and opens and reads the new current.
func (rd *Reader) afterRotation(cur *os.File) (*os.File, error) {
	f, err := os.Open(filepath.Join(rd.Dir, currentName))
	if err != nil {
		return nil, nil // between a rename and a create: the create will tell
	}
	if cur != nil {
		if same(f, cur) {
			f.Close()
			return nil, nil
		}
		old, err := rotated(rd.Dir)
		if err != nil {
			f.Close()
			return nil, err
		}
		seen := false
		for _, n := range old {
			g, err := os.Open(filepath.Join(rd.Dir, n))
			if err != nil {
				continue
			}
			if same(g, f) {
				// f, opened as current, was rotated since: it is read
				// below, once, and what came after it at the next event.
				g.Close()
				break
			}
			if seen {
				_, err = rd.copy(g)
			}
			seen = seen || same(g, cur)
			g.Close()
			if err != nil {
				f.Close()
				return nil, err
			}
		}
	}
	if _, err := rd.copy(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func same(a, b *os.File) bool {
	sa, err1 := a.Stat()
	sb, err2 := b.Stat()
	return err1 == nil && err2 == nil && os.SameFile(sa, sb)
}

// stopFd is an eventfd that becomes readable when ctx is done.
func stopFd(ctx context.Context) (int, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		return -1, os.NewSyscallError("eventfd", err)
	}
	w, err := unix.Dup(fd)
	if err != nil {
		unix.Close(fd)
		return -1, os.NewSyscallError("dup", err)
	}
	go func() {
		<-ctx.Done()
		unix.Write(w, []byte{1, 0, 0, 0, 0, 0, 0, 0})
		unix.Close(w)
	}()
	return fd, nil
}
