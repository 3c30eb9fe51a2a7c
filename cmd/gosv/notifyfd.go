package main

import (
	"errors"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/internal/notifyfd"
)

type notifyFdOptions struct {
	notifyfd.Options
}

const notifyFdLong = `Run a program that says it is ready with sd_notify (READY=1 on
$NOTIFY_SOCKET) under a supervisor that reads a newline on its
notification fd, as s6-notify-fd-from-socket does: s6-supervise, or runsv
under gosv_backend=runit. gosv openrc writes it into the run of a
notify=socket service of those backends; gosv's own scanner needs none.

It binds a datagram socket, starts a watcher holding it, and execs prog
with NOTIFY_SOCKET set, so that prog keeps the supervised pid. When
READY=1 arrives from prog (or a process of its session), the watcher
writes a newline to the notification fd and exits. It also exits at the
timeout and when prog dies. The notification fd is closed in prog.

The watcher is the supervisor's child (CLONE_PARENT, where s6's tool
double-forks), so that a prog which does not reap unknown children gets no
zombie; -f makes it prog's child. It stays in prog's process group.

  -3 FD       the notification fd (default: the number in ./notification-fd)
  -t TIMEOUT  give up after TIMEOUT milliseconds (default 0: never)
  -f          no CLONE_PARENT: the watcher is prog's child

FILES
  ./notification-fd             the notification fd when -3 is not given
  /run/gosv-notify/fd-PID.sock  the socket ($TMPDIR/gosv-notify-UID/ when
                                /run is not writable), removed by the watcher

EXIT STATUS
  100  usage error (before prog is executed)
  111  system error (before prog is executed)`

func newNotifyFdCmd(e *env, runF func(*notifyFdOptions) error) *cobra.Command {
	opts := &notifyFdOptions{}
	return s6Cmd(&cobra.Command{
		Use:   "notify-fd-from-socket [-3 fd] [-t timeout] [-f] prog...",
		Short: "Turn sd_notify readiness into a newline on the notification fd",
		Long:  notifyFdLong,
		RunE: s6RunE(opts, parseNotifyFdArgs, runF, func(*cobra.Command) error {
			err := notifyfd.Exec(opts.Options)
			if errors.Is(err, notifyfd.ErrUsage) {
				return &usageError{err: err}
			}
			return err
		}),
	})
}

func parseNotifyFdArgs(args []string, opts *notifyFdOptions) error {
	var err error
	opts.Argv, err = parseNotifyArgs(args, "3:t:f", &opts.Fd, &opts.Timeout, func(rune, string) { opts.NoDoubleFork = true })
	return err
}

// parseNotifyArgs parses the options the notification commands share
// (-3 fd, -t ms) and hands any other option of optstring to other; it
// returns prog and its arguments.
func parseNotifyArgs(args []string, optstring string, fd *int, timeout *time.Duration, other func(opt rune, arg string)) ([]string, error) {
	*fd = -1
	p := getopt.New(args, optstring)
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return nil, &usageError{err: err}
		}
		if opt == getopt.End {
			break
		}
		switch opt {
		case '3', 't':
			n, err := strconv.ParseUint(arg, 10, 31)
			if err != nil {
				return nil, usageErrorf("-%c: not a number: %q", opt, arg)
			}
			if opt == '3' {
				*fd = int(n)
			} else {
				*timeout = time.Duration(n) * time.Millisecond
			}
		default:
			other(opt, arg)
		}
	}
	argv := args[p.Index():]
	if len(argv) == 0 {
		return nil, &usageError{}
	}
	return argv, nil
}

type notifyWatchOptions struct{}

const notifyWatchLong = `The watcher gosv notify-fd-from-socket (mode socket, arg the socket's
path) and gosv notifyoncheck (mode check, arg the check program) start:
fd 3 the socket, fd 4 the notification fd, fd 5 a pidfd of the daemon.
It is not meant to be run by hand.

EXIT STATUS
  0    ready and a newline written, or the daemon died first
  99   no READY=1 within the timeout
  100  usage error
  111  system error`

func newNotifyWatchCmd(_ *env, runF func(*notifyWatchOptions) error) *cobra.Command {
	opts := &notifyWatchOptions{}
	return &cobra.Command{
		Use:    notifyfd.WatchCommand + " mode arg pid timeout-ms",
		Short:  "The watcher of notify-fd-from-socket and notifyoncheck (internal)",
		Long:   notifyWatchLong,
		Hidden: true,
		Args:   usageArgs(cobra.ExactArgs(4)),
		RunE: func(_ *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			pid, err1 := strconv.Atoi(args[2])
			ms, err2 := strconv.ParseInt(args[3], 10, 64)
			if err1 != nil || err2 != nil {
				return usageErrorf("bad pid or timeout")
			}
			code, err := notifyfd.RunWatcher(args[0], args[1], pid, time.Duration(ms)*time.Millisecond)
			if err != nil {
				return &usageError{err: err}
			}
			return silentExit(code)
		},
	}
}

type notifyOnCheckOptions struct {
	notifyfd.CheckOptions
}

const notifyOnCheckLong = `Run a program whose readiness a check program tells, under a supervisor
that reads a newline on its notification fd, as s6-notifyoncheck does:
gosv's runit backend runs a hand-written directory's run under it when
the directory has a check script (runsv has no readiness of its own).

A watcher runs the check program on gosv's schedule, the one gosv's own
scanner follows for ./check: 200 ms after the start, then at intervals
doubling from 200 ms to 5 s, each run killed after its time limit. The
first run that exits 0 makes the watcher write a newline to the
notification fd and exit; it also exits when prog dies. prog is executed
in place (it keeps the supervised pid), with the notification fd closed.
The check runs without arguments (as runit's sv check runs ./check), in
the current directory, its output on prog's stdout and stderr, in prog's
process group. The watcher is the supervisor's child (CLONE_PARENT).

  -3 FD       the notification fd (default: the number in ./notification-fd)
  -t TIMEOUT  one check run's limit in milliseconds (default: ./timeout-check,
              else 2000)
  -c PROG     the check program (default ./check)

FILES
  ./notification-fd   the notification fd when -3 is not given
  ./timeout-check     one check run's limit when -t is not given
  ./check             the check program when -c is not given

EXIT STATUS
  100  usage error (before prog is executed)
  111  system error (before prog is executed)`

func newNotifyOnCheckCmd(e *env, runF func(*notifyOnCheckOptions) error) *cobra.Command {
	opts := &notifyOnCheckOptions{}
	return s6Cmd(&cobra.Command{
		Use:   "notifyoncheck [-3 fd] [-t timeout] [-c checkprog] prog...",
		Short: "Turn a check program's success into a newline on the notification fd",
		Long:  notifyOnCheckLong,
		RunE: s6RunE(opts, parseNotifyOnCheckArgs, runF, func(*cobra.Command) error {
			err := notifyfd.ExecCheck(opts.CheckOptions)
			if errors.Is(err, notifyfd.ErrUsage) {
				return &usageError{err: err}
			}
			return err
		}),
	})
}

func parseNotifyOnCheckArgs(args []string, opts *notifyOnCheckOptions) error {
	var err error
	opts.Argv, err = parseNotifyArgs(args, "3:t:c:", &opts.Fd, &opts.Timeout, func(_ rune, arg string) { opts.Check = arg })
	return err
}
