package openrc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/reap"
)

// The limits of one resolution ([Resolve]). Real init scripts and their
// configuration resolve in a few milliseconds, in a few MiB, and are a few
// KiB long; these bounds are two orders of magnitude above that and still
// harmless for `gosv openrc check` and `ls`.
//
// NOTE: why a child process and not checks inside the interpreter. The
// interpreter (mvdan.cc/sh/v3/interp) has no hook on assignments or
// expansions: `x=$x$x` allocates its result in one piece before any
// handler could look at it, a Go allocation failure is fatal (not a
// panic), and an open(2) that blocks (a FIFO, a hung FUSE or NFS mount)
// cannot be interrupted by a context. Only a separate process with
// rlimits and a kill bounds all three.
const (
	// ResolveTimeout is the wall-clock limit. The interpreter stops at
	// ResolveTimeout and reports where; the parent kills the child
	// resolveGrace later whatever it is doing.
	ResolveTimeout = resolveTimeout
	resolveGrace   = 500 * time.Millisecond
	// ResolveMemory bounds the child's data (RLIMIT_DATA: its heap,
	// stacks included, and the runtime's own; see limitSelf).
	ResolveMemory = 256 << 20
	// ResolveStack bounds the parser's and the interpreter's recursion
	// (deeply nested syntax): a Go stack limit, well below ResolveMemory.
	// A shell function that calls itself meets the time limit first.
	ResolveStack = 64 << 20
	// MaxSourceSize is the largest file the resolver reads: an init
	// script, a conf.d, or anything they source or read with < or $(<).
	MaxSourceSize = 1 << 20
	// maxResult bounds what the parent reads back from the child.
	maxResult = 16 << 20
)

// ResolveError is a resolution stopped by a limit or by a file the
// resolver refused to read. Pos is the init script, or the file and
// position where it stopped when known.
type ResolveError struct {
	Pos Pos
	Msg string
	// timedOut: the interpreter stopped at the time limit, maybe with
	// goroutines and garbage of its own left: the child ends after it.
	timedOut bool
}

func (e *ResolveError) Error() string { return e.Pos.String() + ": " + e.Msg }

// openSource opens a file for the resolver: only a regular file of at
// most MaxSourceSize bytes, or /dev/null. O_NONBLOCK keeps the open of a
// FIFO (or a device) from blocking until it is refused.
func openSource(path string) (io.ReadWriteCloser, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	switch {
	case st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == unix.Mkdev(1, 3):
		unix.Close(fd) // /dev/null: `. /dev/null`, `read x < /dev/null`
		return nopRWC{}, nil
	case st.Mode&unix.S_IFMT != unix.S_IFREG:
		unix.Close(fd)
		return nil, &ResolveError{Msg: fmt.Sprintf("refusing to read %s: not a regular file", path)}
	case st.Size > MaxSourceSize:
		unix.Close(fd)
		return nil, tooBig(path)
	}
	return &capFile{f: os.NewFile(uintptr(fd), path), left: MaxSourceSize}, nil
}

func tooBig(path string) error {
	return &ResolveError{Msg: fmt.Sprintf("refusing to read %s: larger than %s", path, mib(MaxSourceSize))}
}

// readSource reads a whole file with openSource's rules.
func readSource(path string) ([]byte, error) {
	f, err := openSource(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(f)
}

// capFile is a regular file that may not grow past MaxSourceSize while
// it is read (fstat saw it smaller).
type capFile struct {
	f    *os.File
	left int64
}

func (c *capFile) Read(b []byte) (int, error) {
	if c.left <= 0 {
		var one [1]byte
		if n, _ := c.f.Read(one[:]); n == 0 {
			return 0, io.EOF
		}
		return 0, tooBig(c.f.Name())
	}
	if int64(len(b)) > c.left {
		b = b[:c.left]
	}
	n, err := c.f.Read(b)
	c.left -= int64(n)
	return n, err
}
func (c *capFile) Write(b []byte) (int, error) { return len(b), nil }
func (c *capFile) Close() error                { return c.f.Close() }

func mib(n int64) string { return strconv.FormatInt(n>>20, 10) + " MiB" }

// resolveRequest is what the parent sends the child on its stdin: the
// scripts to resolve, in order. The child answers each with one line of
// JSON on its stdout, a resolveReply, in which exactly one field is set.
type resolveRequest struct {
	Layout  Layout
	Scripts []string
}

type resolveReply struct {
	Service *Service      `json:",omitempty"`
	Parse   *ParseError   `json:",omitempty"`
	Stopped *ResolveError `json:",omitempty"`
	Err     string        `json:",omitempty"`
}

// resolveCommand is the arguments that run [ServeResolve] in gosv: its
// hidden subcommand `gosv openrc resolve` (cmd/gosv).
func resolveCommand() []string { return []string{"openrc", "resolve"} }

// ResolveAll resolves several scripts as [Resolve] does, with the same
// limits for each, but shares a child between them: a child costs a
// process start (a few milliseconds), a resolution much less. A script
// that kills its child gets the error; the scripts after it get a new
// child. When ctx is cancelled, the scripts not yet resolved get ctx's
// error.
func ResolveAll(ctx context.Context, l Layout, scripts []string) ([]*Service, []error) {
	l = l.fill()
	svcs, errs := make([]*Service, len(scripts)), make([]error, len(scripts))
	for done := 0; done < len(scripts); {
		if ctx.Err() != nil {
			for i := done; i < len(scripts); i++ {
				errs[i] = fmt.Errorf("resolve %s: %w", scripts[i], ctx.Err())
			}
			break
		}
		done += resolveIn(ctx, l, scripts[done:], svcs[done:], errs[done:])
	}
	return svcs, errs
}

// resolveIn runs one child, `/proc/self/exe openrc resolve`, on scripts
// and fills svcs and errs with its replies until it has answered them
// all or stopped: it then fills the script it stopped on with the cause.
// It returns how many scripts it settled, at least one.
//
// Every reply has its own deadline, ResolveTimeout + resolveGrace, after
// which the child is killed. stdout is a pipe read here with deadlines;
// stderr goes to a capped buffer through exec's copying goroutine. The
// process running ResolveAll (check, ls) runs no reap loop, so
// exec.Cmd.Wait is the waiter here.
func resolveIn(ctx context.Context, l Layout, scripts []string, svcs []*Service, errs []error) int {
	fail := func(i int, err error) int {
		for ; i < len(scripts); i++ {
			errs[i] = fmt.Errorf("resolve %s: %w", scripts[i], err)
		}
		return len(scripts)
	}
	req, err := json.Marshal(resolveRequest{Layout: l, Scripts: scripts})
	if err != nil {
		return fail(0, err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return fail(0, err)
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", resolveCommand()...)
	cmd.Args[0] = "gosv" // the multi-call binary dispatches on it
	// NOTE: GORACE matters only to -race builds (the tests), whose
	// runtime otherwise sleeps a second at every exit.
	cmd.Env = []string{"GOMAXPROCS=1", "GORACE=atexit_sleep_ms=0 " + os.Getenv("GORACE")}
	cmd.Stdin = bytes.NewReader(req)
	errOut := &capBuffer{max: 64 << 10}
	cmd.Stdout, cmd.Stderr = w, errOut
	// Pdeathsig: the child dies with the thread that started it, even if
	// this process is SIGKILLed; the thread stays locked until then.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fail(0, fmt.Errorf("start the resolver: %w", err))
	}
	stop := context.AfterFunc(ctx, func() { cmd.Process.Kill() })
	in := bufio.NewReader(r)
	i := 0
	var readErr error
	for ; i < len(scripts); i++ {
		r.SetReadDeadline(time.Now().Add(resolveTimeout + resolveGrace))
		var line []byte
		if line, readErr = readLine(in, maxResult); readErr != nil {
			break
		}
		svcs[i], errs[i] = decodeReply(line, l, scripts[i])
	}
	stop()
	if i < len(scripts) {
		cmd.Process.Kill()
	}
	reap.Wait(cmd)
	if i == len(scripts) {
		return i
	}
	if i > 0 && errors.Is(readErr, io.EOF) && cmd.ProcessState.Success() && ctx.Err() == nil {
		return i // it stopped after a script that ran out of time
	}
	at := Pos{File: scripts[i]}
	switch {
	case ctx.Err() != nil:
		errs[i] = fmt.Errorf("resolve %s: %w", scripts[i], ctx.Err())
	case errors.Is(readErr, os.ErrDeadlineExceeded):
		errs[i] = &ResolveError{Pos: at, Msg: fmt.Sprintf("resolution exceeded %v", resolveTimeout)}
	case errors.Is(readErr, errTooLong):
		errs[i] = &ResolveError{Pos: at, Msg: fmt.Sprintf("resolver failed: reply larger than %s", mib(maxResult))}
	default:
		errs[i] = &ResolveError{Pos: at, Msg: childFailure(cmd.ProcessState, errOut.Bytes(), len(scripts))}
	}
	return i + 1
}

var errTooLong = errors.New("line too long")

// readLine reads one line of at most max bytes.
func readLine(r *bufio.Reader, max int) ([]byte, error) {
	var line []byte
	for {
		frag, err := r.ReadSlice('\n')
		if len(line)+len(frag) > max {
			return nil, errTooLong
		}
		line = append(line, frag...)
		if err != bufio.ErrBufferFull {
			return line, err
		}
	}
}

func decodeReply(line []byte, l Layout, script string) (*Service, error) {
	var rep resolveReply
	switch {
	case json.Unmarshal(line, &rep) != nil:
		return nil, &ResolveError{Pos: Pos{File: script}, Msg: "resolver failed: unreadable reply"}
	case rep.Parse != nil:
		return nil, rep.Parse
	case rep.Stopped != nil:
		return nil, rep.Stopped
	case rep.Err != "":
		return nil, errors.New(rep.Err)
	case rep.Service == nil:
		return nil, &ResolveError{Pos: Pos{File: script}, Msg: "resolver failed: empty reply"}
	}
	rep.Service.Layout = l
	return rep.Service, nil
}

// childFailure names the limit a child that died without a reply hit,
// from the Go runtime's last words and its exit status.
func childFailure(ps *os.ProcessState, stderr []byte, scripts int) string {
	s := string(stderr)
	ws, _ := ps.Sys().(syscall.WaitStatus)
	switch {
	case strings.Contains(s, "stack exceeds"):
		return fmt.Sprintf("recursion too deep (stack limit %s)", mib(ResolveStack))
	case strings.Contains(s, "out of memory"), strings.Contains(s, "cannot allocate memory"), peakRSS(ps) >= ResolveMemory/4:
		// NOTE: the runtime does not always notice a failed mmap: under
		// RLIMIT_DATA it sometimes dies of a SIGSEGV in the collector
		// (go1.26, greenteagc) instead of "out of memory", with a
		// resident size as low as 123 MiB (about 100 MiB of the limit
		// is the runtime's reserved, non-resident start-up data). A
		// crash after the child's resident memory has reached a quarter
		// of the limit is taken for the limit: real scripts stay near
		// 10 MiB.
		return fmt.Sprintf("memory limit %s", mib(ResolveMemory))
	case ws.Signaled() && ps.UserTime()+ps.SystemTime() >= cpuLimit(scripts):
		// NOTE: the Go runtime ignores SIGXCPU (the soft limit): the
		// kernel's SIGKILL at the hard limit ends the child.
		return fmt.Sprintf("CPU limit %v", cpuLimit(1))
	}
	line, _, _ := strings.Cut(strings.TrimSpace(s), "\n")
	if line == "" {
		line = ps.String()
	}
	return "resolver failed: " + line
}

// peakRSS is a dead child's peak resident memory, in bytes.
func peakRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10
	}
	return 0
}

// cpuLimit is the RLIMIT_CPU of a child resolving n scripts: a backstop
// for the wall-clock kill when the parent itself is stopped.
func cpuLimit(n int) time.Duration {
	return time.Duration(n) * ((resolveTimeout + resolveGrace).Round(time.Second) + time.Second)
}

// capBuffer keeps the first max bytes written to it and drops the rest,
// so that the child cannot make its parent grow.
type capBuffer struct {
	bytes.Buffer
	max  int
	over bool
}

func (c *capBuffer) Write(b []byte) (int, error) {
	if room := c.max - c.Len(); len(b) > room {
		c.over = true
		c.Buffer.Write(b[:max(room, 0)])
		return len(b), nil
	}
	return c.Buffer.Write(b)
}

// ServeResolve is the resolver child (`gosv openrc resolve`): it limits
// itself, reads a request from r, resolves its scripts in turn, and
// writes one reply line for each to w. It returns early, without error,
// after a script that ran out of time: the parent starts a new child for
// the rest. Only a failure to talk to the parent is returned.
func ServeResolve(ctx context.Context, r io.Reader, w io.Writer) error {
	var req resolveRequest
	if err := json.NewDecoder(io.LimitReader(r, 16<<20)).Decode(&req); err != nil {
		return fmt.Errorf("read the request: %w", err)
	}
	if err := limitSelf(len(req.Scripts)); err != nil {
		return err
	}
	enc := json.NewEncoder(w)
	for i, script := range req.Scripts {
		if i > 0 {
			// The last script's garbage must not count against this
			// one's memory limit (about 0.1 ms with a small heap).
			runtime.GC()
		}
		rep := serveOne(ctx, req.Layout, script)
		if err := enc.Encode(rep); err != nil {
			return err
		}
		if rep.Stopped != nil && rep.Stopped.timedOut {
			return nil
		}
	}
	return nil
}

func serveOne(ctx context.Context, l Layout, script string) resolveReply {
	s, err := resolveHere(ctx, l, script)
	var rep resolveReply
	var pe *ParseError
	var re *ResolveError
	switch {
	case err == nil:
		rep.Service = s
	case errors.As(err, &pe):
		rep.Parse = pe
	case errors.As(err, &re):
		if !re.Pos.IsValid() {
			re.Pos = Pos{File: script}
		}
		if re.Pos.File != script { // rc.conf, a conf.d: name the script too
			re.Msg += " (resolving " + script + ")"
		}
		rep.Stopped = re
	default:
		rep.Err = err.Error()
	}
	return rep
}

// limitSelf applies the limits of a child resolving n scripts to itself,
// before it resolves any: RLIMIT_DATA, RLIMIT_CPU and the stack limit.
//
// RLIMIT_DATA is ResolveMemory for the whole child, the Go runtime's own
// start-up data included (about 100 MiB of gosv's VmData, mostly
// reserved address space, is there before the first script). NOTE: a
// -race binary (the tests) starts with about 300 MiB of shadow memory
// counted as data: when the start-up data leaves less than a quarter of
// the limit, the limit counts from it instead.
//
// No soft limit (debug.SetMemoryLimit): near it the collector runs
// without end, which only delays the hard limit by seconds.
func limitSelf(n int) error {
	data, err := vmData()
	if err != nil {
		return err
	}
	lim := uint64(ResolveMemory)
	if data+ResolveMemory/4 > lim {
		lim = data + ResolveMemory
	}
	if err := lower(unix.RLIMIT_DATA, lim, lim); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_DATA: %w", err)
	}
	cpu := uint64(cpuLimit(n) / time.Second)
	if err := lower(unix.RLIMIT_CPU, cpu, cpu+1); err != nil {
		return fmt.Errorf("setrlimit RLIMIT_CPU: %w", err)
	}
	debug.SetMaxStack(ResolveStack)
	debug.SetTraceback("none")
	return nil
}

// lower sets a resource limit to cur and max, or keeps the current ones
// where they are lower already (a user's ulimit): raising a hard limit
// needs privilege.
func lower(resource int, cur, max uint64) error {
	var now unix.Rlimit
	if err := unix.Getrlimit(resource, &now); err != nil {
		return err
	}
	max = min(max, now.Max)
	return unix.Setrlimit(resource, &unix.Rlimit{Cur: min(cur, now.Cur, max), Max: max})
}

// vmData reads VmData (bytes) from /proc/self/status: what RLIMIT_DATA
// counts.
func vmData() (uint64, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmData:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("/proc/self/status: no VmData")
}
