package main

import (
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// addVersionFunc registers versionLine with cobra's templates, which are
// global: once, so that roots built concurrently (tests) do not race.
var addVersionFunc sync.Once

// version and commit are set by the Makefile for a release build
// (-ldflags "-X main.version=... -X main.commit=..."); otherwise the build
// information the Go toolchain records answers.
var version, commit string

// versionLine is what gosv --version prints: the version, the commit (with
// "modified" when the tree had uncommitted changes) and the Go toolchain.
// It reads the build information only when asked: every other command
// starts without parsing it.
func versionLine() string {
	v, rev, modified := version, commit, false
	if bi, ok := debug.ReadBuildInfo(); ok {
		if v == "" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			v = bi.Main.Version // go install github.com/gosv/gosv/cmd/gosv@vX.Y.Z
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				if rev == "" {
					rev = s.Value
				}
			case "vcs.modified":
				modified = s.Value == "true"
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if rev == "" {
		rev = "unknown"
	}
	var b strings.Builder
	b.WriteString("gosv version " + v + " (commit " + rev)
	if modified {
		b.WriteString(", modified")
	}
	b.WriteString(") " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH)
	return b.String()
}
