package notifyfd

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/reap"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// `gosv notifyoncheck`: readiness by polling, for a supervisor that reads
// a newline on the notification fd (runsv under gosv's runit backend, for
// a hand-written directory's check script). ExecCheck starts a watcher
// ([WatchCheck]) and execs the daemon in place, as Exec does; the watcher
// runs the check program on gosv's own schedule (what gosv's scanner does
// with ./check): supervise.CheckFirst after the start, then at intervals
// doubling from CheckFirst to CheckMax, each run killed after its time
// limit; the first run that exits 0 writes the newline. It stops when the
// daemon dies. The interface is s6-notifyoncheck's, reduced to -3, -t and
// -c: gosv's schedule replaces -s, -w, -n and -T (the start's
// timeout_ready is the global limit).

// CheckOptions are ExecCheck's.
type CheckOptions struct {
	// Fd is the notification fd; below 0, the number in ./notification-fd.
	Fd int
	// Timeout limits one check run; 0: ./timeout-check, or
	// supervise.DefaultTimeoutCheck.
	Timeout time.Duration
	// Check is the check program (default ./check), run without
	// arguments, as `sv check` runs runit's.
	Check string
	// Argv is the daemon's command line.
	Argv []string
	// Self is the gosv binary that runs the watcher ("" = /proc/self/exe).
	Self string
}

// ExecCheck starts the check watcher and execs opts.Argv; it returns only
// on failure, before anything was exec'd.
func ExecCheck(opts CheckOptions) error {
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
	if opts.Check == "" {
		opts.Check = "./" + servicedir.CheckFile
	}
	if opts.Timeout == 0 {
		opts.Timeout = supervise.DefaultTimeoutCheck
		if ms, ok, err := servicedir.ReadUintFile(".", servicedir.TimeoutCheckFile); err == nil && ok && ms > 0 {
			opts.Timeout = time.Duration(ms) * time.Millisecond
		}
	}
	pidfd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return os.NewSyscallError("pidfd_open", err)
	}
	err = startWatcher(opts.Self, []string{modeCheck, opts.Check, strconv.Itoa(os.Getpid()), strconv.FormatInt(opts.Timeout.Milliseconds(), 10)},
		1, -1, fd, pidfd, true)
	unix.Close(pidfd)
	if err != nil {
		return err
	}
	unix.Close(fd)
	err = unix.Exec(path, opts.Argv, os.Environ())
	return &os.PathError{Op: "exec", Path: path, Err: err}
}

// WatchCheck is the check watcher: it runs prog (its output on the
// watcher's stdout and stderr, the daemon's) on gosv's schedule, each run
// killed after timeout, until a run exits 0 (a newline to fd 4,
// [ExitReady]) or the daemon (its pidfd at fd 5) dies ([ExitReady],
// nothing written). A check run stays in the daemon's process group, so
// that a stop reaches it.
func WatchCheck(prog string, daemon int, timeout time.Duration) int {
	w := checker{prog: prog, notif: watchNotif, timeout: timeout, dead: diedChan(watchPidfd)}
	return w.run()
}

type checker struct {
	prog    string
	notif   int
	timeout time.Duration
	dead    <-chan struct{} // closed when the daemon died
}

// diedChan returns a channel closed once pidfd says its process exited.
func diedChan(pidfd int) <-chan struct{} {
	dead := make(chan struct{})
	go func() {
		defer close(dead)
		for {
			fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				return
			}
		}
	}()
	return dead
}

func (c *checker) run() int {
	interval := supervise.CheckFirst
	t := time.NewTimer(supervise.CheckFirst)
	defer t.Stop()
	for {
		select {
		case <-c.dead:
			return ExitReady
		case <-t.C:
		}
		ok, err := c.once()
		if err != nil {
			fmt.Fprintf(os.Stderr, "gosv notifyoncheck: %v\n", err)
			return ExitSystem
		}
		if ok {
			if _, err := unix.Write(c.notif, []byte{'\n'}); err != nil {
				return ExitSystem
			}
			return ExitReady
		}
		t.Reset(interval)
		interval = min(2*interval, supervise.CheckMax)
	}
}

// once runs the check and reports whether it exited 0 within its limit
// (false, nil: it failed, timed out, or the daemon died meanwhile).
func (c *checker) once() (bool, error) {
	cmd := exec.Command(c.prog)
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		return false, err
	}
	done := make(chan error, 1)
	go func() { done <- reap.Wait(cmd) }()
	limit := time.NewTimer(c.timeout)
	defer limit.Stop()
	select {
	case err := <-done:
		return err == nil, nil
	case <-limit.C:
		fmt.Fprintf(os.Stderr, "gosv notifyoncheck: %s: killed after %v\n", c.prog, c.timeout)
	case <-c.dead:
	}
	cmd.Process.Kill()
	<-done
	return false, nil
}
