package servicedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadControlGroup(t *testing.T) {
	dir := t.TempDir()
	if gid, err := ReadControlGroup(dir); gid != -1 || err != nil {
		t.Fatalf("no file: %d %v", gid, err)
	}
	p := filepath.Join(dir, ControlGroupFile)
	for _, c := range []struct {
		text string
		gid  int
		bad  string // in the error, "" = none
	}{
		{"0\n", 0, ""},
		{"  4242 \n", 4242, ""},
		{"root\n", 0, ""},
		{"", -1, "no group named"},
		{"\n", -1, "no group named"},
		{"-3", -1, "out of range"},
		{"no-such-group-gosv", -1, `unknown group "no-such-group-gosv"`},
		{strings.Repeat("x", 300), -1, "longer than"},
	} {
		if err := os.WriteFile(p, []byte(c.text), 0o644); err != nil {
			t.Fatal(err)
		}
		gid, err := ReadControlGroup(dir)
		switch {
		case c.bad == "" && (err != nil || gid != c.gid):
			t.Errorf("%q: %d %v, want %d", c.text, gid, err, c.gid)
		case c.bad != "" && (err == nil || !strings.Contains(err.Error(), c.bad) || !strings.HasPrefix(err.Error(), p+": ") || !errors.Is(err, ErrBadValue)):
			t.Errorf("%q: %d %v, want an error naming %s with %q", c.text, gid, err, p, c.bad)
		}
	}
	// A symlink is not followed.
	os.Remove(p)
	os.Symlink("/etc/hostname", p)
	if _, err := ReadControlGroup(dir); !errors.Is(err, unix.ELOOP) {
		t.Errorf("symlink: %v, want ELOOP", err)
	}
}

// TestGrantGroupModes: the modes of s6-svperms -G/-E, on fds, and nothing
// world-writable; supervise/gosv/ is created.
func TestGrantGroupModes(t *testing.T) {
	dir := t.TempDir()
	gid := os.Getegid()
	if os.Geteuid() == 0 {
		gid = 4242
	}
	if err := MkdirPrivate(filepath.Join(dir, SuperviseDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := MakeEventDir(filepath.Join(dir, EventDir), os.Getegid()); err != nil {
		t.Fatal(err)
	}
	ctlPath := filepath.Join(dir, ControlPath)
	if err := unix.Mkfifo(ctlPath, 0o600); err != nil {
		t.Fatal(err)
	}
	ctl, err := unix.Open(ctlPath, unix.O_RDWR|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ctl)
	if err := GrantGroup(dir, ctl, gid); err != nil {
		t.Fatal(err)
	}
	for rel, mode := range map[string]uint32{
		SuperviseDir: unix.S_IFDIR | 0o710, ControlPath: unix.S_IFIFO | 0o620,
		GosvStateDir: unix.S_IFDIR | 0o710, EventDir: unix.S_IFDIR | 0o3730,
	} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, rel), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode != mode || int(st.Gid) != gid {
			t.Errorf("%s: mode %o gid %d, want %o gid %d", rel, st.Mode, st.Gid, mode, gid)
		}
		if st.Mode&0o002 != 0 {
			t.Errorf("%s is world-writable", rel)
		}
	}
	// Again: idempotent.
	if err := GrantGroup(dir, ctl, gid); err != nil {
		t.Fatal(err)
	}
	// A symlinked supervise/ is refused, its target untouched.
	other := t.TempDir()
	os.Rename(filepath.Join(dir, SuperviseDir), filepath.Join(other, "sup"))
	os.Symlink(filepath.Join(other, "sup"), filepath.Join(dir, SuperviseDir))
	if err := GrantGroup(dir, ctl, gid); !errors.Is(err, errSymlinkedDir) || !strings.Contains(err.Error(), filepath.Join(dir, SuperviseDir)+": ") {
		t.Errorf("symlinked supervise/: %v", err)
	}
}
