package main

import (
	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/fdhold"
)

type fdholderOptions struct{}

const fdholderLong = `Hold the pipes of a scan directory's in-process logs, and each run's
notification-fd pipe until it is ready, while no scanner runs. gosv svscan
starts it (as gosv-fdholder, with its listening socket
SCANDIR/.s6-svscan/gosv-fdholder as fd 3, its directory as fd 4) the first
time a log-script or notification-fd service needs it; it is not meant to
be run by hand. It exits once its scanner leaves with nothing held, or once
its socket's name is removed.

EXIT STATUS
  0    nothing left to hold
  111  system error (fd 3 is not a listening socket)`

func newFdholderCmd(_ *env, runF func(*fdholderOptions) error) *cobra.Command {
	opts := &fdholderOptions{}
	return &cobra.Command{
		Use:    "fdholder",
		Short:  "Hold in-process log pipes for gosv svscan (internal)",
		Long:   fdholderLong,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return fdhold.Serve(3, 4)
		},
	}
}
