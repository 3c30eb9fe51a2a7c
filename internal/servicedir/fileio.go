package servicedir

import (
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// This file holds the two file idioms of skalibs that the protocol relies on:
// openwritenclose_suffix (write a temporary file, then rename it over the
// real one, so that readers never see a partial file) and openreadnclose
// (read at most n bytes). They use raw unix calls rather than os.File: they
// run on the supervisor's event loop at every state change, and an os.File
// costs a finalizer and a poller registration attempt for nothing.

// WriteFile writes data to dir/rel atomically (rel.new, then rename), mode
// 0644: for gosv's state files under supervise/gosv/.
func WriteFile(dir, rel string, data []byte) error {
	gdir := filepath.Join(dir, GosvStateDir)
	if err := unix.Mkdir(gdir, gosvDirPerm); err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: gdir, Err: err}
	}
	return writeAtomic(filepath.Join(dir, rel), data, pidRecordPerm)
}

// writeAtomic writes data to path+".new" with mode perm (minus the umask),
// closes it and renames it onto path. On failure the temporary file is
// removed. As in skalibs there is no fsync: the files are small, rewritten
// often, and a crash loses at most the latest state, which the next
// transition rewrites anyway.
func writeAtomic(path string, data []byte, perm uint32) error {
	tmp := path + tmpSuffix
	fd, err := openRetry(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, perm)
	if err != nil {
		return &os.PathError{Op: "open", Path: tmp, Err: err}
	}
	err = writeAll(fd, data)
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		_ = unix.Unlink(tmp)
		return &os.PathError{Op: "write", Path: tmp, Err: err}
	}
	if err := unix.Rename(tmp, path); err != nil {
		_ = unix.Unlink(tmp)
		return &os.LinkError{Op: "rename", Old: tmp, New: path, Err: err}
	}
	return nil
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
