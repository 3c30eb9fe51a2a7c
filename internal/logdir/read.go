package logdir

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"
)

// This file reads log directories, whoever wrote them (gosv, s6-log,
// svlogd, multilog: all name archives "@TAI64N.s" or ".u" and write to
// current), for gosv logs and for the OpenRC backend.

// Files returns the paths of the archives of a log directory, oldest
// first, then of previous while a rotation is under way (unless it is
// already linked as an archive), then of current if it exists.
func Files(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range ents {
		if _, ok := archiveLabel(e.Name()); ok {
			out = append(out, filepath.Join(dir, e.Name()))
		}
	}
	slices.Sort(out)
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(dir, previousName), &st); err == nil && st.Nlink == 1 {
		out = append(out, filepath.Join(dir, previousName))
	}
	if _, err := os.Stat(filepath.Join(dir, currentName)); err == nil {
		out = append(out, filepath.Join(dir, currentName))
	}
	return out, nil
}

// tailBlock is how much Tail reads backwards at a time.
const tailBlock = 64 << 10

// Tail returns the last n lines of a log directory (current, then the
// archives backwards), oldest first. A last line without its newline
// counts as a line.
func Tail(dir string, n int) ([][]byte, error) {
	return tail(dir, n, nil)
}

// tail is Tail with current already open (cur, at its end), for Show:
// what is appended after that belongs to the follower.
func tail(dir string, n int, cur *os.File) ([][]byte, error) {
	files, err := Files(dir)
	if err != nil || n <= 0 {
		return nil, err
	}
	var lines [][]byte
	for i := len(files) - 1; i >= 0 && len(lines) < n; i-- {
		var got [][]byte
		if cur != nil && filepath.Base(files[i]) == currentName {
			end, serr := cur.Seek(0, io.SeekCurrent) // Show opened it at its end
			if serr != nil {
				return nil, serr
			}
			got, err = tailAt(cur, end, n-len(lines))
		} else {
			got, err = tailFile(files[i], n-len(lines))
		}
		if err != nil && !errors.Is(err, os.ErrNotExist) { // an archive trimmed meanwhile
			return nil, err
		}
		lines = append(got, lines...)
	}
	return lines, nil
}

func tailFile(path string, n int) ([][]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return tailAt(f, fi.Size(), n)
}

// tailAt returns the last n lines of f's first end bytes, reading
// backwards.
func tailAt(f *os.File, end int64, n int) ([][]byte, error) {
	var buf []byte
	for off := end; off > 0 && bytes.Count(buf, []byte{'\n'}) <= n; {
		k := min(off, tailBlock)
		off -= k
		chunk := make([]byte, k)
		if _, err := f.ReadAt(chunk, off); err != nil && err != io.EOF {
			return nil, err
		}
		buf = append(chunk, buf...)
	}
	lines := bytes.SplitAfter(buf, []byte{'\n'})
	if len(lines[len(lines)-1]) == 0 {
		lines = lines[:len(lines)-1]
	}
	return lines[max(0, len(lines)-n):], nil
}

// Show writes the last n lines of a log directory to w, localized, then,
// with follow, what is appended to it, across rotations, until ctx is
// done. Following waits on inotify and never polls.
func Show(ctx context.Context, dir string, n int, follow bool, w io.Writer) error {
	if !follow {
		lines, err := Tail(dir, n)
		if err != nil {
			return err
		}
		return writeLines(w, lines)
	}
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	events := os.NewFile(uintptr(ino), "inotify") // pollable: the Go poller waits on it
	defer events.Close()
	const mask = unix.IN_MODIFY | unix.IN_CREATE | unix.IN_MOVED_TO | unix.IN_MOVED_FROM
	if _, err := unix.InotifyAddWatch(ino, dir, mask); err != nil {
		return &os.PathError{Op: "inotify_add_watch", Path: dir, Err: err}
	}
	fl := follower{dir: dir, w: w}
	if err := fl.open(true); err != nil {
		return err
	}
	defer fl.close()
	lines, err := tail(dir, n, fl.f)
	if err != nil {
		return err
	}
	if err := writeLines(w, lines); err != nil {
		return err
	}
	fl.mid = len(lines) > 0 && !bytes.HasSuffix(lines[len(lines)-1], []byte{'\n'})
	stop := context.AfterFunc(ctx, func() { events.SetReadDeadline(time.Now()) })
	defer stop()
	buf := make([]byte, 4096)
	for {
		if err := fl.drain(); err != nil {
			return err
		}
		if _, err := events.Read(buf); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
	}
}

func writeLines(w io.Writer, lines [][]byte) error {
	var out []byte
	for _, ln := range lines {
		out = Localize(out, ln)
	}
	_, err := w.Write(out)
	return err
}

// Localize rewrites a line's leading TAI64N stamp ("@4000…" and a blank)
// as local time, as s6-tai64nlocal does: "2026-11-22 04:43:20.061431945 ".
// Other lines are returned as they are.
func Localize(dst, line []byte) []byte {
	if t, ok := parseTAI64N(line); ok && len(line) > 25 && line[25] == ' ' {
		dst = t.Local().AppendFormat(dst, isoLayout)
		return append(dst, line[25:]...)
	}
	return append(dst, line...)
}

// follower copies a growing current to w and, after rotations, the
// archives it has not seen, then the new current.
type follower struct {
	dir   string
	w     io.Writer
	f     *os.File // the file being followed: current when opened
	ino   uint64
	after string // archives up to this name were there before f was opened
	mid   bool   // the last byte copied was not a newline: no stamp to convert next
	buf   []byte
	out   []byte
}

// open opens current (at its end if atEnd, noting the newest archive:
// the older ones are not followed). A missing current is not an error: it
// is being created.
func (fl *follower) open(atEnd bool) error {
	names, err := archiveNames(fl.dir)
	if err != nil {
		return err
	}
	if atEnd && len(names) > 0 {
		fl.after = names[len(names)-1]
	}
	f, err := os.Open(filepath.Join(fl.dir, currentName))
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return err
	}
	if atEnd {
		if _, err := f.Seek(0, io.SeekEnd); err != nil {
			f.Close()
			return err
		}
	}
	fl.f, fl.ino = f, st.Ino
	return nil
}

func archiveNames(dir string) ([]string, error) {
	files, err := Files(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, f := range files {
		if b := filepath.Base(f); b != currentName && b != previousName {
			names = append(names, b)
		}
	}
	return names, nil
}

func (fl *follower) close() {
	if fl.f != nil {
		fl.f.Close()
		fl.f = nil
	}
}

// drain copies what is new: the rest of the followed file and, if it is no
// longer current, the archives made since (the followed one among them,
// unless already trimmed), then current from its start, until the file
// followed is current.
func (fl *follower) drain() error {
	for {
		if fl.f == nil {
			if err := fl.open(false); err != nil || fl.f == nil {
				return err
			}
			if err := fl.readOlder(); err != nil {
				return err
			}
		}
		if err := fl.copy(); err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Stat(filepath.Join(fl.dir, currentName), &st); err == nil && st.Ino == fl.ino {
			return nil
		}
		if wait, err := fl.catchUp(); wait || err != nil {
			return err
		}
	}
}

// catchUp copies the archives newer than fl.after: the rest of the
// followed file when it is one of them, the others whole. While the
// followed file is in the middle of its rotation (renamed to previous, not
// yet archived) it waits for the next event.
func (fl *follower) catchUp() (wait bool, err error) {
	names, err := archiveNames(fl.dir)
	if err != nil {
		return false, err
	}
	if fl.f != nil && !fl.archived(names) {
		return true, nil
	}
	for _, name := range names {
		if name <= fl.after {
			continue
		}
		fl.after = name
		var st unix.Stat_t
		p := filepath.Join(fl.dir, name)
		if unix.Stat(p, &st) == nil && fl.f != nil && st.Ino == fl.ino {
			if err := fl.copy(); err != nil {
				return false, err
			}
			continue
		}
		fl.close()
		if err := fl.copyFile(p); err != nil {
			return false, err
		}
	}
	fl.close()
	return false, nil
}

// readOlder copies, whole, the archives made between the last catch-up
// and the opening of the followed file (older than it).
func (fl *follower) readOlder() error {
	names, err := archiveNames(fl.dir)
	if err != nil {
		return err
	}
	for _, name := range names {
		if name <= fl.after {
			continue
		}
		p := filepath.Join(fl.dir, name)
		var st unix.Stat_t
		if unix.Stat(p, &st) == nil && st.Ino == fl.ino {
			return nil // the followed file itself: the newer ones come after it
		}
		fl.after = name
		if err := fl.copyFile(p); err != nil {
			return err
		}
	}
	return nil
}

// copyFile copies a whole archive; one trimmed meanwhile is skipped.
func (fl *follower) copyFile(p string) error {
	f, err := os.Open(p)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	return fl.copyFrom(f)
}

// archived reports whether the followed file is among the archives, or
// gone (trimmed): either way the archives after it can be read.
func (fl *follower) archived(names []string) bool {
	var st unix.Stat_t
	if unix.Fstat(int(fl.f.Fd()), &st) != nil || st.Nlink == 0 {
		return true
	}
	for _, name := range names {
		var ast unix.Stat_t
		if name > fl.after && unix.Stat(filepath.Join(fl.dir, name), &ast) == nil && ast.Ino == fl.ino {
			return true
		}
	}
	return false
}

func (fl *follower) copy() error { return fl.copyFrom(fl.f) }

func (fl *follower) copyFrom(f *os.File) error {
	if fl.buf == nil {
		fl.buf = make([]byte, 64<<10)
	}
	for {
		n, err := f.Read(fl.buf)
		if n > 0 {
			fl.out = fl.localize(fl.out[:0], fl.buf[:n])
			if _, werr := fl.w.Write(fl.out); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// localize converts the stamps at the line starts of b. A stamp cut by
// the end of a read is left as is.
func (fl *follower) localize(dst, b []byte) []byte {
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n') + 1
		if i == 0 {
			i = len(b)
		}
		if fl.mid {
			dst = append(dst, b[:i]...)
		} else {
			dst = Localize(dst, b[:i])
		}
		fl.mid = b[i-1] != '\n'
		b = b[i:]
	}
	return dst
}
