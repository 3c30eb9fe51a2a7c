package spawner

import (
	"fmt"
	"os"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

const (
	// replyTimeout bounds the wait for one reply: a fork+exec takes
	// milliseconds, so a helper silent for this long is stopped or wedged;
	// it is killed and replaced rather than stalling the scanner's loop.
	replyTimeout = 10 * time.Second
	// restartDelay spaces attempts to start a new helper after one was
	// lost, so that a helper that cannot start (exec fails, no memory)
	// costs one failed attempt a second, not one per spawn.
	restartDelay = time.Second
)

// Client is the scanner's end of the helper. It is not safe for
// concurrent use: the one loop that spawns owns it (the loop reads each
// reply before it reaps, which is what makes a child that exits at once
// safe, see the package doc).
type Client struct {
	exe, argv0 string
	warn       func(format string, args ...any)
	// Known, when set, says whether pid is a child the caller already
	// knows (a run, finish or hook): never taken for a lost run.
	Known func(pid int) bool

	fd     int // socket to the helper; -1 while there is none
	pid    int // the helper's pid
	lostAt time.Time
	said   bool // the current outage was reported
	served bool // the current helper has answered a request

	buf []byte
	fds []int
	rep [replyLen + 1]byte
}

// NewClient starts the helper: exe run with argv[0] argv0 must call
// [Serve](3). Every descriptor of the caller but 0-2 must be
// close-on-exec, or the helper inherits it. If the helper cannot start,
// warn says so and the client spawns nothing (Start returns ok false)
// until a later attempt succeeds. warn is called from Start's goroutine.
func NewClient(exe, argv0 string, warn func(format string, args ...any)) *Client {
	c := &Client{exe: exe, argv0: argv0, warn: warn, fd: -1}
	if err := c.start(); err != nil {
		c.said = true
		c.lostAt = time.Now()
		warn("unable to start the spawn helper: %v (spawning directly; slower with many services)", err)
	}
	return c
}

// Pid returns the helper's pid, or 0 while there is none.
func (c *Client) Pid() int {
	if c.fd < 0 {
		return 0
	}
	return c.pid
}

// Start asks the helper to start r and returns the child's pid, or the
// errno of its failed fork or exec. ok false means the helper could not
// answer (it is gone, or r is too large to send): the caller must spawn
// r itself. A lost helper is reported once and restarted at a later call.
//
// A helper lost with the request in flight may have started the run
// already: Start looks for it once (lost.go) and returns it as started.
func (c *Client) Start(r *Request) (pid int, err error, ok bool) {
	if c.fd < 0 && !c.restart() {
		return 0, nil, false
	}
	c.buf, c.fds = encode(c.buf[:0], r, c.fds[:0])
	if len(c.buf) > maxRequest || len(c.fds) > maxFiles {
		return 0, nil, false
	}
	var oob []byte
	if len(c.fds) > 0 {
		oob = unix.UnixRights(c.fds...)
	}
	since := bootTicks()
	for {
		err = unix.Sendmsg(c.fd, c.buf, oob, nil, unix.MSG_NOSIGNAL)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		c.lose(os.NewSyscallError("sendmsg", err))
		return 0, nil, false
	}
	n, err := c.read()
	if err != nil || n != replyLen {
		if err == nil {
			err = fmt.Errorf("it closed the connection (reply of %d bytes)", n)
		}
		c.lose(err)
		if pid := lostRun(r.Dir, since, c.Known); pid > 0 {
			return pid, nil, true
		}
		return 0, nil, false
	}
	c.served, c.said = true, false
	pid, err = parseReply(c.rep[:replyLen])
	return pid, err, true
}

func (c *Client) read() (int, error) {
	for {
		n, err := unix.Read(c.fd, c.rep[:])
		switch err {
		case nil:
			return n, nil
		case unix.EINTR:
			continue
		case unix.EAGAIN:
			return 0, fmt.Errorf("no reply within %v", replyTimeout)
		}
		return 0, os.NewSyscallError("read", err)
	}
}

// Close ends the helper (it exits at EOF).
func (c *Client) Close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// lose drops the helper after a failed exchange, says so once per
// outage, and kills it in case it is wedged rather than dead.
func (c *Client) lose(err error) {
	unix.Kill(c.pid, unix.SIGKILL)
	c.Close()
	c.lostAt = time.Now()
	if !c.said {
		c.said = true
		c.warn("lost the spawn helper (pid %d): %v (spawning directly until it is restarted)", c.pid, err)
	}
	c.served = false
}

func (c *Client) restart() bool {
	if time.Since(c.lostAt) < restartDelay {
		return false
	}
	if err := c.start(); err != nil {
		c.lostAt = time.Now()
		if !c.said {
			c.said = true
			c.warn("unable to restart the spawn helper: %v (spawning directly)", err)
		}
		return false
	}
	return true
}

// start forks the helper with the socket as fd 3 and /dev/null as 0-2.
func (c *Client) start() error {
	sp, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return os.NewSyscallError("socketpair", err)
	}
	defer unix.Close(sp[1])
	tv := unix.NsecToTimeval(replyTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(sp[0], unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(sp[0])
		return os.NewSyscallError("setsockopt SO_RCVTIMEO", err)
	}
	null, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(sp[0])
		return &os.PathError{Op: "open", Path: os.DevNull, Err: err}
	}
	defer unix.Close(null)
	// NOTE: Pdeathsig follows the thread that forks, hence the lock
	// (containerd StartLocked). It is a second line: the helper exits
	// at EOF anyway.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	n := uintptr(null)
	pid, err := syscall.ForkExec(c.exe, []string{c.argv0}, &syscall.ProcAttr{
		// NOTE: the caller's working directory, inherited: requests name
		// their directory relative to it (the scanner never changes it).
		Files: []uintptr{n, n, n, uintptr(sp[1])},
		// A session of its own: a terminal's ^C for the scanner's group
		// must not kill the helper first.
		Sys: &syscall.SysProcAttr{Setsid: true, Pdeathsig: syscall.SIGKILL},
	})
	if err != nil {
		unix.Close(sp[0])
		return &os.PathError{Op: "exec", Path: c.exe, Err: err}
	}
	c.fd, c.pid = sp[0], pid
	return nil
}
