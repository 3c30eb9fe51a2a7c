package main

import (
	"context"
	"path/filepath"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/initd"
	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/scan"
)

type initOptions struct {
	Stage1, Stage3 string
	Kill           time.Duration
	NotifyFd       int
	Dir            string
	Main           []string
}

const initLong = `Run as PID 1 (of a container, or of the machine) in runit's three stages.

Stage 1 runs FILE once, before any service; if it fails, no service starts
and stage 3 follows. Stage 2 supervises SCANDIR exactly as gosv svscan does,
and runs COMMAND, if given, as tini runs a container's CMD: when it exits,
the services are stopped and gosv exits with its exit code (128+signal if
it was killed). Orphans are reaped all along.

Stage 3 begins on SIGTERM, SIGINT or SIGPWR, on the scanner's exit letters
(gosv svscanctl -t, -i, -q), or when COMMAND ends: every service's process
group gets its down-signal (COMMAND gets the signal received, or SIGTERM),
SIGKILL follows after -t milliseconds, then FILE of -3 runs (bounded by -t
too), then every process left gets SIGTERM and, 2 seconds later, SIGKILL.
Then gosv exits; as the machine's real PID 1 it syncs and halts, powers off
or reboots with reboot(2) instead (docs/init.md has the table of signals
and letters).

  -1 FILE   stage 1
  -3 FILE   stage 3
  -t ms     from the down-signals to SIGKILL (default 10000)
  -d fd     write a newline to fd once the scanner is ready, then close it

EXIT STATUS
  N    COMMAND's exit code, or 128+signal; without COMMAND, 0
  N    stage 1's exit code when it failed
  100  usage error
  111  system error: the scan directory could not be taken, or a stage
       could not be spawned
  126  COMMAND could not be executed
  127  COMMAND was not found`

func newInitCmd(e *env, runF func(*initOptions) error) *cobra.Command {
	opts := &initOptions{NotifyFd: -1, Kill: initd.DefaultKill}
	return s6Cmd(&cobra.Command{
		Use:   "init [-1 file] [-3 file] [-t ms] [-d fd] scandir [-- command [arg...]]",
		Short: "Be PID 1: stages 1, 2 (the scanner and a main command) and 3",
		Long:  initLong,
		RunE:  s6RunE(opts, parseInitArgs, runF, func(c *cobra.Command) error { return runInit(c.Context(), e, opts) }),
	})
}

func parseInitArgs(args []string, opts *initOptions) error {
	p := getopt.New(args, "1:3:t:d:")
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return &usageError{err: err}
		}
		if opt == getopt.End {
			break
		}
		switch opt {
		case '1', '3':
			abs, err := filepath.Abs(arg)
			if err != nil {
				return err
			}
			if opt == '1' {
				opts.Stage1 = abs
			} else {
				opts.Stage3 = abs
			}
		case 't', 'd':
			n, err := strconv.ParseUint(arg, 10, 31)
			if err != nil {
				return usageErrorf("-%c: invalid number %q", opt, arg)
			}
			if opt == 't' {
				opts.Kill = time.Duration(n) * time.Millisecond
			} else if n < 3 {
				return usageErrorf("-d: fd must be at least 3")
			} else {
				opts.NotifyFd = int(n)
			}
		}
	}
	rest := args[p.Index():]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:] // getopt leaves a -- that follows an option's argument
	}
	switch {
	case len(rest) == 0:
		return usageErrorf("missing scandir")
	case len(rest) == 1:
	case rest[1] != "--":
		return usageErrorf("unexpected %q after scandir: the command follows --", rest[1])
	case len(rest) == 2:
		return usageErrorf("missing command after --")
	default:
		opts.Main = rest[2:]
	}
	opts.Dir = rest[0]
	return nil
}

func runInit(_ context.Context, e *env, opts *initOptions) error {
	if err := scan.EnsureEmptySignalMask(); err != nil {
		return err
	}
	code, err := initd.Run(initd.Options{Prog: "gosv init", Stage1: opts.Stage1, Stage3: opts.Stage3,
		Kill: opts.Kill, ScanDir: opts.Dir, Main: opts.Main, NotifyFd: opts.NotifyFd, Stderr: e.Stderr})
	if err != nil {
		return err
	}
	return silentExit(code)
}
