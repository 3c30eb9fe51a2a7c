package servicedir

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Layout of supervise/status (s6 2.11 s6_svstatus_pack.c; PROTOCOL.md has
// the table). All integers are big-endian.
const (
	statusStampOff      = 0  // TAI64N, 12 bytes
	statusReadyStampOff = 12 // TAI64N, 12 bytes
	statusPidOff        = 24 // u64
	statusWstatOff      = 32 // u16
	statusFlagsOff      = 34 // u8

	flagPaused    = 1 << 0
	flagFinishing = 1 << 1
	flagWantUp    = 1 << 2
	flagReady     = 1 << 3
	// Bits 4-7 are always written as 0 by s6 and ignored when read.
)

// statusPerm is the mode of supervise/status before the umask. s6 uses 0666
// and gets 0644 under the usual umask 022; gosv asks for 0644 directly so
// that a lax umask cannot make the file world-writable.
const statusPerm = 0o644

// Status is the decoded content of supervise/status (PROTOCOL.md §status).
type Status struct {
	Stamp      time.Time // last up/down transition
	ReadyStamp time.Time // last readiness (or down-and-ready) transition
	Pid        int       // run pid while up; finish pid while finishing; 0 when down
	Wstat      uint16    // raw wait status of the last run death
	Paused     bool      // flag bit 0
	Finishing  bool      // flag bit 1
	WantUp     bool      // flag bit 2
	Ready      bool      // flag bit 3
}

// Up reports what every s6 client calls up: a pid and not finishing.
func (s *Status) Up() bool { return s.Pid != 0 && !s.Finishing }

// Pack encodes s into the 35-byte big-endian layout. It does not allocate.
func (s *Status) Pack() [StatusSize]byte {
	var b [StatusSize]byte
	putTAI64N(b[statusStampOff:], s.Stamp)
	putTAI64N(b[statusReadyStampOff:], s.ReadyStamp)
	binary.BigEndian.PutUint64(b[statusPidOff:], uint64(s.Pid))
	binary.BigEndian.PutUint16(b[statusWstatOff:], s.Wstat)
	var f byte
	if s.Paused {
		f |= flagPaused
	}
	if s.Finishing {
		f |= flagFinishing
	}
	if s.WantUp {
		f |= flagWantUp
	}
	if s.Ready {
		f |= flagReady
	}
	b[statusFlagsOff] = f
	return b
}

// UnpackStatus decodes the first 35 bytes of b; extra bytes are ignored.
// Fewer than 35 bytes is an error wrapping [ErrShortStatus].
//
// The pid is read as the full u64 and converted to int; s6 keeps only the
// low 32 bits (pid_t), which makes no difference for anything s6 writes.
func UnpackStatus(b []byte) (Status, error) {
	if len(b) < StatusSize {
		return Status{}, fmt.Errorf("%w: %d bytes", ErrShortStatus, len(b))
	}
	f := b[statusFlagsOff]
	return Status{
		Stamp:      tai64nTime(b[statusStampOff:]),
		ReadyStamp: tai64nTime(b[statusReadyStampOff:]),
		Pid:        int(binary.BigEndian.Uint64(b[statusPidOff:])),
		Wstat:      binary.BigEndian.Uint16(b[statusWstatOff:]),
		Paused:     f&flagPaused != 0,
		Finishing:  f&flagFinishing != 0,
		WantUp:     f&flagWantUp != 0,
		Ready:      f&flagReady != 0,
	}, nil
}

// ReadStatus reads dir/supervise/status. Errors have the os.PathError shape
// and name the file; a file shorter than 35 bytes gives an error wrapping
// [ErrShortStatus] (s6-svstat reports EPIPE there and exits 111).
func ReadStatus(dir string) (Status, error) {
	p := filepath.Join(dir, StatusPath)
	var buf [StatusSize]byte
	n, err := readAtMost(p, buf[:])
	if err != nil {
		return Status{}, err
	}
	s, err := UnpackStatus(buf[:n])
	if err != nil {
		return Status{}, &os.PathError{Op: "read", Path: p, Err: err}
	}
	return s, nil
}

// WriteStatus writes dir/supervise/status atomically (status.new, then rename).
// Clients read the file without locking, so it is never rewritten in place.
// Callers must call it before notifying the matching event (PROTOCOL.md).
func WriteStatus(dir string, s *Status) error {
	b := s.Pack()
	return writeAtomic(dir, StatusPath, b[:], statusPerm)
}
