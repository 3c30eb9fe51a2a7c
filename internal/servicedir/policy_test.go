package servicedir

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func exited(c int) uint16         { return uint16(c) << 8 }
func killed(s unix.Signal) uint16 { return uint16(s) }

func TestSuccessExits(t *testing.T) {
	for _, c := range []struct {
		in      string
		yes, no []uint16
		format  string
	}{
		{"0", []uint16{exited(0)}, []uint16{exited(1), killed(unix.SIGTERM)}, "0\n"},
		{"", nil, []uint16{exited(0)}, "\n"},
		{" 2\n0  TERM sighup SIG10 255", []uint16{exited(0), exited(2), exited(255), killed(unix.SIGTERM), killed(unix.SIGHUP), killed(unix.SIGUSR1)},
			[]uint16{exited(1), killed(unix.SIGKILL)}, "0 2 255 SIGHUP SIGUSR1 SIGTERM\n"},
		{"SIG64", []uint16{killed(64)}, []uint16{exited(0)}, "SIG64\n"},
	} {
		s, err := ParseSuccessExits([]byte(c.in))
		if err != nil {
			t.Fatalf("%q: %v", c.in, err)
		}
		for _, w := range c.yes {
			if !s.Has(w) {
				t.Errorf("%q: %#x not a success", c.in, w)
			}
		}
		for _, w := range c.no {
			if s.Has(w) {
				t.Errorf("%q: %#x a success", c.in, w)
			}
		}
		if got := string(s.Format()); got != c.format {
			t.Errorf("%q: Format = %q, want %q", c.in, got, c.format)
		}
	}
	for _, bad := range []string{"256", "-1", "SIGNOPE", "1x", "SIG0", "SIG65", "0,1"} {
		if _, err := ParseSuccessExits([]byte(bad)); !errors.Is(err, ErrBadValue) {
			t.Errorf("%q: err = %v, want ErrBadValue", bad, err)
		}
	}
}

func TestReadPolicyFiles(t *testing.T) {
	dir := t.TempDir()
	if r, err := ReadRespawnOn(dir); r != RespawnAlways || err != nil {
		t.Fatalf("missing respawn-on: %v %v", r, err)
	}
	if s, err := ReadSuccessExits(dir); s != DefaultSuccessExits || err != nil {
		t.Fatalf("missing success-exit: %v %v", s, err)
	}
	os.WriteFile(filepath.Join(dir, RespawnOnFile), []byte("failure\n"), 0o644)
	os.WriteFile(filepath.Join(dir, SuccessExitFile), []byte("0 1 TERM\n"), 0o644)
	if r, err := ReadRespawnOn(dir); r != RespawnFailure || err != nil {
		t.Fatalf("respawn-on: %v %v", r, err)
	}
	if s, err := ReadSuccessExits(dir); !s.Has(exited(1)) || !s.Has(killed(unix.SIGTERM)) || err != nil {
		t.Fatalf("success-exit: %v %v", s, err)
	}
	os.WriteFile(filepath.Join(dir, RespawnOnFile), []byte("sometimes\n"), 0o644)
	os.WriteFile(filepath.Join(dir, SuccessExitFile), []byte("0 300\n"), 0o644)
	r, err := ReadRespawnOn(dir)
	var pe *os.PathError
	if r != RespawnAlways || !errors.As(err, &pe) || pe.Path != filepath.Join(dir, RespawnOnFile) {
		t.Errorf("bad respawn-on: %v %v", r, err)
	}
	s, err := ReadSuccessExits(dir)
	if s != DefaultSuccessExits || !errors.As(err, &pe) || pe.Path != filepath.Join(dir, SuccessExitFile) || !errors.Is(err, ErrBadValue) {
		t.Errorf("bad success-exit: %v %v", s, err)
	}
}

// FuzzSuccessExits: parsing never panics; what parses formats to a text
// that parses to the same set, and formatting is a fixed point.
func FuzzSuccessExits(f *testing.F) {
	for _, s := range []string{"0", "", "0 2 TERM", "SIGKILL\n1", "SIG64 255", "sigusr2 HUP 17"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSuccessExits(b)
		if err != nil {
			return
		}
		out := s.Format()
		s2, err := ParseSuccessExits(out)
		if err != nil || s2 != s {
			t.Fatalf("%q → %q → %v %v", b, out, s2, err)
		}
		if !bytes.Equal(s2.Format(), out) {
			t.Fatalf("format not a fixed point: %q", out)
		}
	})
}

// FuzzRespawnOn: what parses prints as a word that parses to the same.
func FuzzRespawnOn(f *testing.F) {
	for _, s := range []string{"always", "failure\n", " never ", "x"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		r, ok := ParseRespawnOn(b)
		if !ok {
			if r != RespawnAlways {
				t.Fatalf("%q: fallback %v", b, r)
			}
			return
		}
		if r2, ok := ParseRespawnOn([]byte(r.String())); !ok || r2 != r {
			t.Fatalf("%q → %v → %v", b, r, r2)
		}
	})
}
