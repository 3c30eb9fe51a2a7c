package fdhold

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// ioTimeout bounds each exchange with the holder.
const ioTimeout = 2 * time.Second

// Client is a connection to a holder. It is not safe for concurrent use:
// the scanner's loop owns it. Requests are sent without waiting for an
// answer: a seqpacket socket keeps them in order, and a request sent by a
// client that dies right after is still applied (the holder reads it, with
// its fd, from its queue).
type Client struct {
	fd  int
	Pid int // the holder's pid when this client started it, else 0
}

// ErrNoHolder says that no holder serves the path: none listens, or the
// one that listened exited, having nothing left to hold. Only then may a
// new holder be started: starting one beside a live holder would orphan
// the pipes it holds, and the lines in them.
var ErrNoHolder = errors.New("no fd holder")

// Connect connects to the holder listening at path (in a directory only
// the scanner's user can enter) and returns the fds it holds, by key. The
// held fds stay held: the caller owns the copies it received. It waits up
// to wait for the list: the holder serves one client at a time, and the
// previous one (a killed scanner) is gone only once every copy of its
// socket is closed, including those in children it forked that have not
// yet called execve. It returns ErrNoHolder if no holder serves path.
func Connect(path string, wait time.Duration) (*Client, map[string]int, error) {
	c, err := dial(path)
	if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
		return nil, nil, ErrNoHolder
	}
	if err != nil {
		return nil, nil, err
	}
	tv := unix.NsecToTimeval(int64(wait))
	unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	held, err := c.list()
	tv = unix.NsecToTimeval(int64(ioTimeout))
	unix.SetsockoptTimeval(c.fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	if err != nil {
		c.Close()
		if errors.Is(err, errClosed) || errors.Is(err, unix.ECONNRESET) {
			return nil, nil, ErrNoHolder // it exited, holding nothing
		}
		return nil, nil, err
	}
	return c, held, nil
}

// Start starts a holder on path and connects to it. It binds path itself,
// so that no client can connect before the holder exists, and runs exe
// with argv0, the listening socket as fd 3 and fds 0-2 on /dev/null, in
// a new session. The caller's reaper (or init) reaps it.
func Start(path, exe, argv0 string) (*Client, error) {
	pid, err := start(path, exe, argv0)
	if err != nil {
		return nil, err
	}
	c, err := dial(path)
	if err != nil {
		return nil, err
	}
	c.Pid = pid
	return c, nil
}

// sockaddr names path through an O_PATH fd of its directory, so that a
// long scan-directory path fits in sun_path (108 bytes).
func sockaddr(path string) (*unix.SockaddrUnix, func(), error) {
	dfd, err := unix.Open(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, &os.PathError{Op: "open", Path: filepath.Dir(path), Err: err}
	}
	sa := &unix.SockaddrUnix{Name: fmt.Sprintf("/proc/self/fd/%d/%s", dfd, filepath.Base(path))}
	return sa, func() { unix.Close(dfd) }, nil
}

func dial(path string) (*Client, error) {
	sa, done, err := sockaddr(path)
	if err != nil {
		return nil, err
	}
	defer done()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socket", err)
	}
	// NOTE: a holder that is stopped (SIGSTOP) or stuck must not block the
	// scanner's loop forever: every send and receive has this deadline.
	tv := unix.NsecToTimeval(int64(ioTimeout))
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv)
	if err := unix.Connect(fd, sa); err != nil {
		unix.Close(fd)
		return nil, &os.PathError{Op: "connect", Path: path, Err: err}
	}
	return &Client{fd: fd}, nil
}

// start binds and listens on path and spawns the holder on it.
func start(path, exe, argv0 string) (int, error) {
	sa, done, err := sockaddr(path)
	if err != nil {
		return 0, err
	}
	defer done()
	ln, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, os.NewSyscallError("socket", err)
	}
	// NOTE: closed through its *os.File only: an os.File closes its fd
	// when garbage-collected, so a second, raw close would hit whatever
	// fd reused the number (the scanner's connection to the holder).
	lnf := os.NewFile(uintptr(ln), "fdholder-listen")
	defer lnf.Close()
	if err := unix.Unlink(path); err != nil && err != unix.ENOENT {
		return 0, &os.PathError{Op: "unlink", Path: path, Err: err}
	}
	if err := unix.Bind(ln, sa); err != nil {
		return 0, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	if err := unix.Listen(ln, 4); err != nil {
		return 0, &os.PathError{Op: "listen", Path: path, Err: err}
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return 0, err
	}
	defer null.Close()
	// The socket's directory as fd 4: the holder watches the socket's name
	// in it, and exits once the name is gone (see Serve).
	dir, err := os.OpenFile(filepath.Dir(path), unix.O_PATH|unix.O_DIRECTORY, 0)
	if err != nil {
		return 0, err
	}
	defer dir.Close()
	p, err := os.StartProcess(exe, []string{argv0}, &os.ProcAttr{
		Dir: "/",
		// NOTE: not the caller's stderr: a holder that outlives the scanner
		// would keep the scanner's log pipe (or a test's output) open.
		Files: []*os.File{null, null, null, lnf, dir},
		Sys:   &unix.SysProcAttr{Setsid: true},
	})
	if err != nil {
		return 0, err
	}
	pid := p.Pid
	p.Release() // reaped by the caller's reaper (or init), never waited here
	return pid, nil
}

// list asks for every held fd.
func (c *Client) list() (map[string]int, error) {
	if err := send(c.fd, opList, "", -1); err != nil {
		return nil, os.NewSyscallError("sendmsg", err)
	}
	held := map[string]int{}
	buf := make([]byte, 1+MaxKey)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		op, key, fds, err := recv(c.fd, buf, oob)
		switch {
		case err != nil:
			closeAll(fds)
			closeHeld(held)
			return nil, os.NewSyscallError("recvmsg", err)
		case op == 0:
			closeHeld(held)
			return nil, errClosed
		case op == opEnd:
			closeAll(fds)
			return held, nil
		case op == opEntry && len(fds) == 1:
			held[key] = fds[0]
		default:
			closeAll(fds)
			closeHeld(held)
			return nil, errProto
		}
	}
}

func closeHeld(held map[string]int) {
	for _, fd := range held {
		unix.Close(fd)
	}
}

// Store hands fd to the holder under key (the caller keeps its own copy).
func (c *Client) Store(key string, fd int) error {
	return os.NewSyscallError("sendmsg", send(c.fd, opStore, key, fd))
}

// Drop makes the holder close the fd held under key.
func (c *Client) Drop(key string) error {
	return os.NewSyscallError("sendmsg", send(c.fd, opDrop, key, -1))
}

// DropAll makes the holder close every fd it holds: once the client
// disconnects, it exits.
func (c *Client) DropAll() error {
	return os.NewSyscallError("sendmsg", send(c.fd, opDropAll, "", -1))
}

// Close disconnects. The holder keeps what it holds and waits for the
// next client, or exits if it holds nothing.
func (c *Client) Close() {
	if c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}
