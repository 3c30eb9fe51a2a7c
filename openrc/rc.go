package openrc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gosv/gosv/internal/reap"
)

// RC reads and writes OpenRC's state under RC_SVCDIR the way librc does,
// for the files librc offers no command for (daemon records) or that are
// plain files (options). Marks go through OpenRC's own mark_service_*
// programs, because librc's rc_service_mark has many side effects.
type RC struct {
	SvcDir     string // RC_SVCDIR
	LibexecDir string // RC_LIBEXECDIR, for sbin/mark_service_*
}

// SetValue is librc's rc_service_value_set: options/<svc>/<key> holds the
// value, without a newline.
func (rc RC) SetValue(svc, key, val string) error {
	if err := rc.MakeOptionsDir(svc); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(rc.SvcDir, "options", svc, key), []byte(val), 0o644)
}

// MakeOptionsDir creates options/<svc>, where a generated run records
// child_pid before start has recorded anything.
func (rc RC) MakeOptionsDir(svc string) error {
	return os.MkdirAll(filepath.Join(rc.SvcDir, "options", svc), 0o755)
}

// Value is rc_service_value_get.
func (rc RC) Value(svc, key string) (string, bool) {
	b, err := os.ReadFile(filepath.Join(rc.SvcDir, "options", svc, key))
	return string(b), err == nil
}

// UnsetValue removes an option.
func (rc RC) UnsetValue(svc, key string) {
	os.Remove(filepath.Join(rc.SvcDir, "options", svc, key))
}

// SetDaemon records the service's daemon as rc_service_daemon_set does
// (daemons/<svc>/001: exec=, argv_N=, pidfile=). librc then calls the
// service crashed when the pid in pidfile is dead (rc_service_daemons_crashed
// reads it with fscanf "%d"), which is how rc-status, rc-status -c and
// rc-service --ifcrashed learn about gosv.
func (rc RC) SetDaemon(svc string, argv []string, pidfile string) error {
	dir := filepath.Join(rc.SvcDir, "daemons", svc)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var b strings.Builder
	b.WriteString("exec=")
	if len(argv) > 0 {
		b.WriteString(argv[0])
	}
	for i, a := range argv {
		fmt.Fprintf(&b, "\nargv_%d=%s", i, a)
	}
	fmt.Fprintf(&b, "\npidfile=%s\n", pidfile)
	_, err := writeIfChanged(filepath.Join(dir, "001"), b.String(), 0o644)
	return err
}

// ClearDaemons removes the service's daemon records.
func (rc RC) ClearDaemons(svc string) error {
	err := os.RemoveAll(filepath.Join(rc.SvcDir, "daemons", svc))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// State is the base state of an OpenRC service.
type State string

const (
	Stopped  State = "stopped"
	Starting State = "starting"
	Started  State = "started"
	Stopping State = "stopping"
	Inactive State = "inactive"
)

// State returns the service's base state, and whether it is marked failed.
func (rc RC) State(svc string) (State, bool) {
	st := Stopped
	for _, s := range []State{Starting, Started, Stopping, Inactive} {
		if _, err := os.Lstat(filepath.Join(rc.SvcDir, string(s), svc)); err == nil {
			st = s
			break
		}
	}
	_, err := os.Lstat(filepath.Join(rc.SvcDir, "failed", svc))
	return st, err == nil
}

// Mark marks the service with OpenRC's mark_service_<state> as an outside
// program does: without RC_SVCNAME, so no openrc-run is signalled
// (OpenRC's mark_service_* helpers act on RC_SVCNAME's openrc-run
// otherwise). Marking stopped removes options/<svc> and daemons/<svc>.
func (rc RC) Mark(svc, state string) error {
	prog := filepath.Join(rc.LibexecDir, "sbin", "mark_service_"+state)
	cmd := exec.Command(prog, svc)
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		if !isOpenRCVar(name) {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "RC_SVCDIR="+rc.SvcDir, "RC_LIBEXECDIR="+rc.LibexecDir)
	if out, err := reap.CombinedOutput(cmd); err != nil {
		return fmt.Errorf("%s %s: %v: %s", prog, svc, err, strings.TrimSpace(string(out)))
	}
	return nil
}
