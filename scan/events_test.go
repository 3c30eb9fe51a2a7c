package scan

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/events"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// follow delivers the scan directory's events, from the start of the
// log, until the test ends.
func follow(t *testing.T, scan string) <-chan events.Record {
	t.Helper()
	dir := filepath.Join(scan, servicedir.ScanEventsDir)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	ch := make(chan events.Record, 1<<16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	t.Cleanup(func() { cancel(); <-done })
	rd := &events.Reader{Dir: dir, Each: func(r *events.Record, _ []byte) error { ch <- *r; return nil }}
	go func() {
		defer close(done)
		if err := rd.Follow(ctx); err != nil {
			t.Errorf("follow: %v", err)
		}
	}()
	return ch
}

// expect reads records until each of want ("service event", in order,
// other records in between allowed) was seen; it returns what it read.
func expect(t *testing.T, ch <-chan events.Record, want ...string) []events.Record {
	t.Helper()
	var got []events.Record
	timeout := time.After(20 * time.Second)
	for len(want) > 0 {
		select {
		case r := <-ch:
			got = append(got, r)
			if r.Service+" "+r.Event == want[0] {
				want = want[1:]
			}
		case <-timeout:
			var seen []string
			for _, r := range got {
				seen = append(seen, r.Service+" "+r.Event)
			}
			t.Fatalf("waiting for %q; saw %q", want, seen)
		}
	}
	return got
}

// TestEventsLog: start, ready, exit (with its signal) and restart of a
// service are in the log, in order, with their pids; an exit code too.
func TestEventsLog(t *testing.T) {
	scan := t.TempDir()
	ch := follow(t, scan)
	startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "web", pauseRun, map[string]string{"check": "#!/bin/sh\nexit 0\n"}))
	got := expect(t, ch, "web start", "web ready")
	pid := status(t, svc).Pid
	if got[0].Pid != pid || got[len(got)-1].Pid != pid {
		t.Errorf("start/ready pids %d/%d, want %d", got[0].Pid, got[len(got)-1].Pid, pid)
	}
	if err := servicedir.WriteControl(svc, []byte("k")); err != nil {
		t.Fatal(err)
	}
	got = expect(t, ch, "web exit", "web restart", "web start", "web ready")
	if ex := got[0]; ex.Pid != pid || ex.Signal != "SIGKILL" || ex.ExitCode != nil {
		t.Errorf("exit record %+v, want pid %d killed by SIGKILL", ex, pid)
	}
	if rs := got[1]; rs.Event != "restart" || rs.Delay() <= 0 || rs.Delay() > time.Second {
		t.Errorf("restart record %+v: a run killed at once is restarted after the throttle", rs)
	}

	crash := link(t, scan, mksvc(t, scan, "crash", "#!/bin/sh\nexit 3\n", nil))
	got = expect(t, ch, "crash start", "crash exit")
	if ex := got[len(got)-1]; ex.ExitCode == nil || *ex.ExitCode != 3 || ex.Signal != "" {
		t.Errorf("exit record %+v, want exit code 3", ex)
	}
	ctlWait(t, crash, "d", svwait.DownReady)
}

// restartsWanted is the number of restarts TestEventsNoneLost drives;
// GOSV_TEST_EVENT_RESTARTS=1000 runs the figure (some 20 s).
func restartsWanted(t *testing.T) (services, each int) {
	n := 100
	if v := os.Getenv("GOSV_TEST_EVENT_RESTARTS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 10 {
			t.Fatalf("GOSV_TEST_EVENT_RESTARTS=%q", v)
		}
	}
	// Restarts of one service are throttled to one a second: many
	// services crash in parallel.
	services = max(10, n/10)
	return services, (n + services - 1) / services
}

// TestEventsNoneLost: services crash-loop while the scanner is SIGKILLed
// and restarted; every run started is in the log with its exit (seen by
// the scanner, or, for a run that died or was adopted across the kill,
// reported by the next one), and no start is recorded twice; every exit
// but those the scanner could not see has its restart, and every death of
// a backing-off service its backoff.
func TestEventsNoneLost(t *testing.T) {
	nsvc, each := restartsWanted(t)
	scan := t.TempDir()
	ch := follow(t, scan)
	tr := startScanner(t, scan)
	var names []string
	for i := 0; i < nsvc; i++ {
		name := "c" + strconv.Itoa(i)
		names = append(names, name)
		// Every other service backs off (respawn-delay-max): its log
		// has backoff events too.
		var files map[string]string
		if i%2 == 1 {
			files = map[string]string{servicedir.RespawnDelayFile: "100\n", servicedir.RespawnDelayMaxFile: "200\n"}
		}
		if err := os.Symlink(mksvc(t, scan, name, "#!/bin/sh\nexit 1\n", files), filepath.Join(scan, name)); err != nil {
			t.Fatal(err)
		}
	}
	var all []events.Record
	exits := map[string]int{}
	wait := func(n int) {
		timeout := time.After(time.Duration(n+30) * 2 * time.Second)
		for {
			done := true
			for _, s := range names {
				if exits[s] < n {
					done = false
				}
			}
			if done {
				return
			}
			select {
			case r := <-ch:
				all = append(all, r)
				if r.Event == "exit" {
					exits[r.Service]++
				}
			case <-timeout:
				t.Fatalf("waiting for %d exits of each service: %v", n, exits)
			}
		}
	}
	wait(each / 2)
	tr.kill()
	tr = startScanner(t, scan)
	wait(each)
	tr.stop()
	// After the stop every run is down: the log is complete. Read it whole.
	all = all[:0]
	rd := &events.Reader{Dir: filepath.Join(scan, servicedir.ScanEventsDir), Each: func(r *events.Record, _ []byte) error {
		all = append(all, *r)
		return nil
	}}
	if err := rd.ReadAll(); err != nil {
		t.Fatal(err)
	}
	started, exited := map[int]int{}, map[int]int{}
	kinds := map[string]map[string]int{} // service → event → count
	for _, r := range all {
		switch r.Event {
		case "start":
			started[r.Pid]++
		case "exit":
			exited[r.Pid]++
		}
		if kinds[r.Service] == nil {
			kinds[r.Service] = map[string]int{}
		}
		kinds[r.Service][r.Event]++
	}
	for i, name := range names {
		k := kinds[name]
		// Exits with no restart: one that died while no scanner ran
		// (reported by the next one), and the last (the stop).
		if k["restart"] < k["exit"]-2 {
			t.Errorf("%s: %d restarts for %d exits", name, k["restart"], k["exit"])
		}
		// Deaths with no backoff: each scanner's first (the policy's
		// count is the scanner's), the one while no scanner ran, the stop.
		if i%2 == 1 && (k["backoff"] < k["exit"]-4 || k["backoff"] == 0) {
			t.Errorf("%s: %d backoffs for %d exits", name, k["backoff"], k["exit"])
		}
		if i%2 == 0 && k["backoff"] != 0 {
			t.Errorf("%s: %d backoffs without a backoff policy", name, k["backoff"])
		}
	}
	if len(started) < nsvc*each {
		t.Errorf("%d starts in the log, want at least %d", len(started), nsvc*each)
	}
	for pid, n := range started {
		if n != 1 {
			t.Errorf("pid %d started %d times in the log", pid, n)
		}
		if exited[pid] == 0 {
			t.Errorf("pid %d: started, no exit in the log", pid)
		}
	}
	t.Logf("%d events, %d runs", len(all), len(started))
}

// TestEventHook: the hook gets each event in its environment, one run at
// a time per service; a failing hook is reported once per cause; a hook
// that hangs is killed at its timeout.
func TestEventHook(t *testing.T) {
	scan := t.TempDir()
	_, w := startScannerWarnings(t, scan)
	out := filepath.Join(t.TempDir(), "hook.out")
	hook := fmt.Sprintf(`#!/bin/sh
mkdir %[1]s.lock 2>/dev/null || echo OVERLAP >>%[1]s
echo "$1 $2 $GOSV_EVENT $GOSV_SERVICE pid=$GOSV_PID code=$GOSV_EXIT_CODE sig=$GOSV_EXIT_SIGNAL delay=$GOSV_DELAY" >>%[1]s
rmdir %[1]s.lock
exit 3
`, out)
	// NOTE: executable before the link: the scanner may start the
	// service (and skip a hook that is not executable) at once.
	dir := mksvc(t, scan, "h", pauseRun, map[string]string{"on-event": hook})
	os.Chmod(filepath.Join(dir, "on-event"), 0o755)
	svc := link(t, scan, dir)
	ch := follow(t, scan)
	expect(t, ch, "h start")
	for i := 0; i < 3; i++ {
		// Each k after the start event: the machine is up, k kills the run.
		if err := servicedir.WriteControl(svc, []byte("k")); err != nil {
			t.Fatal(err)
		}
		expect(t, ch, "h exit", "h restart", "h start")
	}
	ctlWait(t, svc, "d", svwait.DownReady)
	// 1 start + 3 × (exit restart start) + exit = 11 hook runs.
	waitFileLines(t, out, 11)
	b, _ := os.ReadFile(out)
	if strings.Contains(string(b), "OVERLAP") {
		t.Errorf("hooks overlapped:\n%s", b)
	}
	if !strings.Contains(string(b), "exit h exit h pid=") || !strings.Contains(string(b), "sig=SIGKILL") ||
		!strings.Contains(string(b), "start h start h pid=") || !strings.Contains(string(b), "restart h restart h pid= code= sig= delay=0.") {
		t.Errorf("hook output:\n%s", b)
	}
	w.sync(t, scan, 'Y')
	if n := w.count("on-event", "exited 3"); n != 1 {
		t.Errorf("%d reports of the failing hook, want 1 (once per cause)", n)
	}

	// A hook that hangs: killed at timeout-on-event, the service goes on.
	// NOTE: executable before the link, as above (a take fast enough
	// to start the service before the chmod skipped the hook).
	hangDir := mksvc(t, scan, "hang", pauseRun, map[string]string{
		"on-event": "#!/bin/sh\nGOSV_TEST_ROLE=pause exec \"$GOSV_TEST_BIN\"\n", "timeout-on-event": "200\n"})
	os.Chmod(filepath.Join(hangDir, "on-event"), 0o755)
	hang := link(t, scan, hangDir)
	waitFor(t, hang, svwait.Up)
	timeout := time.After(10 * time.Second)
	for w.count("hang", "on-event start", "ran longer than", "killed") == 0 {
		select {
		case <-w.more:
		case <-timeout:
			t.Fatal("the hanging hook was not killed")
		}
	}
	ctlWait(t, hang, "k", svwait.Down) // supervision never waited for the hook
	waitFor(t, hang, svwait.Up)
}

// waitFileLines waits (inotify) until path has n lines.
func waitFileLines(t *testing.T, path string, n int) {
	t.Helper()
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, filepath.Dir(path), unix.IN_MODIFY|unix.IN_CREATE|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(20 * time.Second)
	buf := make([]byte, 4096)
	for {
		b, _ := os.ReadFile(path)
		if strings.Count(string(b), "\n") >= n {
			return
		}
		left := time.Until(end)
		if left <= 0 {
			t.Fatalf("%s: want %d lines, have:\n%s", path, n, b)
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(left/time.Millisecond)+1); n > 0 {
			unix.Read(ino, buf)
		}
	}
}

// TestMetricsTextfileAndServer: the scanner rewrites the textfile when a
// service changes, and serves the same metrics on /metrics (loopback).
func TestMetricsTextfileAndServer(t *testing.T) {
	scan := t.TempDir()
	prom := filepath.Join(t.TempDir(), "gosv.prom")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	t.Setenv("GOSV_TEST_METRICS_LISTEN", port)
	t.Setenv("GOSV_TEST_METRICS_TEXTFILE", prom)
	startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "m", pauseRun, nil))
	waitFor(t, svc, svwait.Up)
	waitFileContains(t, prom, `gosv_service_up{name="m"} 1`)
	ctlWait(t, svc, "d", svwait.DownReady)
	waitFileContains(t, prom, `gosv_service_up{name="m"} 0`)
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `gosv_service_want_up{name="m"} 0`) {
		t.Fatalf("/metrics:\n%s", body)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("content type %q", ct)
	}
	if p, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(p, "check", "metrics")
		cmd.Stdin = strings.NewReader(string(body))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool: %v\n%s", err, out)
		}
	}
}

func TestListenAddr(t *testing.T) {
	for in, want := range map[string]string{"9101": "127.0.0.1:9101", ":9101": "127.0.0.1:9101",
		"0.0.0.0:9101": "0.0.0.0:9101", "[::1]:9101": "[::1]:9101"} {
		if got := ListenAddr(in); got != want {
			t.Errorf("ListenAddr(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestEventsSuperviseMode: gosv supervise DIR, with no scan directory,
// keeps the events log in DIR/supervise/gosv/events.
func TestEventsSuperviseMode(t *testing.T) {
	dir := mksvc(t, "", "one", pauseRun, nil)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], dir)
	cmd.Env = append(os.Environ(), "GOSV_TEST_ROLE=supervisor", "GOSV_TEST_BIN="+os.Args[0])
	cmd.Stderr = os.Stderr
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	r.Read(make([]byte, 1))
	r.Close()
	waitFor(t, dir, svwait.Up)
	pid := status(t, dir).Pid
	ctlWait(t, dir, "dx", svwait.DownReady)
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		cmd.Process.Kill()
		t.Fatal("gosv supervise did not exit on x")
	}
	var got []string
	rd := &events.Reader{Dir: filepath.Join(dir, servicedir.EventsLogDir), Each: func(r *events.Record, _ []byte) error {
		got = append(got, fmt.Sprintf("%s %s %d", r.Service, r.Event, r.Pid))
		return nil
	}}
	if err := rd.ReadAll(); err != nil {
		t.Fatal(err)
	}
	want := []string{fmt.Sprintf("%s start %d", dir, pid), fmt.Sprintf("%s exit %d", dir, pid)}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("events %q, want %q", got, want)
	}
}

// TestEventsLogFullDisk: a full disk under the events log is reported
// once, supervision goes on, and once space is back the log resumes and
// the count of lost events is reported.
func TestEventsLogFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	scan := t.TempDir()
	if err := unix.Mount("tmpfs", scan, "tmpfs", 0, "size=256k"); err != nil {
		t.Skip("tmpfs:", err)
	}
	t.Cleanup(func() { unix.Unmount(scan, unix.MNT_DETACH) })
	_, w := startScannerWarnings(t, scan)
	// The service directory lives elsewhere: only the log is starved.
	dir := mksvc(t, scan, "crash", "#!/bin/sh\nexit 2\n", nil)
	ch := follow(t, scan)
	filler := filepath.Join(scan, ".filler")
	os.WriteFile(filler, make([]byte, 512<<10), 0o644) // stops at ENOSPC
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	link(t, scan, dir)
	for i := 0; i < 3; i++ {
		waitEvent(t, sub, "d") // supervision goes on
	}
	w.sync(t, scan, 'Y')
	if n := w.count("events log", "no space left on device"); n != 1 {
		t.Errorf("%d reports of the full disk, want 1", n)
	}
	os.Remove(filler)
	expect(t, ch, "crash exit") // the log resumes
	timeout := time.After(10 * time.Second)
	for w.count("writing works again", "events were not recorded") != 1 {
		select {
		case <-w.more:
		case <-timeout:
			t.Fatal("no report of the lost events")
		}
	}
}
