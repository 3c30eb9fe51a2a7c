package spawner

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

const (
	helperArgv0 = "gosv-spawner"
	roleEnv     = "GOSV_SPAWNER_TEST_ROLE"
)

// TestMain doubles as the helper (argv0 gosv-spawner, as the scanner
// starts gosv) and as the spawned programs.
func TestMain(m *testing.M) {
	if b := filepath.Base(os.Args[0]); b == helperArgv0 || b == helperArgv0+"-die" {
		dieBeforeReply = b != helperArgv0
		if err := Serve(3); err != nil {
			os.Exit(111)
		}
		os.Exit(0)
	}
	switch os.Getenv(roleEnv) {
	case "hold": // block until stdin reaches EOF
		var b [1]byte
		os.Stdin.Read(b[:])
		os.Exit(0)
	case "exit7":
		os.Exit(7)
	}
	os.Exit(m.Run())
}

// warnings collects a Client's warnings.
type warnings []string

func (w *warnings) warn(format string, args ...any) { *w = append(*w, fmt.Sprintf(format, args...)) }

func newClient(t *testing.T) (*Client, *warnings) {
	t.Helper()
	w := &warnings{}
	c := NewClient("/proc/self/exe", helperArgv0, w.warn)
	if c.Pid() == 0 {
		t.Fatalf("no helper: %v", *w)
	}
	t.Cleanup(func() {
		pid := c.Pid()
		c.Close()
		if pid != 0 {
			waitExit(t, pid) // it exits at EOF: the scanner's death
		}
	})
	return c, w
}

// waitExit waits for pid, a child of the test, and returns its status.
func waitExit(t *testing.T, pid int) unix.WaitStatus {
	t.Helper()
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("wait4(%d): %v", pid, err)
		}
		return ws
	}
}

func pipe(t *testing.T) [2]int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	return p
}

// inherited lists pid's descriptors without close-on-exec: what it got
// across execve (the Go runtime's own are all close-on-exec), each as
// "fd:target".
func inherited(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		info, err := os.ReadFile(fmt.Sprintf("/proc/%d/fdinfo/%s", pid, e.Name()))
		if err != nil {
			continue
		}
		flags := ""
		for _, l := range strings.Split(string(info), "\n") {
			if f, ok := strings.CutPrefix(l, "flags:"); ok {
				flags = strings.TrimSpace(f)
			}
		}
		v, _ := strconv.ParseUint(flags, 8, 64)
		if v&unix.O_CLOEXEC != 0 {
			continue
		}
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		if pid != os.Getpid() && strings.HasPrefix(target, "socket:") && e.Name() == "3" {
			continue // the helper's socket, until Serve marks it close-on-exec
		}
		out = append(out, e.Name()+":"+target)
	}
	sort.Strings(out)
	return out
}

func fdTarget(t *testing.T, fd int) string {
	t.Helper()
	s, err := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// The run gets exactly the descriptors asked for, at the places asked
// for, runs in the directory named through the caller's /proc/self/fd/N,
// is the caller's child, and the helper keeps none of what it was passed.
func TestRunGetsExactlyItsFds(t *testing.T) {
	c, w := newClient(t)
	// What the test process itself inherited without close-on-exec (from
	// whatever started `go test`) reaches every child, directly spawned
	// or not: not the helper's doing.
	ours := map[string]bool{}
	for _, f := range inherited(t, os.Getpid()) {
		if fd, _, _ := strings.Cut(f, ":"); fd != "0" && fd != "1" && fd != "2" {
			ours[f] = true
		}
	}
	exe, _ := os.Executable()
	warm, err, ok := c.Start(&Request{Dir: "/", Path: exe, Argv: []string{"exit7"}, Env: []string{roleEnv + "=exit7"}, Files: []int{0, 1, 2}})
	if !ok || err != nil {
		t.Fatalf("Start: ok %v, %v (warnings %v)", ok, err, *w)
	}
	waitExit(t, warm)
	before := allFds(t, c.Pid())
	in, out, extra := pipe(t), pipe(t), pipe(t)
	dir := t.TempDir()
	dirfd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	r := &Request{Dir: fmt.Sprintf("/proc/self/fd/%d", dirfd), Path: exe, Argv: []string{"hold"},
		Env:   []string{roleEnv + "=hold"},
		Files: []int{in[0], out[1], out[1], -1, extra[1]}}
	pid, err, ok := c.Start(r)
	if !ok || err != nil {
		t.Fatalf("Start: ok %v, %v (warnings %v)", ok, err, *w)
	}
	want := []string{"0:" + fdTarget(t, in[0]), "1:" + fdTarget(t, out[1]), "2:" + fdTarget(t, out[1]), "4:" + fdTarget(t, extra[1])}
	var got []string
	for _, f := range inherited(t, pid) {
		if !ours[f] {
			got = append(got, f)
		}
	}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("the run's inherited fds: %v, want %v", got, want)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != dir {
		t.Errorf("the run's cwd: %q, want %q", cwd, dir)
	}
	if after := allFds(t, c.Pid()); strings.Join(after, " ") != strings.Join(before, " ") {
		t.Errorf("the helper's fds after a spawn: %v, before: %v", after, before)
	}
	unix.Close(in[1]) // EOF: the run exits
	if ws := waitExit(t, pid); ws.ExitStatus() != 0 {
		t.Errorf("run: %v", ws)
	}
	if len(*w) != 0 {
		t.Errorf("warnings: %v", *w)
	}
}

// allFds lists every descriptor of pid as "fd:target".
func allFds(t *testing.T, pid int) []string {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		target, _ := os.Readlink(filepath.Join(dir, e.Name()))
		out = append(out, e.Name()+":"+target)
	}
	sort.Strings(out)
	return out
}

// A run that exits at once is still the caller's to reap, with its
// status, however soon it exits: the caller reads the reply first.
func TestChildExitsBeforeReply(t *testing.T) {
	c, _ := newClient(t)
	exe, _ := os.Executable()
	for i := 0; i < 20; i++ {
		pid, err, ok := c.Start(&Request{Dir: "/", Path: exe, Argv: []string{"exit7"}, Env: []string{roleEnv + "=exit7"}, Files: []int{0, 1, 2}})
		if !ok || err != nil {
			t.Fatalf("Start: %v %v", ok, err)
		}
		if ws := waitExit(t, pid); !ws.Exited() || ws.ExitStatus() != 7 {
			t.Fatalf("run %d: %v, want exit 7", pid, ws)
		}
	}
}

// Exec failures come back as the errno a direct fork+exec returns, so
// the caller's retry policy classifies them as before.
func TestExecErrors(t *testing.T) {
	c, _ := newClient(t)
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "noexec"), []byte("#!/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "nointerp"), []byte("#!/nonexistent/sh\n"), 0o755)
	for _, tc := range []struct {
		path string
		want error
	}{
		{"./missing", unix.ENOENT},
		{"./noexec", unix.EACCES},
		{"./nointerp", unix.ENOENT},
	} {
		r := &Request{Dir: dir, Path: tc.path, Argv: []string{"x"}, Files: []int{0, 1, 2}}
		_, err, ok := c.Start(r)
		_, direct := forkExec(r, 0)
		if !ok || !errors.Is(err, tc.want) || err != direct {
			t.Errorf("%s: ok %v, err %v; want %v as a direct spawn's (%v)", tc.path, ok, err, tc.want, direct)
		}
	}
	if c.Pid() == 0 {
		t.Errorf("the helper was dropped after exec failures")
	}
}

// A helper killed while a request is in flight: Start says "not served"
// (the caller spawns directly), one warning is printed however many
// spawns follow, and a later Start restarts the helper.
func TestHelperKilledMidRequest(t *testing.T) {
	c, w := newClient(t)
	old := c.Pid()
	exe, _ := os.Executable()
	r := &Request{Dir: "/", Path: exe, Argv: []string{"exit7"}, Env: []string{roleEnv + "=exit7"}, Files: []int{0, 1, 2}}
	// Stopped, it cannot answer; the kill lands before or after the
	// request is sent, and either way the request is not served.
	unix.Kill(old, unix.SIGSTOP)
	done := make(chan bool)
	go func() {
		_, _, ok := c.Start(r)
		done <- ok
	}()
	unix.Kill(old, unix.SIGKILL)
	if ok := <-done; ok {
		t.Fatal("Start served by a killed helper")
	}
	if ws := waitExit(t, old); ws.Signal() != unix.SIGKILL {
		t.Errorf("old helper: %v", ws)
	}
	for i := 0; i < 3; i++ {
		if _, _, ok := c.Start(r); ok {
			t.Fatal("served within restartDelay of the loss")
		}
	}
	if len(*w) != 1 || !strings.Contains((*w)[0], "lost the spawn helper") {
		t.Fatalf("warnings: %q, want one about the lost helper", *w)
	}
	c.lostAt = time.Now().Add(-restartDelay)
	pid, err, ok := c.Start(r)
	if !ok || err != nil || c.Pid() == old || c.Pid() == 0 {
		t.Fatalf("after restartDelay: ok %v, %v, helper %d (was %d)", ok, err, c.Pid(), old)
	}
	waitExit(t, pid)
	if len(*w) != 1 {
		t.Errorf("warnings after the restart: %q", *w)
	}
}

// A request too large for one datagram is not sent: the caller spawns it.
func TestHugeRequestNotSent(t *testing.T) {
	c, w := newClient(t)
	big := strings.Repeat("x", maxRequest)
	if _, _, ok := c.Start(&Request{Dir: "/", Path: "/x", Argv: []string{"x"}, Env: []string{"BIG=" + big}}); ok {
		t.Fatal("a request over maxRequest was served")
	}
	if c.Pid() == 0 || len(*w) != 0 {
		t.Errorf("helper %d, warnings %v: a large request is no loss", c.Pid(), *w)
	}
}

func TestDecodeRejectsGarbage(t *testing.T) {
	b, fds := encode(nil, &Request{Dir: "/proc/self/fd/9/x", Path: "p", Argv: []string{"a"}, Env: []string{"E=1"}, Files: []int{5, -1, 6}}, nil)
	if len(fds) != 3 || fds[0] != 9 {
		t.Fatalf("fds %v", fds)
	}
	r, err := decode(b, []int{19, 15, 16})
	if err != nil || r.Dir != "/proc/self/fd/19/x" || fmt.Sprint(r.Files) != "[15 -1 16]" || r.Argv[0] != "a" || r.Env[0] != "E=1" {
		t.Fatalf("round trip: %+v %v", r, err)
	}
	for i := 0; i < len(b); i++ {
		if _, err := decode(b[:i], []int{19, 15, 16}); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", i)
		}
	}
	if _, err := decode(b, []int{19}); err == nil {
		t.Fatal("missing fds: accepted")
	}
}

// A helper that cannot start is reported once, however many spawns and
// restart attempts follow; every spawn falls back to the caller.
func TestHelperThatCannotStart(t *testing.T) {
	w := &warnings{}
	c := NewClient(filepath.Join(t.TempDir(), "missing"), helperArgv0, w.warn)
	r := &Request{Dir: "/", Path: "/x", Argv: []string{"x"}}
	for i := 0; i < 3; i++ {
		if _, _, ok := c.Start(r); ok {
			t.Fatal("served without a helper")
		}
		c.lostAt = time.Now().Add(-restartDelay) // a restart attempt each time
	}
	if len(*w) != 1 || !strings.Contains((*w)[0], "unable to start the spawn helper") {
		t.Errorf("warnings: %q, want one", *w)
	}
}
