//go:build integration

package tests

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Health checks of OpenRC services (issue 11), on both OpenRC versions.

// healthState is where gosv keeps a service's health (PROTOCOL.md §9.6).
const healthState = "supervise/gosv/health"

// waitFileHas waits (inotify on its directory, which must exist; the
// file is replaced by a rename) until the file at p contains want.
func waitFileHas(t *testing.T, p, want string, d time.Duration) {
	t.Helper()
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, filepath.Dir(p), unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE|unix.IN_MODIFY); err != nil {
		t.Fatalf("watch %s: %v", filepath.Dir(p), err)
	}
	end := time.Now().Add(d)
	buf := make([]byte, 4096)
	for {
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), want) {
			return
		}
		left := time.Until(end)
		if left <= 0 {
			t.Fatalf("%s: no %q within %v (content %q)", p, want, d, b)
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(left/time.Millisecond)+1); n > 0 {
			unix.Read(ino, buf)
		}
	}
}

// TestOpenRCHealthScript: an init script's healthcheck() runs every
// healthcheck_timer as `/etc/init.d/NAME healthcheck` (openrc-run sets
// RC_SVCNAME and RC_CMD); once it fails, unhealthy() runs while the
// daemon still lives, then the daemon is restarted and OpenRC still says
// started.
func TestOpenRCHealthScript(t *testing.T) { forEachRC(t, testOpenRCHealthScript) }

func testOpenRCHealthScript(t *testing.T, version string) {
	e := newRCv(t, true, version)
	e.mustSvc(t, "gosv-health", "start")
	dir := e.host(filepath.Join(rcServices, "gosv-health"))
	log := filepath.Join(e.Dir, "gosv-health.log")
	waitFileHas(t, filepath.Join(dir, healthState), `"health":"healthy"`, 20*time.Second)
	waitFileHas(t, log, "check gosv-health healthcheck", time.Second)
	pid := e.status(t, "gosv-health").Pid
	l := e.listen(t, filepath.Join(rcServices, "gosv-health"))
	os.WriteFile(filepath.Join(e.Dir, "gosv-health.sick"), nil, 0o644)
	l.WaitTimeout(t, "d", 20*time.Second)
	l.WaitTimeout(t, "u", 20*time.Second)
	if st := e.status(t, "gosv-health"); st.Pid == pid || !st.Up() {
		t.Errorf("after unhealthy: %v (old pid %d)", st, pid)
	}
	b, _ := os.ReadFile(log)
	if !strings.Contains(string(b), "unhealthy gosv-health unhealthy") {
		t.Errorf("unhealthy() did not run: %q", b)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, healthState)); !strings.Contains(string(b), `"last":"exit 1"`) || !strings.Contains(string(b), `"check":"healthcheck()"`) {
		t.Errorf("health state: %q", b)
	}
	if r := e.svc(t, "gosv-health", "status"); r.Code != 0 {
		t.Errorf("status after the restart: %s", r)
	}
	e.mustSvc(t, "gosv-health", "stop")
}

// TestOpenRCHealthNginx: a real nginx with gosv_healthcheck=http://…;
// SIGSTOPped (master and worker), its connections are accepted by the
// kernel and never answered: the check times out and nginx is restarted.
func TestOpenRCHealthNginx(t *testing.T) { forEachRC(t, testOpenRCHealthNginx) }

func testOpenRCHealthNginx(t *testing.T, version string) {
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		t.Skip("nginx is not installed")
	}
	e := newRCv(t, true, version)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)
	ln.Close() // NOTE: the namespace shares the host's network: a free port
	conf := e.WriteFile(t, "nginx-health.conf", `worker_processes 1;
pid `+e.Dir+`/nginx-health.pid;
error_log stderr;
events { worker_connections 64; }
http {
	access_log off;
	server { listen 127.0.0.1:`+port+`; location / { return 200 "ok\n"; } }
}
`, 0o644)
	script := e.WriteFile(t, "gosv-nginx-health", `#!/sbin/openrc-run
supervisor=gosv
command=/usr/sbin/nginx
command_args="-c `+conf+`"
command_args_foreground="-g 'daemon off;'"
healthcheck_timer=1
healthcheck_delay=3
gosv_healthcheck="http://127.0.0.1:`+port+`/"
gosv_healthcheck_timeout=1
`, 0o755)
	e.MustRun(t, "install", "-m", "755", script, "/etc/init.d/gosv-nginx-health")
	e.MustRun(t, "rc-update", "-u") // its need of gosv-svscan
	e.mustSvc(t, "gosv-nginx-health", "start")
	dir := e.host(filepath.Join(rcServices, "gosv-nginx-health"))
	waitFileHas(t, filepath.Join(dir, healthState), `"last":"200"`, 20*time.Second)
	pid := e.status(t, "gosv-nginx-health").Pid
	l := e.listen(t, filepath.Join(rcServices, "gosv-nginx-health"))
	stopped := 0
	for _, p := range e.Procs() {
		if p.Comm == "nginx" && p.State != 'Z' {
			unix.Kill(p.HostPid, unix.SIGSTOP)
			stopped++
		}
	}
	if stopped < 2 {
		t.Fatalf("SIGSTOPped %d nginx processes, want master and worker", stopped)
	}
	l.WaitTimeout(t, "d", 20*time.Second)
	l.WaitTimeout(t, "u", 20*time.Second)
	if st := e.status(t, "gosv-nginx-health"); st.Pid == pid || !st.Up() {
		t.Errorf("after the stopped nginx: %v (old pid %d)", st, pid)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, healthState)); !strings.Contains(string(b), "timed out after 1s") {
		t.Errorf("health state after the restart: %q", b)
	}
	waitFileHas(t, filepath.Join(dir, healthState), `"last":"200"`, 20*time.Second)
	e.mustSvc(t, "gosv-nginx-health", "stop")
}
