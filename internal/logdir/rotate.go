package logdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// File names and modes inside a log directory (s6-log's, LOGDIR.md).
const (
	currentName   = "current"
	previousName  = "previous"
	processedName = "processed" // left by an s6-log processor; gosv only recovers it
	lockName      = "lock"
	dirPerm       = 0o700 // s6-log: mkdir 0700 (its S_ISGID bit is ignored by mkdir(2))
	parentPerm    = 0o755
	writingPerm   = 0o644 // current while a logger appends to it
	donePerm      = 0o744 // the owner's x bit: the file was fsynced and is complete
	archiveLen    = 27    // "@" 24 hex "." s|u
)

// rotStep is where a log directory is in its rotation. The steps run in
// order; each is retried from where it failed, and each leaves the
// directory in a state that Open recovers without losing or duplicating a
// line (TestCrashBetweenSteps):
//
//	stepSync           fsync current            crash: current is 0644, archived as .u at open
//	stepRename         current → previous       crash: previous (fsynced) is archived at open
//	stepNewCurrent     create current 0644      crash: previous archived, then current
//	stepChmodPrevious  previous → 0744          marks previous complete: archived as .s
//	stepLink           link previous @STAMP.s   crash: previous has 2 links, only unlinked at open
//	stepUnlink         unlink previous
//	stepTrim           drop archives beyond n and S
//
// stepWritable means no rotation is under way: lines go to current.
type rotStep uint8

const (
	stepWritable rotStep = iota
	stepSync
	stepRename
	stepNewCurrent
	stepChmodPrevious
	stepLink
	stepUnlink
	stepTrim
)

var stepNames = [...]string{"write", "fsync current", "rename current to previous",
	"create current", "chmod previous", "link previous", "unlink previous", "trim"}

func (s rotStep) String() string { return stepNames[s] }

// logDir is one log directory: its lock, its current file and where its
// rotation stands. Only the Logger that owns it touches it.
type logDir struct {
	cfg      DirConfig
	act      *action // the script's action for this directory (its stamps)
	lock     *os.File
	fd       int   // current, O_APPEND; -1 between stepRename and stepNewCurrent
	size     int64 // bytes in current
	step     rotStep
	last     servicedir.TAI64N // newest archive name: new names are always later
	retryAt  time.Time         // while failing: when to try again
	failed   bool              // a failure was reported and has not cleared yet
	mid      bool              // current ends in the middle of a line
	open     bool              // the last segment handed to this directory (written, held or dropped) left its line open
	held     []byte            // bounded-loss mode: lines waiting for the disk
	dropped  int               // bounded-loss mode: lines dropped, not yet reported in the log
	dropping bool              // bounded-loss mode: the open line is being dropped
	dirfd    int               // O_PATH fd of the directory, held from openDir on
	at       string            // /proc/self/fd/DIRFD: every file operation goes through it

	slot           int    // staged: the directory's record in the stage, or -1
	dirDev, dirIno uint64 // staged: the directory's identity (its record's key)
	curDev, curIno uint64 // current's identity
}

// errInjected is what tests return from the step hook.
var errInjected = errors.New("injected failure")

// openDir creates, locks and recovers a log directory, and opens current.
func openDir(cfg DirConfig, now time.Time, st *Stage) (*logDir, error) {
	d := &logDir{cfg: cfg, fd: -1, dirfd: -1, slot: -1}
	if err := mkdir(cfg.Path); err != nil {
		return nil, err
	}
	if err := d.hold(); err != nil {
		return nil, err
	}
	lk, err := servicedir.Lock(d.path(lockName), 0o644)
	if err != nil {
		d.close()
		return nil, err
	}
	d.lock = lk
	slot, trusted, err := d.settleStage(st)
	if err != nil {
		d.close()
		return nil, err
	}
	d.slot = slot
	if err := d.recover(now, trusted); err != nil {
		d.close()
		return nil, err
	}
	return d, nil
}

func mkdir(path string) error {
	err := unix.Mkdir(path, dirPerm)
	if err == unix.ENOENT {
		if err = os.MkdirAll(filepath.Dir(path), parentPerm); err == nil {
			err = unix.Mkdir(path, dirPerm)
		}
	}
	if err != nil && err != unix.EEXIST {
		return &os.PathError{Op: "mkdir", Path: path, Err: err}
	}
	return nil
}

// chmodNoFollow is chmod(2) through an fd opened without following a
// symlink: previous is the file renamed from current, but a user who owns
// the directory could swap a symlink in between.
func chmodNoFollow(p string, mode uint32) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchmod(fd, mode); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	return nil
}

func (d *logDir) path(name string) string { return d.at + "/" + name }

// hold opens the directory once and keeps it: every later operation goes
// through the fd, so that a user who owns the directory's parent (a
// service directory's ./log, written by a root scanner) cannot swap the
// directory for a symlink between two rotations. A directory that is a
// symlink already is followed only when root or this process's user owns
// the link, as the kernel's protected_symlinks rule does for sticky
// directories: anyone else's link could aim root's writes anywhere.
func (d *logDir) hold() error {
	p := d.cfg.Path
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: p, Err: err}
	}
	if st.Mode&unix.S_IFMT == unix.S_IFLNK && st.Uid != 0 && int(st.Uid) != os.Geteuid() {
		return &os.PathError{Op: "open", Path: p, Err: fmt.Errorf("refusing to follow a symlink owned by uid %d", st.Uid)}
	}
	fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	d.dirfd, d.at = fd, "/proc/self/fd/"+strconv.Itoa(fd)
	return nil
}

// recover finishes what an interrupted logger left, as s6-log's
// logdir_init: a processed file with the x bit is a finished processor
// output and becomes an archive (previous is then redundant); previous
// becomes an archive (.s once chmodded, else .u); a current without the x
// bit was being written when its logger died and becomes a .u archive,
// while a current with the x bit was closed cleanly and is appended to.
// A current that a stage record vouches for (trusted: settleStage) is
// appended to even if it ends in the middle of a line: the rest of the
// line is in the stage.
func (d *logDir) recover(now time.Time, trusted bool) error {
	archives, err := d.archives()
	if err != nil {
		return err
	}
	if len(archives) > 0 {
		d.last, _ = archiveLabel(archives[len(archives)-1].name)
	}
	if x, err := d.modeX(processedName); err != nil {
		return err
	} else if x {
		if err := unlinkMissingOK(d.path(previousName)); err != nil {
			return err
		}
		if err := d.archive(processedName, 's', now); err != nil {
			return err
		}
	} else if err := unlinkMissingOK(d.path(processedName)); err != nil {
		return err
	}
	suffix := byte('u')
	if x, err := d.modeX(previousName); err != nil {
		return err
	} else if x {
		suffix = 's'
	}
	if err := d.archive(previousName, suffix, now); err != nil {
		return err
	}
	if x, err := d.modeX(currentName); err != nil {
		return err
	} else if !x && !trusted && !d.endsWithLine() {
		if err := d.archive(currentName, 'u', now); err != nil {
			return err
		}
	}
	if err := d.openCurrent(); err != nil {
		return err
	}
	return d.trim()
}

// endsWithLine reports whether current exists and ends with a newline.
// Such a current, even left by a logger that died, is continued: a gosv
// logger writes a batch of whole lines with one write(2) and drops its
// input only after that write returned, so a killed logger leaves either
// all of a batch (possibly written again by the next logger, see
// LOGDIR.md) or a cut line. Only a cut line needs s6-log's ".u" archive,
// so that the next logger does not glue a new line to a torn one.
// Continuing instead of archiving keeps the history of a directory whose
// logger is killed often: with nN, every .u archive pushes out an old one
// (issue 9: 13,427 of 34,444 lines lost after 100 scanner SIGKILLs, n20).
func (d *logDir) endsWithLine() bool {
	var st unix.Stat_t
	if unix.Stat(d.path(currentName), &st) != nil || st.Size == 0 {
		return false // missing, or empty (archive removes it)
	}
	return lastByteIs(d.path(currentName), st.Size, '\n')
}

// modeX reports whether name exists with the owner's x bit set.
func (d *logDir) modeX(name string) (bool, error) {
	var st unix.Stat_t
	if err := unix.Stat(d.path(name), &st); err != nil {
		if err == unix.ENOENT {
			return false, nil
		}
		return false, &os.PathError{Op: "stat", Path: d.path(name), Err: err}
	}
	return st.Mode&unix.S_IXUSR != 0, nil
}

func (d *logDir) openCurrent() error {
	p := d.path(currentName)
	// NOTE: O_NOFOLLOW: a logger run by root in a directory a user owns
	// (log-script ./log) must not append to, nor chmod, whatever a
	// symlink planted as current points at.
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_APPEND|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, writingPerm)
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if err := unix.Fchmod(fd, writingPerm); err != nil {
		unix.Close(fd)
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	if d.fd >= 0 {
		unix.Close(d.fd)
	}
	d.fd, d.size = fd, st.Size
	d.curDev, d.curIno = st.Dev, st.Ino
	d.mid = st.Size > 0 && !endsWithNewline(p, st.Size)
	d.open = d.mid
	return nil
}

// endsWithNewline reads the last byte of a file; on error it answers yes.
func endsWithNewline(path string, size int64) bool {
	f, err := os.Open(path)
	if err != nil {
		return true
	}
	defer f.Close()
	var b [1]byte
	_, err = f.ReadAt(b[:], size-1)
	return err != nil || b[0] == '\n'
}

// lastByteIs reads the last byte of a file; on error it answers no.
func lastByteIs(path string, size int64, c byte) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var b [1]byte
	_, err = f.ReadAt(b[:], size-1)
	return err == nil && b[0] == c
}

// rotate runs the rotation from d.step to its end. On failure d.step stays
// at the failed step, to be retried; hook, when set, runs before each step
// and may fail it (tests).
func (d *logDir) rotate(now time.Time, hook func(string, rotStep) error) error {
	if d.step == stepWritable {
		d.step = stepSync
	}
	for d.step != stepWritable {
		if hook != nil {
			if err := hook(d.cfg.Path, d.step); err != nil {
				return err
			}
		}
		if err := d.runStep(now); err != nil {
			return err
		}
		d.step = (d.step + 1) % (stepTrim + 1)
	}
	return nil
}

func (d *logDir) runStep(now time.Time) error {
	switch d.step {
	case stepSync:
		if err := unix.Fsync(d.fd); err != nil {
			return &os.PathError{Op: "fsync", Path: d.path(currentName), Err: err}
		}
	case stepRename:
		if err := unix.Rename(d.path(currentName), d.path(previousName)); err != nil {
			return &os.LinkError{Op: "rename", Old: d.path(currentName), New: d.path(previousName), Err: err}
		}
	case stepNewCurrent:
		return d.openCurrent()
	case stepChmodPrevious:
		return chmodNoFollow(d.path(previousName), donePerm)
	case stepLink:
		return d.link(previousName, 's', now)
	case stepUnlink:
		return unlinkMissingOK(d.path(previousName))
	case stepTrim:
		return d.trim()
	}
	return nil
}

// archive turns name into an archive with the given suffix, if it exists
// and is not empty (s6-log would keep an empty .u archive): link, then
// unlink. A name that already has a second link was archived by a logger
// that died before the unlink.
func (d *logDir) archive(name string, suffix byte, now time.Time) error {
	var st unix.Stat_t
	if err := unix.Stat(d.path(name), &st); err != nil {
		if err == unix.ENOENT {
			return nil
		}
		return &os.PathError{Op: "stat", Path: d.path(name), Err: err}
	}
	if st.Size > 0 {
		if err := d.link(name, suffix, now); err != nil {
			return err
		}
	}
	return unlinkMissingOK(d.path(name))
}

// link hard-links name to a new archive "@TAI64N.suffix" unless name has
// already two links. Archive labels only grow, even if the clock steps
// back, so that name order is time order for trim and for readers.
func (d *logDir) link(name string, suffix byte, now time.Time) error {
	p := d.path(name)
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	if st.Nlink > 1 {
		return nil
	}
	label := servicedir.TAI64NFromTime(now)
	for {
		if string(label[:]) <= string(d.last[:]) {
			label = nextLabel(d.last)
		}
		target := d.path(archiveName(label, suffix))
		err := unix.Link(p, target)
		if err == nil {
			d.last = label
			return nil
		}
		if err != unix.EEXIST {
			return &os.LinkError{Op: "link", Old: p, New: target, Err: err}
		}
		d.last = label
	}
}

// nextLabel is l plus one nanosecond.
func nextLabel(l servicedir.TAI64N) servicedir.TAI64N {
	return servicedir.TAI64NFromTime(l.Time().Add(time.Nanosecond))
}

func archiveName(l servicedir.TAI64N, suffix byte) string {
	return l.String() + "." + string(suffix)
}

// archiveLabel parses an archive name; ok is false for any other name.
func archiveLabel(name string) (servicedir.TAI64N, bool) {
	var l servicedir.TAI64N
	if len(name) != archiveLen || name[25] != '.' || (name[26] != 's' && name[26] != 'u') {
		return l, false
	}
	t, ok := parseTAI64N([]byte(name))
	if !ok || strings.ToLower(name[:25]) != name[:25] {
		return l, false
	}
	return servicedir.TAI64NFromTime(t), true
}

type archiveInfo struct {
	name string
	size int64
}

// archives lists the archives of the directory, oldest first.
func (d *logDir) archives() ([]archiveInfo, error) {
	ents, err := os.ReadDir(d.at)
	if err != nil {
		return nil, err
	}
	var out []archiveInfo
	for _, e := range ents {
		if _, ok := archiveLabel(e.Name()); !ok {
			continue
		}
		if fi, err := e.Info(); err == nil {
			out = append(out, archiveInfo{e.Name(), fi.Size()})
		}
	}
	slices.SortFunc(out, func(a, b archiveInfo) int { return strings.Compare(a.name, b.name) })
	return out, nil
}

// trim removes the oldest archives until at most n remain and, with S,
// their total size is at most S (s6-log's logdir_trim; current does not
// count).
func (d *logDir) trim() error {
	archives, err := d.archives()
	if err != nil {
		return err
	}
	var total int64
	for _, a := range archives {
		total += a.size
	}
	for i := 0; len(archives)-i > d.cfg.Archives || (d.cfg.MaxTotal > 0 && total > d.cfg.MaxTotal); i++ {
		if err := unlinkMissingOK(d.path(archives[i].name)); err != nil {
			return err
		}
		total -= archives[i].size
	}
	return nil
}

func unlinkMissingOK(p string) error {
	if err := unix.Unlink(p); err != nil && err != unix.ENOENT {
		return &os.PathError{Op: "unlink", Path: p, Err: err}
	}
	return nil
}

// finalize ends a clean shutdown as s6-log does: the pending rotation is
// completed if it can be, current is fsynced and gets the x bit, which
// tells the next logger it is complete and may be appended to.
func (d *logDir) finalize(now time.Time, hook func(string, rotStep) error) error {
	if d.step != stepWritable {
		if err := d.rotate(now, hook); err != nil {
			return err
		}
	}
	if err := unix.Fsync(d.fd); err != nil {
		return &os.PathError{Op: "fsync", Path: d.path(currentName), Err: err}
	}
	if err := unix.Fchmod(d.fd, donePerm); err != nil {
		return &os.PathError{Op: "chmod", Path: d.path(currentName), Err: err}
	}
	return nil
}

func (d *logDir) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
		d.fd = -1
	}
	if d.lock != nil {
		d.lock.Close()
		d.lock = nil
	}
	if d.dirfd >= 0 {
		unix.Close(d.dirfd)
		d.dirfd = -1
	}
}
