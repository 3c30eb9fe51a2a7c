package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/scan"
)

type superviseOptions struct {
	Dir string
}

const superviseLong = `Supervise one service directory in its own process, as s6-supervise
does: the same event loop as gosv svscan, with exactly one service. Use it
when a service needs its own failure domain; gosv svscan supervises many
services in one process at a fraction of the memory.

Signals: SIGTERM stops the service then exits, SIGHUP exits after the
service's next death, SIGQUIT exits at once leaving the service running
(a later gosv supervise or gosv svscan adopts it), SIGINT sends SIGINT to
the service's process group and exits.

Events (start, ready, exit, restart…) go to servicedir/supervise/gosv/events
(read them with gosv events --scandir servicedir) and to its on-event hook.

EXIT STATUS
  0    exited on request
  100  usage error, or another supervisor holds DIR/supervise/lock
  111  system error during setup`

func newSuperviseCmd(e *env, runF func(*superviseOptions) error) *cobra.Command {
	opts := &superviseOptions{}
	return s6Cmd(&cobra.Command{
		Use:   "supervise servicedir",
		Short: "Supervise one service directory (s6-supervise)",
		Long:  superviseLong,
		RunE: func(c *cobra.Command, args []string) error {
			if helpRequested(args) {
				return c.Help()
			}
			if len(args) != 1 {
				return &usageError{}
			}
			opts.Dir = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runSupervise(c.Context(), e, opts)
		},
	})
}

func runSupervise(_ context.Context, e *env, opts *superviseOptions) error {
	if err := scan.EnsureEmptySignalMask(); err != nil {
		return err
	}
	return scan.Run(scan.Config{Prog: "gosv supervise " + opts.Dir, ServiceDir: opts.Dir,
		NotifyFd: -1, Stderr: e.Stderr})
}
