package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/logdir"
)

type logsOptions struct {
	Target  string // DIR or NAME
	ScanDir string
	Lines   int
	Follow  bool
	Stdout  io.Writer
	Warn    func(string)
}

const logsLong = `Show the last lines of a log directory, with TAI64N stamps converted to
local time (as s6-tai64nlocal does). The archives (@TAI64N.s, .u) and
current are read in order, so it works on directories written by gosv
log, the in-process logger, s6-log, svlogd and multilog.

The argument is a log directory, a service directory, or the NAME of a
service in the scan directory. For a service, the log directory comes from
its log-script file, or else from the s6-log, gosv log, svlogd or multilog
command that its log/run script runs (the last such line, split on blanks;
relative directories are relative to log/).

With -f, lines are shown as they are written, across rotations, until
interrupted.

EXIT STATUS
  0    success
  100  usage error
  111  no log directory found, or system error`

func newLogsCmd(e *env, runF func(*logsOptions) error) *cobra.Command {
	opts := &logsOptions{Stdout: e.Stdout}
	c := &cobra.Command{
		Use:   "logs [-f] [-n lines] DIR|NAME",
		Short: "Show a service's recent log lines in local time",
		Long:  logsLong,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usageErrorf("expected one log directory or service name")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Target = args[0]
			opts.Warn = e.warner(c)
			if runF != nil {
				return runF(opts)
			}
			return runLogs(c.Context(), opts)
		},
	}
	c.Flags().IntVarP(&opts.Lines, "lines", "n", 10, "show the last `N` lines")
	c.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "show new lines as they are written")
	c.Flags().StringVar(&opts.ScanDir, "scandir", logdir.DefaultScanDir, "where service NAMEs are looked up")
	return c
}

func runLogs(ctx context.Context, opts *logsOptions) error {
	dirs, err := logdir.Resolve(opts.ScanDir, opts.Target)
	if err != nil {
		return err
	}
	for _, d := range dirs[1:] {
		opts.Warn("also logged to " + d)
	}
	return logdir.Show(ctx, dirs[0], opts.Lines, opts.Follow, opts.Stdout)
}
