package main

import (
	"context"
	"io"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/events"
	"github.com/gosv/gosv/internal/logdir"
)

type eventsOptions struct {
	ScanDir  string
	Follow   bool
	JSON     bool
	Services []string
	Stdout   io.Writer
}

const eventsLong = `Show the events of the supervised services: each start, readiness, exit
(with its code or signal), restart, backoff, give-up, unhealthy and
recovered, oldest first, from the events log the scanner keeps in
SCANDIR/.gosv-events (rotated, at most 6 MiB). A service directory run by
gosv supervise keeps its own, in supervise/gosv/events: give the directory
as --scandir.

With SERVICE arguments, only their events are shown (a logger is
NAME/log). With -f, new events are shown as they happen, across
rotations, until interrupted. With --json, the log's lines are printed as
they are: one JSON object per event (time, service, event, pid, exit_code
or signal, delay_ms, message); see docs/events-metrics.md.

EXIT STATUS
  0    success
  100  usage error
  111  no events log, or system error`

func newEventsCmd(e *env, runF func(*eventsOptions) error) *cobra.Command {
	opts := &eventsOptions{Stdout: e.Stdout}
	c := &cobra.Command{
		Use:         "events [-f] [--json] [SERVICE...]",
		Short:       "Show the services' starts, exits, restarts and health changes",
		Long:        eventsLong,
		Annotations: map[string]string{cancelOnSignal: "1"}, // -f ends cleanly on SIGINT
		RunE: func(c *cobra.Command, args []string) error {
			opts.Services = args
			if runF != nil {
				return runF(opts)
			}
			return runEvents(c.Context(), opts)
		},
	}
	c.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "show new events as they happen")
	c.Flags().BoolVar(&opts.JSON, "json", false, "print the JSON lines of the log")
	c.Flags().StringVar(&opts.ScanDir, "scandir", logdir.DefaultScanDir, "the scan `DIR` (or a gosv supervise service directory)")
	return c
}

func runEvents(ctx context.Context, opts *eventsOptions) error {
	return events.Show(ctx, events.ShowOptions{Dir: opts.ScanDir, Follow: opts.Follow, JSON: opts.JSON,
		Services: opts.Services, Out: opts.Stdout})
}
