package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// gosvBin is the binary built once by TestMain for the end-to-end tests.
var gosvBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gosv-cmd-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	gosvBin = filepath.Join(dir, "gosv")
	build := exec.Command(goTool(), "build", "-o", gosvBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building gosv:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func goTool() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return "/usr/local/go/bin/go"
}

// needS6 skips when the s6 tools are not installed, unless REQUIRE_S6=1.
func needS6(t *testing.T) {
	t.Helper()
	for _, p := range []string{"/usr/bin/s6-supervise", "/usr/bin/s6-svstat", "/usr/bin/s6-svc"} {
		if _, err := os.Stat(p); err != nil {
			if os.Getenv("REQUIRE_S6") == "1" {
				t.Fatalf("REQUIRE_S6=1 but %s: %v", p, err)
			}
			t.Skipf("s6 not installed: %v", err)
		}
	}
}

type result struct {
	stdout, stderr string
	code           int
}

// runProg runs a program to completion and returns its output and exit code.
func runProg(t *testing.T, prog string, args ...string) result {
	t.Helper()
	var out, errb bytes.Buffer
	c := exec.Command(prog, args...)
	c.Stdout, c.Stderr = &out, &errb
	err := c.Run()
	var ee *exec.ExitError
	code := 0
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("%s %q: %v", prog, args, err)
	}
	return result{out.String(), errb.String(), code}
}

func gosv(t *testing.T, args ...string) result {
	t.Helper()
	return runProg(t, gosvBin, args...)
}

// TestS6ExitCodes runs the real s6 clients and gosv's on the same broken or
// unsupervised directories and compares exit codes (s6-protocol.md §6.3).
func TestS6ExitCodes(t *testing.T) {
	needS6(t)
	base := t.TempDir()
	mk := func(name string, setup func(dir string) error) string {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if setup != nil {
			if err := setup(dir); err != nil {
				t.Fatal(err)
			}
		}
		return dir
	}
	dirs := []string{
		filepath.Join(base, "nonexistent"),
		mk("empty", nil),
		mk("supervise-file", func(d string) error { return os.WriteFile(filepath.Join(d, "supervise"), nil, 0o644) }),
		mk("no-fifo", func(d string) error { return os.Mkdir(filepath.Join(d, "supervise"), 0o700) }),
		mk("stale", func(d string) error {
			if err := os.Mkdir(filepath.Join(d, "supervise"), 0o700); err != nil {
				return err
			}
			st := servicedir.Status{Stamp: time.Now(), ReadyStamp: time.Now(), Pid: 1, WantUp: true}
			if err := servicedir.WriteStatus(d, &st); err != nil {
				return err
			}
			return unix.Mkfifo(filepath.Join(d, servicedir.ControlPath), 0o600)
		}),
	}
	cmds := [][]string{
		{"svc", "-u"}, {"svc"}, {"svok"}, {"svstat"}, {"svstat", "-u"}, {"svscanctl", "-a"},
		{"svc", "-wu", "-T", "100"}, {"svc", "-wD", "-T", "100", "-d"},
	}
	// NOTE: one deliberate difference. s6-svlisten1 ignores its inner
	// s6-svc's failure and waits until -T (99, or forever); gosv svc -w
	// with letters fails at once with s6-svc's own code, 100.
	deliberate := map[string]int{"stale svc -wD -T 100 -d": 100}
	for _, dir := range dirs {
		for _, c := range cmds {
			args := append(c[1:len(c):len(c)], dir)
			s6 := runProg(t, "/usr/bin/s6-"+c[0], args...)
			ours := gosv(t, append([]string{c[0]}, args...)...)
			key := fmt.Sprint(filepath.Base(dir), " ", c[0], " ", strings.Join(c[1:], " "))
			if code, ok := deliberate[key]; ok {
				s6.code = code
			}
			if s6.code != ours.code {
				t.Errorf("%s %q on %s: gosv exit %d (%q), s6 exit %d (%q)",
					c[0], args[:len(args)-1], filepath.Base(dir), ours.code, ours.stderr, s6.code, s6.stderr)
			}
		}
	}
	// Usage errors.
	for _, c := range [][]string{{"svc"}, {"svc", "-X", "d"}, {"svstat", "-g", "d"}, {"svstat", "-o", "foo", "d"},
		{"svok"}, {"svscanctl", "-p", "d"}, {"svstat", "-uuuuuuuuuuuuuuuuu", "d"}} {
		s6 := runProg(t, "/usr/bin/s6-"+c[0], c[1:]...)
		ours := gosv(t, c...)
		if s6.code != 100 || ours.code != 100 {
			t.Errorf("%q: gosv exit %d, s6 exit %d; want 100", c, ours.code, s6.code)
		}
	}
}

// s6Service runs the real s6-supervise on a fresh, normally-down service
// and returns its directory once it announced itself with 's', and the
// process (stopped with SIGTERM at cleanup if still running).
func s6Service(t *testing.T) (string, *exec.Cmd) {
	t.Helper()
	dir := t.TempDir()
	for name, content := range map[string]string{"run": "#!/bin/sh\nexec sleep 1000\n", "down": ""} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cmd := exec.Command("/usr/bin/s6-supervise", dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			cmd.Process.Signal(syscall.SIGTERM)
			cmd.Wait()
		}
	})
	sub.File.SetReadDeadline(time.Now().Add(30 * time.Second))
	var b [1]byte
	for b[0] != 's' {
		if _, err := sub.File.Read(b[:]); err != nil {
			t.Fatalf("waiting for s6-supervise to start: %v", err)
		}
	}
	return dir, cmd
}

var secondsRE = regexp.MustCompile(`\d+ seconds`)

// sameStatus compares gosv svstat and s6-svstat with args on dir, seconds
// blurred in the legacy line.
func sameStatus(t *testing.T, dir string, args ...string) string {
	t.Helper()
	args = append(args, dir)
	s6 := runProg(t, "/usr/bin/s6-svstat", args...)
	ours := gosv(t, append([]string{"svstat"}, args...)...)
	blur := func(s string) string { return secondsRE.ReplaceAllString(s, "N seconds") }
	if blur(s6.stdout) != blur(ours.stdout) || s6.code != ours.code {
		t.Errorf("svstat %q: gosv %q (exit %d), s6-svstat %q (exit %d)", args, ours.stdout, ours.code, s6.stdout, s6.code)
	}
	return ours.stdout
}

const allFields = "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum"

func TestEndToEndS6Supervise(t *testing.T) {
	needS6(t)
	dir, sup := s6Service(t)
	expect := func(r result, code int, what string) {
		t.Helper()
		if r.code != code {
			t.Fatalf("%s: exit %d, want %d; stderr %q", what, r.code, code, r.stderr)
		}
	}
	expect(gosv(t, "svok", dir), 0, "svok")
	sameStatus(t, dir)
	sameStatus(t, dir, "-o", allFields)

	// -wU without notification-fd: downgraded to -wu with a warning.
	r := gosv(t, "svc", "-wU", "-T", "20000", "-u", dir)
	expect(r, 0, "svc -wU -u")
	if want := "gosv svc: warning: " + dir + "/notification-fd not present - ignoring request for readiness notification\n"; r.stderr != want {
		t.Errorf("svc -wU stderr %q, want %q", r.stderr, want)
	}
	sameStatus(t, dir)
	if got := sameStatus(t, dir, "-o", allFields); got[:5] != "true " {
		t.Errorf("after svc -wu -u: %q, want up", got)
	}
	expect(gosv(t, "svc", "-wu", dir), 0, "svc -wu on an up service")

	var js struct {
		Version int
		Up      bool
		Pid     *int
	}
	r = gosv(t, "svstat", "--json", dir)
	if err := json.Unmarshal([]byte(r.stdout), &js); err != nil || js.Version != 1 || !js.Up || js.Pid == nil {
		t.Errorf("svstat --json: %q (%v)", r.stdout, err)
	}

	expect(gosv(t, "svc", "-wD", "-T", "20000", "-d", dir), 0, "svc -wD -d")
	sameStatus(t, dir)
	sameStatus(t, dir, "-n")
	if got := sameStatus(t, dir, "-o", allFields); got != "false false false false false -1 -1 SIGTERM 15\n" {
		t.Errorf("after svc -wD -d: %q", got)
	}
	expect(gosv(t, "svc", "-wu", "-T", "100", dir), 99, "svc -wu -T 100 on a down service")
	expect(gosv(t, "svc", "-wr", "-T", "20000", "-u", dir), 0, "svc -wr -u")
	expect(gosv(t, "svc", "-wd", "-T", "20000", "-d", dir), 0, "svc -wd -d")

	// argv[0] dispatch.
	link := filepath.Join(filepath.Dir(gosvBin), "gosv-svstat")
	if err := os.Symlink(gosvBin, link); err != nil && !os.IsExist(err) {
		t.Fatal(err)
	}
	if a, b := runProg(t, link, "-o", allFields, dir), gosv(t, "svstat", "-o", allFields, dir); a != b {
		t.Errorf("gosv-svstat: %+v, gosv svstat: %+v", a, b)
	}

	// The supervisor exits ('x') while we wait for up: a failure, exit 1.
	r = gosv(t, "svc", "-wu", "-T", "20000", "-x", dir)
	expect(r, 1, "svc -wu -x")
	if err := sup.Wait(); err != nil {
		t.Errorf("s6-supervise after x: %v", err)
	}
	expect(gosv(t, "svok", dir), 1, "svok after x")
	r = gosv(t, "svstat", dir)
	expect(r, 1, "svstat after x")
	if want := "gosv svstat: fatal: unable to read status for " + dir + ": s6-supervise not running\n"; r.stderr != want {
		t.Errorf("svstat after x: stderr %q, want %q", r.stderr, want)
	}
	expect(gosv(t, "svc", "-u", dir), 100, "svc -u after x")
}
