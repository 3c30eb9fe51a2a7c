package scan

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// ppid returns the parent of pid from /proc/PID/stat.
func ppid(t *testing.T, pid int) int {
	t.Helper()
	st, ok := readProcStat(pid)
	if !ok {
		t.Fatalf("no /proc/%d/stat", pid)
	}
	return st.Ppid
}

// spawnHelper returns the pid of the scanner's spawn helper: its child
// whose argv[0] is gosv-spawner.
func spawnHelper(t *testing.T, scanner int) int {
	t.Helper()
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmd, _ := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if strings.HasPrefix(string(cmd), spawnerArgv0+"\x00") {
			if st, ok := readProcStat(pid); ok && st.Ppid == scanner {
				return pid
			}
		}
	}
	t.Fatalf("scanner %d has no %s child", scanner, spawnerArgv0)
	return 0
}

// Runs forked by the helper are the scanner's children, and a run that
// exits at once is reaped and fed to its own service: the status holds its
// exit code.
func TestSpawnerRunsAreScannersChildren(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	scanner := tr.cmd.Process.Pid
	up := link(t, scan, mksvc(t, scan, "up", pauseRun, nil))
	waitFor(t, up, svwait.Up)
	spawnHelper(t, scanner) // started at the first spawn (SpawnerMin 0)
	if p := ppid(t, status(t, up).Pid); p != scanner {
		t.Errorf("the run's parent is %d, want the scanner %d", p, scanner)
	}
	quick := mksvc(t, scan, "quick", "#!/bin/sh\nexit 7\n", map[string]string{"down": ""})
	sub, err := servicedir.Subscribe(quick)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	link(t, scan, quick)
	if err := servicedir.WriteControl(quick, []byte("o")); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, "d")
	ws := unix.WaitStatus(status(t, quick).Wstat)
	if !ws.Exited() || ws.ExitStatus() != 7 {
		t.Errorf("quick's recorded death: %v, want exit 7", ws)
	}
}

// A helper that dies is reported once; the scanner spawns directly
// meanwhile, restarts keep working, and a new helper is started.
func TestSpawnerLostOnce(t *testing.T) {
	scan := t.TempDir()
	tr, w := startScannerWarnings(t, scan)
	svc := link(t, scan, mksvc(t, scan, "a", pauseRun, nil))
	waitFor(t, svc, svwait.Up)
	helper := spawnHelper(t, tr.cmd.Process.Pid)
	unix.Kill(helper, unix.SIGKILL)
	for i := 0; i < 3; i++ {
		old := status(t, svc).Pid
		ctlWait(t, svc, "k", svwait.Restart)
		if p := status(t, svc).Pid; p == old || !alive(p) {
			t.Fatalf("restart %d: pid %d (was %d)", i, p, old)
		}
	}
	w.sync(t, scan, 'Z')
	if n := w.count("lost the spawn helper"); n != 1 {
		t.Errorf("%d lines about the lost helper, want 1", n)
	}
	// Restarts are a second apart (the crash-loop throttle), so the
	// helper was started again on the way.
	if h := spawnHelper(t, tr.cmd.Process.Pid); h == helper {
		t.Errorf("the helper %d was not replaced", h)
	}
}
