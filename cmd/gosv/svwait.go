package main

import (
	"context"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/svwait"
)

type svwaitOptions struct {
	Dirs    []string
	Goal    svwait.Goal
	Mode    svwait.Mode
	Timeout time.Duration // -t; 0 = none
}

const svwaitLong = `Wait until services reach a state, as s6-svwait does: -u up (the default),
-U up and ready, -d down, -D down and ready (finish done), -r restarted
(every service down first, then up), -R restarted and ready. -a waits for
all the services (the default), -o for at least one. -t MS gives up after
MS milliseconds (0: never). The last of -uUdDrR and of -ao wins.

It subscribes to each DIR/event first and then reads DIR/supervise/status,
so no transition is missed, and it never polls. It works on gosv's and on
s6-supervise's directories. Unlike s6-svwait, a service whose supervisor is
not running when the wait starts, or dies during it, fails at once unless
it is already in the wanted state: gosv watches the holder of
DIR/supervise/lock with a pidfd (s6-svwait would wait until -t, or forever).

READINESS
A service is ready when its daemon says so, after every start. gosv takes
three sources; each sets the same ready flag and sends the same U event:
  notification-fd      s6's protocol: the daemon writes a newline to this fd
  notification-socket  sd_notify: READY=1 on the datagram socket named by
                       $NOTIFY_SOCKET ("main": from the run pid only, "all":
                       from its whole session); RELOADING=1 clears readiness
                       until the next READY=1; EXTEND_TIMEOUT_USEC= moves
                       the readiness deadline, and -U/-R waits honour it: the
                       wait lasts until the later of -t and that deadline
  check                an executable run while the service is up and not
                       ready (200 ms, doubling to 5 s) until it exits 0
A service with none of them is never ready: -U and -R wait until -t.

FILES
  DIR/event/                        fifodir the supervisor notifies
  DIR/supervise/status, lock        state, and the supervisor's lock
  DIR/supervise/gosv/supervisor     gosv's pid record, to watch it
  DIR/supervise/gosv/ready-deadline deadline extended by sd_notify
  DIR/supervise/gosv/check-output   why the last check failed

A wait that ends without its goal says why, per service: the supervisor
exited, died or was not running, the service failed permanently (finish
exited 125), how its run process last died, the last check output.

EXIT STATUS
  0    the goal was reached
  1-98 that many services failed (permanent failure, or the supervisor
       exited, died or was not running)
  99   the -t timeout (or the readiness deadline) passed first
  100  usage error
  111  system error (for example DIR or DIR/supervise/status missing)`

func newSvwaitCmd(e *env, runF func(*svwaitOptions) error) *cobra.Command {
	opts := &svwaitOptions{}
	return s6Cmd(&cobra.Command{
		Use:   "svwait [-u|-U|-d|-D|-r|-R] [-a|-o] [-t timeout] servicedir...",
		Short: "Wait for services to reach a state (s6-svwait)",
		Long:  svwaitLong,
		RunE:  s6RunE(opts, parseSvwaitArgs, runF, func(c *cobra.Command) error { return runSvwait(c.Context(), opts) }),
	})
}

// parseSvwaitArgs parses s6-svwait's command line: options up to the first
// operand, then at least one service directory.
func parseSvwaitArgs(args []string, opts *svwaitOptions) error {
	p := getopt.New(args, "uUdDrRaot:")
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return &usageError{err: err}
		}
		switch opt {
		case getopt.End:
			opts.Dirs = args[p.Index():]
			if len(opts.Dirs) == 0 {
				return &usageError{}
			}
			return nil
		case 'a':
			opts.Mode = svwait.All
		case 'o':
			opts.Mode = svwait.Any
		case 't':
			ms, err := strconv.ParseUint(arg, 10, 32)
			if err != nil {
				return usageErrorf("invalid timeout %q", arg)
			}
			opts.Timeout = time.Duration(ms) * time.Millisecond
		default:
			opts.Goal, _ = svwait.GoalFor(byte(opt))
		}
	}
}

func runSvwait(ctx context.Context, opts *svwaitOptions) error {
	start := time.Now() // s6-svwait takes its deadline before subscribing
	w, err := svwait.Listen(opts.Dirs, opts.Goal, opts.Mode)
	if err != nil {
		return err
	}
	defer w.Close()
	if opts.Timeout > 0 {
		w.Deadline = start.Add(opts.Timeout)
	}
	return w.Wait(ctx)
}
