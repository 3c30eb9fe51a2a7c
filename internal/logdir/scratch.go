package logdir

import (
	"os"

	"golang.org/x/sys/unix"
)

// Buffer sizes. The scratch pipe and the input buffer are one batch: 64 KiB
// is the default pipe capacity (pipe(7)), so one batch empties a default
// pipe. Output grows by the stamps (26 bytes for t, 31 for T per line), so
// the output buffer is twice the input and is flushed early when tiny lines
// would overflow it.
const (
	ScratchSize = 64 << 10
	outCap      = 2 * ScratchSize
	// PipeSize is what a supervisor should give the pipe between a service
	// and its logger (see [SetPipeSize]): 1 MiB, the default
	// /proc/sys/fs/pipe-max-size, lets a service write about 1 MiB ahead
	// while its log directory is briefly unwritable.
	PipeSize = 1 << 20
)

// Scratch is the working memory shared by every Logger of a process: a
// pipe that tee(2) duplicates input into, the buffer it is read into, and
// one output buffer per action. An idle Logger owns no buffer; only the
// Scratch does. A Scratch is not safe for concurrent use: one event loop
// owns it and passes it to each [Logger.Consume] call.
type Scratch struct {
	r, w  int // the scratch pipe, both ends O_NONBLOCK
	null  int // /dev/null, where consumed bytes are spliced
	in    []byte
	sinks []sinkState
	std   [2][]byte // output of the 1 and 2 actions, shared so that lines keep their order
	tai   []byte    // the batch's t stamp
	iso   []byte    // the batch's T stamp
}

// sinkState is one action's progress within a batch.
type sinkState struct {
	out     []byte // formatted lines not yet written
	covered int    // input offset up to which out (or the held buffer) has the lines
	stopped bool   // the action's directory failed in this batch
}

// NewScratch creates the scratch pipe and buffers.
func NewScratch() (*Scratch, error) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		return nil, os.NewSyscallError("pipe2", err)
	}
	// NOTE: the capacity is set, not assumed: pipes of a user over
	// /proc/sys/fs/pipe-user-pages-soft start with one page (pipe(7)).
	if _, err := unix.FcntlInt(uintptr(p[1]), unix.F_SETPIPE_SZ, ScratchSize); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, os.NewSyscallError("fcntl F_SETPIPE_SZ", err)
	}
	null, err := unix.Open("/dev/null", unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		return nil, &os.PathError{Op: "open", Path: "/dev/null", Err: err}
	}
	return &Scratch{r: p[0], w: p[1], null: null, in: make([]byte, ScratchSize),
		std: [2][]byte{make([]byte, 0, outCap), make([]byte, 0, outCap)},
		tai: make([]byte, 0, taiStampLen), iso: make([]byte, 0, isoLen)}, nil
}

// Close releases the scratch pipe.
func (sc *Scratch) Close() error {
	unix.Close(sc.null)
	unix.Close(sc.w)
	return unix.Close(sc.r)
}

// sinksFor returns n sink states with empty output buffers.
func (sc *Scratch) sinksFor(n int) []sinkState {
	for len(sc.sinks) < n {
		sc.sinks = append(sc.sinks, sinkState{out: make([]byte, 0, outCap)})
	}
	s := sc.sinks[:n]
	for i := range s {
		s[i].out, s[i].stopped = s[i].out[:0], false
	}
	return s
}

// SetPipeSize sets the capacity of the pipe fd refers to and returns the
// capacity the kernel chose. Use it with [PipeSize] on the pipe from a
// service to its logger: while the log directory is unwritable the
// service's writes land there, and it blocks only once it is full.
// Unprivileged processes get EPERM above /proc/sys/fs/pipe-max-size.
func SetPipeSize(fd, size int) (int, error) {
	n, err := unix.FcntlInt(uintptr(fd), unix.F_SETPIPE_SZ, size)
	if err != nil {
		return 0, os.NewSyscallError("fcntl F_SETPIPE_SZ", err)
	}
	return n, nil
}
