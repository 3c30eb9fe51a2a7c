package main

import (
	"debug/buildinfo"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime/debug"
	"strings"

	"github.com/gosv/gosv/openrc"
)

// clientSuffix ends the name of gosv's lean client (cmd/gosv-openrc): the
// hook runs GOSV-openrc, beside the gosv binary GOSV, for start, stop,
// status and reload when it is there. NOTE: here and not in the openrc
// package, which the client links: debug/buildinfo stays out of it.
const clientSuffix = "-openrc"

// clientProblem warns when the client beside the gosv binary gosv is not
// the same build as self (the running gosv's build information): the hook
// would start and stop services with one version and gosv run them with
// another. No client, no problem: the hook runs gosv itself.
func clientProblem(gosv string, self *debug.BuildInfo) *openrc.Problem {
	client := gosv + clientSuffix
	if _, err := os.Stat(client); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	bi, err := buildinfo.ReadFile(client)
	why := ""
	switch {
	case err != nil:
		why = fmt.Sprintf("its build is unknown: %v", err)
	case self == nil:
		why = "this gosv's build is unknown"
	case buildID(bi) != buildID(self):
		why = fmt.Sprintf("built from %s, %s from %s", buildID(bi), gosv, buildID(self))
	default:
		return nil
	}
	return &openrc.Problem{Pos: openrc.Pos{File: client}, Severity: openrc.Warning,
		Msg: fmt.Sprintf("the hook's client is not the same build as %s (%s): install both (make install)", gosv, why)}
}

// buildID names a build: the module's version, its commit and the
// version stamp (-ldflags), and the toolchain.
func buildID(bi *debug.BuildInfo) string {
	id := []string{bi.Main.Path + "@" + bi.Main.Version}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision", "vcs.time", "vcs.modified", "-ldflags":
			id = append(id, s.Key+"="+s.Value)
		}
	}
	return strings.Join(append(id, bi.GoVersion), " ")
}
