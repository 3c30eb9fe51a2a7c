package servicedir

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// supervise/death_tally is a sequence of 14-byte records, oldest first
// (s6 s6_dtally_pack.c, s6-supervise.c uplastup_z):
//
//	offset 0  12 bytes TAI64N time of death (the status stamp set at the death)
//	offset 12  1 byte  exit code, or 128 + signal number
//	offset 13  1 byte  signal number, or 0 if run exited
//
// Readers are s6-svdt, s6-svdt-clear and s6-permafailon.
const (
	deathCodeOff = 12
	deathSigOff  = 13

	// MaxDeathTally is s6's S6_MAX_DEATH_TALLY: the cap on max-death-tally.
	MaxDeathTally = 4096
	// DefaultMaxDeathTally is used when max-death-tally is absent or invalid.
	DefaultMaxDeathTally = 100

	deathTallyPerm = 0o644
)

// Death is one 14-byte record of supervise/death_tally.
type Death struct {
	Stamp time.Time
	Code  uint8 // exit code, or 128+signal
	Sig   uint8 // signal number, or 0 when it exited
}

// DeathFromWstat builds the record for a run death with raw wait status wstat.
// It applies the glibc WIFSIGNALED/WTERMSIG/WEXITSTATUS macros as s6 does, so
// a stopped status (low byte 0x7f) counts as an exit.
func DeathFromWstat(stamp time.Time, wstat uint16) Death {
	if sig := wstat & 0x7f; sig != 0 && sig != 0x7f {
		return Death{Stamp: stamp, Code: uint8(128 + sig), Sig: uint8(sig)}
	}
	return Death{Stamp: stamp, Code: uint8(wstat >> 8)}
}

// String words the death as s6-svstat does: "exit code N" or
// "signal SIGNAME".
func (d Death) String() string {
	if d.Sig != 0 {
		return "signal SIG" + SignalName(unix.Signal(d.Sig))
	}
	return "exit code " + strconv.Itoa(int(d.Code))
}

func (d Death) pack(b []byte) {
	putTAI64N(b, d.Stamp)
	b[deathCodeOff] = d.Code
	b[deathSigOff] = d.Sig
}

func unpackDeath(b []byte) Death {
	return Death{Stamp: tai64nTime(b), Code: b[deathCodeOff], Sig: b[deathSigOff]}
}

// AppendDeath appends d to dir/supervise/death_tally keeping at most max records
// (max 0: nothing written; capped at 4096), via death_tally.new and rename.
// A missing file, or one whose size is not a multiple of 14 bytes (corrupt),
// starts a new tally, as in s6_dtally_read.
func AppendDeath(dir string, d Death, max int) error {
	if max <= 0 {
		return nil
	}
	max = min(max, MaxDeathTally)
	old, err := readDeathTail(dir, max-1)
	if err != nil && !errors.Is(err, fs.ErrNotExist) && !errors.Is(err, ErrBadDeathTally) {
		return err
	}
	buf := make([]byte, len(old)+DeathTallySize)
	copy(buf, old)
	d.pack(buf[len(old):])
	return writeAtomic(dir, DeathTallyPath, buf, deathTallyPerm)
}

// ReadDeathTally returns the records of dir/supervise/death_tally, oldest first.
// A missing file has no records. At most the last [MaxDeathTally] records are
// returned. A size that is not a multiple of 14 gives an error wrapping
// [ErrBadDeathTally] (s6 readers truncate such a file; this one does not
// write).
func ReadDeathTally(dir string) ([]Death, error) {
	raw, err := readDeathTail(dir, MaxDeathTally)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	ds := make([]Death, len(raw)/DeathTallySize)
	for i := range ds {
		ds[i] = unpackDeath(raw[i*DeathTallySize:])
	}
	return ds, nil
}

// readDeathTail returns the raw bytes of the last n records of the tally
// of dir. Like s6_dtally_read it seeks from the end, so a huge file costs
// no more than n records.
//
// NOTE: the tally is opened without following a symlink: AppendDeath
// copies what it reads into a world-readable file, so a death_tally
// planted as a symlink to a root-only file would leak its tail.
func readDeathTail(dir string, n int) ([]byte, error) {
	p := filepath.Join(dir, DeathTallyPath)
	dfd, base, err := openParent(dir, DeathTallyPath)
	if err != nil {
		return nil, err
	}
	fd, err := openatRetry(dfd, base, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	unix.Close(dfd)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := fi.Size()
	if size%DeathTallySize != 0 {
		return nil, &os.PathError{Op: "read", Path: p, Err: ErrBadDeathTally}
	}
	keep := min(size, int64(n)*DeathTallySize)
	buf := make([]byte, keep)
	if n, err := f.ReadAt(buf, size-keep); n < len(buf) {
		if err == io.EOF { // the file shrank since the Stat
			err = &os.PathError{Op: "read", Path: p, Err: io.ErrUnexpectedEOF}
		}
		return nil, err
	}
	return buf, nil
}

// ResetDeathTally starts a new tally of dir (done at supervisor start, as
// s6-supervise empties death_tally): it removes supervise/death_tally, and
// the first death creates it again (AppendDeath). A missing tally is an
// empty one to every reader, s6-svdt included (it prints nothing and exits
// 0 on both), so a supervisor start need not create a file: on a disk file
// system an inode allocation is the costliest part of taking a directory
// (bench/README.md). unlink removes a symlink planted at the name, never
// its target.
//
// It says whether it removed a tally: whether the previous supervisor
// saw run die at all (the look for orphaned runs asks, scan/orphans.go).
func ResetDeathTally(dir string) (removed bool, err error) {
	p := filepath.Join(dir, DeathTallyPath)
	dfd, base, err := openParent(dir, DeathTallyPath)
	if err != nil {
		return false, &os.PathError{Op: "unlink", Path: p, Err: errors.Unwrap(err)}
	}
	defer unix.Close(dfd)
	switch err := unix.Unlinkat(dfd, base, 0); err {
	case nil:
		return true, nil
	case unix.ENOENT:
		return false, nil
	default:
		return false, &os.PathError{Op: "unlink", Path: p, Err: err}
	}
}
