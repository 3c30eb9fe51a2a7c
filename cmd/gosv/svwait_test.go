package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

func TestNewSvwaitCmd(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		argv []string
		want svwaitOptions
		err  string
	}{
		{argv: []string{"d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.Up}},
		{argv: []string{"-U", "a", "b"}, want: svwaitOptions{Dirs: []string{"a", "b"}, Goal: svwait.UpReady}},
		{argv: []string{"-d", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.Down}},
		{argv: []string{"-D", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.DownReady}},
		{argv: []string{"-r", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.Restart}},
		{argv: []string{"-R", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.RestartReady}},
		{argv: []string{"-UdR", "-u", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.Up}}, // the last wins
		{argv: []string{"-o", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Mode: svwait.Any}},
		{argv: []string{"-oa", "d"}, want: svwaitOptions{Dirs: []string{"d"}}},
		{argv: []string{"-t", "500", "-U", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.UpReady, Timeout: 500 * ms}},
		{argv: []string{"-Dt700", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Goal: svwait.DownReady, Timeout: 700 * ms}},
		{argv: []string{"-t", "0", "d"}, want: svwaitOptions{Dirs: []string{"d"}}},
		{argv: []string{"-t", "4294967295", "d"}, want: svwaitOptions{Dirs: []string{"d"}, Timeout: 4294967295 * ms}},
		{argv: []string{"d", "-U"}, want: svwaitOptions{Dirs: []string{"d", "-U"}}}, // options stop at the first operand
		{argv: []string{"--", "-U"}, want: svwaitOptions{Dirs: []string{"-U"}}},
		{argv: nil, err: "usage"},
		{argv: []string{"-U"}, err: "usage"},
		{argv: []string{"-x", "d"}, err: "usage: unknown option -x"},
		{argv: []string{"-t"}, err: "usage: option -t requires an argument"},
		{argv: []string{"-t", "abc", "d"}, err: `usage: invalid timeout "abc"`},
		{argv: []string{"-t", "12abc", "d"}, err: `usage: invalid timeout "12abc"`},
		{argv: []string{"-t", "-5", "d"}, err: `usage: invalid timeout "-5"`},
		{argv: []string{"-t", "", "d"}, err: `usage: invalid timeout ""`},
		{argv: []string{"-t", "4294967296", "d"}, err: `usage: invalid timeout "4294967296"`},
	}
	for _, tt := range tests {
		e, _, _ := testEnv()
		var got *svwaitOptions
		err := execCmd(newSvwaitCmd(e, func(o *svwaitOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("svwait %q: error %q, want %q", tt.argv, msg, tt.err)
			continue
		}
		if tt.err == "" && fmt.Sprint(*got) != fmt.Sprint(tt.want) {
			t.Errorf("svwait %q: options %+v, want %+v", tt.argv, *got, tt.want)
		}
	}
}

func TestSvwaitHelp(t *testing.T) {
	e, stdout, _ := testEnv()
	if code := e.execute(t.Context(), []string{"svwait", "--help"}); code != 0 {
		t.Fatalf("svwait --help: exit %d", code)
	}
	for _, want := range []string{"notification-fd", "notification-socket", "check", "supervise/gosv/ready-deadline",
		"supervise/gosv/check-output", "\nEXIT STATUS\n", "  99 ", "  111 "} {
		if !strings.Contains(stdout.String(), want) {
			t.Errorf("svwait --help lacks %q", want)
		}
	}
}

// TestSvwaitS6ExitCodes runs s6-svwait and gosv svwait on the same
// directories. The deliberate differences are the liveness rule: where no
// supervisor runs, s6-svwait waits until -t (99) and gosv fails at once (1).
func TestSvwaitS6ExitCodes(t *testing.T) {
	needS6(t)
	base := t.TempDir()
	mk := func(name string, setup func(dir string) error) string {
		dir := filepath.Join(base, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := setup(dir); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	stale := func(st servicedir.Status) func(string) error {
		return func(d string) error {
			if err := os.Mkdir(filepath.Join(d, "supervise"), 0o700); err != nil {
				return err
			}
			st.Stamp, st.ReadyStamp = time.Now(), time.Now()
			return servicedir.WriteStatus(d, &st)
		}
	}
	dirs := []string{
		filepath.Join(base, "nonexistent"),
		mk("empty", func(string) error { return nil }),
		mk("supervise-file", func(d string) error { return os.WriteFile(filepath.Join(d, "supervise"), nil, 0o644) }),
		mk("no-status", func(d string) error { return os.Mkdir(filepath.Join(d, "supervise"), 0o700) }),
		mk("stale-up", stale(servicedir.Status{Pid: 1, WantUp: true})),
		mk("stale-down", stale(servicedir.Status{Wstat: 15, Ready: true})),
	}
	deliberate := map[string]int{
		"stale-up -U": 1, "stale-up -d": 1, "stale-up -D": 1, "stale-up -r": 1,
		"stale-down -u": 1, "stale-down -U": 1, "stale-down -r": 1,
	}
	for _, dir := range dirs {
		for _, opt := range []string{"-u", "-U", "-d", "-D", "-r"} {
			s6 := runProg(t, "/usr/bin/s6-svwait", opt, "-t", "100", dir)
			ours := gosv(t, "svwait", opt, "-t", "100", dir)
			key := filepath.Base(dir) + " " + opt
			if code, ok := deliberate[key]; ok {
				if s6.code != 99 {
					t.Errorf("%s: s6-svwait exit %d, want 99", key, s6.code)
				}
				s6.code = code
			}
			if s6.code != ours.code {
				t.Errorf("%s: gosv exit %d (%q), s6 exit %d (%q)", key, ours.code, ours.stderr, s6.code, s6.stderr)
			}
		}
	}
	for _, args := range [][]string{{}, {"-x", "d"}, {"-t", "abc", "d"}, {"-t", "4294967296", "d"}, {"-U"}} {
		s6 := runProg(t, "/usr/bin/s6-svwait", args...)
		ours := gosv(t, append([]string{"svwait"}, args...)...)
		if s6.code != 100 || ours.code != 100 {
			t.Errorf("svwait %q: gosv exit %d, s6 exit %d; want 100", args, ours.code, s6.code)
		}
	}
	r := gosv(t, "svwait", "-U", dirs[5])
	if want := "gosv svwait: fatal: " + dirs[5] + ": supervisor not running: down, signal SIGTERM\n"; r.code != 1 || r.stderr != want {
		t.Errorf("stale: exit %d, stderr %q; want 1, %q", r.code, r.stderr, want)
	}
}

// background starts prog and returns a channel with its result.
func background(t *testing.T, prog string, args ...string) <-chan result {
	t.Helper()
	var out, errb bytes.Buffer
	c := exec.Command(prog, args...)
	c.Stdout, c.Stderr = &out, &errb
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Process.Kill() })
	res := make(chan result, 1)
	go func() {
		err := c.Wait()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		}
		res <- result{out.String(), errb.String(), code}
	}()
	return res
}

// listening waits until n listener fifos are in dir/event, so that an
// event sent next reaches the background waiters.
func listening(t *testing.T, dir string, n int) {
	t.Helper()
	ev := filepath.Join(dir, servicedir.EventDir)
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(in)
	if _, err := unix.InotifyAddWatch(in, ev, unix.IN_MOVED_TO|unix.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	var buf [4096]byte
	for {
		ents, err := os.ReadDir(ev)
		if err != nil {
			t.Fatal(err)
		}
		k := 0
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), "ftrig1:@") {
				k++
			}
		}
		if k >= n {
			return
		}
		// Blocks until the next fifo is renamed into place.
		if _, err := unix.Read(in, buf[:]); err != nil {
			t.Fatal(err)
		}
	}
}

// expectResult checks a background command's exit code and that its
// stderr matches the regular expression stderr.
func expectResult(t *testing.T, res <-chan result, code int, stderr, what string) {
	t.Helper()
	select {
	case r := <-res:
		if r.code != code || !regexp.MustCompile(stderr).MatchString(r.stderr) {
			t.Errorf("%s: exit %d, stderr %q; want %d, %q", what, r.code, r.stderr, code, stderr)
		}
	case <-time.After(30 * time.Second): // a bound, not a synchronisation
		t.Fatalf("%s: still running", what)
	}
}

// killRun kills the run process a killed supervisor left behind.
func killRun(t *testing.T, dir string) {
	t.Helper()
	if st, err := servicedir.ReadStatus(dir); err == nil && st.Pid > 0 {
		syscall.Kill(st.Pid, syscall.SIGKILL)
	}
}

// TestSvwaitS6Supervise: gosv svwait against a real s6-supervise, also
// when it is SIGKILLed during the wait.
func TestSvwaitS6Supervise(t *testing.T) {
	needS6(t)
	dir, sup := s6Service(t)
	expect := func(r result, code int, what string) {
		t.Helper()
		if r.code != code {
			t.Errorf("%s: exit %d, want %d; stderr %q", what, r.code, code, r.stderr)
		}
	}
	expect(gosv(t, "svwait", "-D", dir), 0, "svwait -D on a down service")
	expect(gosv(t, "svwait", "-u", "-t", "100", dir), 99, "svwait -u -t 100 on a down service")

	up := background(t, gosvBin, "svwait", "-u", "-t", "20000", dir)
	listening(t, dir, 1)
	expect(runProg(t, "/usr/bin/s6-svc", "-u", dir), 0, "s6-svc -u")
	expectResult(t, up, 0, "", "svwait -u")
	expect(gosv(t, "svwait", "-U", "-t", "100", dir), 99, "svwait -U without notification-fd")

	// SIGKILL s6-supervise during two waits: gosv svwait notices at once,
	// s6-svwait waits until its timeout.
	ours := background(t, gosvBin, "svwait", "-U", dir)
	theirs := background(t, "/usr/bin/s6-svwait", "-U", "-t", "300", dir)
	listening(t, dir, 2)
	t.Cleanup(func() { killRun(t, dir) })
	if err := sup.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	sup.Wait()
	// NOTE: the waiter's fifo in event/ shows that it subscribed, not that
	// it has found the supervisor yet; a kill before that is "not running"
	// (the svwait package tests pin "died" deterministically).
	expectResult(t, ours, 1, ": supervisor (died|not running): up, not ready\n$", "gosv svwait -U, supervisor killed")
	expectResult(t, theirs, 99, "timed out", "s6-svwait -U, supervisor killed")
	r := gosv(t, "svwait", "-d", dir)
	expect(r, 1, "svwait -d on a dead supervisor")
	if !strings.Contains(r.stderr, "supervisor not running: up, not ready") {
		t.Errorf("svwait -d on a dead supervisor: %q", r.stderr)
	}
}

// gosvScan runs gosv svscan on a fresh scan directory holding one service
// that notifies readiness on fd 3 when a byte is written to its trigger
// fifo. It returns the service directory and the trigger's path once the
// service is up.
func gosvScan(t *testing.T) (scan *exec.Cmd, dir, trigger string) {
	t.Helper()
	return gosvScanWith(t, func(trigger string) map[string]string {
		run := "#!/bin/sh\nread x < " + trigger + "\necho >&3\nexec sleep 1000\n"
		return map[string]string{"run": run, "notification-fd": "3\n"}
	})
}

// gosvScanWith is gosvScan with the service's files (mode 0755) made by
// files from the trigger fifo's path.
func gosvScanWith(t *testing.T, files func(trigger string) map[string]string) (scan *exec.Cmd, dir, trigger string) {
	t.Helper()
	scandir := t.TempDir()
	dir = filepath.Join(scandir, "svc")
	trigger = filepath.Join(t.TempDir(), "trigger")
	if err := unix.Mkfifo(trigger, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files(trigger) {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	scan = exec.Command(gosvBin, "svscan", scandir)
	scan.Stdout, scan.Stderr = os.Stderr, os.Stderr
	if err := scan.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if scan.ProcessState == nil {
			scan.Process.Signal(syscall.SIGTERM)
			scan.Wait()
		}
	})
	waitEvent(t, sub, 'u')
	return scan, dir, trigger
}

// waitEvent reads sub until the event byte b.
func waitEvent(t *testing.T, sub *servicedir.Subscription, b byte) {
	t.Helper()
	sub.File.SetReadDeadline(time.Now().Add(30 * time.Second))
	var buf [1]byte
	for buf[0] != b {
		if _, err := sub.File.Read(buf[:]); err != nil {
			t.Fatalf("waiting for event %q: %v", b, err)
		}
	}
}

func pull(t *testing.T, trigger string) {
	t.Helper()
	if err := os.WriteFile(trigger, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestS6svwaitOnGosvReadiness: the real s6-svwait -U and gosv svwait -U
// return on gosv svscan's readiness (notification-fd), and not before.
func TestS6svwaitOnGosvReadiness(t *testing.T) {
	needS6(t)
	_, dir, trigger := gosvScan(t)
	theirs := background(t, "/usr/bin/s6-svwait", "-U", "-t", "20000", dir)
	ours := background(t, gosvBin, "svwait", "-U", "-t", "20000", dir)
	listening(t, dir, 2)
	select {
	case r := <-theirs:
		t.Fatalf("s6-svwait -U returned before readiness: %+v", r)
	case r := <-ours:
		t.Fatalf("gosv svwait -U returned before readiness: %+v", r)
	default:
	}
	pull(t, trigger)
	expectResult(t, theirs, 0, "", "s6-svwait -U")
	expectResult(t, ours, 0, "", "gosv svwait -U")
	if r := gosv(t, "svstat", "-o", "up,ready", dir); r.stdout != "true true\n" {
		t.Errorf("svstat after readiness: %q", r.stdout)
	}
}

// TestSvwaitGosvScanKilled: gosv svscan SIGKILLed during a wait is noticed
// at once through supervise/gosv/supervisor.
func TestSvwaitGosvScanKilled(t *testing.T) {
	scan, dir, _ := gosvScan(t)
	ours := background(t, gosvBin, "svwait", "-U", dir)
	listening(t, dir, 1)
	t.Cleanup(func() { killRun(t, dir) })
	if err := scan.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	scan.Wait()
	expectResult(t, ours, 1, ": supervisor (died|not running): up, not ready\n$", "gosv svwait -U, scanner killed")
}

// TestSvcWaitReadinessFiles: gosv svc -wU does not downgrade to -wu for a
// service with gosv readiness (here a check file the fake supervisor never
// runs), so it times out instead of returning on up.
func TestSvcWaitReadinessFiles(t *testing.T) {
	_, dir, _ := gosvScan(t)
	if err := os.Remove(filepath.Join(dir, "notification-fd")); err != nil {
		t.Fatal(err)
	}
	r := gosv(t, "svc", "-wU", "-T", "100", dir)
	if r.code != 0 || !strings.Contains(r.stderr, "ignoring request for readiness notification") {
		t.Errorf("svc -wU without readiness files: exit %d %q, want 0 and the warning", r.code, r.stderr)
	}
	for _, name := range []string{"notification-fd", "notification-socket", "check"} {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		r := gosv(t, "svc", "-wU", "-T", "100", dir)
		if r.code != 99 || r.stderr == "" || strings.Contains(r.stderr, "warning") {
			t.Errorf("svc -wU with %s: exit %d %q, want 99 without warning", name, r.code, r.stderr)
		}
		os.Remove(p)
	}
}

// TestSvwaitCheckReadiness: a check script that fails twice, then
// succeeds. gosv svwait -U and s6-svwait -U both return on it; a wait that
// times out while the check fails quotes the check's last output.
func TestSvwaitCheckReadiness(t *testing.T) {
	needS6(t)
	_, dir, _ := gosvScanWith(t, func(string) map[string]string {
		return map[string]string{
			"run": "#!/bin/sh\nexec sleep 1000\n",
			"check": "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0)\necho $((n + 1)) > count\n" +
				"[ \"$n\" -ge 2 ] && exit 0\necho \"not yet: attempt $n\"\nexit 1\n",
		}
	})
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ours := background(t, gosvBin, "svwait", "-U", "-t", "20000", dir)
	theirs := background(t, "/usr/bin/s6-svwait", "-U", "-t", "20000", dir)
	waitEvent(t, sub, 'c') // the first check failed: check-output is written
	r := gosv(t, "svwait", "-U", "-t", "1", dir)
	if r.code != 99 || !regexp.MustCompile(`^gosv svwait: fatal: timed out: .*: up, not ready; check: not yet: attempt [01] / \(\./check exited 1\)\n$`).MatchString(r.stderr) {
		t.Errorf("svwait -U -t 1 while the check fails: exit %d, %q", r.code, r.stderr)
	}
	expectResult(t, ours, 0, "^$", "gosv svwait -U, check readiness")
	expectResult(t, theirs, 0, "^$", "s6-svwait -U, check readiness")
}

// TestSvwaitExtendTimeout: sd_notify EXTEND_TIMEOUT_USEC= makes a wait
// outlive its -t; READY=1 ends it.
func TestSvwaitExtendTimeout(t *testing.T) {
	const python = "/usr/bin/python3"
	if _, err := os.Stat(python); err != nil {
		t.Skipf("no %s for the sd_notify daemon: %v", python, err)
	}
	_, dir, trigger := gosvScanWith(t, func(trigger string) map[string]string {
		run := "#!" + python + "\nimport os, socket\n" +
			"s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)\n" +
			"a = os.environ['NOTIFY_SOCKET']\n" +
			"a = '\\0' + a[1:] if a.startswith('@') else a\n" +
			"s.sendto(b'EXTEND_TIMEOUT_USEC=30000000', a)\n" +
			"open('" + trigger + "').read(1)\n" +
			"s.sendto(b'READY=1', a)\n" +
			"os.execv('/bin/sleep', ['sleep', '1000'])\n"
		return map[string]string{"run": run, "notification-socket": "main\n"}
	})
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// Subscribed first: the deadline is either written already or comes
	// with an 'e'.
	if _, err := os.Stat(filepath.Join(dir, "supervise/gosv/ready-deadline")); err != nil {
		waitEvent(t, sub, 'e')
	}
	const ms = 50
	start := time.Now()
	ours := background(t, gosvBin, "svwait", "-U", "-t", strconv.Itoa(ms), dir)
	listening(t, dir, 2)
	// NOTE: the -t deadline passing is what is tested: wait for it (a
	// timer, not a synchronisation), then make the service ready.
	<-time.After(time.Until(start.Add(2 * ms * time.Millisecond)))
	select {
	case r := <-ours:
		t.Fatalf("gosv svwait -U -t %d ended at -t despite the extension: %+v", ms, r)
	default:
	}
	pull(t, trigger)
	expectResult(t, ours, 0, "^$", "gosv svwait -U with EXTEND_TIMEOUT_USEC")
}
