package servicedir

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Group-permitted control (PROTOCOL.md §9.7): the control-group file names
// a group whose members may control the service (gosv svc, s6-svc), read
// its status (gosv svstat, s6-svstat, svok) and wait for its events (gosv
// svwait, s6-svwait) without root. The modes are those of s6-svperms -G
// GROUP -E GROUP (s6 2.11): nothing becomes world-writable.
const (
	groupSuperviseMode = 0o710   // supervise/ and supervise/gosv/: group may open known names
	groupControlMode   = 0o620   // supervise/control: group may write letters
	groupEventMode     = 0o3730  // event/: group may create listener fifos (setgid, sticky)
	maxGroupFileSize   = 256     // control-group: one group name or gid
	noGroup            = -1      // ReadControlGroup: no file
	groupMaxGid        = 1 << 31 // gids above are refused
)

// ReadControlGroup reads dir's control-group file: one group name or
// numeric gid (blanks and a newline allowed). It returns -1 and no error
// when the file does not exist. The file is opened without following a
// symlink; an unknown group or an empty file is an error naming the file.
func ReadControlGroup(dir string) (int, error) {
	p := filepath.Join(dir, ControlGroupFile)
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err == unix.ENOENT {
		return noGroup, nil
	}
	if err != nil {
		return noGroup, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	buf := make([]byte, maxGroupFileSize+1)
	n, err := io.ReadFull(f, buf)
	if err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return noGroup, &os.PathError{Op: "read", Path: p, Err: err}
	}
	if n > maxGroupFileSize {
		return noGroup, fmt.Errorf("%s: longer than %d bytes: %w", p, maxGroupFileSize, ErrBadValue)
	}
	return ParseGroup(p, strings.TrimSpace(string(buf[:n])))
}

// ParseGroup turns a group name or numeric gid into a gid; file names
// where it came from in the error.
func ParseGroup(file, name string) (int, error) {
	if name == "" {
		return noGroup, fmt.Errorf("%s: no group named: %w", file, ErrBadValue)
	}
	if n, err := strconv.Atoi(name); err == nil {
		if n < 0 || n >= groupMaxGid {
			return noGroup, fmt.Errorf("%s: gid %d out of range: %w", file, n, ErrBadValue)
		}
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return noGroup, fmt.Errorf("%s: unknown group %q: %w", file, name, ErrBadValue)
	}
	return strconv.Atoi(g.Gid)
}

// GrantGroup gives group gid control of the service directory dir, whose
// control FIFO the supervisor holds open as ctl: supervise/ and
// supervise/gosv/ become 0710, supervise/control 0620 and event/ 03730,
// all of group gid (owner unchanged). Every change is made on an open fd
// (fchown, fchmod), opened without following a symlink: s6 allows
// supervise/ and event/ to be symlinks, but a chown through one could
// hand any directory to the group, so here they are refused (ELOOP). The
// FIFO is the one the supervisor opened. supervise/gosv/ is created if
// missing.
func GrantGroup(dir string, ctl, gid int) error {
	sup := filepath.Join(dir, SuperviseDir)
	sfd, err := openRealDir(sup)
	if err != nil {
		return err
	}
	defer unix.Close(sfd)
	if err := chownMode(sfd, sup, gid, groupSuperviseMode); err != nil {
		return err
	}
	if err := chownMode(ctl, filepath.Join(dir, ControlPath), gid, groupControlMode); err != nil {
		return err
	}
	base := filepath.Base(GosvStateDir)
	state := filepath.Join(dir, GosvStateDir)
	if err := unix.Mkdirat(sfd, base, gosvDirPerm); err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: state, Err: err}
	}
	gfd, err := unix.Openat(sfd, base, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: state, Err: err}
	}
	defer unix.Close(gfd)
	if err := chownMode(gfd, state, gid, groupSuperviseMode); err != nil {
		return err
	}
	ev := filepath.Join(dir, EventDir)
	efd, err := openRealDir(ev)
	if err != nil {
		return err
	}
	defer unix.Close(efd)
	return chownMode(efd, ev, gid, groupEventMode)
}

// chownMode gives the open file fd (named path in errors) group gid and
// mode, in that order: chown clears the setgid bit, chmod sets it.
func chownMode(fd int, path string, gid int, mode uint32) error {
	if err := unix.Fchown(fd, -1, gid); err != nil {
		return &os.PathError{Op: "chown", Path: path, Err: err}
	}
	if err := unix.Fchmod(fd, mode); err != nil {
		return &os.PathError{Op: "chmod", Path: path, Err: err}
	}
	return nil
}

// errSymlinkedDir is GrantGroup's refusal of a symlinked supervise/ or event/.
var errSymlinkedDir = errors.New("a symlink: group control is not granted through one (make it a directory, or use s6-svperms on its target)")

// openRealDir opens path, a directory that must not be a symlink.
func openRealDir(path string) (int, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == unix.ENOTDIR || err == unix.ELOOP {
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFLNK {
			return -1, fmt.Errorf("%s: %w", path, errSymlinkedDir)
		}
	}
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}
