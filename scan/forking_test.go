package scan

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// forkingSvc makes a service whose run is the forker launcher in mode.
func forkingSvc(t *testing.T, scan, name, mode string, extra map[string]string) (dir, pidfile string) {
	t.Helper()
	pidfile = filepath.Join(t.TempDir(), name+".pid")
	files := map[string]string{servicedir.PidfileFile: pidfile + "\n"}
	for k, v := range extra {
		files[k] = v
	}
	dir = mksvc(t, scan, name, role("forker", mode, pidfile), files)
	// Registered before the scanner: runs after it stopped. A launch the
	// test gave up on (a deadline under load) may leave a daemon that no
	// supervisor owns: it is ours, named by the unique pidfile path.
	t.Cleanup(func() { killStrays(pidfile) })
	return dir, pidfile
}

// killStrays SIGKILLs, by pid, the test's own processes whose command line
// holds marker.
func killStrays(marker string) {
	d, _ := os.ReadDir("/proc")
	for _, e := range d {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline"); err == nil && strings.Contains(string(b), marker) {
			unix.Kill(pid, unix.SIGKILL)
		}
	}
}

func pidIn(t *testing.T, pidfile string) int {
	t.Helper()
	d, err := servicedir.ReadDaemonPidfile(pidfile)
	if err != nil {
		t.Fatal(err)
	}
	return d.Pid
}

// dead says whether pid is gone or a zombie (not yet reaped by whoever
// inherited it).
func dead(pid int) bool {
	st, ok := readProcStat(pid)
	return !ok || st.State == 'Z'
}

// TestForkingDaemon: the process the pidfile names is the service: status,
// restart after SIGKILL, stop.
func TestForkingDaemon(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fk", "ok", nil)
	tr := startScanner(t, scan) // after the directories: stopped before they go
	// A stale pidfile from an earlier run, naming a live foreign process:
	// older than the launch, so it is waited out, not trusted or failed.
	os.WriteFile(pidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
	old := time.Now().Add(-time.Hour)
	os.Chtimes(pidfile, old, old)
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	st := status(t, svc)
	daemon := pidIn(t, pidfile)
	if st.Pid != daemon || daemon == os.Getpid() {
		t.Fatalf("status pid %d, pidfile %d", st.Pid, daemon)
	}
	if ps, _ := readProcStat(daemon); ps.Ppid != tr.cmd.Process.Pid || ps.Sid != daemon {
		t.Fatalf("daemon %d: parent %d (scanner %d), session %d", daemon, ps.Ppid, tr.cmd.Process.Pid, ps.Sid)
	}
	if rec, err := servicedir.ReadPidRecord(svc); err != nil || rec.Pid != daemon {
		t.Fatalf("pid record %+v %v, want the daemon %d", rec, err, daemon)
	}
	// Its death is the service's death: a new launch, a new daemon.
	w, _ := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	unix.Kill(daemon, unix.SIGKILL)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(t, svc, svwait.UpReady)
	st = status(t, svc)
	if st.Pid == daemon || st.Pid != pidIn(t, pidfile) || st.Wstat != uint16(unix.SIGKILL) {
		t.Fatalf("after SIGKILL of %d: %+v, pidfile %d", daemon, st, pidIn(t, pidfile))
	}
	// Stop: the down-signal reaches the daemon.
	daemon = st.Pid
	ctlWait(t, svc, "d", svwait.DownReady)
	if !dead(daemon) {
		t.Fatalf("daemon %d alive after d", daemon)
	}
	if _, err := os.Stat(filepath.Join(svc, servicedir.LaunchErrorPath)); err == nil {
		t.Fatal("launch-error written for good launches")
	}
}

// TestForkingLauncherPid: a launcher that puts its own pid in the pidfile
// before it forks (Debian's cron) is not taken for a dead daemon; the
// daemon's rewrite through a descriptor it keeps open (IN_MODIFY, no
// close) is seen.
func TestForkingLauncherPid(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fl", "lockself", nil)
	startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	// One launch, found ready: no death (a failed launch) before U.
	sub.File.SetReadDeadline(time.Now().Add(10 * time.Second))
	var seen []byte
	for !strings.Contains(string(seen), "U") {
		buf := make([]byte, 64)
		n, err := sub.File.Read(buf)
		if err != nil {
			t.Fatalf("events %q, waiting for U: %v", seen, err)
		}
		seen = append(seen, buf[:n]...)
	}
	if strings.Contains(string(seen), "d") {
		t.Fatalf("events %q: a launch failed before the daemon was found", seen)
	}
	st := status(t, svc)
	if daemon := pidIn(t, pidfile); st.Pid != daemon {
		t.Fatalf("status pid %d, pidfile %d", st.Pid, daemon)
	}
	if _, err := os.Stat(filepath.Join(svc, servicedir.LaunchErrorPath)); err == nil {
		t.Fatal("launch-error written for a good launch")
	}
	ctlWait(t, svc, "d", svwait.DownReady)
}

// TestForkingNotify: with notification-fd the daemon, inheriting the
// pipe through the launcher, says when it is ready.
func TestForkingNotify(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fn", "notify", map[string]string{"notification-fd": "5\n"})
	startScanner(t, scan)
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	if st := status(t, svc); st.Pid != pidIn(t, pidfile) || !st.Ready {
		t.Fatalf("status %+v, pidfile %d", st, pidIn(t, pidfile))
	}
	ctlWait(t, svc, "d", svwait.DownReady)
}

// TestForkingLaunchFails: each way a launch fails is a death with the
// reason in supervise/gosv/launch-error, and nothing is left running.
func TestForkingLaunchFails(t *testing.T) {
	for _, tc := range []struct{ mode, want string }{
		{"fail", "the launcher exited 3"},
		{"nopid", "the pidfile named no daemon within 500ms: "},
		{"dead", ", which is not running"},
		{"foreign", ", which started before the launcher"},
		{"never", ") did not exit within 500ms"},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			// A launch that fails at once needs no deadline; nopid's
			// launcher is sh (it exits at once), so 500 ms is ample.
			timeout := "60000\n"
			if tc.mode == "nopid" || tc.mode == "never" {
				timeout = "500\n"
			}
			scan := t.TempDir()
			dir, pidfile := forkingSvc(t, scan, "ff-"+tc.mode, tc.mode, map[string]string{servicedir.TimeoutPidfileFile: timeout})
			switch tc.mode {
			case "nopid":
				// The daemon stays in the launcher's group, so the failed
				// launch's group kill reaches it.
				os.WriteFile(filepath.Join(dir, "run"), []byte("#!/bin/sh\nGOSV_TEST_ROLE=pause \"$GOSV_TEST_BIN\" &\n"), 0o755)
			case "never":
				// A daemon run in the foreground by mistake: the launcher
				// never exits, and is killed at the deadline.
				os.WriteFile(filepath.Join(dir, "run"), []byte(pauseRun), 0o755)
			}
			startScanner(t, scan)
			sub, err := servicedir.Subscribe(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			svc := link(t, scan, dir)
			waitEvent(t, sub, "d")
			b, _ := os.ReadFile(filepath.Join(svc, servicedir.LaunchErrorPath))
			if !strings.Contains(string(b), tc.want) {
				t.Fatalf("launch-error %q, want %q", b, tc.want)
			}
			if tc.mode == "nopid" && !strings.Contains(string(b), pidfile+" does not exist") {
				t.Fatalf("launch-error %q does not name the missing pidfile", b)
			}
			ctlWait(t, svc, "d", svwait.DownReady)
			pgid := status(t, svc).Pid
			if _, empty := groupState(pgid); pgid != 0 && !empty {
				t.Fatalf("process group %d still has members", pgid)
			}
		})
	}
}

// TestForkingAdoptAfterSIGKILL: a new scanner adopts the daemon (no longer
// its child: watched by pidfd) and restarts it when it dies.
func TestForkingAdoptAfterSIGKILL(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fa", "ok", nil)
	tr := startScanner(t, scan)
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	daemon := status(t, svc).Pid
	tr.kill()
	tr2 := startScanner(t, scan)
	waitFor(t, svc, svwait.UpReady)
	if st := status(t, svc); st.Pid != daemon || dead(daemon) {
		t.Fatalf("after the scanner's restart: %+v, want the adopted daemon %d", st, daemon)
	}
	w, _ := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	unix.Kill(daemon, unix.SIGKILL)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	waitFor(t, svc, svwait.UpReady)
	st := status(t, svc)
	if st.Pid == daemon || st.Pid != pidIn(t, pidfile) {
		t.Fatalf("after SIGKILL of the adopted daemon: %+v", st)
	}
	if ps, _ := readProcStat(st.Pid); ps.Ppid != tr2.cmd.Process.Pid {
		t.Fatalf("new daemon's parent %d, want the new scanner %d", ps.Ppid, tr2.cmd.Process.Pid)
	}
	ctlWait(t, svc, "d", svwait.DownReady)
	if !dead(st.Pid) {
		t.Fatalf("daemon %d alive after d", st.Pid)
	}
}

// TestForkingAdoptDuringLaunch: a scanner SIGKILLed in the middle of a
// launch: the new one takes the launch over (supervise/gosv/launch) and
// adopts the daemon once its pidfile names it; one daemon, supervised.
func TestForkingAdoptDuringLaunch(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fl", "gated", nil)
	if err := unix.Mkfifo(pidfile+".gate", 0o600); err != nil {
		t.Fatal(err)
	}
	tr := startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	waitEvent(t, sub, "u") // the launcher runs
	if _, err := servicedir.ReadRecord(svc, servicedir.LaunchRecordPath); err != nil {
		t.Fatalf("no launch record during the launch: %v", err)
	}
	tr.kill()
	startScanner(t, scan)
	waitEvent(t, sub, "s") // the new scanner took the directory
	if st := status(t, svc); !st.Up() || st.Ready {
		t.Fatalf("after the takeover: %+v, want up (launching), not ready", st)
	}
	// NOTE: O_RDWR never blocks on a fifo, and the gate stays open: the
	// line waits in it for a daemon that is not there yet.
	gate, err := os.OpenFile(pidfile+".gate", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	gate.Write([]byte("\n"))
	waitFor(t, svc, svwait.UpReady)
	daemon := status(t, svc).Pid
	if daemon != pidIn(t, pidfile) {
		t.Fatalf("status pid %d, pidfile %d", daemon, pidIn(t, pidfile))
	}
	if _, err := servicedir.ReadRecord(svc, servicedir.LaunchRecordPath); err == nil {
		t.Error("launch record left after the daemon was found")
	}
	// Not our child: its death comes by pidfd, and a new launch follows.
	w, _ := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	unix.Kill(daemon, unix.SIGKILL)
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	gate.Write([]byte("\n")) // for the next daemon, whenever it reads
	waitFor(t, svc, svwait.UpReady)
	if st := status(t, svc); st.Pid == daemon || st.Pid != pidIn(t, pidfile) {
		t.Fatalf("after SIGKILL of the adopted daemon: %+v", st)
	}
	ctlWait(t, svc, "d", svwait.DownReady)
}

// TestForkingTakeoverUntrustedPidfile: after a takeover the daemon's
// ancestry is lost, so a pidfile in a directory others may write is not
// believed: the launch fails with the reason.
func TestForkingTakeoverUntrustedPidfile(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fu", "gated", nil)
	if err := unix.Mkfifo(pidfile+".gate", 0o600); err != nil {
		t.Fatal(err)
	}
	tr := startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	waitEvent(t, sub, "u")
	tr.kill()
	startScanner(t, scan)
	waitEvent(t, sub, "s")
	os.Chmod(filepath.Dir(pidfile), 0o777)
	// Want down (O: no signal), so that the failure is not relaunched.
	if err := servicedir.WriteControl(svc, []byte("O")); err != nil {
		t.Fatal(err)
	}
	gate, err := os.OpenFile(pidfile+".gate", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	gate.Write([]byte("\n"))
	waitEvent(t, sub, "d")
	// The refused daemon left the launcher's group: nobody supervises it.
	if pid := pidIn(t, pidfile); pid > 0 {
		unix.Kill(pid, unix.SIGKILL)
	}
	b, _ := os.ReadFile(filepath.Join(svc, servicedir.LaunchErrorPath))
	if !strings.Contains(string(b), "the launch was taken over from a killed scanner") {
		t.Fatalf("launch-error %q", b)
	}
	waitFor(t, svc, svwait.DownReady)
}

// TestForkingPidfileDirMadeByDaemon: the pidfile's directory does not
// exist when the launcher exits (the daemon makes it): gosv watches the
// nearest ancestor and follows the path down.
func TestForkingPidfileDirMadeByDaemon(t *testing.T) {
	scan := t.TempDir()
	pidfile := filepath.Join(t.TempDir(), "run", "made", "d.pid")
	dir := mksvc(t, scan, "fm", role("forker", "ok", pidfile), map[string]string{servicedir.PidfileFile: pidfile + "\n"})
	t.Cleanup(func() { killStrays(pidfile) })
	startScanner(t, scan)
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	if st := status(t, svc); st.Pid != pidIn(t, pidfile) {
		t.Fatalf("status %+v, pidfile %d", st, pidIn(t, pidfile))
	}
	ctlWait(t, svc, "d", svwait.DownReady)
}

// TestForkingCheck: with ./check, readiness comes from the check, run
// once the daemon is found.
func TestForkingCheck(t *testing.T) {
	scan := t.TempDir()
	ran := filepath.Join(t.TempDir(), "check.ran")
	dir, pidfile := forkingSvc(t, scan, "fc", "ok", map[string]string{"check": "#!/bin/sh\necho \"$1\" >> " + ran + "\n"})
	startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	if st := status(t, svc); st.Pid != pidIn(t, pidfile) {
		t.Fatalf("status %+v, pidfile %d", st, pidIn(t, pidfile))
	}
	if b, err := os.ReadFile(ran); err != nil || string(b) != "fc\n" {
		t.Fatalf("check runs %q %v, want one", b, err)
	}
	ctlWait(t, svc, "d", svwait.DownReady)
}

// TestForkingDaemonOwnGroup: a daemon named in its pidfile while still in
// its launcher's process group, which makes its own session afterwards
// (nginx was seen so under load), gets the down-signal in that session's
// group, and so do its workers.
func TestForkingDaemonOwnGroup(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "sl", "setsid-late", nil)
	fifos := map[string]*os.File{}
	for _, ext := range []string{".gate", ".worker"} {
		if err := unix.Mkfifo(pidfile+ext, 0o600); err != nil {
			t.Fatal(err)
		}
		// NOTE: O_RDWR never blocks on a fifo.
		f, err := os.OpenFile(pidfile+ext, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		fifos[ext] = f
	}
	startScanner(t, scan)
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.UpReady)
	daemon := status(t, svc).Pid
	if ps, _ := readProcStat(daemon); ps.Sid == daemon {
		t.Fatalf("daemon %d has its own session before the gate", daemon)
	}
	fifos[".gate"].Write([]byte("\n"))
	dl, _ := deadline(t).Deadline()
	fifos[".worker"].SetReadDeadline(dl)
	buf := make([]byte, 32)
	n, err := fifos[".worker"].Read(buf)
	if err != nil {
		t.Fatalf("no worker: %v", err)
	}
	worker, _ := strconv.Atoi(strings.TrimSpace(string(buf[:n])))
	ctlWait(t, svc, "d", svwait.DownReady)
	if !dead(daemon) || !dead(worker) {
		t.Fatalf("after d: daemon %d dead %v, worker %d dead %v", daemon, dead(daemon), worker, dead(worker))
	}
}

// TestForkingStopDuringLaunch: a d while the launcher still runs, after
// its daemon (in a session of its own) wrote the pidfile, as dnsmasq's
// launcher waits for its daemon: the daemon is stopped with the launch,
// not left running to hold the service's port against the next start.
func TestForkingStopDuringLaunch(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fw", "waits", nil)
	startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	waitEvent(t, sub, "u") // the launcher runs
	waitFileContains(t, pidfile, "\n")
	daemon := pidIn(t, pidfile)
	if st := status(t, svc); st.Pid == daemon || st.Ready {
		t.Fatalf("status %+v: want the launch (launcher %d), not the daemon %d", st, st.Pid, daemon)
	}
	ctlWait(t, svc, "d", svwait.DownReady)
	if !dead(daemon) {
		t.Fatalf("daemon %d alive after d during its launch", daemon)
	}
	if st := status(t, svc); st.Up() || st.WantUp {
		t.Fatalf("status after d: %+v", st)
	}
}

// TestForkingStopDuringLaunchLate: the pidfile is written after the d,
// by a daemon whose launcher outlives the down-signal until the daemon
// says it started: the launcher's exit looks at the pidfile once more,
// and the daemon found then is stopped too, not adopted.
func TestForkingStopDuringLaunchLate(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fg", "gated-wait", nil)
	if err := unix.Mkfifo(pidfile+".gate", 0o600); err != nil {
		t.Fatal(err)
	}
	startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	waitEvent(t, sub, "u")
	waitFileContains(t, pidfile+".launched", "\n")
	w, err := svwait.Listen([]string{svc}, svwait.DownReady, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := servicedir.WriteControl(svc, []byte("d")); err != nil {
		t.Fatal(err)
	}
	// The launcher got the down-signal (and ignored it): the launch is
	// being cancelled, with no pidfile yet. Now the daemon writes it.
	waitFileContains(t, pidfile+".term", "\n")
	if _, err := os.Stat(pidfile); err == nil {
		t.Fatal("pidfile written before the gate opened")
	}
	gate, err := os.OpenFile(pidfile+".gate", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer gate.Close()
	gate.Write([]byte("\n"))
	if err := w.Wait(deadline(t)); err != nil {
		t.Fatalf("down after d: %v (status %+v)", err, status(t, svc))
	}
	daemon := pidIn(t, pidfile)
	if daemon <= 0 || !dead(daemon) {
		t.Fatalf("daemon %d alive after a d during its launch", daemon)
	}
}

// TestForkingStopDuringLaunchForeign: a cancelled launch whose pidfile
// names a process that is not its daemon (younger than the launcher, not
// below it) never signals that process.
func TestForkingStopDuringLaunchForeign(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "fo", "names", nil)
	if err := unix.Mkfifo(pidfile+".gate", 0o600); err != nil {
		t.Fatal(err)
	}
	startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	waitEvent(t, sub, "u")
	other := exec.Command(os.Args[0])
	other.Env = append(os.Environ(), "GOSV_TEST_ROLE=pause")
	other.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	gate, err := os.OpenFile(pidfile+".gate", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	gate.Write([]byte(strconv.Itoa(other.Process.Pid) + "\n"))
	gate.Close()
	waitFileContains(t, pidfile, "\n")
	ctlWait(t, svc, "d", svwait.DownReady)
	if dead(other.Process.Pid) {
		t.Fatalf("pid %d, named by the pidfile but not the launch's daemon, was signalled", other.Process.Pid)
	}
}

// TestForkingStopDuringLaunchStalePidfile: a d during a launch never
// signals what a pidfile from before the launch names, even a process that
// passes the daemon checks (here an orphan of another service, reparented
// to the scanner and younger than the launcher: what a recycled pid can
// be).
func TestForkingStopDuringLaunchStalePidfile(t *testing.T) {
	scan := t.TempDir()
	dir, pidfile := forkingSvc(t, scan, "st", "names", nil)
	if err := unix.Mkfifo(pidfile+".gate", 0o600); err != nil {
		t.Fatal(err)
	}
	orphanPid := filepath.Join(t.TempDir(), "orphan.pid")
	t.Cleanup(func() { killStrays(orphanPid) })
	odir := mksvc(t, scan, "orph", role("forker", "plain", orphanPid), map[string]string{servicedir.DownFile: ""})
	startScanner(t, scan)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	osvc := link(t, scan, odir)
	svc := link(t, scan, dir)
	waitEvent(t, sub, "u")
	// The orphan: started after st's launcher, below the scanner, no
	// service's process.
	if err := servicedir.WriteControl(osvc, []byte("o")); err != nil {
		t.Fatal(err)
	}
	waitFileContains(t, orphanPid, "\n")
	b, err := os.ReadFile(orphanPid)
	if err != nil {
		t.Fatal(err)
	}
	orphan, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	gate, err := os.OpenFile(pidfile+".gate", os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	gate.Write([]byte(strconv.Itoa(orphan) + "\n"))
	gate.Close()
	waitFileContains(t, pidfile, "\n")
	old := time.Now().Add(-time.Hour) // the previous run's pidfile
	if err := os.Chtimes(pidfile, old, old); err != nil {
		t.Fatal(err)
	}
	ctlWait(t, svc, "d", svwait.DownReady)
	if dead(orphan) {
		t.Fatalf("pid %d, named by a pidfile from before the launch, was signalled", orphan)
	}
}
