package runit

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

const runsvdirBin = "/usr/bin/runsvdir"

// scanner runs a real runsvdir on a fresh scan directory, with a
// readproctitle log argument as OpenRC's init.d/runsvdir gives it. At
// cleanup it gets SIGHUP (runsvdir(8): TERM to every runsv, exit 111).
func scanner(t *testing.T) (*Backend, *exec.Cmd) {
	t.Helper()
	if _, err := os.Stat(runsvdirBin); err != nil {
		if os.Getenv("REQUIRE_RUNIT") == "1" {
			t.Fatalf("REQUIRE_RUNIT=1 but %s: %v", runsvdirBin, err)
		}
		t.Skipf("runit not installed: %v", err)
	}
	scan := t.TempDir()
	cmd := exec.Command(runsvdirBin, "-P", scan, "log: "+strings.Repeat(".", 100))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGHUP)
		cmd.Wait()
	})
	// runsvdir has no readiness: it is looked up by its command line,
	// which exists once exec is done (cmd.Start returned).
	b := New(scan)
	if !b.Running() {
		t.Fatalf("runsvdir on %s not found", scan)
	}
	return b, cmd
}

// alive reports whether pid is a live process (not a zombie).
func alive(pid int) bool {
	ps, err := servicedir.ReadProcStat(pid)
	return pid > 0 && err == nil && ps.State != 'Z'
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

// service writes a gosv service directory with the given run script.
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
	t0 := time.Now()
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Logf("start took %v", time.Since(t0))
	st, err := b.Status(svc)
	if err != nil || !st.Supervised || !st.Up || !st.Ready || st.Pid <= 0 || !strings.HasPrefix(st.Line, "run: (pid ") {
		t.Fatalf("status after start = %+v, %v; want supervised, up, ready", st, err)
	}
	rdir := filepath.Join(svc.Dir, servicedir.RunitDir)
	rec, err := servicedir.ReadRecord(svc.Dir, servicedir.SupervisorRecordPath)
	if holder := flockHolder(filepath.Join(rdir, servicedir.LockPath)); err != nil || rec.Pid != holder || holder <= 0 {
		t.Errorf("supervisor record %+v, %v; want runsv's pid %d", rec, err, holder)
	}
	if comm, _ := os.ReadFile("/proc/" + strconv.Itoa(rec.Pid) + "/comm"); strings.TrimSpace(string(comm)) != "runsv" {
		t.Errorf("the record names %q, want runsv", comm)
	}
	// The status of the link (what OpenRC's status finds) is the same.
	if st2, err := b.Status(backends.Service{Name: svc.Name, Dir: filepath.Join(b.ScanDir, svc.Name)}); err != nil || st2.Pid != st.Pid {
		t.Errorf("status through the link = %+v, %v", st2, err)
	}
	pidfd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	t0 = time.Now()
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	t.Logf("stop took %v", time.Since(t0))
	if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the link is still in the scan directory: %v", err)
	}
	if !pollFd(testCtx(t), pidfd) {
		t.Errorf("the daemon outlived the stop")
	}
	if st, err := b.Status(svc); err != nil || st.Supervised || st.Up {
		t.Errorf("status after stop = %+v, %v", st, err)
	}
	// The default log got the daemon's output, stamped.
	b2, _ := os.ReadFile(filepath.Join(DefaultLogDir(b.ScanDir, svc.Name), "current"))
	if !strings.Contains(string(b2), " starting\n") || b2[0] != '@' {
		t.Errorf("default log: %q", b2)
	}
}

func TestStartNotReady(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, "echo warming up\nexec sleep 1000\n", map[string]string{servicedir.NotificationFDFile: "3\n"})
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 500 * time.Millisecond})
	var se *backends.StartError
	if !errors.As(err, &se) || se.Reason != "not ready within 500ms" {
		t.Fatalf("start = %v, want not ready within 500ms", err)
	}
	if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed start left the link: %v", err)
	}
	if st, _ := servicedir.ReadRunitStatus(filepath.Join(svc.Dir, servicedir.RunitDir)); st.Up() && alive(st.Pid) {
		t.Errorf("a failed start left the daemon: %+v", st)
	}
}

func TestStartDiesBeforeReady(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, "exit 3\n", map[string]string{servicedir.NotificationFDFile: "3\n"})
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 10 * time.Second})
	var se *backends.StartError
	if !errors.As(err, &se) || !strings.HasPrefix(se.Reason, "died before it was ready") {
		t.Fatalf("start = %v, want died before it was ready", err)
	}
}

// TestStopEscalates: a daemon that ignores the down-signal and forks a
// child that ignores it too is SIGKILLed with its child after
// timeout-kill; the down-signal reached the group (control/t).
func TestStopEscalates(t *testing.T) {
	b, _ := scanner(t)
	pids := filepath.Join(t.TempDir(), "pids")
	run := "trap 'echo got INT >>" + pids + ".sig' INT\ntrap '' TERM\nsh -c 'trap \"\" INT TERM; echo $$ >>" + pids + "; exec sleep 1000' &\necho $$ >>" + pids + "\necho >&3\nwhile :; do wait; done\n"
	svc := service(t, run, map[string]string{servicedir.NotificationFDFile: "3\n", servicedir.TimeoutKillFile: "300\n", servicedir.DownSignalFile: "SIGINT\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	t0 := time.Now()
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("stopped after %v, before timeout-kill", d)
	}
	b1, _ := os.ReadFile(pids)
	for _, f := range strings.Fields(string(b1)) {
		pid, _ := strconv.Atoi(f)
		if alive(pid) {
			t.Errorf("pid %d survived the stop", pid)
		}
	}
	if sig, _ := os.ReadFile(pids + ".sig"); !strings.Contains(string(sig), "got INT") {
		t.Errorf("the down-signal SIGINT did not reach the daemon (%q)", sig)
	}
}

// TestScannerDeath: with runsvdir gone the service is unsupervised while
// its process lives; stop still stops it.
func TestScannerDeath(t *testing.T) {
	b, cmd := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	st, err := b.Status(svc)
	if err != nil || st.Supervised || !st.SupervisorDead || !st.Up || !strings.HasPrefix(st.Line, "runsvdir is not running") {
		t.Fatalf("status after runsvdir's death = %+v, %v; want unsupervised and up", st, err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if st, _ := b.Status(svc); st.Up {
		t.Errorf("status after stop = %+v", st)
	}
}

func TestUnsupported(t *testing.T) {
	b, _ := scanner(t)
	for _, c := range []struct{ file, content, want string }{
		{servicedir.NotificationSocketFile, "all\n", "sd_notify"},
		{servicedir.PidfileFile, "/run/x.pid\n", "pidfile"},
		{servicedir.NotificationFDFile, "12\n", "above 9"},
		{servicedir.LogScriptFile, "t S100000 /var/log/x\n", `"S100000" has no svlogd equivalent`},
	} {
		svc := service(t, readyRun, map[string]string{c.file: c.content})
		err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 5 * time.Second})
		if !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), c.want) || !strings.Contains(err.Error(), c.file) {
			t.Errorf("%s: start = %v, want an error naming it and %q", c.file, err, c.want)
		}
	}
	if err := b.CheckFiles([]string{servicedir.RunFile, servicedir.HealthCheckFile}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("CheckFiles = %v", err)
	}
	// A check script is run by gosv notifyoncheck on the notification
	// fd: beside a notification-fd of its own, one of them would be lost.
	svc := service(t, readyRun, map[string]string{servicedir.CheckFile: "#!/bin/sh\nexit 0\n", servicedir.NotificationFDFile: "3\n"})
	if err := Check(svc.Dir); !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "one readiness source") {
		t.Errorf("check and notification-fd: %v, want a refusal", err)
	}
	svc = service(t, readyRun, map[string]string{servicedir.CheckFile: "#!/bin/sh\nexit 0\n"})
	if err := Check(svc.Dir); err != nil {
		t.Errorf("a check script alone: %v, want accepted", err)
	}
}

func TestSvlogdScript(t *testing.T) {
	flags, dir, cfg, err := svlogdScript(strings.Fields("t s1048576 n10 /var/log/web"))
	if err != nil || strings.Join(flags, " ") != "-t" || dir != "/var/log/web" || cfg != "s1048576\nn10\n" {
		t.Errorf("svlogdScript = %q %q %q %v", flags, dir, cfg, err)
	}
	for _, bad := range []string{"t /a /b", "t n10", "t !gzip /a", "+foo /a"} {
		if _, _, _, err := svlogdScript(strings.Fields(bad)); !errors.Is(err, ErrUnsupported) {
			t.Errorf("svlogdScript(%q) = %v, want ErrUnsupported", bad, err)
		}
	}
}

// TestRelativeLogDir: a log-script's relative directory (./log, as in
// PROTOCOL.md) is the service directory's, where svlogd writes: its
// config goes there, not to the client's working directory.
func TestRelativeLogDir(t *testing.T) {
	b, _ := scanner(t)
	cwd := t.TempDir()
	t.Chdir(cwd)
	svc := service(t, "echo hello from the run\necho >&3\nexec sleep 1000 3>&-\n", map[string]string{
		servicedir.NotificationFDFile: "3\n",
		servicedir.LogScriptFile:      "t s4096 ./log\n",
	})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	logDir := filepath.Join(svc.Dir, servicedir.LogDir)
	if cfg, err := os.ReadFile(filepath.Join(logDir, servicedir.RunitLogConfig)); err != nil || string(cfg) != "s4096\n" {
		t.Errorf("config in %s: %q, %v", logDir, cfg, err)
	}
	if cur, _ := os.ReadFile(filepath.Join(logDir, "current")); !strings.Contains(string(cur), " hello from the run\n") {
		t.Errorf("%s/current: %q", logDir, cur)
	}
	if ents, _ := os.ReadDir(cwd); len(ents) != 0 {
		t.Errorf("the start wrote into its working directory: %v", ents)
	}
}

// leader starts sleep in a session of its own, as chpst -P runs the run,
// or in the test's process group.
func leader(t *testing.T, setsid bool) *exec.Cmd {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	return cmd
}

// writeStatus writes a runit supervise/status naming pid as the run
// process since stamp, as a dead runsv left it.
func writeStatus(t *testing.T, svc backends.Service, pid int, stamp time.Time) {
	t.Helper()
	rdir := filepath.Join(svc.Dir, servicedir.RunitDir)
	if err := os.MkdirAll(filepath.Join(rdir, servicedir.SuperviseDir), 0o755); err != nil {
		t.Fatal(err)
	}
	st := servicedir.RunitStatus{Stamp: stamp, Pid: pid, WantUp: true, State: servicedir.RunitRun}
	b := st.Pack()
	if err := os.WriteFile(filepath.Join(rdir, servicedir.StatusPath), b[:], 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRecycledPid: with runsv dead, the pid of runit's status is the run
// only while /proc shows a session leader started when runsv stamped the
// status; any other process of that pid (recycled) is neither reported,
// nor signalled by reload, nor stopped.
func TestRecycledPid(t *testing.T) {
	b := New(t.TempDir())
	for _, c := range []struct {
		name   string
		setsid bool
		age    time.Duration // of the status stamp, against the process's start
		up     bool
	}{
		{"the run", true, 0, true},
		{"recycled, started after the stamp", true, time.Hour, false},
		{"recycled, from a previous boot's status", true, -time.Hour, false},
		{"not a group leader", false, 0, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			svc := service(t, readyRun, nil)
			p := leader(t, c.setsid)
			ps, err := servicedir.ReadProcStat(p.Process.Pid)
			if err != nil {
				t.Fatal(err)
			}
			writeStatus(t, svc, p.Process.Pid, procStart(ps.StartTime).Add(-c.age))
			st, err := b.Status(svc)
			if err != nil {
				t.Fatal(err)
			}
			if st.Up != c.up || (c.up && st.Pid != p.Process.Pid) {
				t.Errorf("status = %+v; want up %v", st, c.up)
			}
			if c.up {
				return
			}
			if err := b.Signal(svc, unix.SIGTERM); !errors.Is(err, backends.ErrNotUp) {
				t.Errorf("reload = %v; want ErrNotUp", err)
			}
			if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 10 * time.Second}); err != nil {
				t.Errorf("stop: %v", err)
			}
			if !alive(p.Process.Pid) {
				t.Errorf("the stop or the reload killed pid %d, which is not the run", p.Process.Pid)
			}
		})
	}
}

// TestStopRunsvDead: with runsvdir and runsv dead, nothing writes
// runit's status: the stop waits on the run process itself, and returns
// once it is gone, not after timeout-kill.
func TestStopRunsvDead(t *testing.T) {
	b, cmd := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n", servicedir.TimeoutKillFile: "60000\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	before, _ := b.Status(svc)
	cmd.Process.Kill()
	cmd.Wait()
	rdir := filepath.Join(svc.Dir, servicedir.RunitDir)
	runsv := flockHolder(filepath.Join(rdir, servicedir.LockPath))
	fd, err := unix.PidfdOpen(runsv, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
	if !pollFd(testCtx(t), fd) {
		t.Fatal("runsv outlived SIGKILL")
	}
	st, err := b.Status(svc)
	if err != nil || !st.Up || st.Pid != before.Pid || !strings.HasPrefix(st.Line, "unsupervised (pid ") {
		t.Fatalf("status with runsv dead = %+v, %v; want unsupervised, pid %d", st, err, before.Pid)
	}
	t0 := time.Now()
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 90 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	// NOTE: no timing target: 30 s is half the timeout-kill the old wait
	// on the status file always took.
	if d := time.Since(t0); d > 30*time.Second {
		t.Errorf("stop took %v: it waited for timeout-kill", d)
	}
	if alive(before.Pid) {
		t.Errorf("the run process %d outlived the stop", before.Pid)
	}
}

// TestStopNoTimeoutKill: without timeout-kill the stop never SIGKILLs,
// as gosv and s6 read it: a daemon ignoring its down-signal outlives a
// stop that ends with an error naming it.
func TestStopNoTimeoutKill(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, "trap '' TERM\necho >&3\nexec 3>&-\nwhile :; do sleep 1000 & wait; done\n", map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, _ := b.Status(svc)
	fd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// runsv stays (want down) until the run is gone: then a stop
		// ends it, before its directory is removed.
		unix.Kill(-st.Pid, unix.SIGKILL)
		pollFd(testCtx(t), fd)
		unix.Close(fd)
		if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
			t.Errorf("stop after SIGKILL: %v", err)
		}
	})
	err = b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 2 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "did not stop") {
		t.Errorf("stop = %v; want an error: the run did not stop", err)
	}
	if exited(fd) {
		t.Errorf("the run process was killed without a timeout-kill")
	}
}

// TestOneRewake: the take of a new link is awaited with ONE more wake a
// second after the first (runsvdir ignores a wake within a second of its
// last look: the second one cannot be lost), not a wake every second.
func TestOneRewake(t *testing.T) {
	rdir := t.TempDir()
	w, err := newWatch(testCtx(t), rdir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.close()
	n := 0
	err = w.untilWaking(time.Now().Add(rewakeAfter*5/2), func() bool { return false }, func() { n++ })
	if !errors.Is(err, errDeadline) || n != 1 {
		t.Errorf("untilWaking = %v after %d wakes; want errDeadline after 1", err, n)
	}
}
