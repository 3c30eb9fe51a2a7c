package scan

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// healthRole runs the helper processes of the health tests.
func healthRole(role, arg string) {
	switch role {
	case "http-server":
		// Serve 200 on 127.0.0.1:arg until killed.
		ln, err := net.Listen("tcp", "127.0.0.1:"+arg)
		if err != nil {
			os.Exit(5)
		}
		http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(200) }))
		os.Exit(6)
	case "mark-pause":
		// Create the file arg (holding our pid), then hang: a check that never ends.
		os.WriteFile(arg, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644)
		block()
	}
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func healthFile(svc string) string { return filepath.Join(svc, servicedir.HealthStatePath) }

// waitHealth waits (inotify, deadline) until supervise/gosv/health holds
// want; the file is replaced by a rename, hence IN_MOVED_TO.
func waitHealth(t *testing.T, svc, want string) {
	t.Helper()
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, filepath.Dir(healthFile(svc)), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(10 * time.Second)
	buf := make([]byte, 4096)
	for {
		b, _ := os.ReadFile(healthFile(svc))
		if strings.Contains(string(b), want) {
			return
		}
		left := time.Until(end)
		if left <= 0 {
			t.Fatalf("%s: %q never appeared (content %q)", healthFile(svc), want, b)
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(left/time.Millisecond)+1); n > 0 {
			unix.Read(ino, buf)
		}
	}
}

// restarted waits until svc runs with a pid other than old.
func restarted(t *testing.T, svc string, old int) int {
	t.Helper()
	w, err := svwait.Listen([]string{svc}, svwait.Down, svwait.All)
	if err != nil {
		t.Fatal(err)
	}
	if st := status(t, svc); st.Pid == old {
		if err := w.Wait(deadline(t)); err != nil {
			t.Fatalf("%s not restarted: %v (status %+v)", svc, err, st)
		}
	}
	w.Close()
	waitFor(t, svc, svwait.Up)
	st := status(t, svc)
	if st.Pid == old {
		t.Fatalf("%s: same pid %d", svc, old)
	}
	return st.Pid
}

// A check that hangs is cut at its timeout; meanwhile another service
// dies and restarts at once, and the hung service's own restart follows
// the cut.
func TestHealthHangingCheckIsCut(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	mark := filepath.Join(t.TempDir(), "check-started")
	hang := mksvc(t, scan, "hang", pauseRun, map[string]string{
		servicedir.HealthCheckFile:   "exec:GOSV_TEST_ROLE=mark-pause " + os.Args[0] + " " + mark + "\n",
		servicedir.HealthTimerFile:   "100\n",
		servicedir.HealthTimeoutFile: "5000\n", // long enough for other's restart on a loaded machine
	})
	hang = link(t, scan, hang)
	other := link(t, scan, mksvc(t, scan, "other", pauseRun, nil))
	waitFor(t, hang, svwait.Up)
	waitFor(t, other, svwait.Up)
	hangPid := status(t, hang).Pid
	waitFileContains(t, mark, "\n")
	b, _ := os.ReadFile(mark)
	checkPid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	// The loop goes on: another service's death is handled while the
	// check hangs.
	otherPid := status(t, other).Pid
	unix.Kill(otherPid, unix.SIGKILL)
	restarted(t, other, otherPid)
	if !alive(checkPid) {
		t.Fatal("the check ended before its timeout (the test raced the 5 s cut)")
	}
	if st := status(t, hang); st.Pid != hangPid {
		t.Fatalf("hang restarted before its check was cut")
	}
	// Cut at 5 s: one failure, unhealthy (retries 1), restarted.
	restarted(t, hang, hangPid)
	waitHealth(t, hang, "timed out after 5s")
	if alive(checkPid) {
		var st unix.Stat_t
		if unix.Stat(fmt.Sprintf("/proc/%d", checkPid), &st) == nil {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", checkPid)); !strings.Contains(string(b), ") Z ") {
				t.Fatalf("the cut check %d still runs", checkPid)
			}
		}
	}
}

// Failing twice then passing with retries 3: no restart, and the state
// says healthy again.
func TestHealthRetriesNoRestart(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "flaky", pauseRun, map[string]string{
		servicedir.HealthCheckFile:   "exec:/bin/sh hc.sh\n",
		"hc.sh":                      "n=$(cat count 2>/dev/null || echo 0); n=$((n+1)); echo $n > count; [ $n -ge 3 ]\n",
		servicedir.HealthTimerFile:   "100\n",
		servicedir.HealthTimeoutFile: "5000\n", // not the timer's 100 ms: a loaded machine
		servicedir.HealthRetriesFile: "3\n",
	}))
	waitFor(t, svc, svwait.Up)
	pid := status(t, svc).Pid
	waitHealth(t, svc, `"fails":2`)
	waitHealth(t, svc, `"health":"healthy"`)
	if st := status(t, svc); st.Pid != pid {
		t.Fatalf("restarted after 2 failures with retries 3: %+v", st)
	}
}

// Three failures with retries 3: the unhealthy hook runs while the
// service still lives, then the service restarts.
func TestHealthUnhealthyHookThenRestart(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	run := "#!/bin/sh\necho $$ > run.pid\nGOSV_TEST_ROLE=pause exec \"$GOSV_TEST_BIN\" \"$1\"\n"
	svc := link(t, scan, mksvc(t, scan, "sick", run, map[string]string{
		servicedir.HealthCheckFile:     "exec:/bin/false\n",
		servicedir.HealthUnhealthyFile: "/bin/sh hook.sh\n",
		"hook.sh":                      "kill -0 $(cat run.pid) && echo alive >> hook.log\n",
		servicedir.HealthTimerFile:     "100\n",
		servicedir.HealthRetriesFile:   "3\n",
		// The next run's first result comes 4 s after its start: the
		// state says why the last run was restarted until then.
		servicedir.HealthDelayFile: "4000\n",
	}))
	waitFor(t, svc, svwait.Up)
	pid := status(t, svc).Pid
	restarted(t, svc, pid)
	waitFileContains(t, filepath.Join(svc, "hook.log"), "alive")
	waitHealth(t, svc, `"fails":3`)
	b, _ := os.ReadFile(healthFile(svc))
	hs, err := servicedir.ParseHealthState(b)
	if err != nil || hs.Check != "exec:/bin/false" || hs.Retries != 3 || hs.Last != "exit 1" {
		t.Fatalf("health state %+v, %v", hs, err)
	}
}

// An HTTP check against a SIGSTOPped server: the connection is accepted
// by the kernel, no response comes, the check is cut, the server restarted.
func TestHealthHTTPStoppedServer(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	port := strconv.Itoa(freePort(t))
	svc := link(t, scan, mksvc(t, scan, "web", role("http-server", port), map[string]string{
		servicedir.HealthCheckFile:   "http://127.0.0.1:" + port + "/health\n",
		servicedir.HealthTimerFile:   "100\n",
		servicedir.HealthTimeoutFile: "500\n",
		servicedir.HealthDelayFile:   "4000\n", // the new run's first result waits
	}))
	waitFor(t, svc, svwait.Up)
	waitHealth(t, svc, `"last":"200"`)
	waitHealth(t, svc, `"check":"GET http://127.0.0.1:`+port+`/health"`)
	pid := status(t, svc).Pid
	unix.Kill(pid, unix.SIGSTOP)
	restarted(t, svc, pid)
	waitHealth(t, svc, "timed out")
	waitHealth(t, svc, `"last":"200"`) // the new server passes
}

// A tcp check of a port nobody listens on fails at once (connection
// refused) and restarts the service.
func TestHealthTCPRefused(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	svc := link(t, scan, mksvc(t, scan, "tcp", pauseRun, map[string]string{
		servicedir.HealthCheckFile: "tcp:127.0.0.1:" + strconv.Itoa(freePort(t)) + "\n",
		servicedir.HealthTimerFile: "100\n",
	}))
	waitFor(t, svc, svwait.Up)
	restarted(t, svc, status(t, svc).Pid)
	waitHealth(t, svc, "connection refused")
}

func TestStatusResult(t *testing.T) {
	c, _ := servicedir.ParseHealthCheck("http://127.0.0.1:1/")
	for _, tc := range []struct {
		resp string
		eof  bool
		ok   bool
		msg  string
		done bool
	}{
		{"HTTP/1.1 200 OK\r\n", false, true, "200", true},
		{"HTTP/1.0 503 Service Unavailable\r\n", false, false, "503 (want 2xx)", true},
		{"HTTP/1.1 2", false, false, "", false},
		{"", true, false, "connection closed without a response", true},
		{"SSH-2.0-OpenSSH_9.2p1 Debian\r\n", false, false, `not an HTTP response: "SSH-2.0-OpenSSH_9.2p1 Debian\r"`, true},
	} {
		ok, msg, done := statusResult(&c, []byte(tc.resp), tc.eof)
		if ok != tc.ok || msg != tc.msg || done != tc.done {
			t.Errorf("%q: %v %q %v, want %v %q %v", tc.resp, ok, msg, done, tc.ok, tc.msg, tc.done)
		}
	}
}

// An https check goes through the shared pool: 200 from a TLS server
// (self-signed), then a refused connection once it is gone → restart.
func TestHealthHTTPS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/ping" || r.Host == "" {
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	scan := t.TempDir()
	startScanner(t, scan)
	addr := srv.Listener.Addr().String()
	svc := link(t, scan, mksvc(t, scan, "tls", pauseRun, map[string]string{
		servicedir.HealthCheckFile:   "https://" + addr + "/ping 200\n",
		servicedir.HealthTimerFile:   "100\n",
		servicedir.HealthTimeoutFile: "5000\n",
	}))
	waitFor(t, svc, svwait.Up)
	waitHealth(t, svc, `"last":"200"`)
	pid := status(t, svc).Pid
	srv.Close()
	restarted(t, svc, pid)
	waitHealth(t, svc, `"last":"connection refused"`)
}

func TestCheckName(t *testing.T) {
	for in, want := range map[string]string{
		"https://127.0.0.1/x 3xx":              "GET https://127.0.0.1:443/x",
		"exec:/etc/init.d/redis healthcheck":   "healthcheck()",
		"exec:/usr/bin/redis-cli healthcheck":  "exec:/usr/bin/redis-cli healthcheck",
		"exec:/etc/init.d/redis healthcheck 1": "exec:/etc/init.d/redis healthcheck 1",
		"tcp:[::1]:6379":                       "tcp:[::1]:6379",
	} {
		c, err := servicedir.ParseHealthCheck(in)
		if got := checkName(&c); err != nil || got != want {
			t.Errorf("%q: %q (%v), want %q", in, got, err, want)
		}
	}
}

// An invalid health-check is reported once, naming the file, however
// often the service restarts, and the service runs unchecked.
func TestHealthBadCheckReportedOnce(t *testing.T) {
	scan := t.TempDir()
	errf, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer errf.Close()
	startScannerTo(t, scan, errf)
	svc := link(t, scan, mksvc(t, scan, "bad", pauseRun, map[string]string{
		servicedir.HealthCheckFile: "tcp:db.example:5432\n",
		servicedir.HealthTimerFile: "100\n",
	}))
	waitFor(t, svc, svwait.Up)
	for range 3 {
		pid := status(t, svc).Pid
		unix.Kill(pid, unix.SIGKILL)
		restarted(t, svc, pid)
	}
	log, _ := os.ReadFile(errf.Name())
	if n := strings.Count(string(log), "no DNS lookups"); n != 1 {
		t.Fatalf("the bad %s reported %d times, want once:\n%s", servicedir.HealthCheckFile, n, log)
	}
	if _, err := os.Stat(healthFile(svc)); err == nil {
		t.Fatalf("a service with an invalid check was checked")
	}
	if !strings.Contains(string(log), "(the service is not health-checked)") {
		t.Errorf("the report does not say the service runs unchecked:\n%s", log)
	}
}
