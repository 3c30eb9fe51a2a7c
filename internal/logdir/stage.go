package logdir

import (
	"errors"
	"fmt"
	"os"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A Stage is the durable input buffer of a Logger whose input must be
// written exactly once across SIGKILLs (the scanner's in-process logs,
// LOGDIR.md "Exactly once"). It is a memfd that outlives the logger in the
// fd holder, next to the pipe. Its first page is a record, mmap'd shared,
// that the logger updates with plain memory stores; the input follows it:
//
//	word 0          magic (stageMagic)
//	word 1          which head slot is valid (0 or 1)
//	words 2-3, 4-5  head slots: P (input offset in the memfd, where the
//	                next batch starts) and the line offset at P
//	word 6          offset below which the memfd was punched (a hint)
//	words 8+10i     directory i: dir dev, dir ino, current dev, current
//	                ino, A (size before the write in flight), B (size
//	                after it), T (input offset the write reaches), D
//	                (input offset this directory has written up to),
//	                pend (1 while a write is in flight)
//
// Bytes enter with splice(2) from the pipe at the memfd's end E: the pipe
// shrinks and the memfd grows in one system call, so a SIGKILL (which
// takes effect when a system call returns) leaves them in one or the
// other, never in both or neither. The memfd's size is E; the record's P
// and D are stored after the write(2) they account for; a write in flight
// is told apart by current's size (A, B): that kernel state, not a store
// after the system call, is the evidence of what a killed logger wrote.
type Stage struct {
	fd      int
	mem     []byte
	w       *[stageWords]uint64
	end     int64 // E: the memfd's size
	punched int64
}

const (
	stageHeader = 4096 // the record page; input starts after it
	stageWords  = stageHeader / 8
	stageMagic  = 0x31_6567_6174_5367 // "gStage1"
	wSel        = 1
	wSlots      = 2
	wPunched    = 6
	wDirs       = 8
	dirWords    = 10
	// maxStageDirs is how many log directories the record covers; a
	// script with more leaves the others without exactly-once (their
	// batches may be written twice after a SIGKILL, as without a stage).
	maxStageDirs = (stageWords - wDirs) / dirWords
	// stageAhead bounds what is spliced in ahead of processing: a full
	// pipe stays in the pipe (the service blocks on it, as without a
	// stage) and the memfd stays small.
	stageAhead = 2 * ScratchSize
)

// Per-directory words.
const (
	dDirDev = iota
	dDirIno
	dCurDev
	dCurIno
	dA
	dB
	dT
	dD
	dPend
)

// NewStage creates an empty stage.
func NewStage() (*Stage, error) {
	fd, err := unix.MemfdCreate("gosv-log-stage", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("memfd_create", err)
	}
	if err := ftruncate(fd, stageHeader); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("ftruncate", err)
	}
	s, err := mapStage(fd, stageHeader)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	s.storeHead(stageHeader, 0)
	atomic.StoreUint64(&s.w[wPunched], stageHeader)
	atomic.StoreUint64(&s.w[0], stageMagic)
	return s, nil
}

// StageFrom takes over the stage fd, as a previous logger left it (from
// the fd holder). fd is closed on error.
func StageFrom(fd int) (*Stage, error) {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("fstat", err)
	}
	if st.Size < stageHeader {
		unix.Close(fd)
		return nil, fmt.Errorf("log stage: size %d is below its record page", st.Size)
	}
	s, err := mapStage(fd, st.Size)
	if err != nil {
		unix.Close(fd)
		return nil, err
	}
	p, _ := s.head()
	if atomic.LoadUint64(&s.w[0]) != stageMagic || p < stageHeader || p > st.Size {
		s.Close()
		return nil, errors.New("log stage: not a stage record")
	}
	s.punched = int64(atomic.LoadUint64(&s.w[wPunched]))
	return s, nil
}

func mapStage(fd int, size int64) (*Stage, error) {
	mem, err := unix.Mmap(fd, 0, stageHeader, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return &Stage{fd: fd, mem: mem, w: (*[stageWords]uint64)(unsafe.Pointer(&mem[0])), end: size, punched: stageHeader}, nil
}

// Fd is the memfd, to hand to the fd holder.
func (s *Stage) Fd() int { return s.fd }

// Close unmaps and closes the stage (what the fd holder keeps stays).
func (s *Stage) Close() error {
	unix.Munmap(s.mem)
	return unix.Close(s.fd)
}

// head returns P and the line offset at P.
func (s *Stage) head() (int64, int) {
	i := wSlots + 2*(atomic.LoadUint64(&s.w[wSel])&1)
	return int64(atomic.LoadUint64(&s.w[i])), int(atomic.LoadUint64(&s.w[i+1]))
}

// storeHead moves P: the unused slot is filled, then selected by one
// store, so a kill leaves the old head or the new one, whole.
func (s *Stage) storeHead(p int64, lineOff int) {
	next := 1 - atomic.LoadUint64(&s.w[wSel])&1
	atomic.StoreUint64(&s.w[wSlots+2*next], uint64(p))
	atomic.StoreUint64(&s.w[wSlots+2*next+1], uint64(lineOff))
	atomic.StoreUint64(&s.w[wSel], next)
}

func (s *Stage) dir(i int) []uint64 { return s.w[wDirs+dirWords*i : wDirs+dirWords*(i+1)] }

func load(w []uint64, k int) int64     { return int64(atomic.LoadUint64(&w[k])) }
func store(w []uint64, k int, v int64) { atomic.StoreUint64(&w[k], uint64(v)) }

// pending returns the input bytes not yet processed.
func (s *Stage) pending() int64 {
	p, _ := s.head()
	return s.end - p
}

// punch frees the pages wholly below p, which no logger reads again
// (every directory's D is at or past P, and P was stored first).
//
// NOTE: the hole, not a restart at offset 0, keeps the memfd small: a
// restart would have to change the memfd's size and P together, two
// stores that a kill can separate, while a hole changes nothing a logger
// reads. The size only grows, as a counter (2^63 bytes). A kill before or
// during the punch leaves pages that the next punch frees (the range
// starts at the stored hint, which is only moved after a punch).
func (s *Stage) punch(p int64) {
	to := p &^ (stageHeader - 1)
	if to <= s.punched {
		return
	}
	err := unix.Fallocate(s.fd, unix.FALLOC_FL_PUNCH_HOLE|unix.FALLOC_FL_KEEP_SIZE, s.punched, to-s.punched)
	if err == nil {
		s.punched = to
		atomic.StoreUint64(&s.w[wPunched], uint64(to))
	}
}
