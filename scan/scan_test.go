package scan

import (
	"context"
	"fmt"
	"io"
	"maps"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdhold"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/spawner"
	"github.com/gosv/gosv/internal/svctl"
	"github.com/gosv/gosv/svwait"
)

// The test binary doubles as the scanner and as service programs
// (os/exec's helper-process pattern): no dependency on /bin/sleep.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == holderArgv0 {
		// The scanner starts its own binary (this one) as the fd holder.
		if err := fdhold.Serve(3, 4); err != nil {
			os.Exit(111)
		}
		os.Exit(0)
	}
	if filepath.Base(os.Args[0]) == spawnerArgv0 {
		// The scanner starts its own binary (this one) as the spawn helper.
		if err := spawner.Serve(3); err != nil {
			os.Exit(111)
		}
		os.Exit(0)
	}
	switch os.Getenv("GOSV_TEST_ROLE") {
	case "exit0":
		os.Exit(0)
	case "scanner":
		dir := os.Args[len(os.Args)-1]
		if rx := strings.Fields(os.Getenv(reexecEnv)); os.Getenv("GOSV_TEST_REEXEC_FAIL") != "" && len(rx) == 2 && rx[1] != "-1" {
			dir = "/dev/null/x" // a new image that cannot set up (TestReexecRollback)
		}
		err := Run(Config{Prog: "gosv svscan", ScanDir: dir, NotifyFd: 3, Stderr: os.Stderr,
			MetricsListen: os.Getenv("GOSV_TEST_METRICS_LISTEN"), MetricsTextfile: os.Getenv("GOSV_TEST_METRICS_TEXTFILE"), Spawner: true,
			Exe: os.Getenv("GOSV_TEST_REEXEC_EXE"), RunPidfds: atoiOr0(os.Getenv("GOSV_TEST_RUN_PIDFDS"))})
		if err != nil {
			fmt.Fprintln(os.Stderr, "scanner:", err)
			os.Exit(111)
		}
		os.Exit(0)
	case "supervisor":
		// gosv supervise DIR: the same loop with one service.
		err := Run(Config{Prog: "gosv supervise", ServiceDir: os.Args[len(os.Args)-1], NotifyFd: 3, Stderr: os.Stderr})
		if err != nil {
			fmt.Fprintln(os.Stderr, "supervisor:", err)
			os.Exit(111)
		}
		os.Exit(0)
	case "pause":
		// A service: block until a signal kills it.
		block()
	case "sd-ready":
		// sd_notify READY=1 (optionally as another user first), then block.
		if len(os.Args) > 1 && os.Args[len(os.Args)-1] == "as-nobody" {
			if err := syscall.Setgid(65534); err == nil {
				err = syscall.Setuid(65534)
			}
		}
		sdNotify("READY=1")
		block()
	case "sd-msg":
		// Send $GOSV_TEST_MSG now, then block.
		sdNotify(strings.ReplaceAll(os.Getenv("GOSV_TEST_MSG"), `\n`, "\n"))
		block()
	case "sd-on-fifo":
		// Send $GOSV_TEST_MSG each time a line arrives on the fifo named
		// by the last argument (a signal could arrive before a handler).
		f, err := os.Open(os.Args[len(os.Args)-1])
		if err != nil {
			os.Exit(5)
		}
		buf := make([]byte, 64)
		for {
			if n, err := f.Read(buf); n > 0 {
				sdNotify(strings.ReplaceAll(os.Getenv("GOSV_TEST_MSG"), `\n`, "\n"))
			} else if err != nil {
				block()
			}
		}
	case "sd-mainpid":
		// Fork a child that declares itself the main pid and ready; exit.
		if len(os.Args) > 1 && os.Args[len(os.Args)-1] == "child" {
			sdNotify("MAINPID=" + strconv.Itoa(os.Getpid()) + "\nREADY=1")
			block()
		}
		c := exec.Command(os.Args[0], "child")
		c.Env = os.Environ()
		c.Start()
		block() // killed by the test after MAINPID moved
	case "echo-on-fifo":
		// Echo each line of the fifo named by the last argument to stdout.
		f, err := os.Open(os.Args[len(os.Args)-1])
		if err != nil {
			os.Exit(5)
		}
		buf := make([]byte, 256)
		for {
			n, err := f.Read(buf)
			if n > 0 {
				os.Stdout.Write(buf[:n])
			} else if err != nil {
				block()
			}
		}
	case "echo-until-eof":
		// Echo the fifo named by the last argument to stdout; exit at its EOF.
		f, err := os.Open(os.Args[len(os.Args)-1])
		if err != nil {
			os.Exit(5)
		}
		io.Copy(os.Stdout, f)
		os.Exit(0)
	case "ready-on-fifo":
		// Read a line from the fifo named by the last argument, then write
		// readiness to fd 3; a broken notification pipe makes it exit 7,
		// as a daemon that does not ignore SIGPIPE would die.
		f, err := os.Open(os.Args[len(os.Args)-1])
		if err != nil {
			os.Exit(5)
		}
		buf := make([]byte, 64)
		if _, err := f.Read(buf); err != nil {
			os.Exit(6)
		}
		if _, err := unix.Write(3, []byte("\n")); err != nil {
			os.Exit(7)
		}
		block()
	case "forker":
		// A launcher as distributions' forking daemons have: start the
		// daemon in the background and exit (args: MODE PIDFILE).
		forker(os.Args[1], os.Args[2])
	case "forker-daemon":
		// The daemon: write the pidfile (and readiness on fd 5), then run.
		if os.Args[2] == "lockself" {
			lockselfDaemon()
		}
		if os.Args[2] == "gated" || os.Args[2] == "gated-wait" {
			// Write the pidfile only once the test says so (a line on
			// PIDFILE.gate): the launch stays open as long as it needs.
			if f, err := os.Open(os.Args[3] + ".gate"); err == nil {
				f.Read(make([]byte, 1))
				f.Close()
			}
		}
		os.MkdirAll(filepath.Dir(os.Args[3]), 0o755) // a daemon that makes its own /run/NAME
		os.WriteFile(os.Args[3], []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		if os.Args[2] == "notify" {
			unix.Write(5, []byte("\n"))
		}
		if os.Args[2] == "gated-wait" {
			unix.Write(3, []byte("\n")) // started: the launcher may exit
		}
		if os.Args[2] == "setsid-late" {
			// Named in the pidfile while still in the launcher's group;
			// its own session only once the test says so, with a worker.
			if f, err := os.Open(os.Args[3] + ".gate"); err == nil {
				f.Read(make([]byte, 1))
				f.Close()
			}
			syscall.Setsid()
			w := exec.Command(os.Args[0])
			w.Env = append(os.Environ(), "GOSV_TEST_ROLE=pause")
			if w.Start() == nil {
				os.WriteFile(os.Args[3]+".worker", []byte(strconv.Itoa(w.Process.Pid)+"\n"), 0o644)
			}
		}
		block()
	case "http-server", "mark-pause":
		healthRole(os.Getenv("GOSV_TEST_ROLE"), os.Args[len(os.Args)-1]) // health_test.go
	case "ignore-term-fork":
		// A service that ignores SIGTERM and forks a child that does too.
		signal.Ignore(syscall.SIGTERM)
		if len(os.Args) < 3 {
			c := exec.Command(os.Args[0], os.Args[1], "child")
			c.Env = os.Environ()
			c.Start()
		}
		block()
	}
	os.Exit(m.Run())
}

// atoiOr0 is s as a number, 0 when it is not one.
func atoiOr0(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}

// sdNotify sends one datagram to $NOTIFY_SOCKET.
func sdNotify(msg string) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		os.Exit(3)
	}
	if err := unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: os.Getenv("NOTIFY_SOCKET")}); err != nil {
		fmt.Fprintln(os.Stderr, "sdnotify:", err)
		os.Exit(4)
	}
	unix.Close(fd)
}

// block parks the process until a signal kills it (select{} would trip
// the runtime's deadlock detector).
func block() {
	for {
		unix.Pause()
	}
}

type tree struct {
	t    *testing.T
	dir  string
	cmd  *exec.Cmd
	exit chan error
}

// startScanner runs the scanner on a fresh scan directory and returns once
// it has signalled readiness on fd 3 (like s6-svscan -d3).
func startScanner(t *testing.T, dir string) *tree {
	t.Helper()
	return startScannerTo(t, dir, os.Stderr)
}

// startScannerTo is startScanner with the scanner's output going to stderr.
func startScannerTo(t *testing.T, dir string, stderr *os.File) *tree {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], dir)
	cmd.Env = append(os.Environ(), "GOSV_TEST_ROLE=scanner", "GOSV_TEST_BIN="+os.Args[0])
	cmd.Stderr = stderr
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	tr := &tree{t: t, dir: dir, cmd: cmd, exit: make(chan error, 1)}
	go func() { tr.exit <- cmd.Wait() }()
	buf := make([]byte, 1)
	if _, err := r.Read(buf); err != nil {
		t.Fatalf("scanner did not become ready: %v", err)
	}
	r.Close()
	t.Cleanup(func() { tr.stop() })
	return tr
}

// stop asks the scanner to exit (t) and waits for it; SIGKILL on deadline.
func (tr *tree) stop() {
	if tr.cmd == nil {
		return
	}
	svctl.Svscanctl(tr.dir, []byte("t"))
	select {
	case <-tr.exit:
	case <-time.After(10 * time.Second):
		tr.cmd.Process.Kill()
		<-tr.exit
		tr.t.Errorf("scanner did not exit on t")
	}
	tr.cmd = nil
}

// kill SIGKILLs the scanner, as a crash would, and returns once nothing
// of it holds its locks any more, so that the next scanner can take over.
// NOTE: its exit is not enough: a child it had forked (a run, an exec
// that failed) and that has not exec'd or exited yet still holds a copy
// of every descriptor, the OFD locks included; under load that lasts long
// enough for a new scanner to fail with "lock held" (seen in
// TestOrphanNotAdopted). A real supervisor restarting the scanner meets
// the same window; the test waits it out on the locks themselves.
func (tr *tree) kill() {
	tr.t.Helper()
	tr.cmd.Process.Kill()
	<-tr.exit
	tr.cmd = nil
	locks, _ := filepath.Glob(filepath.Join(tr.dir, "*", servicedir.LockPath))
	logLocks, _ := filepath.Glob(filepath.Join(tr.dir, "*", "log", servicedir.LockPath))
	for _, p := range append(append([]string{filepath.Join(tr.dir, servicedir.ScanLockPath)}, locks...), logLocks...) {
		waitUnlocked(tr.t, p)
	}
}

// waitUnlocked waits until nobody holds the OFD lock of path (F_OFD_SETLKW:
// the release is the event), within the test's deadline.
func waitUnlocked(t *testing.T, path string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return // no lock file: nothing to wait for
	}
	done := make(chan error, 1)
	go func() {
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		done <- unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLKW, &lk)
	}()
	select {
	case err := <-done:
		f.Close() // releases it
		if err != nil {
			t.Fatalf("wait for the lock %s: %v", path, err)
		}
	case <-deadline(t).Done():
		// The goroutine stays blocked, and f open, until the test binary exits.
		t.Fatalf("%s still locked %v after the scanner's death", path, 10*time.Second)
	}
}

// service creates scan/NAME with the given run script and extra files.
func mksvc(t *testing.T, scan, name, run string, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), name)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for f, content := range files {
		mode := os.FileMode(0o644)
		if f == "finish" || f == "check" || strings.HasSuffix(f, "/run") {
			mode = 0o755
		}
		os.MkdirAll(filepath.Dir(filepath.Join(dir, f)), 0o755)
		if err := os.WriteFile(filepath.Join(dir, f), []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	if run != "" {
		if err := os.WriteFile(filepath.Join(dir, "run"), []byte(run), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const pauseRun = "#!/bin/sh\nGOSV_TEST_ROLE=pause exec \"$GOSV_TEST_BIN\" \"$1\"\n"

// link symlinks dir into the scan directory and waits for the supervisor's
// "s" event, as s6-svlink does.
func link(t *testing.T, scan, dir string) string {
	t.Helper()
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	p := filepath.Join(scan, filepath.Base(dir))
	if err := os.Symlink(dir, p); err != nil {
		t.Fatal(err)
	}
	sub.File.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for {
		n, err := sub.File.Read(buf)
		if err != nil {
			t.Fatalf("waiting for the s event of %s: %v", p, err)
		}
		if strings.IndexByte(string(buf[:n]), 's') >= 0 {
			return p
		}
	}
}

func deadline(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func waitFor(t *testing.T, dir string, goal svwait.Goal) {
	t.Helper()
	if err := svwait.Wait(deadline(t), []string{dir}, goal, svwait.All); err != nil {
		st, _ := servicedir.ReadStatus(dir)
		t.Fatalf("wait %v on %s: %v (status %+v)", goal, dir, err, st)
	}
}

// ctlWait sends letters and waits for goal, subscribed before sending.
func ctlWait(t *testing.T, dir, letters string, goal svwait.Goal) {
	t.Helper()
	w, err := svwait.Listen([]string{dir}, goal, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := servicedir.WriteControl(dir, []byte(letters)); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(deadline(t)); err != nil {
		st, _ := servicedir.ReadStatus(dir)
		t.Fatalf("%s then wait %v: %v (status %+v)", letters, goal, err, st)
	}
}

func status(t *testing.T, dir string) servicedir.Status {
	t.Helper()
	st, err := servicedir.ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func alive(pid int) bool { return pid > 0 && unix.Kill(pid, 0) == nil }

func TestUpDownRestart(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "a", pauseRun, nil))
	waitFor(t, svc, svwait.Up) // picked up by inotify, no svscanctl -a
	st := status(t, svc)
	if !st.Up() || !st.WantUp || st.Ready {
		t.Fatalf("status after start: %+v", st)
	}
	ok, err := servicedir.IsLocked(filepath.Join(svc, servicedir.LockPath))
	if err != nil || !ok {
		t.Fatalf("lock not held: %v %v", ok, err)
	}
	pid := st.Pid
	// A killed service is restarted; the new one has another pid.
	w, _ := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	unix.Kill(pid, unix.SIGKILL)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(t, svc, svwait.Up)
	if st2 := status(t, svc); st2.Pid == pid || st2.Wstat != uint16(unix.SIGKILL) {
		t.Fatalf("after SIGKILL: %+v", st2)
	}
	ctlWait(t, svc, "d", svwait.DownReady)
	if st := status(t, svc); st.WantUp || st.Up() || !st.Ready {
		t.Fatalf("after d: %+v", st)
	}
	ctlWait(t, svc, "u", svwait.Up)
	tr.stop()
	if st := status(t, svc); st.Up() {
		t.Fatalf("service still up after scanner exit: %+v", st)
	}
}

func TestReadinessAndFinish(t *testing.T) {
	svc, out := finishSvc(t, "r", "echo \"$@\" > OUT", nil)
	ctlWait(t, svc, "d", svwait.DownReady)
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "256 15 r\n" {
		t.Fatalf("finish args %q, %v", b, err)
	}
}

// TestFinishSeesItsDeath: when finish runs, supervise/death_tally already
// holds the death it was run for (gosv openrc finish counts respawns in
// it), as with s6-supervise.
func TestFinishSeesItsDeath(t *testing.T) {
	svc, out := finishSvc(t, "tally", "wc -c <supervise/death_tally >OUT", nil)
	ctlWait(t, svc, "d", svwait.DownReady)
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(svc, "supervise", "death_tally"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(b)); got != strconv.FormatInt(fi.Size(), 10) || fi.Size() == 0 {
		t.Errorf("finish saw a death_tally of %s bytes, after it: %d", got, fi.Size())
	}
}

func TestMissingRunIsWatched(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	dir := mksvc(t, scan, "late", "", nil)
	svc := link(t, scan, dir)
	w, err := svwait.Listen([]string{svc}, svwait.Up, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	os.WriteFile(filepath.Join(dir, "run.tmp"), []byte(pauseRun), 0o755)
	os.Rename(filepath.Join(dir, "run.tmp"), filepath.Join(dir, "run"))
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
}

func TestGroupKilledOnDown(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	run := "#!/bin/sh\nGOSV_TEST_ROLE=ignore-term-fork exec \"$GOSV_TEST_BIN\" x\n"
	svc := link(t, scan, mksvc(t, scan, "g", run, map[string]string{"timeout-kill": "200\n"}))
	waitFor(t, svc, svwait.Up)
	pgid := status(t, svc).Pid
	ctlWait(t, svc, "d", svwait.DownReady)
	if _, empty := groupState(pgid); !empty {
		t.Fatalf("process group %d still has members after D", pgid)
	}
}

func TestLogPipe(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	logged := filepath.Join(t.TempDir(), "logged")
	if err := unix.Mkfifo(logged, 0o600); err != nil {
		t.Fatal(err)
	}
	dir := mksvc(t, scan, "l", "#!/bin/sh\necho hello\nGOSV_TEST_ROLE=pause exec \"$GOSV_TEST_BIN\"\n",
		map[string]string{"log/run": "#!/bin/sh\nexec cat > " + logged + "\n"})
	link(t, scan, dir)
	f, err := os.Open(logged) // blocks until the logger opens the fifo
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 6)
	f.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := f.Read(buf); err != nil || string(buf) != "hello\n" {
		t.Fatalf("logger got %q, %v", buf, err)
	}
	if st := status(t, filepath.Join(dir, "log")); !st.Up() {
		t.Fatalf("logger status %+v", st)
	}
}

func TestExitRecreates(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "x", pauseRun, nil))
	waitFor(t, svc, svwait.Up)
	// x then d: the machine exits after the death and is taken again 1 s
	// later because the directory is still there.
	sub, err := servicedir.Subscribe(svc)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	servicedir.WriteControl(svc, []byte("xd"))
	waitEvent(t, sub, "x")
	waitEvent(t, sub, "s") // taken again, RecreateDelay later
	waitFor(t, svc, svwait.Up)
}

// TestAdoptAfterSIGKILL: no duplicates after a scanner restart.
func TestAdoptAfterSIGKILL(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	var dirs []string
	for i := 0; i < 5; i++ {
		dirs = append(dirs, link(t, scan, mksvc(t, scan, "s"+strconv.Itoa(i), pauseRun, nil)))
	}
	if err := svwait.Wait(deadline(t), dirs, svwait.Up, svwait.All); err != nil {
		t.Fatal(err)
	}
	pids := map[string]int{}
	for _, d := range dirs {
		pids[d] = status(t, d).Pid
	}
	tr.kill()
	startScanner(t, scan)
	for _, d := range dirs {
		waitFor(t, d, svwait.Up)
		if st := status(t, d); st.Pid != pids[d] || !alive(st.Pid) {
			t.Errorf("%s: pid %d after restart, want adopted %d", d, st.Pid, pids[d])
		}
	}
	// The adopted service is still supervised: d stops it.
	ctlWait(t, dirs[0], "d", svwait.DownReady)
	if alive(pids[dirs[0]]) {
		// The old scanner's child was reparented to our test process
		// (subreaper?) or init; kill(0) on a zombie succeeds, so check
		// the state.
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pids[dirs[0]]))
		if !strings.Contains(string(b), ") Z") {
			t.Errorf("adopted service still alive after d")
		}
	}
}

func role(r string, args ...string) string {
	return "#!/bin/sh\nGOSV_TEST_ROLE=" + r + " exec \"$GOSV_TEST_BIN\" " + strings.Join(args, " ") + "\n"
}

// waitEvent subscribes to dir's events (already subscribed: sub) and
// returns once one of the bytes in want arrives.
func waitEvent(t *testing.T, sub *servicedir.Subscription, want string) {
	t.Helper()
	sub.File.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for {
		n, err := sub.File.Read(buf)
		if err != nil {
			t.Fatalf("waiting for one of %q: %v", want, err)
		}
		if strings.ContainsAny(string(buf[:n]), want) {
			return
		}
	}
}

func TestCheckReadiness(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	count := filepath.Join(t.TempDir(), "count")
	check := "#!/bin/sh\necho try >> " + count + "\n[ $(wc -l < " + count + ") -ge 3 ] || { echo not yet; exit 1; }\n"
	svc := link(t, scan, mksvc(t, scan, "chk", pauseRun, map[string]string{"finish": "#!/bin/sh\n", "check": check}))
	sub, err := servicedir.Subscribe(svc)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	waitEvent(t, sub, "c") // a failed check announces itself
	b, err := os.ReadFile(filepath.Join(svc, checkOutputFile))
	if err != nil || !strings.Contains(string(b), "not yet") || !strings.Contains(string(b), "exited 1") {
		t.Fatalf("check-output %q, %v", b, err)
	}
	waitFor(t, svc, svwait.UpReady)
	if b, _ := os.ReadFile(count); strings.Count(string(b), "try") != 3 {
		t.Fatalf("check ran %d times, want 3", strings.Count(string(b), "try"))
	}
	// Readiness is tracked again after a crash: the new run is checked
	// again (the counter is past 3, so the first check succeeds).
	pid := status(t, svc).Pid
	w, _ := svwait.Listen([]string{svc}, svwait.DownReady, svwait.All)
	unix.Kill(pid, unix.SIGKILL)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(t, svc, svwait.UpReady)
	if st := status(t, svc); st.Pid == pid {
		t.Fatalf("not restarted: %+v", st)
	}
}

func TestSdNotifyReady(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	args := []string{}
	if os.Getuid() == 0 {
		args = append(args, "as-nobody") // READY=1 after dropping privileges
		// t.TempDir is 0700: let nobody reach the socket directory.
		for d := scan; d != os.TempDir(); d = filepath.Dir(d) {
			os.Chmod(d, 0o755)
		}
	}
	svc := link(t, scan, mksvc(t, scan, "sd", role("sd-ready", args...), map[string]string{"notification-socket": "main\n"}))
	waitFor(t, svc, svwait.UpReady)
	b, err := os.ReadFile(filepath.Join(svc, notifySocketRecord))
	if err != nil || !strings.HasPrefix(string(b), scan) {
		t.Fatalf("notify-socket record %q, %v", b, err)
	}
}

func TestSdNotifyImpostorIgnored(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	fifo := filepath.Join(t.TempDir(), "go")
	unix.Mkfifo(fifo, 0o600)
	run := "#!/bin/sh\nGOSV_TEST_MSG='STATUS=marker\\nEXTEND_TIMEOUT_USEC=5000000' GOSV_TEST_ROLE=sd-on-fifo exec \"$GOSV_TEST_BIN\" " + fifo + "\n"
	svc := link(t, scan, mksvc(t, scan, "victim", run, map[string]string{"notification-socket": "main\n"}))
	waitFor(t, svc, svwait.Up)
	b, err := os.ReadFile(filepath.Join(svc, notifySocketRecord))
	if err != nil {
		t.Fatal(err)
	}
	sock := strings.TrimSpace(string(b))
	sub, err := servicedir.Subscribe(svc)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	// The test process is not in the service's session: its READY=1 and
	// STATUS= must be ignored.
	fd, _ := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err := unix.Sendto(fd, []byte("READY=1\nSTATUS=impostor"), 0, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	// Then the real daemon speaks; datagrams are handled in order, so once
	// its EXTEND_TIMEOUT_USEC has produced event e, the impostor's was seen.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("go\n"))
	waitEvent(t, sub, "e")
	if st := status(t, svc); st.Ready {
		t.Fatalf("impostor made the service ready: %+v", st)
	}
	if b, _ := os.ReadFile(filepath.Join(svc, statusTextFile)); string(b) != "marker\n" {
		t.Fatalf("status-text %q, want the daemon's", b)
	}
	if b, err := os.ReadFile(filepath.Join(svc, readyDeadlineFile)); err != nil || !strings.HasPrefix(string(b), "@4000") {
		t.Fatalf("ready-deadline %q, %v", b, err)
	}
}

func TestWatchdogRestarts(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	// The daemon says READY=1 and WATCHDOG=1 once, then never again.
	run := "#!/bin/sh\nGOSV_TEST_MSG='READY=1\\nWATCHDOG=1' GOSV_TEST_ROLE=sd-msg exec \"$GOSV_TEST_BIN\"\n"
	svc := link(t, scan, mksvc(t, scan, "wd", run, map[string]string{"notification-socket": "main\n", "timeout-watchdog": "300\n"}))
	w, _ := svwait.Listen([]string{svc}, svwait.UpReady, svwait.All)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	pid := status(t, svc).Pid
	// No more pings: killed with the down-signal after 300 ms, restarted.
	w, _ = svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(t, svc, svwait.Up)
	if st := status(t, svc); st.Pid == pid || st.Wstat != uint16(unix.SIGTERM) {
		t.Fatalf("after the watchdog: %+v (old pid %d)", st, pid)
	}
}

func TestSdNotifyMainPid(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "mp", role("sd-mainpid"), map[string]string{"notification-socket": "main\n"}))
	waitFor(t, svc, svwait.Up)
	runPid := status(t, svc).Pid
	// MAINPID comes from the run's child, so "main" alone would refuse its
	// READY=1: the child becomes main with the same datagram, before READY.
	waitFor(t, svc, svwait.UpReady)
	st := status(t, svc)
	if st.Pid == runPid || sessionOf(st.Pid) != runPid {
		t.Fatalf("main pid %d (run %d, session %d)", st.Pid, runPid, sessionOf(st.Pid))
	}
	// The old run's death no longer counts; the main pid's does.
	w, _ := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	defer w.Close()
	unix.Kill(runPid, unix.SIGKILL)
	unix.Kill(st.Pid, unix.SIGKILL)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, svc, svwait.Up)
}

// waitFileContains waits (inotify, deadline) until path contains want.
func waitFileContains(t *testing.T, path, want string) {
	t.Helper()
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, filepath.Dir(path), unix.IN_MODIFY|unix.IN_CREATE|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(10 * time.Second)
	buf := make([]byte, 4096)
	for {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
			return
		}
		left := time.Until(end)
		if left <= 0 {
			b, _ := os.ReadFile(path)
			t.Fatalf("%s: %q never appeared (content %q)", path, want, b)
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(left/time.Millisecond)+1); n > 0 {
			unix.Read(ino, buf)
		}
	}
}

// TestLogPipeSurvivesScannerKill: a new scanner takes back the log pipe of
// the service and logger it adopts, so a logger restart loses nothing.
func TestLogPipeSurvivesScannerKill(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	tmp := t.TempDir()
	in, out := filepath.Join(tmp, "in"), filepath.Join(tmp, "out")
	unix.Mkfifo(in, 0o600)
	dir := mksvc(t, scan, "p", role("echo-on-fifo", in), map[string]string{"log/run": "#!/bin/sh\nexec cat >> " + out + "\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	waitFor(t, filepath.Join(dir, "log"), svwait.Up)
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("line1\n"))
	waitFileContains(t, out, "line1\n")
	tr.kill()
	startScanner(t, scan)
	waitFor(t, filepath.Join(dir, "log"), svwait.Up)
	logPid := status(t, filepath.Join(dir, "log")).Pid
	ww, _ := svwait.Listen([]string{filepath.Join(dir, "log")}, svwait.DownReady, svwait.All)
	unix.Kill(logPid, unix.SIGKILL)
	if err := ww.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	ww.Close()
	waitFor(t, filepath.Join(dir, "log"), svwait.Up)
	w.Write([]byte("line2\n"))
	waitFileContains(t, out, "line1\nline2\n")
}

// TestInProcessLogRestarts: a log-script service restarted many times
// loses and duplicates no line (issue 4), with TAI64N stamps.
func TestInProcessLogRestarts(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	logd := filepath.Join(t.TempDir(), "log")
	// The line is written before readiness, and the test stops the service
	// only once it is ready, so every run writes exactly one line.
	run := "#!/bin/sh\nn=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count\necho line-$n\necho >&3\n" +
		"GOSV_TEST_ROLE=pause exec \"$GOSV_TEST_BIN\"\n"
	dir := mksvc(t, scan, "ip", run, map[string]string{"log-script": "t s100000 n5 " + logd + "\n", "notification-fd": "3\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	restarts := 1000
	if testing.Short() {
		restarts = 100
	}
	for i := 0; i < restarts; i++ {
		ctlWait(t, svc, "d", svwait.DownReady)
		ctlWait(t, svc, "u", svwait.UpReady)
	}
	want := fmt.Sprintf("line-%d\n", restarts+1)
	waitFileContainsDir(t, logd, want)
	got := readLogLines(t, logd)
	if len(got) != restarts+1 {
		t.Fatalf("%d lines logged, want %d", len(got), restarts+1)
	}
	for i, l := range got {
		stamp, text, _ := strings.Cut(l, " ")
		if text != fmt.Sprintf("line-%d", i+1) || len(stamp) != 25 || stamp[0] != '@' {
			t.Fatalf("line %d: %q", i, l)
		}
	}
}

// readLogLines returns the lines of a log directory: archives, then current.
func readLogLines(t *testing.T, dir string) []string {
	t.Helper()
	names, _ := filepath.Glob(filepath.Join(dir, "@*")) // TAI64N names sort by time
	names = append(names, filepath.Join(dir, "current"))
	var lines []string
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
			if l != "" {
				lines = append(lines, l)
			}
		}
	}
	return lines
}

func waitFileContainsDir(t *testing.T, dir, want string) {
	t.Helper()
	waitFileContains(t, filepath.Join(dir, "current"), want)
}

// TestInProcessLogSurvivesScannerKill: lines written while no scanner runs
// wait in the pipe (the service holds a reader) and reach the log once a
// new scanner adopts the service.
func TestInProcessLogSurvivesScannerKill(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	tmp := t.TempDir()
	in, logd := filepath.Join(tmp, "in"), filepath.Join(tmp, "log")
	unix.Mkfifo(in, 0o600)
	dir := mksvc(t, scan, "k", role("echo-on-fifo", in), map[string]string{"log-script": "t " + logd + "\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("before\n"))
	waitFileContains(t, filepath.Join(logd, "current"), "before\n")
	pid := status(t, svc).Pid
	tr.kill()
	w.Write([]byte("during\n")) // no scanner: the line waits in the pipe
	startScanner(t, scan)
	waitFor(t, svc, svwait.Up)
	if st := status(t, svc); st.Pid != pid {
		t.Fatalf("service not adopted: pid %d, was %d", st.Pid, pid)
	}
	w.Write([]byte("after\n"))
	waitFileContains(t, filepath.Join(logd, "current"), "after\n")
	// The new logger archived the killed one's current: read every file.
	b := strings.Join(readLogLines(t, logd), "\n") + "\n"
	for _, l := range []string{"before", "during", "after"} {
		if strings.Count(b, " "+l+"\n") != 1 {
			t.Fatalf("log %q: %q not exactly once", b, l)
		}
	}
}

// countEvents reads sub until n bytes b have arrived.
func countEvents(t *testing.T, sub *servicedir.Subscription, b byte, n int) {
	t.Helper()
	sub.File.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 64)
	for seen := 0; seen < n; {
		k, err := sub.File.Read(buf)
		if err != nil {
			t.Fatalf("waiting for %d %q events (%d seen): %v", n, b, seen, err)
		}
		seen += strings.Count(string(buf[:k]), string(b))
	}
}

// TestEarlyDeathReportedOncePerStart: a service that dies at once gets one
// line in the scanner's output per start, not one per death of its crash
// loop; the next start (d then u) reports again.
func TestEarlyDeathReportedOncePerStart(t *testing.T) {
	scan := t.TempDir()
	out, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	startScannerTo(t, scan, out)
	dir := mksvc(t, scan, "dies", "#!/bin/sh\nexit 3\n", nil)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	countEvents(t, sub, 'd', 2) // the first death and one of the crash loop
	lines := func() []string {
		b, _ := os.ReadFile(out.Name())
		var got []string
		for _, l := range strings.Split(string(b), "\n") {
			if strings.Contains(l, "after its start") {
				got = append(got, l)
			}
		}
		return got
	}
	got := lines()
	re := regexp.MustCompile(`^gosv svscan: warning: dies died \d+ms after its start: exit code 3$`)
	if len(got) != 1 || !re.MatchString(got[0]) {
		t.Fatalf("after the first start: %q, want one line", got)
	}
	if err := servicedir.WriteControl(svc, []byte("du")); err != nil {
		t.Fatal(err)
	}
	countEvents(t, sub, 'd', 2)
	if got := lines(); len(got) != 2 {
		t.Fatalf("after the second start: %q, want two lines", got)
	}
}

func TestLogScriptDotLogAfterRestart(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	unix.Mkfifo(in, 0o600)
	dir := mksvc(t, scan, "dl", role("echo-on-fifo", in), map[string]string{"log-script": "t s1048576 n10 ./log\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	logd := filepath.Join(dir, "log")
	w, err := os.OpenFile(in, os.O_RDWR, 0) // RDWR: the fifo survives the service's restart
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("first\n"))
	waitFileContainsDir(t, logd, " first\n")
	tr.stop()
	startScanner(t, scan)
	waitFor(t, svc, svwait.Up)
	w.Write([]byte("second\n"))
	waitFileContainsDir(t, logd, " second\n")
	if _, err := os.Stat(filepath.Join(logd, "supervise")); err == nil {
		t.Fatalf("%s was taken for a log/ service", logd)
	}
}

func TestLogRunBeatsLogScript(t *testing.T) {
	scan := t.TempDir()
	errf := filepath.Join(t.TempDir(), "stderr")
	f, err := os.Create(errf)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	stderr := os.Stderr
	os.Stderr = f // startScanner gives the scanner os.Stderr
	tr := startScanner(t, scan)
	os.Stderr = stderr
	out := filepath.Join(t.TempDir(), "out")
	dir := mksvc(t, scan, "both", "#!/bin/sh\necho hello\n"+strings.TrimPrefix(pauseRun, "#!/bin/sh\n"),
		map[string]string{"log-script": "t ./log\n", "log/run": "#!/bin/sh\nexec cat >> " + out + "\n"})
	svc := link(t, scan, dir)
	waitFileContains(t, out, "hello\n")
	// A rescan (processed before stop's t: one FIFO) must not warn again.
	if err := svctl.Svscanctl(scan, []byte("a")); err != nil {
		t.Fatal(err)
	}
	tr.stop()
	b, _ := os.ReadFile(errf)
	if n := strings.Count(string(b), "log-script"); n != 1 {
		t.Fatalf("log-script reported %d times, want 1: %q", n, b)
	}
	if _, err := os.Stat(filepath.Join(svc, "log", "current")); err == nil {
		t.Fatalf("log-script was run as well")
	}
}

func TestInProcessLogKeepsHistoryAcrossKills(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	tmp := t.TempDir()
	in, logd := filepath.Join(tmp, "in"), filepath.Join(tmp, "log")
	unix.Mkfifo(in, 0o600)
	dir := mksvc(t, scan, "h", role("echo-on-fifo", in), map[string]string{"log-script": "t n1 " + logd + "\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const kills = 4
	for i := 0; i < kills; i++ {
		line := fmt.Sprintf("kill-%d\n", i)
		w.Write([]byte(line))
		waitFileContains(t, filepath.Join(logd, "current"), line)
		tr.kill()
		tr = startScanner(t, scan)
		waitFor(t, svc, svwait.Up)
	}
	w.Write([]byte("end\n"))
	waitFileContains(t, filepath.Join(logd, "current"), "end\n")
	b := strings.Join(readLogLines(t, logd), "\n") + "\n"
	for i := 0; i < kills; i++ {
		if l := fmt.Sprintf(" kill-%d\n", i); strings.Count(b, l) != 1 {
			t.Fatalf("log %q: %q not exactly once", b, l)
		}
	}
	if a, _ := filepath.Glob(filepath.Join(logd, "@*")); len(a) != 0 {
		t.Errorf("archives %v after kills: current was not continued", a)
	}
}

func TestInProcessLogLastWordsWhileNoScanner(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	tmp := t.TempDir()
	in, logd := filepath.Join(tmp, "in"), filepath.Join(tmp, "log")
	unix.Mkfifo(in, 0o600)
	dir := mksvc(t, scan, "lw", role("echo-until-eof", in), map[string]string{"log-script": "t " + logd + "\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("first\n"))
	waitFileContains(t, filepath.Join(logd, "current"), " first\n")
	pid := int(status(t, svc).Pid)
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	tr.kill()
	w.Write([]byte("last words\n"))
	w.Close() // EOF: the service exits
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	n, err := unix.Poll(fds, 10000)
	for err == unix.EINTR { // the runtime's own signals (SIGURG, SIGCHLD)
		n, err = unix.Poll(fds, 10000)
	}
	if n != 1 || err != nil {
		t.Fatalf("service %d did not exit: %v", pid, err)
	}
	tr = startScanner(t, scan)
	waitFileContains(t, filepath.Join(logd, "current"), " last words\n")
	// A clean exit lets the holder go: it holds nothing and has no client.
	tr.stop()
	if _, held, err := fdhold.Connect(filepath.Join(scan, servicedir.ScanFDHolderPath), time.Second); err == nil {
		t.Errorf("the fd holder outlived a clean scanner exit, holding %d fds", len(held))
	}
}

func TestReadinessSurvivesScannerKill(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	unix.Mkfifo(in, 0o600)
	dir := mksvc(t, scan, "rd", role("ready-on-fifo", in), map[string]string{"notification-fd": "3\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	pid := status(t, svc).Pid
	tr.kill()
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("go\n")) // ready now, while no scanner runs
	startScanner(t, scan)
	waitFor(t, svc, svwait.UpReady)
	if st := status(t, svc); st.Pid != pid {
		t.Fatalf("run %d replaced by %d: its readiness was lost", pid, st.Pid)
	}
}

func forker(mode, pidfile string) {
	switch mode {
	case "fail":
		os.Exit(3)
	case "dead":
		// A pid that is certainly dead: a child we reaped ourselves.
		c := exec.Command(os.Args[0])
		c.Env = append(os.Environ(), "GOSV_TEST_ROLE=exit0")
		c.Run()
		os.WriteFile(pidfile, []byte(strconv.Itoa(c.Process.Pid)+"\n"), 0o644)
		os.Exit(0)
	case "foreign":
		// A live process that is not ours: the scanner's parent (the test).
		st, _ := readProcStat(os.Getppid())
		os.WriteFile(pidfile, []byte(strconv.Itoa(st.Ppid)+"\n"), 0o644)
		os.Exit(0)
	case "names":
		// Names in the pidfile the pid the test writes to PIDFILE.gate,
		// then hangs: a launch that a d cancels.
		if b, err := os.ReadFile(pidfile + ".gate"); err == nil {
			os.WriteFile(pidfile, b, 0o644)
		}
		block()
	}
	c := exec.Command(os.Args[0], "daemon", mode, pidfile)
	c.Env = append(os.Environ(), "GOSV_TEST_ROLE=forker-daemon")
	if mode != "setsid-late" {
		c.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	}
	if mode == "lockself" {
		// Debian's cron: the launcher takes the pidfile, with its own pid
		// in it, before it forks; the daemon inherits the descriptor.
		f, err := os.OpenFile(pidfile, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			os.Exit(4)
		}
		f.WriteString(strconv.Itoa(os.Getpid()) + "\n")
		c.ExtraFiles = []*os.File{f} // fd 3
		c.Env = append(c.Env, "GOSV_TEST_LAUNCHER="+strconv.Itoa(os.Getpid()))
	}
	var started *os.File
	if mode == "gated-wait" {
		// dnsmasq's launcher: it exits once the daemon says it started
		// (after its pidfile), and a SIGTERM does not end that wait.
		term := make(chan os.Signal, 1)
		signal.Notify(term, unix.SIGTERM)
		go func() {
			for range term {
				os.WriteFile(pidfile+".term", []byte("\n"), 0o644) // for the test: the signal came
			}
		}()
		r, w, err := os.Pipe()
		if err != nil {
			os.Exit(4)
		}
		c.ExtraFiles, started = []*os.File{w}, r // fd 3
	}
	if err := c.Start(); err != nil {
		os.Exit(4)
	}
	switch mode {
	case "waits":
		// A launcher that waits for its daemon (dnsmasq's waits for a
		// pipe): the daemon wrote the pidfile, the launch is still open.
		block()
	case "gated-wait":
		c.ExtraFiles[0].Close()
		os.WriteFile(pidfile+".launched", []byte("\n"), 0o644) // for the test: SIGTERM is caught now
		started.Read(make([]byte, 1))
	}
	os.Exit(0) // without waiting: the daemon is reparented to the scanner
}

// lockselfDaemon is the daemon of the lockself launcher: once the
// launcher has exited (its pidfd says so), it rewrites the pidfile through
// the inherited descriptor, which it keeps open, as Debian's cron does.
func lockselfDaemon() {
	// NOTE: the launcher's pid from the environment, not getppid: the
	// launcher may be gone already, and the parent then the scanner.
	launcher, _ := strconv.Atoi(os.Getenv("GOSV_TEST_LAUNCHER"))
	fd, err := unix.PidfdOpen(launcher, 0)
	if err == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != unix.EINTR {
				break
			}
		}
	}
	// Then, to make the race the scanner must survive certain, it waits
	// for a reader of the pidfile (the scanner, which finds the launcher's
	// pid in it) before it rewrites it; a bounded wait, in case the
	// scanner read it before this watch.
	if ino, err := unix.InotifyInit1(unix.IN_CLOEXEC); err == nil {
		if _, err := unix.InotifyAddWatch(ino, os.Args[3], unix.IN_CLOSE_NOWRITE); err == nil {
			unix.Poll([]unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}, 1000)
		}
	}
	pid := []byte(strconv.Itoa(os.Getpid()) + "\n")
	f := os.NewFile(3, "pidfile")
	if _, err := f.WriteAt(pid, 0); err != nil {
		os.Exit(5)
	}
	f.Truncate(int64(len(pid)))
	block()
}

// TestInProcessLogStageHeld: the stage of an in-process log (a memfd) is
// kept by the fd holder beside its pipe, under "stage DEV:INO", so that a
// new scanner continues from it after a SIGKILL, each line once.
func TestInProcessLogStageHeld(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	tmp := t.TempDir()
	in, logd := filepath.Join(tmp, "in"), filepath.Join(tmp, "log")
	unix.Mkfifo(in, 0o600)
	dir := mksvc(t, scan, "st", role("echo-until-eof", in), map[string]string{"log-script": "t " + logd + "\n"})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("first\n"))
	waitFileContains(t, filepath.Join(logd, "current"), " first\n")
	tr.kill()
	c, held, err := fdhold.Connect(filepath.Join(scan, servicedir.ScanFDHolderPath), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var stages int
	for k, fd := range held {
		if id, ok := strings.CutPrefix(k, "stage "); ok {
			stages++
			if _, ok := held[id]; !ok {
				t.Errorf("stage %q held without its pipe", k)
			}
			if target, _ := os.Readlink(fmt.Sprintf("/proc/self/fd/%d", fd)); !strings.HasPrefix(target, "/memfd:") {
				t.Errorf("stage %q is %q, not a memfd", k, target)
			}
		}
		unix.Close(fd)
	}
	c.Close()
	if stages != 1 {
		t.Fatalf("%d stages held, want 1 (keys: %v)", stages, slices.Collect(maps.Keys(held)))
	}
	tr = startScanner(t, scan)
	w.Write([]byte("second\n"))
	waitFileContains(t, filepath.Join(logd, "current"), " second\n")
	tr.stop()
	data, err := os.ReadFile(filepath.Join(logd, "current"))
	if err != nil {
		t.Fatal(err)
	}
	if n1, n2 := strings.Count(string(data), " first\n"), strings.Count(string(data), " second\n"); n1 != 1 || n2 != 1 {
		t.Errorf("first %d times, second %d times:\n%s", n1, n2, data)
	}
}
