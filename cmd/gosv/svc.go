package main

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/svctl"
	"github.com/gosv/gosv/svwait"
)

type svcOptions struct {
	Dir     string
	Letters []byte        // command letters in command-line order
	Wait    byte          // -w letter, 0 without -w
	Timeout time.Duration // -T; 0 = none
	Warn    func(string)
}

const svcLong = `Send commands to the supervisor of a service directory, as s6-svc does.

Each option among -abqhkti12pcyroduDUxOQ appends its letter, in command-line
order, to the commands written to DIR/supervise/control in one write (at most
62). Among them: -u up, -d down, -o once, -r restart, -x exit the supervisor
after the service, -p/-c pause/continue, -t/-h/-k… send a signal, -D/-U also
create/remove DIR/down, -O/-Q want down without a signal.

-w STATE waits, after sending the commands, until the service reaches STATE:
u up, U up and ready, d down, D down and ready, r restarted, R restarted and
ready. -wU and -wR need readiness notification (DIR/notification-fd);
without it they become -wu and -wr, with a warning. -T MS limits the wait.
Without commands and without -w, gosv svc only checks that a supervisor
listens.

EXIT STATUS
  0    commands sent (and, with -w, the state reached)
  1    with -w: the service failed permanently or its supervisor exited
  99   with -w: the -T timeout passed
  100  usage error, or no supervisor listening on DIR
  111  system error (for example DIR does not exist)`

func newSvcCmd(e *env, runF func(*svcOptions) error) *cobra.Command {
	opts := &svcOptions{}
	return s6Cmd(&cobra.Command{
		Use:   "svc [-wu|-wU|-wd|-wD|-wr|-wR] [-T timeout] [-abqhkti12pcyroduDUxOQ] servicedir",
		Short: "Control a supervised service (s6-svc)",
		Long:  svcLong,
		RunE: func(c *cobra.Command, args []string) error {
			if helpRequested(args) {
				return c.Help()
			}
			extra, err := parseSvcArgs(args, opts)
			if err != nil {
				return err
			}
			opts.Warn = e.warner(c)
			if extra {
				opts.Warn("ignoring extra arguments")
			}
			if runF != nil {
				return runF(opts)
			}
			return runSvc(c.Context(), opts)
		},
	})
}

// parseSvcArgs parses s6-svc's command line; extra reports operands after
// the service directory, which s6-svc ignores with a warning.
func parseSvcArgs(args []string, opts *svcOptions) (extra bool, err error) {
	p := getopt.New(args, servicedir.ControlLetters+"T:w:")
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return false, &usageError{err: err}
		}
		switch {
		case opt == getopt.End:
			operands := args[p.Index():]
			if len(operands) == 0 {
				return false, &usageError{}
			}
			if operands[0] == "" {
				return false, &usageError{err: errors.New("invalid service path")}
			}
			opts.Dir = operands[0]
			return len(operands) > 1, nil
		case opt == 'T':
			ms, err := strconv.ParseUint(arg, 10, 32)
			if err != nil {
				return false, usageErrorf("invalid timeout %q", arg)
			}
			opts.Timeout = time.Duration(ms) * time.Millisecond
		case opt == 'w':
			// s6-svc looks at the first character only: -wUx is -wU.
			if arg == "" {
				return false, usageErrorf("invalid wait state %q", arg)
			}
			if _, ok := svwait.GoalFor(arg[0]); !ok {
				return false, usageErrorf("invalid wait state %q", arg)
			}
			opts.Wait = arg[0]
		default:
			if len(opts.Letters) >= svctl.MaxSvcLetters {
				return false, &usageError{err: svctl.ErrTooManyCommands}
			}
			opts.Letters = append(opts.Letters, byte(opt))
		}
	}
}

func runSvc(ctx context.Context, opts *svcOptions) error {
	return svctl.Svc(ctx, svctl.SvcRequest{
		Dir: opts.Dir, Letters: opts.Letters, Wait: opts.Wait, Timeout: opts.Timeout, Warn: opts.Warn,
	})
}
