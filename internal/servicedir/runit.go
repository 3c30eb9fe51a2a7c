package servicedir

import (
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// runit 2.1.2's service directory, as gosv_backend=runit generates it
// (PROTOCOL.md §11): runsv reads run, finish, down, log/ and control/,
// and writes supervise/ with its own files. gosv keeps the directory
// inside the service directory it was made from (RunitDir), so that the
// source's s6-format files and runit's never share a supervise/.
const (
	// RunitDir is the runit service directory made from a gosv one.
	RunitDir = "runit"
	// RunitOkPath is the FIFO runsv holds open for reading while it runs:
	// sv's liveness probe (an open for writing fails with ENXIO without it).
	RunitOkPath = "supervise/ok"
	// RunitDownHook is control/t: runsv runs it at `d` and `x` instead of
	// sending SIGTERM when it exits 0 (runsv(8), "customize control").
	RunitDownHook = "control/t"
	// RunitNotifyFifo is the FIFO the generated run opens as the daemon's
	// notification-fd (O_RDWR, so that it never blocks): the backend
	// reads the readiness newline from it during a start.
	RunitNotifyFifo = "supervise/gosv-notify"
	// RunitPidPath is runsv's supervise/pid: the run's pid, in decimal.
	RunitPidPath = "supervise/pid"
	// RunitControlDir holds runsv's control hooks (control/t).
	RunitControlDir = "control"
	// RunitLogConfig is svlogd's configuration file in a log directory.
	RunitLogConfig = "config"
)

// runitTAIOffset is 2^62 + 10: runit's libtai (tai_unix) counts the
// 10 s TAI-UTC offset of 1972 and no leap second since, where s6 and gosv
// count 37 (taiOffset).
const runitTAIOffset = 1<<62 + 10

// RunitStatusSize is the size of runit's supervise/status.
const RunitStatusSize = 20

// Layout of runit's supervise/status (runsv.c update_status, runit 2.1.2).
const (
	runitStampOff   = 0  // TAI64N, 12 bytes, big-endian
	runitPidOff     = 12 // u32, LITTLE-endian (runsv copies the int bytes)
	runitPausedOff  = 16 // 1 while paused ('p'), 0 otherwise
	runitWantOff    = 17 // 'u' or 'd'
	runitGotTermOff = 18 // 1 after a TERM was sent and the process lives
	runitStateOff   = 19 // 0 down, 1 run, 2 finish
)

// Runit's run states (the last byte of supervise/status).
const (
	RunitDown   = 0
	RunitRun    = 1
	RunitFinish = 2
)

// RunitStatus is the decoded content of runit's supervise/status.
type RunitStatus struct {
	Stamp   time.Time // last state change
	Pid     int       // run (or finish) process, 0 when down
	Paused  bool
	WantUp  bool // want byte 'u'
	GotTerm bool
	State   byte // RunitDown, RunitRun or RunitFinish
}

// Up reports what sv calls "run": the run process lives.
func (s *RunitStatus) Up() bool { return s.State == RunitRun && s.Pid != 0 }

// Pack encodes s as runsv writes it.
func (s *RunitStatus) Pack() [RunitStatusSize]byte {
	var b [RunitStatusSize]byte
	binary.BigEndian.PutUint64(b[runitStampOff:], uint64(s.Stamp.Unix())+runitTAIOffset)
	binary.BigEndian.PutUint32(b[runitStampOff+8:], uint32(s.Stamp.Nanosecond()))
	binary.LittleEndian.PutUint32(b[runitPidOff:], uint32(s.Pid))
	if s.Paused {
		b[runitPausedOff] = 1
	}
	b[runitWantOff] = 'd'
	if s.WantUp {
		b[runitWantOff] = 'u'
	}
	if s.GotTerm {
		b[runitGotTermOff] = 1
	}
	b[runitStateOff] = s.State
	return b
}

// UnpackRunitStatus decodes runit's supervise/status.
func UnpackRunitStatus(b []byte) (RunitStatus, error) {
	if len(b) != RunitStatusSize {
		return RunitStatus{}, fmt.Errorf("%w: %d bytes, want %d (runit)", ErrShortStatus, len(b), RunitStatusSize)
	}
	if st := b[runitStateOff]; st > RunitFinish {
		return RunitStatus{}, fmt.Errorf("runit status: unknown state %d", st)
	}
	return RunitStatus{
		Stamp: time.Unix(int64(binary.BigEndian.Uint64(b[runitStampOff:])-runitTAIOffset),
			int64(binary.BigEndian.Uint32(b[runitStampOff+8:]))),
		Pid:     int(binary.LittleEndian.Uint32(b[runitPidOff:])),
		Paused:  b[runitPausedOff] != 0,
		WantUp:  b[runitWantOff] == 'u',
		GotTerm: b[runitGotTermOff] != 0,
		State:   b[runitStateOff],
	}, nil
}

// ReadRunitStatus reads runit's supervise/status of the runit directory dir.
func ReadRunitStatus(dir string) (RunitStatus, error) {
	p := filepath.Join(dir, StatusPath)
	var buf [RunitStatusSize + 1]byte
	n, err := readAtMost(p, buf[:])
	if err != nil {
		return RunitStatus{}, err
	}
	s, err := UnpackRunitStatus(buf[:n])
	if err != nil {
		return RunitStatus{}, &os.PathError{Op: "read", Path: p, Err: err}
	}
	return s, nil
}
