package svctl

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// layouts builds the service directories of s6-protocol.md §6.3 and returns
// the path to control.
var layouts = map[string]func(t *testing.T, base string) string{
	"nonexistent": func(t *testing.T, base string) string { return filepath.Join(base, "nonexistent") },
	"empty":       func(t *testing.T, base string) string { return base },
	"supervise is a file": func(t *testing.T, base string) string {
		mustWrite(t, filepath.Join(base, "supervise"))
		return base
	},
	"no control fifo": func(t *testing.T, base string) string {
		mustMkdir(t, filepath.Join(base, "supervise"))
		return base
	},
	"control is a dir": func(t *testing.T, base string) string {
		mustMkdir(t, filepath.Join(base, "supervise", "control"))
		return base
	},
	"control is a file": func(t *testing.T, base string) string {
		mustMkdir(t, filepath.Join(base, "supervise"))
		mustWrite(t, filepath.Join(base, "supervise", "control"))
		return base
	},
	"fifo without reader": func(t *testing.T, base string) string {
		mustMkdir(t, filepath.Join(base, "supervise"))
		if err := unix.Mkfifo(filepath.Join(base, servicedir.ControlPath), 0o600); err != nil {
			t.Fatal(err)
		}
		return base
	},
}

func mustMkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

func mustWrite(t *testing.T, p string) {
	t.Helper()
	if err := os.WriteFile(p, nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// kind names the class of a control error the way exit codes see it.
func kind(err error) string {
	var cde *CtlDirError
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, servicedir.ErrNotListening):
		return "not listening"
	case errors.As(err, &cde):
		return "bad control dir: " + cde.Err.Error()
	default:
		var pe *os.PathError
		if errors.As(err, &pe) && pe.Op == "control" && filepath.Base(pe.Path) == "nonexistent" {
			return "system: " + pe.Err.Error()
		}
		return "unexpected: " + err.Error()
	}
}

func TestWriteCtlErrors(t *testing.T) {
	tests := []struct {
		layout string
		want   string
	}{
		{"nonexistent", "system: no such file or directory"},
		{"empty", "not listening"},
		{"supervise is a file", "bad control dir: not a directory"},
		{"no control fifo", "not listening"}, // s6: "something is wrong with …/supervise", also 100
		{"control is a dir", "bad control dir: is a directory"},
		{"control is a file", "ok"}, // s6 appends to it too
		{"fifo without reader", "not listening"},
	}
	for _, tt := range tests {
		base := t.TempDir()
		dir := layouts[tt.layout](t, base)
		if got := kind(control(dir, []byte("u"))); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.layout, got, tt.want)
		}
	}
}

func TestWriteCtlOneWrite(t *testing.T) {
	dir := t.TempDir()
	mustMkdir(t, filepath.Join(dir, servicedir.ScanCtlDir))
	fifo := filepath.Join(dir, servicedir.ScanCtlPath)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	rd, err := unix.Open(fifo, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(rd)
	if err := Svscanctl(dir, nil); err != nil { // liveness probe: nothing written
		t.Fatal(err)
	}
	if err := Svscanctl(dir, []byte("an")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 16)
	n, err := unix.Read(rd, buf)
	if err != nil || string(buf[:n]) != "an" {
		t.Fatalf("read %q, %v; want \"an\"", buf[:n], err)
	}
}
