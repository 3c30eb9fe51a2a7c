package main

import (
	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/spawner"
)

type spawnerOptions struct{}

const spawnerLong = `Fork and exec services' programs for gosv svscan. The scanner starts it
(as gosv-spawner, with its socket as fd 3) before it opens its services'
files, so that each fork copies a small descriptor table instead of the
scanner's, which grows with the number of services; the children are the
scanner's (CLONE_PARENT). It is not meant to be run by hand. It exits
when its scanner does.

EXIT STATUS
  0    the scanner closed the socket
  111  system error (fd 3 is not the scanner's socket)`

func newSpawnerCmd(_ *env, runF func(*spawnerOptions) error) *cobra.Command {
	opts := &spawnerOptions{}
	return &cobra.Command{
		Use:    "spawner",
		Short:  "Fork services for gosv svscan (internal)",
		Long:   spawnerLong,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if runF != nil {
				return runF(opts)
			}
			return spawner.Serve(3)
		},
	}
}
