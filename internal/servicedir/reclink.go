package servicedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// RecordLinker gives many service directories the same record (the
// scanner's supervise/gosv/supervisor: its pid and start time, the same
// in every directory it takes) as hard links to one file per file
// system, instead of a file each.
//
// Why: on a disk file system the inode allocation is the costliest part
// of taking a directory (bench/README.md, "Fewer inodes"), and a link
// allocates none. The file is made unnamed (O_TMPFILE) in the first
// directory of its file system and only ever reached through this
// process's descriptor, so nobody else can write to it before it has a
// name; once linked it is the scanner's (owner, mode 0644) and readers
// see an ordinary record. A record is never rewritten in place (every
// writer renames a new file over it), so one directory's rewrite never
// changes another's.
//
// Each link is made in the directory fd of supervise/gosv/ (opened
// without following symlinks): a new name never follows one, and an
// existing record or a symlink planted at the name is replaced by a
// rename, as with WriteRecord. Where links do not work (no O_TMPFILE,
// the file system's link limit) it writes the record as WriteRecord does.
type RecordLinker struct {
	rec PidRecord
	mu  sync.Mutex // fds: workers prepare directories in parallel
	fds []int      // one unnamed record file per file system met
}

// NewRecordLinker makes a linker of r.
func NewRecordLinker(r PidRecord) *RecordLinker { return &RecordLinker{rec: r} }

// Record is the record k writes.
func (k *RecordLinker) Record() PidRecord { return k.rec }

// Close closes k's files (the links stay).
func (k *RecordLinker) Close() {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, fd := range k.fds {
		unix.Close(fd)
	}
	k.fds = nil
}

// Write gives dir the record at rel (a path under supervise/gosv/),
// creating supervise/gosv if missing.
func (k *RecordLinker) Write(dir, rel string) error {
	dfd, base, err := openParent(dir, rel)
	if errors.Is(err, fs.ErrNotExist) {
		if err := mkdirGosv(dir); err != nil {
			return err
		}
		dfd, base, err = openParent(dir, rel)
	}
	if err != nil {
		return &os.PathError{Op: "open", Path: filepath.Join(dir, rel) + tmpSuffix, Err: errors.Unwrap(err)}
	}
	defer unix.Close(dfd)
	k.mu.Lock()
	fds := k.fds
	k.mu.Unlock()
	for _, fd := range fds {
		if linkRecord(fd, dfd, base) == nil {
			return nil
		}
		// EXDEV (another file system), EMLINK (its link limit): another
		// file, or a new one.
	}
	if fd, ok := k.newFile(dfd); ok && linkRecord(fd, dfd, base) == nil {
		return nil
	}
	return WriteRecord(dir, rel, k.rec)
}

// newFile makes an unnamed record file on dfd's file system.
func (k *RecordLinker) newFile(dfd int) (int, bool) {
	fd, err := unix.Openat(dfd, ".", unix.O_TMPFILE|unix.O_WRONLY|unix.O_CLOEXEC, pidRecordPerm)
	if err != nil {
		return -1, false
	}
	if err := writeAll(fd, formatPidRecord(k.rec)); err != nil {
		unix.Close(fd)
		return -1, false
	}
	k.mu.Lock()
	k.fds = append(k.fds, fd)
	k.mu.Unlock()
	return fd, true
}

// linkRecord links the file of fd at base in dfd: directly when the name
// is free (a new directory), else at base.new renamed over base.
func linkRecord(fd, dfd int, base string) error {
	src := "/proc/self/fd/" + strconv.Itoa(fd)
	err := unix.Linkat(unix.AT_FDCWD, src, dfd, base, unix.AT_SYMLINK_FOLLOW)
	if err != unix.EEXIST {
		return err
	}
	tmp := base + tmpSuffix
	err = unix.Linkat(unix.AT_FDCWD, src, dfd, tmp, unix.AT_SYMLINK_FOLLOW)
	if err == unix.EEXIST {
		if err := unix.Unlinkat(dfd, tmp, 0); err != nil && err != unix.ENOENT {
			return err
		}
		err = unix.Linkat(unix.AT_FDCWD, src, dfd, tmp, unix.AT_SYMLINK_FOLLOW)
	}
	if err != nil {
		return err
	}
	if err := unix.Renameat(dfd, tmp, dfd, base); err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return err
	}
	// NOTE: a rename between two links of one file does nothing (rename(2)):
	// the directory had this very record (taken again by this process),
	// and base.new is left to remove.
	_ = unix.Unlinkat(dfd, tmp, 0)
	return nil
}
