package s6

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/fdwait"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

const s6Svscan = "/usr/bin/s6-svscan"

// scanner runs a real s6-svscan on a fresh scan directory and returns
// once it said it is ready (-d 3). It is told to exit at cleanup.
func scanner(t *testing.T) (*Backend, *exec.Cmd) {
	t.Helper()
	if _, err := os.Stat(s6Svscan); err != nil {
		if os.Getenv("REQUIRE_S6") == "1" {
			t.Fatalf("REQUIRE_S6=1 but %s: %v", s6Svscan, err)
		}
		t.Skipf("s6 not installed: %v", err)
	}
	scan := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(s6Svscan, "-d", "3", scan)
	cmd.ExtraFiles = []*os.File{w}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		// Kill the whole tree: s6-svscan, its s6-supervise and services.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		cmd.Wait()
	})
	var b [1]byte
	r.SetReadDeadline(deadline(t))
	if _, err := r.Read(b[:]); err != nil {
		t.Fatalf("waiting for s6-svscan's readiness: %v", err)
	}
	r.Close()
	return New(scan), cmd
}

func deadline(t *testing.T) time.Time {
	if d, ok := t.Deadline(); ok {
		return d.Add(-5 * time.Second)
	}
	return time.Now().Add(time.Minute)
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithDeadline(context.Background(), deadline(t))
	t.Cleanup(cancel)
	return ctx
}

// service writes a service directory with the given run script and files.
func service(t *testing.T, run string, files map[string]string) backends.Service {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "svc")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, servicedir.RunFile), []byte("#!/bin/sh\n"+run), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return backends.Service{Name: "svc", Dir: dir}
}

const readyRun = "echo starting\necho >&3\nexec sleep 1000 3>&-\n"

func TestStartReadyStatusStop(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, err := b.Status(svc)
	if err != nil || !st.Supervised || !st.Up || !st.Ready || st.Pid <= 0 {
		t.Fatalf("status after start = %+v, %v; want supervised, up, ready", st, err)
	}
	rec, err := servicedir.ReadRecord(svc.Dir, servicedir.SupervisorRecordPath)
	holder, _ := servicedir.HolderPid(filepath.Join(svc.Dir, servicedir.LockPath))
	if err != nil || rec.Pid != holder {
		t.Errorf("supervisor record %+v, %v; want s6-supervise's pid %d", rec, err, holder)
	}
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link is still in the scan directory: %v", err)
	}
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); !errors.Is(err, unix.ESRCH) {
		t.Errorf("the daemon (pid %d) survived the stop: %v", st.Pid, err)
	}
	if st, _ := b.Status(svc); st.Supervised || st.Up {
		t.Errorf("status after stop = %+v", st)
	}
}

func TestCrashRestart(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, _ := b.Status(svc)
	// Wait for the death, then for up and ready again.
	down, err := svwait.Listen([]string{svc.Dir}, svwait.Down, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	defer down.Close()
	syscall.Kill(st.Pid, syscall.SIGKILL)
	if err := down.Wait(testCtx(t)); err != nil {
		t.Fatalf("wait down: %v", err)
	}
	if err := b.Wait(testCtx(t), svc, svwait.UpReady); err != nil {
		t.Fatalf("wait up again: %v", err)
	}
	st2, _ := b.Status(svc)
	if !st2.Supervised || !st2.Ready || st2.Pid == st.Pid || st2.Deaths < 1 {
		t.Errorf("status after the crash = %+v; want a new ready pid and a death counted", st2)
	}
	b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second})
}

func TestStartTimeoutReason(t *testing.T) {
	b, _ := scanner(t)
	// Never ready, with a forked child that must not outlive the failure.
	svc := service(t, "sleep 1000 &\necho $! > child\nexec sleep 1000\n", map[string]string{servicedir.NotificationFDFile: "3\n"})
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 300 * time.Millisecond})
	var se *backends.StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "not ready within 300ms") {
		t.Fatalf("start = %v; want a StartError saying not ready within 300ms", err)
	}
	if st, _ := b.Status(svc); st.Supervised || st.Up {
		t.Errorf("a failed start left %+v", st)
	}
	b1, _ := os.ReadFile(filepath.Join(svc.Dir, "child"))
	var child int
	fmt.Sscan(string(b1), &child)
	if child <= 0 {
		t.Fatalf("no child pid recorded: %q", b1)
	}
	if pidfd, err := unix.PidfdOpen(child, 0); err == nil {
		defer unix.Close(pidfd)
		if !fdwait.Readable(pidfd, time.Now().Add(5*time.Second)) {
			t.Errorf("the forked child (pid %d) outlived the failed start", child)
			unix.Kill(child, unix.SIGKILL)
		}
	}
}

func TestStartDiedReason(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, "exit 3\n", map[string]string{servicedir.NotificationFDFile: "3\n"})
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second})
	var se *backends.StartError
	if !errors.As(err, &se) || !strings.Contains(se.Reason, "exit code 3") {
		t.Fatalf("start = %v; want a StartError with the exit code", err)
	}
}

func TestStopEscalates(t *testing.T) {
	b, _ := scanner(t)
	// A forker: the child ignores SIGTERM too, and must not survive.
	svc := service(t, "trap '' TERM\n(trap '' TERM; exec sleep 1000) &\necho $! > child\necho >&3\nexec 3>&-\nwhile :; do sleep 1; done\n",
		map[string]string{servicedir.NotificationFDFile: "3\n", servicedir.TimeoutKillFile: "200\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	b1, err := os.ReadFile(filepath.Join(svc.Dir, "child"))
	if err != nil {
		t.Fatal(err)
	}
	var child int
	fmt.Sscan(string(b1), &child)
	pidfd, err := unix.PidfdOpen(child, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !fdwait.Readable(pidfd, deadline(t)) {
		t.Errorf("the forked child (pid %d) survived the stop", child)
	}
	if st, _ := servicedir.ReadStatus(svc.Dir); st.Wstat != uint16(syscall.SIGKILL) {
		t.Errorf("last death wstat %#x; want killed by SIGKILL after timeout-kill", st.Wstat)
	}
}

func TestUnsupported(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.PidfileFile: "/run/x.pid\n"})
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "forking daemons") {
		t.Fatalf("start = %v; want ErrUnsupported naming forking daemons", err)
	}
	if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start linked the directory: %v", err)
	}
}

func TestLogScriptBecomesS6Log(t *testing.T) {
	b, _ := scanner(t)
	logDir := filepath.Join(t.TempDir(), "log")
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n",
		servicedir.LogScriptFile: "n3 " + logDir + "\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	logSvc := filepath.Join(svc.Dir, servicedir.LogDir)
	if err := svwait.Wait(testCtx(t), []string{logSvc}, svwait.Up, svwait.All); err != nil {
		t.Fatalf("s6-log is not up: %v", err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// The logger exited after the service: everything it read is written.
	got, err := os.ReadFile(filepath.Join(logDir, "current"))
	if err != nil || !strings.Contains(string(got), "starting") {
		t.Errorf("s6-log's current = %q, %v; want the service's line", got, err)
	}
}

func TestScannerDeath(t *testing.T) {
	b, cmd := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	cmd.Process.Kill() // s6-svscan only: its s6-supervise live on
	cmd.Wait()
	st, err := b.Status(svc)
	if err != nil || st.Supervised || !st.SupervisorDead || !st.Up || !strings.Contains(st.Line, "s6-svscan is not running") {
		t.Fatalf("status after the scanner died = %+v, %v; want unsupervised, up, the scanner named", st, err)
	}
	err = b.Start(testCtx(t), service(t, readyRun, nil), backends.StartOptions{Goal: svwait.Up})
	if !errors.Is(err, backends.ErrNoSupervisor) {
		t.Errorf("start without a scanner = %v; want ErrNoSupervisor", err)
	}
	// Stop still stops the service its orphaned s6-supervise runs.
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st, _ := b.Status(svc); st.Up {
		t.Errorf("status after stop = %+v", st)
	}
}

// TestStopNeverSeenAsCrash: a stop tells s6-supervise 'd' before any
// signal reaches the run, so that finish (the generated one counts a
// death while wanted up toward respawn_max and can give up) never sees
// the stop's death as a crash, and nothing respawns during the stop.
func TestStopNeverSeenAsCrash(t *testing.T) {
	if _, err := exec.LookPath("s6-svstat"); err != nil {
		t.Skipf("s6-svstat: %v", err)
	}
	b, _ := scanner(t)
	svc := service(t, "echo spawn >> spawns\necho >&3\nexec sleep 1000 3>&-\n",
		map[string]string{servicedir.NotificationFDFile: "3\n"})
	finish := "#!/bin/sh\ns6-svstat -o wantedup . >> finish-wantedup\n"
	if err := os.WriteFile(filepath.Join(svc.Dir, servicedir.FinishFile), []byte(finish), 0o755); err != nil {
		t.Fatal(err)
	}
	const n = 5
	for i := 0; i < n; i++ {
		if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
			t.Fatalf("start %d: %v", i, err)
		}
		if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
			t.Fatalf("stop %d: %v", i, err)
		}
	}
	got, _ := os.ReadFile(filepath.Join(svc.Dir, "finish-wantedup"))
	if w := strings.Fields(string(got)); len(w) != n || slices.Contains(w, "true") {
		t.Errorf("finish saw wanted-up %q over %d stops; want %d times false", w, n, n)
	}
	spawns, _ := os.ReadFile(filepath.Join(svc.Dir, "spawns"))
	if c := strings.Count(string(spawns), "spawn"); c != n {
		t.Errorf("%d spawns for %d starts: something respawned during a stop", c, n)
	}
}

// TestStopSignalsAfterDown holds s6-supervise stopped (SIGSTOP) during a
// stop: the run must not get a signal before s6-supervise has read 'd'
// (it would see a crash while the service is wanted up), so it lives
// until s6-supervise runs again, and finish then sees it wanted down.
func TestStopSignalsAfterDown(t *testing.T) {
	if _, err := exec.LookPath("s6-svstat"); err != nil {
		t.Skipf("s6-svstat: %v", err)
	}
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	finish := "#!/bin/sh\ns6-svstat -o wantedup . >> finish-wantedup\n"
	if err := os.WriteFile(filepath.Join(svc.Dir, servicedir.FinishFile), []byte(finish), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, _ := b.Status(svc)
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	sup, err := servicedir.HolderPid(filepath.Join(svc.Dir, servicedir.LockPath))
	if err != nil || sup <= 0 {
		t.Fatalf("s6-supervise's pid: %d, %v", sup, err)
	}
	unix.Kill(sup, unix.SIGSTOP)
	t.Cleanup(func() { unix.Kill(sup, unix.SIGCONT) })
	errc := make(chan error, 1)
	go func() { errc <- b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}) }()
	if fdwait.Readable(pidfd, time.Now().Add(time.Second)) {
		t.Errorf("the run died while s6-supervise had not read 'd' yet")
	}
	unix.Kill(sup, unix.SIGCONT)
	if err := <-errc; err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !fdwait.Readable(pidfd, deadline(t)) {
		t.Errorf("the run survived the stop")
	}
	if got, _ := os.ReadFile(filepath.Join(svc.Dir, "finish-wantedup")); strings.TrimSpace(string(got)) != "false" {
		t.Errorf("finish saw wanted-up %q; want false", got)
	}
}

// TestLogScriptQuoted: s6-log directives reach s6-log as words, not as
// shell syntax (a '|' in a selection regex, a glob that matches a file
// in log/).
func TestLogScriptQuoted(t *testing.T) {
	b, _ := scanner(t)
	logDir := filepath.Join(t.TempDir(), "log")
	svc := service(t, "echo other\necho starting\necho >&3\nexec sleep 1000 3>&-\n", map[string]string{servicedir.NotificationFDFile: "3\n",
		servicedir.LogScriptFile: "n3 -.* +^start|^stop " + logDir + "\n"})
	if err := os.Mkdir(filepath.Join(svc.Dir, servicedir.LogDir), 0o755); err != nil {
		t.Fatal(err)
	}
	// A file the unquoted glob -.* would expand to.
	if err := os.WriteFile(filepath.Join(svc.Dir, servicedir.LogDir, "-.x"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(logDir, "current"))
	if err != nil || !strings.Contains(string(got), "starting") || strings.Contains(string(got), "other") {
		t.Errorf("s6-log's current = %q, %v; want the selected line only", got, err)
	}
}

// TestLogRunHandWrittenWins: a log/run gosv did not write is the logger
// (PROTOCOL.md §9.1: log/run wins over log-script); the one gosv wrote is
// removed at the stop, so that the directory means the same under gosv.
func TestLogRunHandWrittenWins(t *testing.T) {
	b, _ := scanner(t)
	logDir := filepath.Join(t.TempDir(), "log")
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n",
		servicedir.LogScriptFile: "n3 " + logDir + "\n"})
	hand := "#!/bin/sh\nexec cat > ../handlog\n"
	logRunPath := filepath.Join(svc.Dir, servicedir.LogDir, servicedir.RunFile)
	if err := os.Mkdir(filepath.Join(svc.Dir, servicedir.LogDir), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logRunPath, []byte(hand), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if got, _ := os.ReadFile(logRunPath); string(got) != hand {
		t.Errorf("the hand-written log/run became %q", got)
	}
	if got, _ := os.ReadFile(filepath.Join(svc.Dir, "handlog")); !strings.Contains(string(got), "starting") {
		t.Errorf("the hand-written logger got %q", got)
	}
	// gosv's own log/run: written at the start, gone after the stop.
	if err := os.Remove(logRunPath); err != nil {
		t.Fatal(err)
	}
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	if _, err := os.Stat(logRunPath); err != nil {
		t.Errorf("no log/run written from log-script: %v", err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if _, err := os.Lstat(logRunPath); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("gosv's log/run is left after the stop: %v", err)
	}
}

// TestCheckNeedsNotifyOnCheck: s6-supervise does not run a check
// script: one without a notification-fd (whose run would run it through
// gosv notifyoncheck or s6-notifyoncheck) is refused, not ignored.
func TestCheckNeedsNotifyOnCheck(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, "exec sleep 1000\n", map[string]string{servicedir.CheckFile: "#!/bin/sh\nexit 1\n"})
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second})
	if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "gosv notifyoncheck") ||
		!strings.Contains(err.Error(), filepath.Join(svc.Dir, servicedir.CheckFile)) {
		t.Fatalf("start = %v; want ErrUnsupported naming the check and gosv notifyoncheck", err)
	}
	if err := b.CheckFiles([]string{servicedir.RunFile, servicedir.CheckFile}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("CheckFiles(run, check) = %v; want ErrUnsupported", err)
	}
	if err := b.CheckFiles([]string{servicedir.RunFile, servicedir.CheckFile, servicedir.NotificationFDFile}); err != nil {
		t.Errorf("CheckFiles(run, check, notification-fd) = %v; want nil (the run runs the check)", err)
	}
	if err := os.WriteFile(filepath.Join(svc.Dir, servicedir.NotificationFDFile), []byte("3\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := Check(svc.Dir); err != nil {
		t.Errorf("Check with a notification-fd = %v; want nil", err)
	}
}

// TestSuperviseDeath: after s6-svscan and then the service's s6-supervise
// are killed, the run lives on: status names it (unsupervised, from s6's
// own status pid), and stop stops it.
func TestSuperviseDeath(t *testing.T) {
	b, cmd := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, _ := b.Status(svc)
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	t.Cleanup(func() { unix.Kill(st.Pid, unix.SIGKILL) })
	sup, err := servicedir.HolderPid(filepath.Join(svc.Dir, servicedir.LockPath))
	if err != nil || sup <= 0 {
		t.Fatalf("s6-supervise's pid: %d, %v", sup, err)
	}
	cmd.Process.Kill() // first s6-svscan, which would start another s6-supervise
	cmd.Wait()
	supfd, err := unix.PidfdOpen(sup, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(supfd)
	unix.Kill(sup, unix.SIGKILL)
	if !fdwait.Readable(supfd, deadline(t)) {
		t.Fatal("s6-supervise survived SIGKILL")
	}
	st2, err := b.Status(svc)
	if err != nil || st2.Supervised || !st2.Up || st2.Pid != st.Pid || !st2.SupervisorDead {
		t.Errorf("status after s6-supervise died = %+v, %v; want unsupervised, up, pid %d", st2, err, st.Pid)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if !fdwait.Readable(pidfd, time.Now().Add(20*time.Second)) {
		t.Errorf("the daemon (pid %d) survived the stop", st.Pid)
	}
	if st3, _ := b.Status(svc); st3.Up {
		t.Errorf("status after stop = %+v", st3)
	}
}
