package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/internal/svctl"
)

type svscanctlOptions struct {
	Dir     string
	Letters []byte
}

const svscanctlLong = `Send commands to the scanner of a scan directory, as s6-svscanctl does.

Each option appends its letter, in command-line order, to the commands
written to DIR/.s6-svscan/control in one write (at most 64): -a rescan,
-z reap, -n/-N stop supervisors of removed services, -h rescan then -n,
-t/-i exit after stopping every supervisor, -q likewise but harsher, -b exit
leaving the supervisors running.

-X (gosv only) re-executes the scanner in place: the same pid, every
service left running and adopted by the new image (the binary the scanner
was started as, now perhaps upgraded); then waits until the new scanner
accepts control. A binary that cannot run here (missing, not executable,
another architecture) changes nothing and is reported.

EXIT STATUS
  0    commands sent; with -X, the new scanner accepts control
  100  usage error, or no scanner listening on DIR
  111  system error (for example DIR does not exist); with -X, the
       re-exec did not happen (the old scanner keeps running) or its
       outcome was not seen within a minute`

func newSvscanctlCmd(e *env, runF func(*svscanctlOptions) error) *cobra.Command {
	opts := &svscanctlOptions{}
	return s6Cmd(&cobra.Command{
		Use:   "svscanctl [-zabhitqnNX] scandir",
		Short: "Control a scanner (s6-svscanctl)",
		Long:  svscanctlLong,
		RunE:  s6RunE(opts, parseSvscanctlArgs, runF, func(c *cobra.Command) error { return runSvscanctl(c.Context(), opts) }),
	})
}

func parseSvscanctlArgs(args []string, opts *svscanctlOptions) error {
	p := getopt.New(args, svctl.ScanLetters)
	for {
		opt, _, err := p.Next()
		if err != nil {
			return &usageError{err: err}
		}
		if opt == getopt.End {
			break
		}
		if len(opts.Letters) >= svctl.MaxScanLetters {
			return &usageError{err: svctl.ErrTooManyCommands}
		}
		opts.Letters = append(opts.Letters, byte(opt))
	}
	if p.Index() == len(args) {
		return &usageError{}
	}
	opts.Dir = args[p.Index()]
	return nil
}

func runSvscanctl(_ context.Context, opts *svscanctlOptions) error {
	return svctl.Svscanctl(opts.Dir, opts.Letters)
}
