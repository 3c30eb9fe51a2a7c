package servicedir

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The event/ fifodir (s6 libs6 ftrigw_*, ftrig1_make.c): every listener
// puts a fifo named "ftrig1:@<24 hex TAI64N>:<6 random chars>" (39 bytes)
// in event/ and reads from it; at every state change the supervisor writes
// the event string to each of them, after renaming the new status into
// place. PROTOCOL.md §event has the full rules.
const (
	eventFifoPrefix = "ftrig1:@"
	// eventDirMode: setgid so new fifos inherit the dir's group, sticky so a
	// listener can delete only its own fifo, group -wx so members can create
	// entries without listing them. eventDirPublicMode is s6's mode for a
	// fifodir without a group (ftrigw_fifodir_make with gid -1).
	eventDirMode       = 0o3730
	eventDirPublicMode = 0o1733
	eventFifoMode      = 0o600

	// fifoSuffixAlphabet has the 64 characters skalibs random_name_from
	// draws the 6 unique characters of a listener name from.
	fifoSuffixAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	fifoSuffixLen      = 6
	// subscribeTries bounds the mkfifo retries on a name collision.
	subscribeTries = 100

	// direntBufSize is the getdents64 buffer of a Notifier: 8 KiB holds
	// about 150 listener entries per system call; more just take another.
	direntBufSize = 8 << 10
)

// Byte offsets in a struct linux_dirent64 (getdents64(2)).
const (
	direntReclenOff = 16
	direntTypeOff   = 18
	direntNameOff   = 19
)

// Notifier writes events to the listeners of event directories. It keeps
// its buffers between calls, so that notifying does not allocate: after the
// first call, a Notify with or without listeners makes no heap allocation
// (TestNotifierDoesNotAllocate). The zero value is ready to use.
//
// A Notifier is not safe for concurrent use; the supervisor's event loop
// owns one.
type Notifier struct {
	dirent []byte // getdents64 buffer
	path   []byte // NUL-terminated event directory path, for openat(2)
	ev     []byte // the event, as bytes for write(2)
}

// Notify writes ev (one write) to every listener fifo in eventDir, unlinking
// fifos without a reader (ENXIO, EPIPE). Missing eventDir is not an error.
//
// It is [Notifier.Notify] with a fresh Notifier; a long-running caller
// should keep one Notifier instead.
func Notify(eventDir string, ev string) error {
	var n Notifier
	_, err := n.Notify(eventDir, ev)
	return err
}

// Notify writes ev to every listener of eventDir, as s6
// ftrigw_notifyb_nosig does, and returns how many listeners got all of it.
//
// For every entry whose name is exactly 39 bytes and starts with
// "ftrig1:@" (the ".ftrig1:" temporaries and other names are skipped), it
// opens the fifo write-only and non-blocking; ENXIO (no reader) unlinks the
// stale fifo. Then ONE write(2) of the whole string: EPIPE (the reader left
// meanwhile) unlinks the fifo, EAGAIN (a full fifo, a reader that does not
// read) is ignored, so a bad listener can never block the supervisor. Other
// per-fifo errors are ignored too; only failing to open or read eventDir is
// an error (a missing eventDir is none: nobody listens).
//
// NOTE: the write may raise SIGPIPE. The Go runtime does not act on a
// SIGPIPE caused by a write to a descriptor other than 1 or 2 unless the
// program called signal.Notify for it (os/signal "SIGPIPE"): the write just
// fails with EPIPE (TestDeliverEPIPE). Do not use signal.Ignore(SIGPIPE)
// to be safe here: SIG_IGN is inherited across exec by run and finish.
//
// Deliberate differences from s6, both only for entries no listener
// creates: symlinks are not followed (O_NOFOLLOW) and entries whose
// directory type is known and is not a fifo are skipped, so that a member
// of the event directory's group cannot make a root supervisor write into
// an arbitrary file. Descriptors are opened O_CLOEXEC.
func (n *Notifier) Notify(eventDir, ev string) (int, error) {
	if n.dirent == nil {
		n.dirent = make([]byte, direntBufSize)
	}
	n.path = append(append(n.path[:0], eventDir...), 0)
	n.ev = append(n.ev[:0], ev...)
	dfd, err := openat(unix.AT_FDCWD, &n.path[0], unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err == unix.ENOENT {
		return 0, nil
	}
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: eventDir, Err: err}
	}
	defer unix.Close(dfd)
	count := 0
	for {
		size, err := unix.Getdents(dfd, n.dirent)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return count, &os.PathError{Op: "getdents", Path: eventDir, Err: err}
		}
		if size == 0 {
			return count, nil
		}
		for off := 0; off < size; {
			rec := n.dirent[off:size]
			reclen := int(binary.NativeEndian.Uint16(rec[direntReclenOff:]))
			if isListener(rec[direntNameOff:reclen], rec[direntTypeOff]) &&
				n.notifyFifo(dfd, &rec[direntNameOff]) {
				count++
			}
			off += reclen
		}
	}
}

// isListener reports whether a NUL-terminated dirent name is a listener
// fifo: exactly 39 bytes starting with "ftrig1:@", and not known to be
// anything but a fifo.
func isListener(name []byte, dtype byte) bool {
	return len(name) > EventFifoNameLen && name[EventFifoNameLen] == 0 &&
		bytes.HasPrefix(name, []byte(eventFifoPrefix)) &&
		bytes.IndexByte(name[:EventFifoNameLen], 0) < 0 &&
		(dtype == unix.DT_FIFO || dtype == unix.DT_UNKNOWN)
}

// notifyFifo delivers n.ev to the fifo called name (NUL-terminated) in
// dfd and reports whether all of it was written.
func (n *Notifier) notifyFifo(dfd int, name *byte) bool {
	fd, err := openat(dfd, name, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC|unix.O_NOFOLLOW)
	if err != nil {
		if err == unix.ENXIO {
			unlinkat(dfd, name)
		}
		return false
	}
	ok, stale := deliver(fd, n.ev)
	unix.Close(fd)
	if stale {
		unlinkat(dfd, name)
	}
	return ok
}

// deliver makes the one write of ev to a listener fifo. ok means all of ev
// was written; stale means the reader is gone (EPIPE) and the fifo should
// be unlinked.
func deliver(fd int, ev []byte) (ok, stale bool) {
	w, err := unix.Write(fd, ev)
	return err == nil && w == len(ev), err == unix.EPIPE
}

// openat and unlinkat take a NUL-terminated name that already sits in a
// Notifier buffer: the x/sys/unix wrappers take a string and copy it to a
// new NUL-terminated buffer at every call.
func openat(dfd int, name *byte, flags int) (int, error) {
	for {
		fd, _, errno := unix.Syscall6(unix.SYS_OPENAT, uintptr(dfd), uintptr(unsafe.Pointer(name)), uintptr(flags), 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 {
			return -1, errno
		}
		return int(fd), nil
	}
}

func unlinkat(dfd int, name *byte) {
	_, _, _ = unix.Syscall(unix.SYS_UNLINKAT, uintptr(dfd), uintptr(unsafe.Pointer(name)), 0)
}

// MakeEventDir creates eventDir with mode 03730 and group gid if it does not exist;
// an existing directory is left untouched.
//
// As s6 ftrigw_fifodir_make: mkdir 0700, then chown(-1, gid) and chmod
// 03730, so the umask does not matter and the directory is never more open
// than 0700 before it is complete. A negative gid makes a "public" fifodir:
// no chown, mode 01733. If eventDir is a dangling symlink its target is
// created (s6-supervise's trymkdir); a symlink to an existing directory
// counts as existing (s6-supervise 2.11.3.2 dies there; s6-protocol.md §9.7).
// An existing non-directory is an error wrapping ENOTDIR. Unlike s6, an
// existing directory owned by another uid is accepted.
func MakeEventDir(eventDir string, gid int) error {
	dir := eventDir
	err := unix.Mkdir(dir, 0o700)
	if err == unix.EEXIST {
		fi, serr := os.Stat(dir)
		switch {
		case serr == nil && fi.IsDir():
			return nil
		case serr == nil:
			return &os.PathError{Op: "mkdir", Path: dir, Err: unix.ENOTDIR}
		case !errors.Is(serr, fs.ErrNotExist):
			return serr
		}
		// mkdir says it exists, stat says it does not: a dangling symlink.
		target, rerr := os.Readlink(dir)
		if rerr != nil {
			return rerr
		}
		if !filepath.IsAbs(target) {
			target = filepath.Join(filepath.Dir(dir), target)
		}
		dir = target
		err = unix.Mkdir(dir, 0o700)
	}
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: dir, Err: err}
	}
	mode := uint32(eventDirPublicMode)
	if gid >= 0 {
		mode = eventDirMode
		if err := unix.Chown(dir, -1, gid); err != nil {
			return &os.PathError{Op: "chown", Path: dir, Err: err}
		}
	}
	if err := unix.Chmod(dir, mode); err != nil {
		return &os.PathError{Op: "chmod", Path: dir, Err: err}
	}
	return nil
}

// Subscription is a listener fifo in a service's event/ directory.
// It is not safe for concurrent use.
type Subscription struct {
	File *os.File // read end, non-blocking, registered with Go's poller (SetReadDeadline works)
	w    int      // write end kept open so reads never see EOF; -1 once closed
	Path string
}

// Subscribe creates event/ if needed and a 39-character listener fifo in it
// (temp name with a leading dot, then rename), as s6-ftrigrd does.
//
// The steps (s6 ftrig1_make.c): MakeEventDir(serviceDir/event, egid);
// mkfifo ".ftrig1:@<TAI64N now>:XXXXXX" mode 0600 (retried with new random
// characters on EEXIST); open the read end O_RDONLY|O_NONBLOCK and a write
// end O_WRONLY|O_NONBLOCK, both close-on-exec; rename to the name without
// the dot, so notifiers only ever see a fifo that has a reader. Subscribe
// before reading supervise/status, so that no transition falls between the
// two (s6-svwait's order).
//
// File is a pollable *os.File: Read blocks until an event arrives and
// honours SetReadDeadline. Every event is one write of 1 or 2 bytes.
func Subscribe(serviceDir string) (*Subscription, error) {
	dir := filepath.Join(serviceDir, EventDir)
	if err := MakeEventDir(dir, os.Getegid()); err != nil {
		return nil, err
	}
	tmp, name, err := mkListenerFifo(dir)
	if err != nil {
		return nil, err
	}
	final := filepath.Join(dir, name)
	rfd, err := openRetry(tmp, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		_ = unix.Unlink(tmp)
		return nil, &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	wfd, err := openRetry(tmp, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(rfd)
		_ = unix.Unlink(tmp)
		return nil, &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	if err := unix.Rename(tmp, final); err != nil {
		unix.Close(wfd)
		unix.Close(rfd)
		_ = unix.Unlink(tmp)
		return nil, &os.LinkError{Op: "rename", Old: tmp, New: final, Err: err}
	}
	// NewFile registers a non-blocking descriptor with the runtime poller.
	return &Subscription{File: os.NewFile(uintptr(rfd), final), w: wfd, Path: final}, nil
}

// mkListenerFifo makes the temporary fifo in dir and returns its path and
// the final name (without the leading dot).
func mkListenerFifo(dir string) (tmp, name string, err error) {
	for range subscribeTries {
		name = listenerName(time.Now())
		tmp = filepath.Join(dir, "."+name)
		err = unix.Mkfifo(tmp, eventFifoMode)
		if err == unix.EEXIST {
			continue
		}
		if err == unix.EACCES || err == unix.EPERM {
			// The directory refused us (group control, PROTOCOL.md
			// §9.7): name it, not a random fifo name.
			return "", "", &os.PathError{Op: "mkfifo", Path: dir + "/", Err: err}
		}
		if err != nil {
			return "", "", &os.PathError{Op: "mkfifo", Path: tmp, Err: err}
		}
		// mkfifo applied the umask; s6 runs it under umask 0.
		if err := unix.Chmod(tmp, eventFifoMode); err != nil {
			_ = unix.Unlink(tmp)
			return "", "", &os.PathError{Op: "chmod", Path: tmp, Err: err}
		}
		return tmp, name, nil
	}
	return "", "", &os.PathError{Op: "mkfifo", Path: tmp, Err: err}
}

// listenerName returns "ftrig1:@<24 hex>:<6 random chars>".
func listenerName(now time.Time) string {
	var b [EventFifoNameLen]byte
	n := copy(b[:], "ftrig1:")
	n += copy(b[n:], TAI64NFromTime(now).String())
	b[n] = ':'
	for i := n + 1; i < len(b); i++ {
		b[i] = fifoSuffixAlphabet[rand.IntN(len(fifoSuffixAlphabet))]
	}
	return string(b[:])
}

// Close unlinks the fifo and closes both ends.
// Closing a closed Subscription does nothing.
func (s *Subscription) Close() error {
	if s.w < 0 {
		return nil
	}
	err := os.Remove(s.Path)
	if errors.Is(err, fs.ErrNotExist) {
		err = nil
	}
	if cerr := s.File.Close(); err == nil {
		err = cerr
	}
	if cerr := unix.Close(s.w); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: s.Path, Err: cerr}
	}
	s.w = -1
	return err
}
