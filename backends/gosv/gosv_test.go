package gosv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/scan"
	"github.com/gosv/gosv/svwait"
)

// helperEnv selects a helper mode of the test binary (os/exec's pattern):
// "scanner" runs the real scan loop, "svc" the service programs.
const helperEnv = "GOSV_BACKEND_HELPER"

// testTimeout bounds every wait of these tests; none sleeps.
const testTimeout = 10 * time.Second

func TestMain(m *testing.M) {
	switch os.Getenv(helperEnv) {
	case "scanner":
		if err := scan.EnsureEmptySignalMask(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(111)
		}
		err := scan.Run(scan.Config{Prog: "scanner", ScanDir: os.Args[1], NotifyFd: 3, Stderr: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(111)
		}
		os.Exit(0)
	case "svc":
		os.Exit(service(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// service is the program of the test services:
//
//	pause [FD]       wait for SIGTERM (exit 0), exit 42 on SIGHUP; ready on FD
//	ignore-term FD   ignore SIGTERM, wait forever; ready on FD
//	ready FD MS      wait MS milliseconds, write a newline to FD, then pause
//	exit N           exit N at once
//	exit-once FILE MS N  the first time (FILE absent: create it) exit N
//	                 after MS milliseconds; later times pause
//
// Readiness comes after the signal handlers are in place, so that a test
// that waits for it can signal the daemon without a race.
func service(args []string) int {
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGTERM, unix.SIGHUP)
	ready := func(arg string) {
		fd, _ := strconv.Atoi(arg)
		f := os.NewFile(uintptr(fd), "notify")
		f.Write([]byte("\n"))
		f.Close()
	}
	switch args[0] {
	case "exit":
		n, _ := strconv.Atoi(args[1])
		return n
	case "exit-once":
		if _, err := os.Stat(args[1]); err == nil {
			break
		}
		os.WriteFile(args[1], nil, 0o644)
		ms, _ := strconv.Atoi(args[2])
		n, _ := strconv.Atoi(args[3])
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond): // the daemon's own life time
			return n
		case <-sigc:
			return 0
		}
	case "pause":
		if len(args) > 1 {
			ready(args[1])
		}
	case "ignore-term":
		ready(args[1])
		for range sigc {
		}
	case "ready":
		fd, _ := strconv.Atoi(args[1])
		ms, _ := strconv.Atoi(args[2])
		select {
		case <-time.After(time.Duration(ms) * time.Millisecond): // the daemon's own startup time
		case <-sigc:
			return 0
		}
		f := os.NewFile(uintptr(fd), "notify")
		f.Write([]byte("\n"))
		f.Close()
	}
	if sig := <-sigc; sig == unix.SIGHUP {
		return 42
	}
	return 0
}

// env is a scanner on a scan directory and a place for service dirs.
type env struct {
	t       *testing.T
	b       *Backend
	base    string
	scanner *exec.Cmd
}

func newEnv(t *testing.T) *env {
	t.Helper()
	base := t.TempDir()
	scanDir := filepath.Join(base, "scan")
	os.Mkdir(scanDir, 0o755)
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	cmd := exec.Command(os.Args[0], scanDir)
	cmd.Env = append(os.Environ(), helperEnv+"=scanner")
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: unix.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	e := &env{t: t, b: New(scanDir), base: base, scanner: cmd}
	t.Cleanup(e.stopScanner)
	pr.SetReadDeadline(time.Now().Add(testTimeout))
	if _, err := pr.Read(make([]byte, 1)); err != nil {
		t.Fatalf("scanner not ready: %v", err)
	}
	return e
}

// stopScanner ends the scanner with SIGTERM, which stops every service.
func (e *env) stopScanner() {
	if e.scanner.ProcessState != nil {
		return
	}
	e.scanner.Process.Signal(unix.SIGTERM)
	e.scanner.Wait()
}

// service makes a service directory whose run execs the helper with args.
func (e *env) service(name string, files map[string]string, args ...string) backends.Service {
	dir := filepath.Join(e.base, "sv", name)
	os.MkdirAll(dir, 0o755)
	run := fmt.Sprintf("#!/bin/sh\n%s=svc exec %s %s\n", helperEnv, os.Args[0], strings.Join(args, " "))
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte(run), 0o755); err != nil {
		e.t.Fatal(err)
	}
	for n, c := range files {
		os.WriteFile(filepath.Join(dir, n), []byte(c), 0o644)
	}
	return backends.Service{Name: name, Dir: dir}
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), testTimeout)
	t.Cleanup(cancel)
	return c
}

// assertGone checks that nothing is left of a service: no link, no
// supervisor, no process.
func (e *env) assertGone(svc backends.Service, pid int) {
	e.t.Helper()
	if _, err := os.Lstat(filepath.Join(e.b.ScanDir, svc.Name)); !os.IsNotExist(err) {
		e.t.Errorf("link left in the scan directory: %v", err)
	}
	if supervised(svc.Dir) {
		e.t.Error("still supervised")
	}
	// NOTE: a zombie counts as gone: once its supervisor is dead, reaping
	// it is init's job, and init may take its time.
	if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); pid > 0 && err == nil {
		if f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:])); len(f) > 0 && f[0] != "Z" {
			e.t.Errorf("process %d still alive (state %s)", pid, f[0])
		}
	}
}

func TestStartUpAndStop(t *testing.T) {
	e := newEnv(t)
	svc := e.service("plain", nil, "pause")
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	st, err := e.b.Status(svc)
	if err != nil || !st.Supervised || !st.Up || st.Pid == 0 {
		t.Fatalf("status after start: %+v %v", st, err)
	}
	if !strings.HasPrefix(st.Line, "up (pid ") {
		t.Errorf("line %q", st.Line)
	}
	if err := e.b.Stop(ctx(t), svc, backends.StopOptions{Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	e.assertGone(svc, st.Pid)
	// And again: a restart right after a stop.
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: testTimeout}); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
}

func TestStartWaitsForReadiness(t *testing.T) {
	e := newEnv(t)
	svc := e.service("ready", map[string]string{"notification-fd": "3\n"}, "ready", "3", "200")
	t0 := time.Now()
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("start returned after %v, before the daemon was ready", d)
	}
	st, _ := e.b.Status(svc)
	if !st.Ready {
		t.Errorf("not ready after start: %+v", st)
	}
}

func TestStartFailsWhenTheDaemonDies(t *testing.T) {
	e := newEnv(t)
	svc := e.service("dies", map[string]string{"notification-fd": "3\n"}, "exit", "3")
	err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: testTimeout})
	var se *backends.StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "exit code 3") {
		t.Fatalf("want a death with exit code 3, got %v", err)
	}
	e.assertGone(svc, 0)
}

// TestStartDeathBeforeAskingUp: a daemon that fails at once and whose
// first death comes before the start asks it up (a loaded machine) is
// started once by the take, then respawned after its respawn delay: the
// start's 'u' must not reach the supervisor as a second, explicit start
// (no delay, failure count reset; TestPolicyBackoff saw it under load).
// The Rescan hook holds the start until that death, which makes the race
// certain.
func TestStartDeathBeforeAskingUp(t *testing.T) {
	e := newEnv(t)
	svc := e.service("fails", map[string]string{servicedir.RespawnDelayFile: "60000\n"})
	starts := filepath.Join(e.base, "fails.starts")
	run := fmt.Sprintf("#!/bin/sh\necho >>%s\n%s=svc exec %s exit 1\n", starts, helperEnv, os.Args[0])
	if err := os.WriteFile(filepath.Join(svc.Dir, "run"), []byte(run), 0o755); err != nil {
		t.Fatal(err)
	}
	sub, err := servicedir.Subscribe(svc.Dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	e.b.Rescan = func() error {
		sub.File.SetReadDeadline(time.Now().Add(testTimeout))
		for b := make([]byte, 1); ; {
			if _, err := sub.File.Read(b); err != nil || b[0] == 'd' {
				return err
			}
		}
	}
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	e.b.Rescan = nil
	// The stop's letters follow the start's in the control fifo: once the
	// supervisor has exited, any start the start asked for was made.
	if err := e.b.Stop(ctx(t), svc, backends.StopOptions{Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(starts); len(b) != 1 {
		t.Fatalf("%d starts, want 1 (the respawn delay is 60 s)", len(b))
	}
}

// TestStartWaitDeath: with StartWait, a daemon that dies after it was up
// fails the start with its exit status, and nothing is left. The scanner
// restarts it within the window (it ran less than a second: after one)
// and the new instance stays up, so a start that only looked at "up" at
// the end of the window would pass.
func TestStartWaitDeath(t *testing.T) {
	e := newEnv(t)
	svc := e.service("early", nil, "exit-once", filepath.Join(e.base, "early.once"), "100", "3")
	// NOTE: a window far longer than the daemon's life, which a loaded
	// machine may stretch: the start fails at the death, not at the end.
	err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: testTimeout, StartWait: 5 * time.Second})
	var se *backends.StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "after it was up (start_wait 5s): exit code 3") {
		t.Fatalf("want a death with exit code 3 within start_wait, got %v", err)
	}
	e.assertGone(svc, 0)
}

// TestStartWaitStaysUp: a daemon that stays up passes, after the window.
func TestStartWaitStaysUp(t *testing.T) {
	e := newEnv(t)
	svc := e.service("steady", nil, "pause")
	t0 := time.Now()
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: testTimeout, StartWait: 300 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("start returned after %v, before start_wait", d)
	}
	if st, _ := e.b.Status(svc); !st.Up || st.Deaths != 0 {
		t.Errorf("status after start: %+v", st)
	}
}

// TestStartWaitIgnoredWithReadiness: StartWait only applies to a start
// that waits for up; readiness says more.
func TestStartWaitIgnoredWithReadiness(t *testing.T) {
	e := newEnv(t)
	svc := e.service("ready", map[string]string{"notification-fd": "3\n"}, "pause", "3")
	t0 := time.Now()
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: testTimeout, StartWait: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d > testTimeout {
		t.Errorf("start took %v: waited for start_wait", d)
	}
}

func TestStartReadinessTimeout(t *testing.T) {
	e := newEnv(t)
	svc := e.service("slow", map[string]string{"notification-fd": "3\n"}, "ready", "3", "60000")
	err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 300 * time.Millisecond})
	var se *backends.StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "not ready within 300ms") {
		t.Fatalf("want a readiness timeout, got %v", err)
	}
	e.assertGone(svc, 0)
}

func TestStopKillsATermIgnoringDaemon(t *testing.T) {
	e := newEnv(t)
	svc := e.service("stubborn", map[string]string{"timeout-kill": "200\n", "notification-fd": "3\n"}, "ignore-term", "3")
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	st, _ := e.b.Status(svc)
	t0 := time.Now()
	if err := e.b.Stop(ctx(t), svc, backends.StopOptions{Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("stopped after %v: before timeout-kill?", d)
	}
	e.assertGone(svc, st.Pid)
}

func TestSignal(t *testing.T) {
	e := newEnv(t)
	svc := e.service("hup", map[string]string{"notification-fd": "3\n"}, "pause", "3")
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	w, err := svwait.Listen([]string{svc.Dir}, svwait.Down, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := e.b.Signal(svc, unix.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(ctx(t)); err != nil {
		t.Fatal(err)
	}
	st, _ := servicedir.ReadStatus(svc.Dir)
	if ws := unix.WaitStatus(st.Wstat); !ws.Exited() || ws.ExitStatus() != 42 {
		t.Errorf("the daemon did not get SIGHUP: wstat %#x", st.Wstat)
	}
}

func TestStatusAfterScannerDeath(t *testing.T) {
	e := newEnv(t)
	svc := e.service("orphan", nil, "pause")
	if err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	before, _ := e.b.Status(svc)
	e.scanner.Process.Kill()
	e.scanner.Wait()
	st, err := e.b.Status(svc)
	if err != nil || st.Supervised || !st.SupervisorDead || !st.Up || st.Pid != before.Pid {
		t.Fatalf("status with a dead scanner: %+v %v", st, err)
	}
	if err := e.b.Stop(ctx(t), svc, backends.StopOptions{Timeout: testTimeout}); err != nil {
		t.Fatal(err)
	}
	e.assertGone(svc, before.Pid)
}

func TestStartWithoutScanner(t *testing.T) {
	b := New(t.TempDir())
	err := b.Start(ctx(t), backends.Service{Name: "x", Dir: t.TempDir()}, backends.StartOptions{})
	if !errors.Is(err, backends.ErrNoSupervisor) {
		t.Fatalf("got %v", err)
	}
}

// TestStartForkingFailures: the reason of a failed forking launch is the
// one the supervisor recorded, not "exit code 0".
func TestStartForkingFailures(t *testing.T) {
	e := newEnv(t)
	pf := filepath.Join(e.base, "none.pid")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"launcher-fails", []string{"exit", "3"}, "launch failed: the launcher exited 3"},
		{"no-pidfile", []string{"exit", "0"}, "launch failed: the pidfile named no daemon within 2s: " + pf + " does not exist"},
	} {
		// NOTE: the limit must outlast the launcher's own start (a -race
		// test binary on a loaded machine takes hundreds of ms), or the
		// reason becomes "did not exit".
		svc := e.service(tc.name, map[string]string{"pidfile": pf + "\n", "timeout-pidfile": "2000\n"}, tc.args...)
		err := e.b.Start(ctx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: testTimeout})
		var se *backends.StartError
		if !errors.As(err, &se) || !strings.Contains(se.Reason, tc.want) {
			t.Errorf("%s: got %v, want %q", tc.name, err, tc.want)
		}
		e.assertGone(svc, 0)
	}
}
