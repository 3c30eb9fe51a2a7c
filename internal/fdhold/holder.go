package fdhold

import (
	"bytes"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"unsafe"

	"golang.org/x/sys/unix"
)

// holderMemoryLimit caps the holder's heap: it holds a map of small keys.
const holderMemoryLimit = 4 << 20

// Serve runs the holder on ln, a listening SOCK_SEQPACKET unix socket (the
// scanner passes it as fd 3), bound in the directory dir, an O_PATH fd
// (fd 4; -1 if unknown). It serves one client
// at a time, in order, and returns when a client leaves (or dies) while
// nothing is held, or when the socket's name no longer names it: once the
// name is unlinked or replaced (its scan directory was removed) no client
// can ever reach what it holds, and a holder whose scanner never comes
// back would otherwise live forever. It never reads the fds it holds.
func Serve(ln, dir int) error {
	runtime.GOMAXPROCS(1)
	debug.SetMemoryLimit(holderMemoryLimit)
	unix.CloseOnExec(ln)
	if dir >= 0 {
		unix.CloseOnExec(dir)
	}
	closeInherited(ln)
	// NOTE: the holder must not keep the scan directory's mount busy, nor
	// die with the scanner's terminal session (the scanner starts it with
	// setsid).
	os.Chdir("/")
	gone := watchName(dir, boundName(ln))
	if gone != nil && gone.gone {
		return nil // removed before the holder ran: nobody can connect
	}
	if gone != nil && gone.ino < 0 {
		gone = nil // no inotify: the holder lives as before
	}
	held := map[string]int{}
	uid := os.Geteuid()
	for {
		if gone != nil {
			ready, err := gone.wait(ln)
			if err != nil {
				return nil // the name is gone: nobody can reach the holder
			}
			if !ready {
				continue
			}
		}
		c, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED || err == unix.EAGAIN {
			continue
		}
		if err != nil {
			return os.NewSyscallError("accept4", err)
		}
		if cred, err := unix.GetsockoptUcred(c, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil && int(cred.Uid) == uid {
			serveConn(c, held)
		}
		unix.Close(c)
		if len(held) == 0 {
			return nil
		}
	}
}

// serveConn applies one client's requests until it disconnects.
func serveConn(c int, held map[string]int) {
	buf := make([]byte, 1+MaxKey)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		op, key, fds, err := recv(c, buf, oob)
		if err != nil || op == 0 {
			closeAll(fds)
			return
		}
		switch op {
		case opStore:
			if len(fds) == 1 {
				if old, ok := held[key]; ok {
					unix.Close(old)
				}
				held[key], fds = fds[0], nil
			}
		case opDrop:
			if old, ok := held[key]; ok {
				unix.Close(old)
				delete(held, key)
			}
		case opDropAll:
			for k, fd := range held {
				unix.Close(fd)
				delete(held, k)
			}
		case opList:
			for k, fd := range held {
				if send(c, opEntry, k, fd) != nil {
					break
				}
			}
			send(c, opEnd, "", -1)
		}
		closeAll(fds)
	}
}

// closeInherited closes the fds above stderr, other than ln, that the
// holder inherited by mistake (without close-on-exec) from its starter's
// own parent: holding them would keep, say, a pipe from ever seeing EOF.
// The Go runtime's own fds are close-on-exec and are left alone.
func closeInherited(ln int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 || fd == ln {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}

// nameWatch tells when the socket's name is removed from its directory,
// or replaced, or the directory itself goes (inotify on the directory: no
// polling). It holds no fd of the directory, which would keep its mount
// busy: an inotify watch does not (umount ends it with IN_UNMOUNT).
type nameWatch struct {
	ino  int // the inotify fd, -1 when none could be made
	name string
	gone bool // the name was already gone at the start
}

// watchName watches dir/name, then closes dir. It returns nil when no
// directory was given, and a watch with ino -1 when inotify cannot be
// used: the holder then lives as before.
func watchName(dir int, name string) *nameWatch {
	if dir < 0 {
		return nil
	}
	defer unix.Close(dir)
	if name == "" {
		return nil
	}
	w := &nameWatch{ino: -1, name: name}
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return w
	}
	// NOTE: through /proc/self/fd: inotify_add_watch takes a path, and
	// the directory is known only by its fd.
	mask := uint32(unix.IN_DELETE | unix.IN_MOVED_FROM | unix.IN_MOVED_TO | unix.IN_DELETE_SELF)
	if _, err := unix.InotifyAddWatch(ino, "/proc/self/fd/"+strconv.Itoa(dir), mask); err != nil {
		unix.Close(ino)
		return w
	}
	// After the watch: a removal before it is seen here, one after it
	// by the watch.
	var st unix.Stat_t
	if unix.Fstatat(dir, name, &st, unix.AT_SYMLINK_NOFOLLOW) == unix.ENOENT {
		w.gone = true
	}
	w.ino = ino
	return w
}

// wait blocks until ln has a connection to accept (true) or the
// directory changed in a way that leaves the name (false). It returns an
// error once the name is gone or names something else, or the directory
// was removed or unmounted (a moved directory keeps the socket reachable).
func (w *nameWatch) wait(ln int) (bool, error) {
	fds := []unix.PollFd{{Fd: int32(ln), Events: unix.POLLIN}, {Fd: int32(w.ino), Events: unix.POLLIN}}
	if _, err := unix.Poll(fds, -1); err != nil {
		return false, nil // EINTR: poll again
	}
	if fds[1].Revents != 0 {
		buf := make([]byte, 4096)
		for {
			n, err := unix.Read(w.ino, buf)
			if n <= 0 || err != nil {
				break
			}
			for off := 0; off+unix.SizeofInotifyEvent <= n; {
				ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
				nameb := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
				off += unix.SizeofInotifyEvent + int(ev.Len)
				if ev.Mask&(unix.IN_DELETE_SELF|unix.IN_UNMOUNT|unix.IN_IGNORED) != 0 {
					return false, unix.ENOENT
				}
				if string(bytes.TrimRight(nameb, "\x00")) == w.name {
					return false, unix.ENOENT
				}
			}
		}
	}
	return fds[0].Revents != 0, nil
}

// boundName is the last component of the path ln is bound to, "" if none.
func boundName(ln int) string {
	sa, err := unix.Getsockname(ln)
	if ua, ok := sa.(*unix.SockaddrUnix); err == nil && ok && ua.Name != "" && ua.Name[0] != '@' {
		return filepath.Base(ua.Name)
	}
	return ""
}
