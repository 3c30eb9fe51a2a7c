package main

import (
	"errors"
	"flag"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var updateScripts = flag.Bool("update", false, "rewrite the golden files of testdata/script")

// TestScripts runs the CLI goldens of testdata/script (shfmt's and gh's
// acceptance style): usage, errors, exit codes and the --help of every
// command, against the gosv binary TestMain built. `go test ./cmd/gosv
// -run TestScripts -update` rewrites the goldens after a deliberate change.
//
// Beside testscript's own commands, `exits N CMD [ARG...]` runs CMD, saves
// its output for stdout/stderr/cmp, and fails unless it exits with N: the
// exit codes are part of the interface (s6's, documented in every --help).
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           filepath.Join("testdata", "script"),
		UpdateScripts: *updateScripts,
		Setup: func(e *testscript.Env) error {
			e.Setenv("PATH", filepath.Dir(gosvBin)+":/usr/bin:/bin")
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exits": cmdExits,
		},
	})
}

func cmdExits(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exits CODE COMMAND [ARG...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exits: bad code %q", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exits: %v", err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited %d, want %d", args[1], got, want)
	}
}
