package openrc

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestLibrcState pins rc_service_state's rule: the last state directory,
// in librc's order, that holds the service wins, following symlinks.
func TestLibrcState(t *testing.T) {
	for _, tc := range []struct {
		marks []State // entries pointing at an existing init script
		dead  []State // dangling entries: librc's faccessat says absent
		want  State
	}{
		{nil, nil, Stopped},
		{[]State{Started}, nil, Started},
		{[]State{Starting}, nil, Starting},
		{[]State{Stopping}, nil, Stopping},
		{[]State{Inactive}, nil, Inactive},
		{[]State{Started, Stopping}, nil, Stopping},
		{[]State{Started, Starting}, nil, Starting},
		{[]State{Stopping, Inactive}, nil, Inactive},
		{[]State{Started, Starting, Stopping, Inactive}, nil, Inactive},
		{[]State{Started}, []State{Stopping}, Started},
		{nil, []State{Started}, Stopped},
	} {
		dir := t.TempDir()
		script := filepath.Join(dir, "web")
		os.WriteFile(script, nil, 0o755)
		mark := func(s State, target string) {
			os.MkdirAll(filepath.Join(dir, string(s)), 0o755)
			if err := os.Symlink(target, filepath.Join(dir, string(s), "web")); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range tc.marks {
			mark(s, script)
		}
		for _, s := range tc.dead {
			mark(s, filepath.Join(dir, "gone"))
		}
		if got := (RC{SvcDir: dir}).LibrcState("web"); got != tc.want {
			t.Errorf("marks %v, dangling %v: state %s, want %s", tc.marks, tc.dead, got, tc.want)
		}
	}
}

// TestStatusNotStarted: status answers supervise_status's codes for a
// service OpenRC does not think started, silently, without looking for
// its service directory (there is none here).
func TestStatusNotStarted(t *testing.T) {
	for st, want := range map[State]int{Stopped: StatusStopped, Starting: StatusStarting,
		Stopping: StatusStopping, Inactive: StatusInactive} {
		dir := t.TempDir()
		if st != Stopped {
			os.MkdirAll(filepath.Join(dir, string(st)), 0o755)
			os.Symlink("/dev/null", filepath.Join(dir, string(st), "web"))
		}
		var out bytes.Buffer
		req := &Request{Name: "web", Script: "/etc/init.d/web", Layout: Layout{SvcDir: dir, LibexecDir: dir},
			Vars: map[string]string{}, Out: &out}
		if got := Status(req); got != want || out.Len() != 0 {
			t.Errorf("%s: status %d, output %q; want %d and no output", st, got, out.String(), want)
		}
	}
}
