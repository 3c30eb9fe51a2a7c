package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
	"golang.org/x/sys/unix"
)

// killedBeforeRecord leaves a service directory as a scanner SIGKILLed
// between the fork of run and its pid record leaves it: status down with
// want up, no supervise/gosv/pid, the dead scanner's supervisor record.
// (The service first has no ./run, so the scanner sits waiting for it;
// ./run is created once it is dead.) It returns the scan directory and
// the service's path in it.
func killedBeforeRecord(t *testing.T) (scan, svc string) {
	t.Helper()
	scan = t.TempDir()
	tr := startScanner(t, scan)
	dir := mksvc(t, scan, "orph", "", nil)
	svc = link(t, scan, dir)
	tr.kill()
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte(pauseRun), 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := servicedir.ReadPidRecord(svc); err == nil {
		t.Fatal("a pid record exists: the dead scanner had a run")
	}
	// An earlier death (exit 1): kept if the run is adopted, 0 at a fresh start.
	st := status(t, svc)
	st.Wstat = oldWstat
	if err := servicedir.WriteStatus(svc, &st); err != nil {
		t.Fatal(err)
	}
	return scan, svc
}

const oldWstat = 1 << 8

// spawnStray starts a pause process in dir, in a new session or not, as
// the dead scanner (or someone else) would have; it is killed at the end.
func spawnStray(t *testing.T, dir string, setsid bool) int {
	t.Helper()
	c := exec.Command(os.Args[0], "orph")
	c.Env = append(os.Environ(), "GOSV_TEST_ROLE=pause")
	c.Dir = dir
	c.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { c.Wait(); close(done) }()
	t.Cleanup(func() { c.Process.Kill(); <-done })
	return c.Process.Pid
}

// runsIn lists the live processes whose cwd is dir.
func runsIn(t *testing.T, dir string) []int {
	t.Helper()
	want, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatal(err)
	}
	d, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range d {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if cwd, err := os.Readlink("/proc/" + e.Name() + "/cwd"); err != nil || cwd != want {
			continue
		}
		if b, err := os.ReadFile("/proc/" + e.Name() + "/stat"); err == nil && !bytes.Contains(b, []byte(") Z")) {
			out = append(out, pid)
		}
	}
	return out
}

// TestAdoptOrphanedRun: a run started by a scanner killed before it
// recorded the pid is adopted by the next scanner, which starts no second
// run (the window issue 9's fault suite hit).
func TestAdoptOrphanedRun(t *testing.T) {
	scan, svc := killedBeforeRecord(t)
	pid := spawnStray(t, svc, true)
	startScanner(t, scan)
	waitFor(t, svc, svwait.Up)
	if st := status(t, svc); st.Pid != pid || st.Wstat != oldWstat || !st.WantUp {
		t.Fatalf("status %+v, want the orphaned run %d adopted, wstat %#x and want up kept", st, pid, oldWstat)
	}
	if runs := runsIn(t, svc); len(runs) != 1 || runs[0] != pid {
		t.Fatalf("processes in the service directory: %v, want only %d", runs, pid)
	}
	rec, err := servicedir.ReadPidRecord(svc)
	if err != nil || rec.Pid != pid {
		t.Fatalf("pid record %+v (%v), want pid %d", rec, err, pid)
	}
	// Supervised like any run: d stops it, u starts a new one.
	ctlWait(t, svc, "d", svwait.DownReady)
	if runs := runsIn(t, svc); len(runs) != 0 {
		t.Fatalf("processes in the service directory after d: %v", runs)
	}
	ctlWait(t, svc, "u", svwait.Up)
}

// TestAdoptOrphanedRunNoStatus: a scanner that made supervise/ writes
// its first status only after the first spawn (holdStatus); killed in
// between it leaves no status at all, and the next scanner still adopts
// the orphaned run rather than start a second.
func TestAdoptOrphanedRunNoStatus(t *testing.T) {
	scan, svc := killedBeforeRecord(t)
	if err := os.Remove(filepath.Join(svc, servicedir.StatusPath)); err != nil {
		t.Fatal(err)
	}
	pid := spawnStray(t, svc, true)
	startScanner(t, scan)
	waitFor(t, svc, svwait.Up)
	if st := status(t, svc); st.Pid != pid || !st.WantUp {
		t.Fatalf("status %+v, want the orphaned run %d adopted, want up", st, pid)
	}
	if runs := runsIn(t, svc); len(runs) != 1 || runs[0] != pid {
		t.Fatalf("processes in the service directory: %v, want only %d", runs, pid)
	}
}

// TestOrphanNotAdoptedNoStatusAfterDeath: no status is down only when
// the dead scanner recorded no death either (or could not: max-death-tally
// 0 keeps no tally). A scanner whose status writes all failed (ENOSPC)
// may have seen run die and left finish or check running in the
// directory: that process is not adopted as the run.
func TestOrphanNotAdoptedNoStatusAfterDeath(t *testing.T) {
	for _, c := range []struct {
		name     string
		maxTally string // max-death-tally, "" for none (100)
	}{{"a death in the tally", ""}, {"max-death-tally 0", "0\n"}} {
		t.Run(c.name, func(t *testing.T) {
			scan, svc := killedBeforeRecord(t)
			if err := os.Remove(filepath.Join(svc, servicedir.StatusPath)); err != nil {
				t.Fatal(err)
			}
			if c.maxTally == "" {
				if err := servicedir.AppendDeath(svc, servicedir.DeathFromWstat(time.Now(), oldWstat), 10); err != nil {
					t.Fatal(err)
				}
			} else if err := os.WriteFile(filepath.Join(svc, servicedir.MaxDeathTallyFile), []byte(c.maxTally), 0o644); err != nil {
				t.Fatal(err)
			}
			stray := spawnStray(t, svc, true) // the finish left running
			startScanner(t, scan)
			waitFor(t, svc, svwait.Up)
			st := status(t, svc)
			if st.Pid == stray {
				t.Fatalf("stray process %d adopted as the run", stray)
			}
			if !alive(st.Pid) || !alive(stray) {
				t.Fatalf("run %d alive %v, stray %d alive %v; want both", st.Pid, alive(st.Pid), stray, alive(stray))
			}
		})
	}
}

// TestOrphanNotAdopted: what is not a run the dead scanner started is
// never adopted; the scanner starts its own run and leaves it alone.
func TestOrphanNotAdopted(t *testing.T) {
	cases := []struct {
		name string
		// prepare starts the stray process and may alter the directory.
		prepare func(t *testing.T, svc string) int
	}{
		{"other cwd", func(t *testing.T, svc string) int {
			return spawnStray(t, t.TempDir(), true)
		}},
		{"not a session leader", func(t *testing.T, svc string) int {
			return spawnStray(t, svc, false)
		}},
		{"started before the dead scanner", func(t *testing.T, svc string) int {
			pid := spawnStray(t, svc, true)
			// The dead scanner's record, as if it had started one tick
			// after this process.
			start, err := servicedir.ProcStartTime(pid)
			if err != nil {
				t.Fatal(err)
			}
			rec, err := servicedir.ReadRecord(svc, servicedir.SupervisorRecordPath)
			if err != nil {
				t.Fatal(err)
			}
			rec.StartTime = start + 1
			if err := servicedir.WriteRecord(svc, servicedir.SupervisorRecordPath, rec); err != nil {
				t.Fatal(err)
			}
			return pid
		}},
		{"started before the stale pid record's run", func(t *testing.T, svc string) int {
			pid := spawnStray(t, svc, true)
			start, err := servicedir.ProcStartTime(pid)
			if err != nil {
				t.Fatal(err)
			}
			// A dead run the killed scanner had recorded after this one.
			if err := servicedir.WritePidRecord(svc, servicedir.PidRecord{Pid: 1 << 30, StartTime: start + 1}); err != nil {
				t.Fatal(err)
			}
			return pid
		}},
		{"a finish left running", func(t *testing.T, svc string) int {
			pid := spawnStray(t, svc, true)
			st := status(t, svc)
			st.Pid, st.Finishing = pid, true
			if err := servicedir.WriteStatus(svc, &st); err != nil {
				t.Fatal(err)
			}
			return pid
		}},
		{"a finish or check of a dead run", func(t *testing.T, svc string) int {
			pid := spawnStray(t, svc, true)
			st := status(t, svc)
			st.Pid = 1 << 30 // the dead run: the scanner was not spawning one
			if err := servicedir.WriteStatus(svc, &st); err != nil {
				t.Fatal(err)
			}
			return pid
		}},
		{"no gosv supervisor before", func(t *testing.T, svc string) int {
			if err := os.Remove(filepath.Join(svc, servicedir.SupervisorRecordPath)); err != nil {
				t.Fatal(err)
			}
			return spawnStray(t, svc, true)
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			scan, svc := killedBeforeRecord(t)
			stray := c.prepare(t, svc)
			startScanner(t, scan)
			waitFor(t, svc, svwait.Up)
			st := status(t, svc)
			if st.Pid == stray {
				t.Fatalf("stray process %d adopted as the run", stray)
			}
			if !alive(st.Pid) {
				t.Fatalf("run %d not alive", st.Pid)
			}
			if !alive(stray) {
				t.Fatalf("stray process %d was killed", stray)
			}
			if st.Wstat != 0 {
				t.Fatalf("wstat %#x after a fresh start, want 0", st.Wstat)
			}
		})
	}
}

// TestOrphanOldestAdopted: with two candidates the oldest is adopted, the
// other reported once and left alone (it cannot be attributed).
func TestOrphanOldestAdopted(t *testing.T) {
	scan, svc := killedBeforeRecord(t)
	a := spawnStray(t, svc, true)
	b := spawnStray(t, svc, true)
	sa, erra := servicedir.ProcStartTime(a)
	sb, errb := servicedir.ProcStartTime(b)
	if erra != nil || errb != nil {
		t.Fatalf("start times of the candidates %d, %d: %v, %v", a, b, erra, errb)
	}
	want, other := a, b
	if sb < sa || (sb == sa && b < a) {
		want, other = b, a
	}
	errf, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	startScannerTo(t, scan, errf)
	waitFor(t, svc, svwait.Up)
	if st := status(t, svc); st.Pid != want {
		sa2, erra := servicedir.ProcStartTime(a)
		sb2, errb := servicedir.ProcStartTime(b)
		t.Fatalf("adopted %d, want the oldest %d (start times: %d %d at the spawn, %d %v and %d %v now)", st.Pid, want, sa, sb, sa2, erra, sb2, errb)
	}
	if !alive(other) {
		t.Fatalf("the other candidate %d was killed", other)
	}
	if runs := runsIn(t, svc); len(runs) != 2 {
		t.Fatalf("processes in the service directory: %v, want %d and %d only", runs, want, other)
	}
	log, _ := os.ReadFile(errf.Name())
	if n := strings.Count(string(log), fmt.Sprint(other)); n != 1 || !strings.Contains(string(log), "left alone") {
		t.Fatalf("the other candidate reported %d times, want once:\n%s", n, log)
	}
}

// TestAdoptOrphanedLogger: the same window for a log/ service's run.
func TestAdoptOrphanedLogger(t *testing.T) {
	scan := t.TempDir()
	tr := startScanner(t, scan)
	// log/ without a run: a logger service whose run is awaited.
	dir := mksvc(t, scan, "orphl", pauseRun, map[string]string{"log/placeholder": ""})
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	tr.kill()
	logDir := filepath.Join(svc, "log")
	if err := os.WriteFile(filepath.Join(logDir, "run"), []byte(pauseRun), 0o755); err != nil {
		t.Fatal(err)
	}
	pid := spawnStray(t, logDir, true)
	startScanner(t, scan)
	waitFor(t, logDir, svwait.Up)
	if st := status(t, logDir); st.Pid != pid {
		t.Fatalf("logger status pid %d, want the orphaned run %d adopted", st.Pid, pid)
	}
	if runs := runsIn(t, logDir); len(runs) != 1 {
		t.Fatalf("processes in log/: %v, want only %d", runs, pid)
	}
	// Supervised: d stops it (this stand-in never reads its stdin, so it
	// would not end at the pipe's EOF when the scanner exits).
	ctlWait(t, logDir, "d", svwait.DownReady)
}

// TestOrphanNotAdoptedFinishAfterFailedWrites: a scanner whose status
// and death tally writes all fail (here a directory planted at each
// temporary name; ENOSPC or EDQUOT do the same) leaves no status and no
// tally, yet its run died and its finish is running. Killed then, the
// next scanner must not adopt that finish as the run.
func TestOrphanNotAdoptedFinishAfterFailedWrites(t *testing.T) {
	scan := t.TempDir()
	fifo := filepath.Join(t.TempDir(), "finishing")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	finish := "#!/bin/sh\necho x > " + fifo + "\nGOSV_TEST_ROLE=pause exec \"$GOSV_TEST_BIN\" finish\n"
	dir := mksvc(t, scan, "orph", "#!/bin/sh\nexit 1\n", map[string]string{
		"finish": finish, servicedir.TimeoutFinishFile: "0\n"})
	for _, p := range []string{servicedir.StatusPath, servicedir.DeathTallyPath} {
		if err := os.MkdirAll(filepath.Join(dir, p+".new", "x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got := make(chan error, 1)
	go func() {
		b, err := os.ReadFile(fifo) // returns once finish has written and closed
		if err == nil && len(b) == 0 {
			err = errors.New("empty")
		}
		got <- err
	}()
	tr, wr := startScannerWarnings(t, scan)
	if err := os.Symlink(dir, filepath.Join(scan, "orph")); err != nil {
		t.Fatal(err)
	}
	// Either finish runs, or the scanner says why it did not.
	ctx := deadline(t)
	finished := false
	for !finished && wr.count("not spawning", "neither the status nor the death tally") == 0 {
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
			finished = true
		case <-wr.more:
		case <-ctx.Done():
			t.Fatal("finish did not start, and no warning said why")
		}
	}
	tr.kill()
	if _, err := os.Stat(filepath.Join(dir, servicedir.StatusPath)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("status: %v, want none (its writes failed)", err)
	}
	if _, err := os.Stat(filepath.Join(dir, servicedir.DeathTallyPath)); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("death tally: %v, want none (its writes failed)", err)
	}
	finishers := runsIn(t, dir)
	if finished && len(finishers) != 1 {
		t.Fatalf("processes in the service directory: %v, want the finish only", finishers)
	}
	for _, pid := range finishers {
		t.Cleanup(func() { unix.Kill(pid, unix.SIGKILL) })
	}
	for _, p := range []string{servicedir.StatusPath, servicedir.DeathTallyPath} {
		if err := os.RemoveAll(filepath.Join(dir, p+".new")); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte(pauseRun), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, servicedir.FinishFile)); err != nil { // this scanner's stop need not wait for one
		t.Fatal(err)
	}
	startScanner(t, scan)
	svc := filepath.Join(scan, "orph")
	waitFor(t, svc, svwait.Up)
	if st := status(t, svc); slices.Contains(finishers, st.Pid) {
		t.Fatalf("the dead scanner's finish %d adopted as the run", st.Pid)
	}
}

// TestRunCannotStartStatus: in a directory taken with a new supervise/,
// the status of the start is held across the first spawn of run
// (holdStatus). When that spawn fails (no run, not executable, not a
// program), the status must still be in place when the "s" event
// announces the supervisor, say down, and no death be tallied: s6-svstat
// and s6-svdt read them then. A scanner SIGKILLed afterwards leaves
// nothing to adopt: the next one starts run once it can.
func TestRunCannotStartStatus(t *testing.T) {
	for name, run := range map[string]struct {
		data []byte
		mode os.FileMode
	}{
		"missing": {nil, 0},
		"notexec": {[]byte(pauseRun), 0o644},
		"garbage": {[]byte("\x7fELF not a program\n"), 0o755},
	} {
		t.Run(name, func(t *testing.T) {
			scan := t.TempDir()
			tr := startScanner(t, scan)
			dir := mksvc(t, scan, "bad", "", nil)
			if run.data != nil {
				if err := os.WriteFile(filepath.Join(dir, "run"), run.data, run.mode); err != nil {
					t.Fatal(err)
				}
			}
			svc := link(t, scan, dir)
			st := status(t, svc)
			if st.Pid != 0 || !st.WantUp || st.Finishing {
				t.Fatalf("status after s: %+v, want down, wanted up", st)
			}
			if ds, err := servicedir.ReadDeathTally(svc); err != nil || len(ds) != 0 {
				t.Fatalf("death tally %v (%v), want none: run never ran", ds, err)
			}
			tr.kill()
			os.Remove(filepath.Join(dir, "run"))
			if err := os.WriteFile(filepath.Join(dir, "run"), []byte(pauseRun), 0o755); err != nil {
				t.Fatal(err)
			}
			startScanner(t, scan)
			waitFor(t, svc, svwait.Up)
			if runs := runsIn(t, svc); len(runs) != 1 || runs[0] != status(t, svc).Pid {
				t.Fatalf("processes in the service directory %v, status %+v", runs, status(t, svc))
			}
		})
	}
}
