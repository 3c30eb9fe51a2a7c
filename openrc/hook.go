package openrc

import (
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

// HookName is the hook's file name in /etc/rc.conf.d.
const HookName = "gosv.conf"

// hookBinDir is the placeholder for the directory of the gosv binary.
const hookBinDir = "@BINDIR@"

//go:embed gosv.conf
var hookTemplate string

// Hook returns the hook's text for a gosv binary installed in bindir
// (what `make install` writes to /etc/rc.conf.d/gosv.conf).
func Hook(bindir string) string { return strings.ReplaceAll(hookTemplate, hookBinDir, bindir) }

// HookState says how the installed hook compares with this gosv's.
type HookState int

const (
	HookCurrent  HookState = iota // installed, identical
	HookMissing                   // not installed: supervisor=gosv falls back to start-stop-daemon
	HookOutdated                  // installed, but another version or edited
)

// CheckHook compares the hook installed at path with the one for a gosv
// binary in bindir. It reads the file as the resolver does (a regular
// file of at most MaxSourceSize bytes).
func CheckHook(path, bindir string) (HookState, error) {
	b, err := readSource(path)
	if errors.Is(err, fs.ErrNotExist) {
		return HookMissing, nil
	}
	if err != nil {
		return HookMissing, err
	}
	if string(b) == Hook(bindir) {
		return HookCurrent, nil
	}
	return HookOutdated, nil
}

// hookProblem turns a hook state into a problem for check, or nil.
func hookProblem(path string, st HookState) *Problem {
	switch st {
	case HookMissing:
		return &Problem{Pos: Pos{File: path}, Severity: Error,
			Msg: "the gosv hook is not installed: OpenRC runs supervisor=gosv services with start-stop-daemon (make install, then rc-update -u)"}
	case HookOutdated:
		return &Problem{Pos: Pos{File: path}, Severity: Error,
			Msg: fmt.Sprintf("the gosv hook differs from this gosv's (reinstall it: make install, then rc-update -u)")}
	}
	return nil
}
