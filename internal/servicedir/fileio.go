package servicedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// This file holds the two file idioms of skalibs that the protocol relies on:
// openwritenclose_suffix (write a temporary file, then rename it over the
// real one, so that readers never see a partial file) and openreadnclose
// (read at most n bytes). They use raw unix calls rather than os.File: they
// run on the supervisor's event loop at every state change, and an os.File
// costs a finalizer and a poller registration attempt for nothing.
//
// Every file the supervisor creates or truncates in a service directory is
// opened relative to a directory fd and never through a symlink
// (PROTOCOL.md §2, "no symlink followed"). The supervisor usually runs as
// root while the service directory may belong to a user: a symlink planted
// under supervise/status.new or down would otherwise make root create,
// truncate or overwrite any file of the system. The service directory
// itself and supervise/ may be symlinks (s6 allows both, e.g. to keep a
// service directory read-only); below supervise/, and for the last
// component, nothing is followed.

// WriteFile writes data to dir/rel atomically (rel.new, then rename), mode
// 0644: for gosv's state files under supervise/gosv/.
func WriteFile(dir, rel string, data []byte) error {
	if err := mkdirGosv(dir); err != nil {
		return err
	}
	return writeAtomic(dir, rel, data, pidRecordPerm)
}

// mkdirGosv creates dir/supervise/gosv (0700) if missing, without
// following a symlink planted at its name.
func mkdirGosv(dir string) error {
	gdir := filepath.Join(dir, GosvStateDir)
	sfd, err := openDir(filepath.Join(dir, SuperviseDir), true)
	if err != nil {
		return &os.PathError{Op: "mkdir", Path: gdir, Err: errors.Unwrap(err)}
	}
	defer unix.Close(sfd)
	base := filepath.Base(GosvStateDir)
	if err := unix.Mkdirat(sfd, base, gosvDirPerm); err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: gdir, Err: err}
	}
	return nil
}

// openDir opens path as a directory for use with the *at calls. A symlink
// as its last component is followed only if follow is set.
func openDir(path string, follow bool) (int, error) {
	flags := unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC
	if !follow {
		flags |= unix.O_NOFOLLOW
	}
	fd, err := openRetry(path, flags, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// openParent opens the directory holding the last component of rel (a
// slash-separated path relative to dir) and returns it with that
// component. dir and the first component of rel (supervise/) may be
// symlinks; deeper directories may not (ELOOP or ENOTDIR then).
func openParent(dir, rel string) (int, string, error) {
	parts := strings.Split(rel, "/")
	base := parts[len(parts)-1]
	parts = parts[:len(parts)-1]
	path := dir
	if len(parts) > 0 {
		path = filepath.Join(dir, parts[0])
		parts = parts[1:]
	}
	fd, err := openDir(path, true)
	if err != nil {
		return -1, "", err
	}
	for _, p := range parts {
		path = filepath.Join(path, p)
		nfd, err := unix.Openat(fd, p, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return -1, "", &os.PathError{Op: "open", Path: path, Err: err}
		}
		fd = nfd
	}
	return fd, base, nil
}

// writeAtomic writes data to dir/rel+".new" with mode perm (minus the
// umask), closes it and renames it onto dir/rel. On failure the temporary
// file is removed. As in skalibs there is no fsync: the files are small,
// rewritten often, and a crash loses at most the latest state, which the
// next transition rewrites anyway.
//
// The temporary file is created with O_EXCL|O_NOFOLLOW in the directory
// fd, after unlinking whatever has its name (a file left by a killed
// supervisor, or a planted symlink: unlink removes the link, never its
// target). If something reappears there in between, O_EXCL makes the open
// fail rather than follow it; rename replaces a symlink at dir/rel itself.
func writeAtomic(dir, rel string, data []byte, perm uint32) error {
	return writeAtomicMode(dir, rel, data, perm, false)
}

// WriteFileMode writes data to dir/rel as writeAtomic does (a temporary
// file created without following symlinks, then a rename), with mode
// exactly mode whatever the umask: for the files gosv generates in a
// service directory of its own (run, finish, gosv openrc's files), which
// must be executable or not whoever ran the generator. rel's parent must
// exist; dir and rel's first component may be symlinks, nothing deeper is
// followed.
func WriteFileMode(dir, rel string, data []byte, mode uint32) error {
	return writeAtomicMode(dir, rel, data, mode, true)
}

// writeAtomicMode is writeAtomic; exact sets the mode with fchmod before
// the rename, so that the umask does not apply.
func writeAtomicMode(dir, rel string, data []byte, perm uint32, exact bool) error {
	tmpPath := filepath.Join(dir, rel) + tmpSuffix
	dfd, base, err := openParent(dir, rel)
	if err != nil {
		// Name the file being written; the errno says which part failed.
		return &os.PathError{Op: "open", Path: tmpPath, Err: errors.Unwrap(err)}
	}
	defer unix.Close(dfd)
	tmp := base + tmpSuffix
	const flags = unix.O_WRONLY | unix.O_CREAT | unix.O_EXCL | unix.O_NOFOLLOW | unix.O_CLOEXEC
	// The name is free nearly always: unlink only when O_EXCL finds it
	// taken, rather than a failing unlink before each write (status is
	// written several times per start).
	fd, err := openatRetry(dfd, tmp, flags, perm)
	if err == unix.EEXIST {
		if err := unix.Unlinkat(dfd, tmp, 0); err != nil && err != unix.ENOENT {
			return &os.PathError{Op: "unlink", Path: tmpPath, Err: err}
		}
		fd, err = openatRetry(dfd, tmp, flags, perm)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: tmpPath, Err: err}
	}
	err = writeAll(fd, data)
	if err == nil && exact {
		err = unix.Fchmod(fd, perm)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return &os.PathError{Op: "write", Path: tmpPath, Err: err}
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return &os.LinkError{Op: "rename", Old: tmpPath, New: filepath.Join(dir, rel), Err: err}
	}
	return nil
}

// CreateDown creates dir/down (empty, 0644) if it does not exist, as
// s6-svc -D asks. An existing down file is left as it is: its content
// means nothing, so there is nothing to truncate. A symlink planted at
// its name is not followed: the open fails with ELOOP.
func CreateDown(dir string) error {
	dfd, err := openDir(dir, true)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	// NOTE: O_NONBLOCK so that a fifo planted as down cannot block the loop.
	fd, err := openatRetry(dfd, DownFile, unix.O_WRONLY|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Join(dir, DownFile), Err: err}
	}
	return unix.Close(fd)
}

// MkdirPrivate creates path with mode exactly mode (whatever the umask)
// if it does not exist; an existing directory, or a symlink to one, is
// used as is (supervise/ may be a symlink). The chmod goes through an fd
// opened without following symlinks, so a symlink swapped in after the
// mkdir cannot redirect it.
func MkdirPrivate(path string, mode uint32) error {
	_, err := MkdirPrivateNew(path, mode)
	return err
}

// MkdirPrivateNew is MkdirPrivate, and says whether it created path: a
// supervisor that has just made supervise/ knows that no earlier
// supervisor left a record, a status or a tally there, and skips looking.
func MkdirPrivateNew(path string, mode uint32) (bool, error) {
	err := unix.Mkdir(path, mode)
	if err == nil {
		fd, err := openRetry(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return false, &os.PathError{Op: "open", Path: path, Err: err}
		}
		defer unix.Close(fd)
		if err := unix.Fchmod(fd, mode); err != nil {
			return false, &os.PathError{Op: "chmod", Path: path, Err: err}
		}
		return true, nil
	}
	if err != unix.EEXIST {
		return false, &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		return false, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return false, &os.PathError{Op: "mkdir", Path: path, Err: unix.ENOTDIR}
	}
	return false, nil
}

// writeAll writes all of b to fd, retrying short writes and EINTR.
func writeAll(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := unix.Write(fd, b)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return err
		}
		b = b[n:]
	}
	return nil
}

// readAtMost reads up to len(buf) bytes of path, as skalibs
// openreadnclose_nb does: the open is non-blocking so that a fifo planted
// under a config file name cannot hang the caller (EAGAIN ends the read).
// Errors have the os.PathError shape.
func readAtMost(path string, buf []byte) (int, error) {
	fd, err := openRetry(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return 0, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	n := 0
	for n < len(buf) {
		r, err := unix.Read(fd, buf[n:])
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return n, nil
		case err != nil:
			return n, &os.PathError{Op: "read", Path: path, Err: err}
		case r == 0:
			return n, nil
		}
		n += r
	}
	return n, nil
}

// openRetry is unix.Open retried on EINTR.
//
// NOTE: Go installs its signal handlers with SA_RESTART, so EINTR is rare,
// but open(2) of a fifo or on some network filesystems can still report it
// (containerd eintr_unix.go makes the same point).
func openRetry(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}

// openatRetry is unix.Openat retried on EINTR.
func openatRetry(dfd int, name string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Openat(dfd, name, flags, perm)
		if err != unix.EINTR {
			return fd, err
		}
	}
}
