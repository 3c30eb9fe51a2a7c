package main

import (
	"context"
	"errors"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/internal/svstat"
)

type svstatOptions struct {
	Dir    string
	Format svstat.Format
	Stdout io.Writer
	Now    func() time.Time
}

const svstatLong = `Print the state of a supervised service, exactly as s6-svstat does.

By default one line: "up (pid P) S seconds" or "down (exitcode C) S seconds"
/ "down (signal SIGX) S seconds", followed by ", normally up/down",
", paused", ", want up/down" and ", ready R seconds" where they apply; -n
prints signal numbers instead of names. gosv adds why, after "; ", when
its restart policy or health check has something to say: "backing off 8 s
after 4 failures (last: exit 1)", "given up at 12:03:04: respawned 11
times within 12 s", "unhealthy: GET http://127.0.0.1:8080/health → 503
(3/3)" (docs/restart-policy.md).

Field mode prints only the given values, space-separated, in order (at most
16): -u up, -w wantedup, -N normallyup, -r ready, -p pid, -e exitcode,
-s signal, -t updownfor, or -o with a comma-separated list of up, wantedup,
normallyup, ready, paused, pid, exitcode, signal, signum, updownsince,
readysince, updownfor, readyfor (any prefix selects the first match).

--json (gosv only; must be the first argument) prints a versioned JSON
object: version, dir, up, pid, ready, want_up, normally_up, paused,
finishing, since, ready_since, exit_code, signal, updown_seconds,
status_text, check_output, and when there is one explain (the words
above), policy and health (supervise/gosv/policy and health).

EXIT STATUS
  0    the state was printed
  1    no supervisor is running on the service directory
  100  usage error
  111  system error (for example an unreadable status file)`

func newSvstatCmd(e *env, runF func(*svstatOptions) error) *cobra.Command {
	opts := &svstatOptions{Stdout: e.Stdout, Now: e.Now}
	return s6Cmd(&cobra.Command{
		Use:   "svstat [--json] [-uwNrpest | -o up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor] [-n] servicedir",
		Short: "Print the state of a supervised service (s6-svstat)",
		Long:  svstatLong,
		RunE:  s6RunE(opts, parseSvstatArgs, runF, func(c *cobra.Command) error { return runSvstat(c.Context(), opts) }),
	})
}

// shortFields maps s6-svstat's short options to fields.
var shortFields = map[rune]svstat.Field{
	'u': svstat.Up, 'w': svstat.WantedUp, 'N': svstat.NormallyUp, 'r': svstat.Ready,
	'p': svstat.Pid, 'e': svstat.ExitCode, 's': svstat.Signal, 't': svstat.UpdownFor,
}

func parseSvstatArgs(args []string, opts *svstatOptions) error {
	if len(args) > 0 && args[0] == "--json" {
		opts.Format.JSON = true
		args = args[1:]
	}
	p := getopt.New(args, "no:uwNrpest")
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return &usageError{err: err}
		}
		switch opt {
		case getopt.End:
			operands := args[p.Index():]
			if len(operands) == 0 {
				return &usageError{}
			}
			if opts.Format.JSON && len(opts.Format.Fields) > 0 {
				return &usageError{err: errors.New("--json excludes field options")}
			}
			opts.Dir = operands[0] // s6-svstat ignores the rest
			return nil
		case 'n':
			opts.Format.Numeric = true
		case 'o':
			opts.Format.Fields, err = svstat.AppendFields(opts.Format.Fields, arg)
		default:
			opts.Format.Fields, err = svstat.AppendField(opts.Format.Fields, shortFields[opt])
		}
		if err != nil {
			return &usageError{err: err}
		}
	}
}

func runSvstat(_ context.Context, opts *svstatOptions) error {
	return svstat.Print(opts.Stdout, opts.Dir, opts.Format, opts.Now)
}
