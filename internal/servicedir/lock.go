package servicedir

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// The supervise lock tells clients that a supervisor is alive: s6-svok,
// s6-svstat and gosv's own clients probe supervise/lock with F_GETLK and
// never read the status file for that (s6 s6_svc_ok.c, skalibs
// fd_islocked.c). The lock must therefore be an fcntl record lock: flock(2)
// locks are invisible to F_GETLK.
//
// gosv takes open file description (OFD) locks (F_OFD_SETLK, Linux 3.15)
// rather than classic POSIX ones, because one gosv process holds the locks
// of many services:
//   - a POSIX lock belongs to the process, so a second F_SETLK from the same
//     process on an already locked file succeeds silently, and double
//     supervision of one directory would go unnoticed; an OFD lock belongs
//     to the open file, so the second Lock fails with EAGAIN (ErrLocked);
//   - a POSIX lock is dropped when the process closes ANY descriptor of the
//     file (IsLocked, a stray os.ReadFile); an OFD lock lives until its own
//     descriptor is closed;
//   - F_GETLK, in another process or in this one, reports an OFD lock as a
//     conflict with l_pid = -1. The real s6-svok 2.11.3.2 sees it
//     (TestLockSeenByS6svok).

// Lock creates path (mode 0644 unless it exists) and takes a whole-file OFD
// write lock (F_OFD_SETLK). ErrLocked if held, also by this process.
// The returned file must stay open for as long as the lock is held.
//
// mode is the creation mode, minus the umask. The error wraps [ErrLocked]
// and the errno when somebody holds the lock.
// NOTE: dropping the *os.File without closing it releases the lock when
// the garbage collector finalizes it; keep a reference.
func Lock(path string, mode os.FileMode) (*os.File, error) {
	// NOTE: O_NOFOLLOW: the supervisor (root) must not create a file
	// wherever a symlink planted at supervise/lock points.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|unix.O_NOFOLLOW, mode)
	if err != nil {
		return nil, err
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart} // Start 0, Len 0: whole file
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		f.Close()
		if err == unix.EAGAIN || err == unix.EACCES {
			err = fmt.Errorf("%w (%w)", ErrLocked, err)
		}
		return nil, &os.PathError{Op: "lock", Path: path, Err: err}
	}
	return f, nil
}

// IsLocked probes path with F_GETLK as s6_svc_ok does. A missing file is not locked.
//
// It opens path read-only and non-blocking, asks whether a read lock over
// the whole file would conflict, and reports true iff it would: only a
// write lock (OFD or POSIX, held by any process) counts. A classic POSIX
// lock held by the calling process itself is not reported (POSIX), which
// never matters for OFD locks taken with [Lock].
func IsLocked(path string) (bool, error) {
	lk, err := probeLock(path, unix.F_RDLCK)
	return lk.Type != unix.F_UNLCK, err
}

// HolderPid returns the pid holding a POSIX lock on path, or -1 for an OFD lock, 0 if unlocked.
// It probes with a write lock, so read locks count too. A missing file is
// not locked.
func HolderPid(path string) (int, error) {
	lk, err := probeLock(path, unix.F_WRLCK)
	if err != nil || lk.Type == unix.F_UNLCK {
		return 0, err
	}
	return int(lk.Pid), nil
}

// probeLock runs F_GETLK with a whole-file probe of type typ on path.
// A missing file yields F_UNLCK.
//
// NOTE: the descriptor opened here is closed again, which would release a
// classic POSIX lock of this process on the same file; gosv holds only OFD
// locks, which survive it (TestLockSurvivesOtherClose).
func probeLock(path string, typ int16) (unix.Flock_t, error) {
	unlocked := unix.Flock_t{Type: unix.F_UNLCK}
	fd, err := openRetry(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return unlocked, nil
	}
	if err != nil {
		return unlocked, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart}
	if err := unix.FcntlFlock(uintptr(fd), unix.F_GETLK, &lk); err != nil {
		return unlocked, &os.PathError{Op: "fcntl", Path: path, Err: err}
	}
	return lk, nil
}
