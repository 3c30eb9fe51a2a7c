//go:build integration

package tests

import (
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
)

// TestOpenRCEvents (issue 11): gosv_on_event in /etc/conf.d/gosv-svscan
// reaches every gosv service: a SIGKILLed daemon's start, ready, exit and
// restart each run the hook, one at a time; gosv events shows them in
// words; gosv metrics passes promtool and counts the restart; the scanner
// keeps the textfile and serves /metrics as conf.d asks.
func TestOpenRCEvents(t *testing.T) { forEachRC(t, testOpenRCEvents) }

func testOpenRCEvents(t *testing.T, version string) {
	e := newRCv(t, true, version)
	out := filepath.Join(e.Dir, "hook.out")
	prom := filepath.Join(e.Dir, "gosv.prom")
	// A free loopback port (the namespace shares the host's network).
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close()
	conf := `gosv_on_event='echo "$1 $2 $GOSV_EVENT $GOSV_SERVICE pid=$GOSV_PID sig=$GOSV_EXIT_SIGNAL" >>` + out + `'
gosv_metrics_textfile=` + prom + `
gosv_metrics_listen=` + port + "\n"
	staged := e.WriteFile(t, "stage/gosv-svscan.conf", conf, 0o644)
	e.MustRun(t, "sh", "-c", "cat "+shellQuote(staged)+" >>/etc/conf.d/gosv-svscan")
	e.mustSvc(t, "gosv-svscan", "start")
	e.mustSvc(t, "gosv-plain", "start")
	before := e.status(t, "gosv-plain")
	l := e.listen(t, rcServices+"/gosv-plain")
	e.MustRun(t, "kill", "-KILL", strconv.FormatUint(before.Pid, 10))
	l.Wait(t, "U")
	after := e.status(t, "gosv-plain")

	pid0, pid1 := strconv.FormatUint(before.Pid, 10), strconv.FormatUint(after.Pid, 10)
	want := []string{
		"start gosv-plain start gosv-plain pid=" + pid0 + " sig=",
		"ready gosv-plain ready gosv-plain pid=" + pid0 + " sig=",
		"exit gosv-plain exit gosv-plain pid=" + pid0 + " sig=SIGKILL",
		"restart gosv-plain restart gosv-plain pid= sig=",
		"start gosv-plain start gosv-plain pid=" + pid1 + " sig=",
		"ready gosv-plain ready gosv-plain pid=" + pid1 + " sig=",
	}
	got := waitLines(t, out, len(want))
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("hook line %d: %q, want %q", i, got[i], want[i])
		}
	}

	r := e.MustRun(t, "gosv", "events", "gosv-plain")
	for _, w := range []string{"gosv-plain: started (pid " + pid0 + ")", "gosv-plain: ready (pid " + pid0 + ")",
		"gosv-plain: killed by SIGKILL (pid " + pid0 + ")", "gosv-plain: restarting", "gosv-plain: started (pid " + pid1 + ")"} {
		if !strings.Contains(r.Stdout, w) {
			t.Errorf("gosv events lacks %q:\n%s", w, r.Stdout)
		}
	}
	if n := strings.Count(e.MustRun(t, "gosv", "events", "--json", "gosv-plain").Stdout, "\n"); n != len(want) {
		t.Errorf("gosv events --json: %d lines, want %d", n, len(want))
	}

	r = e.MustRun(t, "gosv", "metrics")
	for _, w := range []string{`gosv_service_up{name="gosv-plain"} 1`, `gosv_service_ready{name="gosv-plain"} 1`,
		`gosv_service_restarts_total{name="gosv-plain"} 1`, `gosv_service_last_exit_signal{name="gosv-plain"} 9`} {
		if !strings.Contains(r.Stdout, w+"\n") {
			t.Errorf("gosv metrics lacks %s:\n%s", w, r.Stdout)
		}
	}
	promtoolCheck(t, r.Stdout)
	b, err := os.ReadFile(prom)
	if err != nil || !strings.Contains(string(b), `gosv_service_restarts_total{name="gosv-plain"} 1`) {
		t.Errorf("textfile %s (%v):\n%s", prom, err, b)
	}
	promtoolCheck(t, string(b))

	// gosv_metrics_listen: a bare port is served on the loopback.
	resp, err := http.Get("http://127.0.0.1:" + port + "/metrics")
	if err != nil {
		t.Fatalf("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if !strings.Contains(string(body), `gosv_service_up{name="gosv-plain"} 1`) {
		t.Errorf("/metrics:\n%s", body)
	}
	promtoolCheck(t, string(body))
}

// promtoolCheck runs `promtool check metrics` (Debian package prometheus)
// on text; a missing promtool skips, or fails under REQUIRE_OPENRC=1 (CI).
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv(envRequireRC) == "1" {
			t.Fatal("promtool not installed (apt-get install prometheus)")
		}
		t.Log("promtool not installed: metrics not validated")
		return
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool check metrics: %v\n%s\n--- input:\n%s", err, out, text)
	}
}

// waitLines waits until path has n lines.
func waitLines(t *testing.T, path string, n int) []string {
	t.Helper()
	split := func(b []byte) []string { return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") }
	b := waitFileFor(t, path, eventTimeout, func(b []byte) bool { return len(b) > 0 && len(split(b)) >= n },
		fmt.Sprintf("%d lines", n))
	return split(b)
}

// waitFileFor waits (inotify on its directory) until ok(path's content),
// and returns that content; past d it fails, saying what it wanted.
func waitFileFor(t *testing.T, path string, d time.Duration, ok func([]byte) bool, want string) []byte {
	t.Helper()
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, filepath.Dir(path), unix.IN_MODIFY|unix.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(d)
	buf := make([]byte, 4096)
	for {
		b, _ := os.ReadFile(path)
		if ok(b) {
			return b
		}
		left := time.Until(end)
		if left <= 0 {
			t.Fatalf("%s: want %s within %v, have:\n%s", path, want, d, b)
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if k, _ := unix.Poll(fds, int(left/time.Millisecond)+1); k > 0 {
			unix.Read(ino, buf)
		}
	}
}
