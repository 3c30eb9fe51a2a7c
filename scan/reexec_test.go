package scan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/svctl"
	"github.com/gosv/gosv/svwait"
)

// reexecSnapshot is what a re-exec must not change in a service directory.
type reexecSnapshot struct {
	status, tally, policy string
	st                    servicedir.Status
}

func snapshot(t *testing.T, dir string) reexecSnapshot {
	t.Helper()
	read := func(rel string) string {
		b, err := os.ReadFile(filepath.Join(dir, rel))
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		return string(b)
	}
	return reexecSnapshot{status: read(servicedir.StatusPath), tally: read(servicedir.DeathTallyPath),
		policy: read(servicedir.PolicyStatePath), st: status(t, dir)}
}

// TestReexecKeepsEverything: svscanctl -X re-executes the scanner in
// place (the same pid) with a plain service, one that died once (its
// death tally), an in-process logger and a log/run logger fed during the
// re-exec, a forking
// daemon, an sd_notify service and a health-checked one: no run is
// restarted or signalled, status files are byte for byte the same, ready
// stays ready, every log line is written exactly once, the health checks
// go on, the services are still supervised (d, u work), and no client
// ever sees a supervisor missing (locks and control fifos are kept).
func TestReexecKeepsEverything(t *testing.T) {
	scan := t.TempDir()
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	tr := startScannerTo(t, scan, stderr)
	t.Cleanup(func() {
		if t.Failed() {
			out, _ := os.ReadFile(stderr.Name())
			t.Logf("scanner output:\n%s", out)
		}
	})
	tmp := t.TempDir()
	in, logd := filepath.Join(tmp, "in"), filepath.Join(tmp, "log")
	unix.Mkfifo(in, 0o600)
	var dirs []string
	plain := link(t, scan, mksvc(t, scan, "plain", pauseRun, nil))
	dirs = append(dirs, plain)
	logged := link(t, scan, mksvc(t, scan, "logged", role("echo-on-fifo", in), map[string]string{servicedir.LogScriptFile: logd + "\n"}))
	dirs = append(dirs, logged)
	// A logger service (log/run) fed through the pipe the scanner keeps.
	in2, piped := filepath.Join(tmp, "in2"), filepath.Join(tmp, "piped")
	unix.Mkfifo(in2, 0o600)
	pipedSvc := link(t, scan, mksvc(t, scan, "piped", role("echo-on-fifo", in2), map[string]string{"log/run": "#!/bin/sh\nexec cat >> " + piped + "\n"}))
	dirs = append(dirs, pipedSvc)
	fdir, _ := forkingSvc(t, scan, "forked", "ok", nil)
	forked := link(t, scan, fdir)
	dirs = append(dirs, forked)
	sd := link(t, scan, mksvc(t, scan, "sd", role("sd-ready"), map[string]string{servicedir.NotificationSocketFile: "main\n"}))
	dirs = append(dirs, sd)
	// Not ready yet at the re-exec: its READY=1 must reach the new image.
	late := filepath.Join(tmp, "late")
	unix.Mkfifo(late, 0o600)
	lateSvc := link(t, scan, mksvc(t, scan, "late", "#!/bin/sh\nGOSV_TEST_MSG=READY=1 GOSV_TEST_ROLE=sd-on-fifo exec \"$GOSV_TEST_BIN\" "+late+"\n",
		map[string]string{servicedir.NotificationSocketFile: "main\n"}))
	dirs = append(dirs, lateSvc)
	healthy := link(t, scan, mksvc(t, scan, "healthy", pauseRun, map[string]string{
		servicedir.HealthCheckFile: "exec:/bin/sh hc.sh\n",
		"hc.sh":                    "echo x >> count\n",
		servicedir.HealthTimerFile: "100\n",
	}))
	dirs = append(dirs, healthy)
	if err := svwait.Wait(deadline(t), dirs, svwait.Up, svwait.All); err != nil {
		t.Fatal(err)
	}
	waitFor(t, sd, svwait.UpReady)
	// One death, so that a death tally exists to be kept.
	ctlWait(t, plain, "d", svwait.DownReady)
	ctlWait(t, plain, "u", svwait.Up)
	countFile := filepath.Join(healthy, "count")
	waitFileContains(t, countFile, "x\nx\n")

	w, err := os.OpenFile(in, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w2, err := os.OpenFile(in2, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer w2.Close()
	pipedLog := filepath.Join(pipedSvc, servicedir.LogDir)
	before := map[string]reexecSnapshot{pipedLog: snapshot(t, pipedLog)}
	for _, d := range dirs {
		before[d] = snapshot(t, d)
	}
	scannerPid := tr.cmd.Process.Pid

	// Lines go in while the scanner re-execs, in pieces that split lines.
	const n = 2000
	done := make(chan struct{})
	go func() {
		defer close(done)
		var b bytes.Buffer
		for i := 0; i < n; i++ {
			fmt.Fprintf(&b, "line %d\n", i)
			if b.Len() > 100 {
				p := b.Next(77)
				w.Write(p)
				w2.Write(p)
			}
		}
		w.Write(b.Bytes())
		w2.Write(b.Bytes())
	}()
	// Meanwhile a client probes every supervisor and the scanner as
	// s6-svok and s6-svscanctl do, until the re-exec returns: the locks
	// and control fifos are never let go (the window of a scanner death).
	stop, probed := make(chan struct{}), make(chan []string, 1)
	go func() {
		var gaps []string
		for n := 0; ; n++ {
			select {
			case <-stop:
				probed <- gaps
				return
			default:
			}
			d := dirs[n%len(dirs)]
			if ok, err := svctl.Svok(d); !ok || err != nil {
				gaps = append(gaps, fmt.Sprintf("svok %s: %v %v", d, ok, err))
			}
			if err := servicedir.WriteControl(d, nil); err != nil {
				gaps = append(gaps, fmt.Sprintf("control %s: %v", d, err))
			}
			if err := servicedir.WriteScanControl(scan, nil); err != nil {
				gaps = append(gaps, fmt.Sprintf("scan control: %v", err))
			}
		}
	}()
	evBefore, _ := os.ReadFile(filepath.Join(scan, servicedir.ScanEventsDir, "current"))
	if err := svctl.Svscanctl(scan, []byte{svctl.ReexecLetter}); err != nil {
		t.Fatal(err)
	}
	close(stop)
	evAfter, _ := os.ReadFile(filepath.Join(scan, servicedir.ScanEventsDir, "current"))
	if len(evBefore) == 0 || !bytes.Equal(evAfter, evBefore) {
		t.Errorf("events log during the re-exec: %q appended to %d bytes (a re-exec is no start, exit or restart)", evAfter[min(len(evBefore), len(evAfter)):], len(evBefore))
	}
	if gaps := <-probed; len(gaps) > 0 {
		t.Errorf("%d probes saw no supervisor during the re-exec, first: %s", len(gaps), gaps[0])
	}
	<-done
	res, _ := os.ReadFile(filepath.Join(scan, servicedir.ScanReexecPath))
	if want := "ok " + strconv.Itoa(scannerPid) + "\n"; string(res) != want {
		t.Errorf("result %q, want %q", res, want)
	}
	select {
	case err := <-tr.exit:
		t.Fatalf("the scanner exited (%v): a re-exec keeps its pid", err)
	default:
	}
	w.Write([]byte("end\n"))
	w2.Write([]byte("end\n"))
	waitFileContains(t, filepath.Join(logd, "current"), "\nend\n")
	waitFileContains(t, piped, "\nend\n")

	for _, d := range append(dirs, pipedLog) {
		a, b := before[d], snapshot(t, d)
		if a.status != b.status || a.tally != b.tally || a.policy != b.policy {
			t.Errorf("%s: status/death_tally/policy changed across the re-exec:\n%+v %q %q\n%+v %q %q", d, a.st, a.tally, a.policy, b.st, b.tally, b.policy)
		}
		if !alive(b.st.Pid) {
			t.Errorf("%s: run %d is gone", d, b.st.Pid)
		}
	}
	if before[plain].tally == "" {
		t.Errorf("no death tally to keep: the d above left none")
	}
	if !before[sd].st.Ready || !snapshot(t, sd).st.Ready {
		t.Errorf("sd_notify service not ready across the re-exec")
	}
	seen := map[string]int{}
	for _, l := range readLogLines(t, logd) {
		seen[l]++
	}
	pb, err := os.ReadFile(piped)
	if err != nil {
		t.Fatal(err)
	}
	seenPiped := map[string]int{}
	for _, l := range strings.Split(string(pb), "\n") {
		seenPiped[l]++
	}
	for i := 0; i < n; i++ {
		if c := seen["line "+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("line %d logged %d times", i, c)
		}
		if c := seenPiped["line "+strconv.Itoa(i)]; c != 1 {
			t.Fatalf("line %d logged %d times by the log/run logger", i, c)
		}
	}
	lw, err := os.OpenFile(late, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer lw.Close()
	if status(t, lateSvc).Ready {
		t.Fatalf("late is ready before it said so")
	}
	rw, err := svwait.Listen([]string{lateSvc}, svwait.UpReady, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	lw.Write([]byte("go\n"))
	if err := rw.Wait(deadline(t)); err != nil {
		t.Fatalf("READY=1 sent after the re-exec: %v", err)
	}
	rw.Close()
	// Health checks go on under the new image.
	b, _ := os.ReadFile(countFile)
	waitFileContains(t, countFile, string(b)+"x\n")
	// Still supervised.
	for _, d := range []string{plain, forked, sd} {
		pid := status(t, d).Pid
		ctlWait(t, d, "d", svwait.DownReady)
		if alive(pid) && !zombie(pid) {
			t.Errorf("%s: run %d survived d after the re-exec", d, pid)
		}
		ctlWait(t, d, "u", svwait.Up)
	}
	stderr.Seek(0, 0)
	out, _ := os.ReadFile(stderr.Name())
	if !bytes.Contains(out, []byte("re-executed in")) {
		t.Errorf("scanner output %q: no re-exec report", out)
	}
}

func zombie(pid int) bool {
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	return bytes.Contains(b, []byte(") Z"))
}

// TestReexecCannotStart: a re-exec to a binary that cannot run here
// (missing, not executable, garbage, another machine's ELF) changes
// nothing: the scanner keeps running with its services, svscanctl -X
// fails with the reason, and the scanner reports it once.
func TestReexecCannotStart(t *testing.T) {
	tmp := t.TempDir()
	self, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	foreign := append([]byte(nil), self[:4096]...)
	foreign[18], foreign[19] = 183, 0 // aarch64 (on x86-64; x86-64 elsewhere)
	if self[18] == 183 {
		foreign[18] = 62
	}
	files := map[string]struct {
		data []byte
		mode os.FileMode
		want string
	}{
		"garbage":    {[]byte("not a program\n"), 0o755, "exec format error"},
		"foreign":    {foreign, 0o755, "exec format error"},
		"notexec":    {self[:64], 0o644, "permission denied"},
		"missing":    {nil, 0, "no such file"},
		"directory/": {nil, 0, "not a regular file"},
	}
	for name, f := range files {
		t.Run(strings.TrimSuffix(name, "/"), func(t *testing.T) {
			exe := filepath.Join(tmp, strings.TrimSuffix(name, "/"))
			switch {
			case strings.HasSuffix(name, "/"):
				os.Mkdir(exe, 0o755)
			case f.data != nil:
				if err := os.WriteFile(exe, f.data, f.mode); err != nil {
					t.Fatal(err)
				}
			}
			t.Setenv("GOSV_TEST_REEXEC_EXE", exe)
			scan := t.TempDir()
			stderr, err := os.CreateTemp(t.TempDir(), "stderr")
			if err != nil {
				t.Fatal(err)
			}
			tr := startScannerTo(t, scan, stderr)
			svc := link(t, scan, mksvc(t, scan, "s", pauseRun, nil))
			waitFor(t, svc, svwait.Up)
			pid := status(t, svc).Pid
			for i := 0; i < 2; i++ {
				err := svctl.Svscanctl(scan, []byte{svctl.ReexecLetter})
				var re *svctl.ReexecError
				if !errors.As(err, &re) || !strings.Contains(re.Reason, f.want) {
					t.Fatalf("svscanctl -X: %v, want a ReexecError with %q", err, f.want)
				}
			}
			// Still the same scanner, supervising the same run.
			ctlWait(t, svc, "d", svwait.DownReady)
			if alive(pid) && !zombie(pid) {
				t.Errorf("run %d survived d", pid)
			}
			tr.stop()
			out, _ := os.ReadFile(stderr.Name())
			if c := bytes.Count(out, []byte("unable to re-exec")); c != 1 {
				t.Errorf("reported %d times, want once:\n%s", c, out)
			}
		})
	}
}

// TestReexecRollback: a new image that execs but cannot set up executes
// the previous binary again (the fd it was handed), which adopts every
// service: same pid, same runs, and svscanctl -X reports why.
func TestReexecRollback(t *testing.T) {
	t.Setenv("GOSV_TEST_REEXEC_FAIL", "1")
	scan := t.TempDir()
	stderr, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	tr := startScannerTo(t, scan, stderr)
	svc := link(t, scan, mksvc(t, scan, "s", pauseRun, nil))
	waitFor(t, svc, svwait.Up)
	before := snapshot(t, svc)
	err = svctl.Svscanctl(scan, []byte{svctl.ReexecLetter})
	var re *svctl.ReexecError
	if !errors.As(err, &re) || !strings.Contains(re.Reason, "the new scanner could not set up") {
		t.Fatalf("svscanctl -X: %v, want a ReexecError saying the new scanner could not set up", err)
	}
	select {
	case err := <-tr.exit:
		t.Fatalf("the scanner exited (%v)", err)
	default:
	}
	if after := snapshot(t, svc); after.status != before.status || !alive(after.st.Pid) {
		t.Fatalf("status %+v, was %+v", after.st, before.st)
	}
	// Supervised by the previous binary again.
	ctlWait(t, svc, "d", svwait.DownReady)
	ctlWait(t, svc, "u", svwait.Up)
	out, _ := os.ReadFile(stderr.Name())
	if !bytes.Contains(out, []byte("executing the previous binary again")) {
		t.Errorf("scanner output %q: no rollback message", out)
	}
}

// TestReexecWithoutKeptFds: a binary that does not know GOSV_REEXEC_FDS
// (here a wrapper script; an older gosv alike) gets no kept descriptor,
// which it would not know it holds: it takes the services over as after
// a scanner's death, and they keep their runs.
func TestReexecWithoutKeptFds(t *testing.T) {
	wrapper := filepath.Join(t.TempDir(), "wrapper")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec \"$GOSV_TEST_BIN\" \"$@\"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOSV_TEST_REEXEC_EXE", wrapper)
	scan := t.TempDir()
	tr := startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "s", pauseRun, nil))
	waitFor(t, svc, svwait.Up)
	before := snapshot(t, svc)
	if err := svctl.Svscanctl(scan, []byte{svctl.ReexecLetter}); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-tr.exit:
		t.Fatalf("the scanner exited (%v)", err)
	default:
	}
	if after := snapshot(t, svc); after.status != before.status || !alive(after.st.Pid) {
		t.Fatalf("status %+v, was %+v", after.st, before.st)
	}
	ctlWait(t, svc, "d", svwait.DownReady)
	ctlWait(t, svc, "u", svwait.Up)
}

// TestMentions: how a binary that takes kept descriptors is recognised,
// also when the name straddles two reads.
func TestMentions(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		data []byte
		want bool
	}{
		{"none", bytes.Repeat([]byte("x"), 3<<20), false},
		{"straddling", append(append(bytes.Repeat([]byte("x"), 1<<20-5), reexecFdsEnv...), 'y'), true},
		{"at the end", append(bytes.Repeat([]byte("x"), 2<<20), reexecFdsEnv...), true},
		{"cut", []byte(reexecFdsEnv[:len(reexecFdsEnv)-1]), false},
	} {
		p := filepath.Join(dir, tc.name)
		os.WriteFile(p, tc.data, 0o644)
		if got := mentions(p, reexecFdsEnv); got != tc.want {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}
	if !mentions("/proc/self/exe", reexecFdsEnv) {
		t.Errorf("this binary does not mention %s", reexecFdsEnv)
	}
}
