package servicedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestParseDaemonPid(t *testing.T) {
	for in, want := range map[string]int{
		"123\n": 123, "  42  \n": 42, "7": 7, "99\n8080\n": 99, "12 extra\n": 12,
		"": 0, "\n": 0, "-5\n": 0, "0x10\n": 0, "abc\n": 0, "0\n": 0, "99999999999\n": 0,
	} {
		if got := ParseDaemonPid([]byte(in)); got != want {
			t.Errorf("ParseDaemonPid(%q) = %d, want %d", in, got, want)
		}
	}
}

func TestReadPidfileFile(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadPidfileFile(dir); ok || err != nil {
		t.Fatalf("absent: %v %v", ok, err)
	}
	for content, want := range map[string]string{
		"/run/nginx.pid\n": "/run/nginx.pid", "  /run/x.pid": "/run/x.pid", "d.pid\n": filepath.Join(dir, "d.pid"),
	} {
		os.WriteFile(filepath.Join(dir, PidfileFile), []byte(content), 0o644)
		if got, ok, err := ReadPidfileFile(dir); !ok || err != nil || got != want {
			t.Errorf("%q: %q %v %v, want %q", content, got, ok, err, want)
		}
	}
	for _, bad := range []string{"\n", "/a b\n", ""} {
		os.WriteFile(filepath.Join(dir, PidfileFile), []byte(bad), 0o644)
		if _, ok, err := ReadPidfileFile(dir); !ok || !errors.Is(err, ErrBadValue) {
			t.Errorf("%q: %v %v, want ErrBadValue", bad, ok, err)
		}
	}
}

func TestReadDaemonPidfile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "d.pid")
	if _, err := ReadDaemonPidfile(p); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing: %v", err)
	}
	os.WriteFile(p, []byte("4321\n"), 0o644)
	d, err := ReadDaemonPidfile(p)
	if err != nil || d.Pid != 4321 || d.ModTime.IsZero() {
		t.Fatalf("%+v %v", d, err)
	}
	os.WriteFile(p, nil, 0o644)
	if d, err := ReadDaemonPidfile(p); err != nil || d.Pid != 0 {
		t.Fatalf("empty (being written): %+v %v", d, err)
	}
	// A symlink is not followed: a daemon that dropped privileges must not
	// make the supervisor read another file.
	l := filepath.Join(dir, "link.pid")
	os.Symlink(p, l)
	if _, err := ReadDaemonPidfile(l); err == nil {
		t.Fatal("symlinked pidfile was read")
	}
}
