package servicedir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestParseHealthCheck(t *testing.T) {
	for _, tc := range []struct{ in, out, err string }{
		{in: "tcp:127.0.0.1:6379", out: "tcp:127.0.0.1:6379"},
		{in: "tcp:localhost:80\n", out: "tcp:localhost:80"},
		{in: "tcp:[::1]:11211", out: "tcp:[::1]:11211"},
		{in: "http://127.0.0.1:8080/health", out: "http://127.0.0.1:8080/health"},
		{in: "http://localhost", out: "http://localhost:80/"},
		{in: "http://127.0.0.1:8080/ 3xx", out: "http://127.0.0.1:8080/ 3xx"},
		{in: "https://[::1]/x?y=1  204", out: "https://[::1]:443/x?y=1 204"},
		{in: "exec:/etc/init.d/foo healthcheck", out: "exec:/etc/init.d/foo healthcheck"},
		{in: "tcp:example.com:80", err: "no DNS lookups"},
		{in: "tcp:127.0.0.1", err: "port"},
		{in: "tcp:127.0.0.1:0", err: "port"},
		{in: "tcp:127.0.0.1:70000", err: "port"},
		{in: "http://127.0.0.1/ 20x", err: "expected status"},
		{in: "http:///x", err: "without a host"},
		{in: "exec:", err: "without a command"},
		{in: "ping 127.0.0.1", err: "want tcp:"},
		{in: "", err: "want tcp:"},
	} {
		c, err := ParseHealthCheck(tc.in)
		switch {
		case tc.err != "":
			if err == nil || !strings.Contains(err.Error(), tc.err) || !errors.Is(err, ErrBadValue) {
				t.Errorf("%q: error %v, want one containing %q", tc.in, err, tc.err)
			}
		case err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case c.String() != tc.out:
			t.Errorf("%q: %q, want %q", tc.in, c.String(), tc.out)
		}
	}
	c, _ := ParseHealthCheck("http://127.0.0.1:81/")
	if c.StatusLo != 200 || c.StatusHi != 299 {
		t.Errorf("default status %d-%d, want 2xx", c.StatusLo, c.StatusHi)
	}
}

func TestCommandArgv(t *testing.T) {
	if got := CommandArgv("/etc/init.d/foo  healthcheck"); strings.Join(got, "|") != "/etc/init.d/foo|healthcheck" {
		t.Errorf("plain command: %q", got)
	}
	if got := CommandArgv("redis-cli ping | grep -q PONG"); len(got) != 3 || got[0] != "/bin/sh" {
		t.Errorf("shell command: %q", got)
	}
}

func TestReadHealthFiles(t *testing.T) {
	dir := t.TempDir()
	if _, ok, err := ReadHealthCheck(dir); ok || err != nil {
		t.Fatalf("absent: %v %v", ok, err)
	}
	os.WriteFile(filepath.Join(dir, HealthCheckFile), []byte("tcp:nowhere:1\n"), 0o644)
	_, ok, err := ReadHealthCheck(dir)
	var pe *os.PathError
	if !ok || !errors.As(err, &pe) || !strings.HasSuffix(pe.Path, HealthCheckFile) {
		t.Fatalf("invalid file: %v %v", ok, err)
	}
	os.WriteFile(filepath.Join(dir, HealthUnhealthyFile), []byte("exec:/etc/init.d/foo unhealthy\n"), 0o644)
	if cmd, ok, err := ReadHealthUnhealthy(dir); !ok || err != nil || cmd != "/etc/init.d/foo unhealthy" {
		t.Fatalf("hook: %q %v %v", cmd, ok, err)
	}
}

// FuzzHealthCheck: a parsed check prints as a line that parses to the
// same check.
func FuzzHealthCheck(f *testing.F) {
	for _, s := range []string{"tcp:127.0.0.1:1", "http://[::1]:8/a 2xx", "https://localhost/ 503", "exec:a b", "exec:a|b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseHealthCheck(s)
		if err != nil {
			return
		}
		c2, err := ParseHealthCheck(c.String())
		if err != nil {
			t.Fatalf("%q printed as %q, which does not parse: %v", s, c.String(), err)
		}
		if c2 != c {
			t.Fatalf("%q: round trip %+v != %+v", s, c2, c)
		}
	})
}
