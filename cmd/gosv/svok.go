package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/svctl"
)

type svokOptions struct {
	Dir string
}

const svokLong = `Check whether a supervisor is running on a service directory, as s6-svok
does: it holds the lock DIR/supervise/lock. The status file is not looked at.

EXIT STATUS
  0    a supervisor is running
  1    no supervisor is running (or DIR does not exist)
  100  usage error
  111  system error (for example DIR/supervise is not a directory)`

func newSvokCmd(e *env, runF func(*svokOptions) error) *cobra.Command {
	opts := &svokOptions{}
	return s6Cmd(&cobra.Command{
		Use:   "svok servicedir",
		Short: "Check that a service directory is supervised (s6-svok)",
		Long:  svokLong,
		RunE: func(c *cobra.Command, args []string) error {
			if helpRequested(args) {
				return c.Help()
			}
			// Like s6-svok, no option parsing: the first argument is the
			// directory, whatever it looks like.
			if len(args) == 0 {
				return &usageError{}
			}
			opts.Dir = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runSvok(c.Context(), opts)
		},
	})
}

func runSvok(_ context.Context, opts *svokOptions) error {
	ok, err := svctl.Svok(opts.Dir)
	if err == nil && !ok {
		return silentExit(exitFalse)
	}
	return err
}
