package servicedir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestNoSymlinkFollowed plants, in a service directory, symlinks at every
// name the supervisor creates or truncates, each pointing at a file
// outside (existing or not), and runs every writer. The targets must be
// untouched and nothing may appear outside. supervise/ itself is a
// symlink, which s6 allows and which must keep working.
func TestNoSymlinkFollowed(t *testing.T) {
	victim := t.TempDir() // stands for root-owned files elsewhere
	dir := t.TempDir()    // the user's service directory
	real := filepath.Join(t.TempDir(), "supervise")
	if err := os.Mkdir(real, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, SuperviseDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(real, "gosv"), 0o700); err != nil {
		t.Fatal(err)
	}
	const precious = "precious\n" // 9 bytes: not a multiple of 14 either
	plant := map[string]bool{     // name in the service dir -> target exists
		"supervise/status.new":           true,
		"supervise/death_tally":          true,
		"supervise/death_tally.new":      false,
		"supervise/lock":                 false,
		"supervise/gosv/pid.new":         true,
		"supervise/gosv/supervisor.new":  false,
		"supervise/gosv/status-text.new": true,
		"down":                           true,
	}
	i := 0
	targets := map[string]bool{}
	for name, exists := range plant {
		i++
		target := filepath.Join(victim, "t"+string(rune('a'+i)))
		if exists {
			if err := os.WriteFile(target, []byte(precious), 0o600); err != nil {
				t.Fatal(err)
			}
		}
		targets[target] = exists
		if err := os.Symlink(target, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	// The fake gosv/ dir of another service: a symlinked directory below
	// supervise/ must not be entered either.
	other := t.TempDir()
	if err := os.Symlink(victim, filepath.Join(other, "supervise")); err != nil {
		t.Fatal(err)
	}

	now := time.Now()
	st := Status{Stamp: now, ReadyStamp: now, Pid: 42, WantUp: true}
	if err := WriteStatus(dir, &st); err != nil {
		t.Errorf("WriteStatus: %v", err)
	}
	if _, err := ResetDeathTally(dir); err != nil {
		t.Errorf("ResetDeathTally: %v", err)
	}
	if err := AppendDeath(dir, Death{Stamp: now, Code: 1}, 10); err != nil {
		t.Errorf("AppendDeath: %v", err)
	}
	if err := WritePidRecord(dir, PidRecord{Pid: 42, StartTime: 7}); err != nil {
		t.Errorf("WritePidRecord: %v", err)
	}
	if err := WriteRecord(dir, SupervisorRecordPath, PidRecord{Pid: 43, StartTime: 8}); err != nil {
		t.Errorf("WriteRecord: %v", err)
	}
	if err := WriteFile(dir, StatusTextPath, []byte("hello\n")); err != nil {
		t.Errorf("WriteFile: %v", err)
	}
	if err := CreateDown(dir); err == nil || !errors.Is(err, unix.ELOOP) {
		t.Errorf("CreateDown on a symlink: %v, want ELOOP", err)
	}
	if f, err := Lock(filepath.Join(dir, LockPath), 0o644); err == nil {
		f.Close()
		t.Errorf("Lock on a symlink succeeded")
	}
	if err := os.Symlink(victim, filepath.Join(real, "gosv2")); err != nil {
		t.Fatal(err)
	}
	if err := writeAtomic(dir, "supervise/gosv2/pid", []byte("1 1\n"), 0o644); !errors.Is(err, unix.ENOTDIR) && !errors.Is(err, unix.ELOOP) {
		t.Errorf("write below a symlinked directory: %v, want ENOTDIR or ELOOP", err)
	}

	// The writes happened, in the real supervise/.
	if got, err := ReadStatus(dir); err != nil || got.Pid != 42 {
		t.Errorf("ReadStatus = %+v, %v", got, err)
	}
	if ds, err := ReadDeathTally(dir); err != nil || len(ds) != 1 {
		t.Errorf("ReadDeathTally = %v, %v; want one record", ds, err)
	}
	if r, err := ReadPidRecord(dir); err != nil || r.Pid != 42 {
		t.Errorf("ReadPidRecord = %v, %v", r, err)
	}
	// The victims did not change, and nothing appeared next to them.
	for target, exists := range targets {
		b, err := os.ReadFile(target)
		switch {
		case exists && (err != nil || string(b) != precious):
			t.Errorf("%s changed: %q, %v", target, b, err)
		case !exists && err == nil:
			t.Errorf("%s was created", target)
		}
	}
	ents, _ := os.ReadDir(victim)
	if len(ents) != len(plant)-3 { // three targets did not exist
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("files outside the service dir: %v", names)
	}
}

// TestMkdirPrivate: the mode is exact whatever the umask, and an existing
// directory or a symlink to one is used as is.
func TestMkdirPrivate(t *testing.T) {
	old := unix.Umask(0o077)
	defer unix.Umask(old)
	dir := t.TempDir()
	p := filepath.Join(dir, "supervise")
	if err := MkdirPrivate(p, 0o711); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm() != 0o711 {
		t.Fatalf("mode = %v, %v; want 0711", fi.Mode(), err)
	}
	other := filepath.Join(dir, "other")
	if err := os.Symlink(p, other); err != nil {
		t.Fatal(err)
	}
	if err := MkdirPrivate(other, 0o700); err != nil {
		t.Errorf("symlink to a directory: %v", err)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm() != 0o711 {
		t.Errorf("existing directory chmodded to %v", fi.Mode().Perm())
	}
	f := filepath.Join(dir, "file")
	os.WriteFile(f, nil, 0o644)
	if err := MkdirPrivate(f, 0o700); !errors.Is(err, unix.ENOTDIR) {
		t.Errorf("file: %v, want ENOTDIR", err)
	}
}
