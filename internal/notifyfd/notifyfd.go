// Package notifyfd turns systemd's readiness notification (a READY=1
// datagram on $NOTIFY_SOCKET) into s6's (a newline on the notification
// fd): `gosv notify-fd-from-socket`, the interface of s6 2.13's
// s6-notify-fd-from-socket. s6-supervise and runsv (through gosv's
// runit backend) have only the latter; gosv's own scanner reads sd_notify
// itself (notification-socket) and needs no wrapper.
//
// [Exec] binds a datagram socket, starts a watcher process ([Watch]) that
// holds the socket, the notification fd and a pidfd of the caller, and
// then execs the daemon in place: the daemon keeps the supervised pid.
// The watcher writes one newline to the notification fd when READY=1
// arrives from the daemon (or another process of its session, as gosv's
// notification-socket "all" accepts), and exits; it exits without a word
// at the timeout, and when the daemon dies (its pidfd), so that no
// watcher outlives the daemon. It stays in the daemon's session and
// process group: a stop's signal to the group reaches it too.
//
// [ExecCheck] (`gosv notifyoncheck`, s6-notifyoncheck's counterpart) is
// the same for a daemon whose readiness a check program tells: its
// watcher runs the check on gosv's schedule.
//
// NOTE: s6's tool double-forks so that its watcher is no zombie child of a
// daemon that does not reap unknown children. A Go program cannot fork
// without exec'ing, so the watcher is started with CLONE_PARENT instead:
// it is the supervisor's child (s6-supervise and runsv reap unknown
// children and drop them), not the daemon's. -f keeps it the daemon's.
package notifyfd

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// Exit codes of the watcher (s6-notify-fd-from-socket's): nobody reads
// them, they tell the cases apart in a trace.
const (
	ExitReady   = 0   // READY=1 seen and the newline written (or the daemon died first)
	ExitTimeout = 99  // no READY=1 within the timeout
	ExitSystem  = 111 // a system call failed
)

// WatchCommand is the gosv subcommand (hidden) that runs the watchers:
// Exec starts `gosv WatchCommand socket SOCKET-PATH PID TIMEOUT-MS` ([Watch]),
// ExecCheck `gosv WatchCommand check PROGRAM PID TIMEOUT-MS` ([WatchCheck]),
// with the socket as fd 3, the notification fd as fd 4, the daemon's
// pidfd as fd 5.
const WatchCommand = "notify-fd-watch"

// RunWatcher runs the watcher of mode (the first argument of
// WatchCommand) and returns its exit code.
func RunWatcher(mode, arg string, daemon int, timeout time.Duration) (int, error) {
	// A reload's SIGHUP, were it sent to the daemon's process group, is
	// not for the watcher: it would lose the readiness it waits for.
	signal.Ignore(unix.SIGHUP)
	switch mode {
	case modeSocket:
		return Watch(arg, daemon, timeout), nil
	case modeCheck:
		return WatchCheck(arg, daemon, timeout), nil
	}
	return 0, fmt.Errorf("%w: unknown watcher %q", ErrUsage, mode)
}

// Descriptors of the watcher.
const (
	watchSock  = 3
	watchNotif = 4
	watchPidfd = 5
)

// Options are Exec's.
type Options struct {
	// Fd is the notification fd; below 0, the number in ./notification-fd
	// (an error if there is none: the supervisor must expect it).
	Fd int
	// Timeout: the watcher gives up after it (0: never, until the daemon
	// dies).
	Timeout time.Duration
	// NoDoubleFork makes the watcher the daemon's child (s6's -f).
	NoDoubleFork bool
	// Argv is the daemon's command line; Argv[0] is looked up in PATH.
	Argv []string
	// Self is the gosv binary that runs the watcher ("" = /proc/self/exe).
	Self string
}

// ErrUsage is wrapped by the errors of a command line Exec cannot accept.
var ErrUsage = errors.New("usage")

// Exec starts the watcher and execs opts.Argv with NOTIFY_SOCKET set; it
// returns only on failure, before anything was exec'd.
func Exec(opts Options) error {
	if len(opts.Argv) == 0 {
		return fmt.Errorf("%w: no program", ErrUsage)
	}
	path, err := exec.LookPath(opts.Argv[0])
	if err != nil {
		return err
	}
	fd, err := notificationFd(opts.Fd)
	if err != nil {
		return err
	}
	w, err := start(fd, opts)
	if err != nil {
		return err
	}
	// The daemon has no use for the notification fd: the watcher holds it.
	unix.Close(fd)
	env := append(withoutNotifySocket(os.Environ()), "NOTIFY_SOCKET="+w)
	err = unix.Exec(path, opts.Argv, env)
	os.Remove(w) // the watcher exits at the timeout or on our death
	return &os.PathError{Op: "exec", Path: path, Err: err}
}

// notificationFd is fd, or below 0 the number in ./notification-fd; it
// must be open.
func notificationFd(fd int) (int, error) {
	if fd < 0 {
		v, ok, err := servicedir.ReadUintFile(".", servicedir.NotificationFDFile)
		if err != nil {
			return 0, err
		}
		if !ok || v > 1<<20 {
			return 0, fmt.Errorf("%w: no -3 and no valid ./%s", ErrUsage, servicedir.NotificationFDFile)
		}
		fd = int(v)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil {
		return 0, fmt.Errorf("notification fd %d: %w", fd, err)
	}
	return fd, nil
}

func withoutNotifySocket(env []string) []string {
	out := env[:0:0]
	for _, kv := range env {
		if len(kv) < len("NOTIFY_SOCKET=") || kv[:len("NOTIFY_SOCKET=")] != "NOTIFY_SOCKET=" {
			out = append(out, kv)
		}
	}
	return out
}

// start binds the socket and starts the watcher on it; it returns the
// socket's path.
func start(notif int, opts Options) (string, error) {
	pid := os.Getpid()
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return "", os.NewSyscallError("pidfd_open", err)
	}
	defer unix.Close(pidfd)
	dir, err := socketDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, "fd-"+strconv.Itoa(pid)+".sock")
	sock, err := BindSocket(path, 0)
	if err != nil {
		return "", err
	}
	defer unix.Close(sock)
	if err := startWatcher(opts.Self, []string{modeSocket, path, strconv.Itoa(pid), strconv.FormatInt(opts.Timeout.Milliseconds(), 10)},
		-1, sock, notif, pidfd, !opts.NoDoubleFork); err != nil {
		os.Remove(path)
		return "", err
	}
	return path, nil
}

// Watcher modes: the first argument of [WatchCommand].
const (
	modeSocket = "socket" // SOCKET-PATH PID TIMEOUT-MS: [Watch]
	modeCheck  = "check"  // CHECK-PROGRAM PID TIMEOUT-MS: [WatchCheck]
)

// startWatcher runs `gosv WatchCommand args...` (self: the gosv binary,
// "" = /proc/self/exe) with stdout (-1: /dev/null), stderr, sock (-1:
// /dev/null), the notification fd and the pidfd as fds 1-5, as the
// caller's parent's child when sibling is set.
func startWatcher(self string, args []string, stdout, sock, notif, pidfd int, sibling bool) error {
	if self == "" {
		self = "/proc/self/exe"
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	if stdout < 0 {
		stdout = int(null.Fd())
	}
	if sock < 0 {
		sock = int(null.Fd())
	}
	argv := append([]string{"gosv", WatchCommand}, args...)
	attr := &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{null.Fd(), uintptr(stdout), 2, uintptr(sock), uintptr(notif), uintptr(pidfd)},
		Sys:   &syscall.SysProcAttr{},
	}
	if sibling {
		attr.Sys.Cloneflags = unix.CLONE_PARENT
	}
	_, err = syscall.ForkExec(self, argv, attr)
	if err == unix.EINVAL && sibling {
		// CLONE_PARENT is refused to a namespace's init: keep the child.
		attr.Sys.Cloneflags = 0
		_, err = syscall.ForkExec(self, argv, attr)
	}
	if err != nil {
		return &os.PathError{Op: "start the watcher", Path: self, Err: err}
	}
	return nil
}

// socketDir is where the sockets live: /run/gosv-notify (gosv's own
// scanner's directory) when /run is writable, else a directory of this
// user's in $TMPDIR. It is searchable by all, so that a daemon that
// dropped privileges reaches its socket; only the daemon's datagrams
// count (see [Watch]).
func socketDir() (string, error) {
	dir := filepath.Join(os.TempDir(), "gosv-notify-"+strconv.Itoa(os.Getuid()))
	if unix.Access("/run", unix.W_OK) == nil {
		dir = "/run/gosv-notify"
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return "", err
	}
	// NOTE: in the $TMPDIR fallback anyone may have made the name first:
	// the directory must be ours and no symlink.
	var st unix.Stat_t
	if err := unix.Lstat(dir, &st); err != nil {
		return "", &os.PathError{Op: "lstat", Path: dir, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR || int(st.Uid) != os.Geteuid() {
		return "", &os.PathError{Op: "use", Path: dir, Err: errors.New("not a directory of this user")}
	}
	return dir, nil
}

// BindSocket binds an sd_notify socket at path (a stale one is removed),
// writable by all (sendto needs it) and with SO_PASSCRED, so that each
// datagram carries its sender's credentials; flags are added to the
// socket's type (SOCK_NONBLOCK for an event loop). gosv's scanner binds
// its services' sockets with it too.
func BindSocket(path string, flags int) (int, error) {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return -1, &os.PathError{Op: "bind", Path: path, Err: unix.ENAMETOOLONG}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|flags, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	os.Remove(path) // left by a process that was SIGKILLed
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	// NOTE: sendto(2) on a unix socket needs write permission on it.
	if err := unix.Chmod(path, 0o666); err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}
	if err != nil {
		unix.Close(fd)
		os.Remove(path)
		return -1, &os.PathError{Op: "set up", Path: path, Err: err}
	}
	return fd, nil
}

// Watch is the watcher: it waits on the socket at fd 3 (bound at path)
// for READY=1 from the process daemon (its pidfd at fd 5) or a process of
// daemon's session, then writes a newline to fd 4. It returns the exit
// code: [ExitReady] also when the daemon died first (nothing to say),
// [ExitTimeout], [ExitSystem].
func Watch(path string, daemon int, timeout time.Duration) int {
	defer os.Remove(path)
	// A stop signals the daemon's process group, the watcher's too: the
	// socket goes with it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	go func() {
		<-sigs
		os.Remove(path)
		os.Exit(ExitReady)
	}()
	sid, err := unix.Getsid(daemon)
	if err != nil {
		return ExitReady // already gone
	}
	w := watcher{sock: watchSock, notif: watchNotif, pidfd: watchPidfd, daemon: daemon, sid: sid, path: path}
	return w.run(timeout)
}

type watcher struct {
	sock, notif, pidfd int
	daemon, sid        int
	path               string // the socket's, removed before the newline
}

func (w *watcher) run(timeout time.Duration) int {
	var deadline time.Time
	if timeout > 0 {
		deadline = time.Now().Add(timeout)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*16))
	for {
		ms := -1
		if !deadline.IsZero() {
			left := time.Until(deadline)
			if left <= 0 {
				return ExitTimeout
			}
			ms = int((left + time.Millisecond - 1) / time.Millisecond)
		}
		fds := []unix.PollFd{{Fd: int32(w.sock), Events: unix.POLLIN}, {Fd: int32(w.pidfd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return ExitSystem
		}
		if n == 0 {
			continue // the deadline, checked above
		}
		if fds[0].Revents&unix.POLLIN != 0 {
			if w.readReady(buf, oob) {
				// NOTE: before the newline: once the start returns, no
				// socket of the service is left.
				if w.path != "" {
					os.Remove(w.path)
				}
				if _, err := unix.Write(w.notif, []byte{'\n'}); err != nil {
					return ExitSystem
				}
				return ExitReady
			}
			continue
		}
		if fds[1].Revents != 0 {
			return ExitReady // the daemon died before it was ready
		}
	}
}

// readReady reads one datagram and reports whether it is READY=1 from
// the daemon or its session. Passed descriptors are closed.
func (w *watcher) readReady(buf, oob []byte) bool {
	n, oobn, _, _, err := unix.Recvmsg(w.sock, buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return false
	}
	sender := -1
	if msgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
		for i := range msgs {
			if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
			if cred, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
				sender = int(cred.Pid)
			}
		}
	}
	if !w.fromService(sender) {
		return false
	}
	for _, line := range bytes.Split(buf[:n], []byte{'\n'}) {
		if string(line) == "READY=1" {
			return true
		}
	}
	return false
}

// fromService reports whether pid is the daemon or a process of its
// session (as gosv's notification-socket "all": systemd-notify run by a
// script). No process can join a session it was not born in.
func (w *watcher) fromService(pid int) bool {
	if pid <= 0 {
		return false
	}
	if pid == w.daemon {
		return true
	}
	// NOTE: the pidfd, opened before /proc is read and alive after it,
	// ties what was read to the sender, not to a process that took its
	// pid since.
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	defer unix.Close(fd)
	st, err := servicedir.ReadProcStat(pid)
	if err != nil || unix.PidfdSendSignal(fd, 0, nil, 0) == unix.ESRCH {
		return false
	}
	return st.Sid == w.sid
}
