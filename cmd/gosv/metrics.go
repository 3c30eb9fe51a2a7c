package main

import (
	"context"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/logdir"
	"github.com/gosv/gosv/internal/metrics"
)

type metricsOptions struct {
	Dir    string
	Stdout io.Writer
	Now    func() time.Time
}

const metricsLong = `Print the state of every service of SCANDIR (default: gosv-svscan's,
` + logdir.DefaultScanDir + `) in the Prometheus text format, labelled by
name: up, ready, want_up, healthy, health_failures, restarts_total,
last_exit_code, last_exit_signal, uptime_seconds, backoff_seconds and
given_up (all prefixed gosv_service_). A service directory prints its one
service. The values come from the files the supervisor keeps (status,
death_tally, supervise/gosv/policy and health), so this works with no
scanner running, and agrees with gosv svscan -m and -M.

EXIT STATUS
  0    success
  100  usage error
  111  SCANDIR unreadable, or system error`

func newMetricsCmd(e *env, runF func(*metricsOptions) error) *cobra.Command {
	opts := &metricsOptions{Stdout: e.Stdout, Now: e.Now}
	return &cobra.Command{
		Use:   "metrics [SCANDIR]",
		Short: "Print the services' state as Prometheus metrics",
		Long:  metricsLong,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 1 {
				return usageErrorf("expected at most one scan directory")
			}
			return nil
		},
		RunE: func(c *cobra.Command, args []string) error {
			opts.Dir = logdir.DefaultScanDir
			if len(args) == 1 {
				opts.Dir = args[0]
			}
			if runF != nil {
				return runF(opts)
			}
			return runMetrics(c.Context(), opts)
		},
	}
}

func runMetrics(_ context.Context, opts *metricsOptions) error {
	return metrics.RenderDir(opts.Stdout, opts.Dir, opts.Now())
}
