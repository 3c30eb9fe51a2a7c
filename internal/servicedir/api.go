package servicedir

// This file fixes the package's API so that other packages can be written
// against it while the bodies are being filled in. Bodies that still panic
// are being implemented; signatures are the contract.

import (
	"os"
)

// Notify writes ev (one write) to every listener fifo in eventDir, unlinking
// fifos without a reader (ENXIO, EPIPE). Missing eventDir is not an error.
func Notify(eventDir string, ev string) error { panic("unimplemented") }

// MakeEventDir creates eventDir with mode 03730 and group gid if it does not exist;
// an existing directory is left untouched.
func MakeEventDir(eventDir string, gid int) error { panic("unimplemented") }

// Subscription is a listener fifo in a service's event/ directory.
// It is not safe for concurrent use.
type Subscription struct {
	File *os.File // read end, non-blocking, registered with Go's poller (SetReadDeadline works)
	w    int      // write end kept open so reads never see EOF
	Path string
}

// Subscribe creates event/ if needed and a 39-character listener fifo in it
// (temp name with a leading dot, then rename), as s6-ftrigrd does.
func Subscribe(serviceDir string) (*Subscription, error) { panic("unimplemented") }

// Close unlinks the fifo and closes both ends.
func (s *Subscription) Close() error { panic("unimplemented") }

// WriteControl writes letters to dir/supervise/control in one write.
// No reader (ENXIO) or no fifo (ENOENT) yields an error wrapping ErrNotListening.
func WriteControl(dir string, letters []byte) error { panic("unimplemented") }

// Lock creates path (mode 0644 unless it exists) and takes a whole-file OFD
// write lock (F_OFD_SETLK). ErrLocked if held, also by this process.
// The returned file must stay open for as long as the lock is held.
func Lock(path string, mode os.FileMode) (*os.File, error) { panic("unimplemented") }

// IsLocked probes path with F_GETLK as s6_svc_ok does. A missing file is not locked.
func IsLocked(path string) (bool, error) { panic("unimplemented") }

// HolderPid returns the pid holding a POSIX lock on path, or -1 for an OFD lock, 0 if unlocked.
func HolderPid(path string) (int, error) { panic("unimplemented") }

// PidRecord is the gosv-only record of the running run process.
type PidRecord struct {
	Pid       int
	StartTime uint64 // field 22 of /proc/PID/stat (clock ticks since boot)
}

// WritePidRecord writes dir/supervise/gosv/pid atomically (creating supervise/gosv).
func WritePidRecord(dir string, r PidRecord) error { panic("unimplemented") }

// ReadPidRecord reads dir/supervise/gosv/pid; os.ErrNotExist when absent.
func ReadPidRecord(dir string) (PidRecord, error) { panic("unimplemented") }

// RemovePidRecord removes dir/supervise/gosv/pid; absence is not an error.
func RemovePidRecord(dir string) error { panic("unimplemented") }

// ProcStartTime returns field 22 of /proc/PID/stat.
func ProcStartTime(pid int) (uint64, error) { panic("unimplemented") }
