//go:build integration

package tests

import (
	"encoding/binary"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The backend contract (issue 14): one table of OpenRC behaviours, run
// against every supervisor gosv drives (gosv_backend, set for every
// service at once in /etc/conf.d/gosv-svscan), with the real s6, on both
// OpenRC versions.

// contractBackend is one backend under test: its name, the OpenRC
// service of its scanner and that scanner's scan directory.
type contractBackend struct {
	name, scanner, scanDir string
	// scannerCmd is part of the scanner's command line (not of its
	// supervise-daemon's).
	scannerCmd string
}

var contractBackends = []contractBackend{
	{"gosv", "gosv-svscan", rcScanDir, "gosv svscan " + rcScanDir},
	{"s6", "s6-svscan", rcSvcDir + "/s6-scan", "s6-svscan -"},
	{"runit", "runsvdir", rcSvcDir + "/sv", "runsvdir -P " + rcSvcDir + "/sv"},
}

func TestBackendsContract(t *testing.T) {
	for _, b := range contractBackends {
		t.Run(b.name, func(t *testing.T) {
			switch b.name {
			case "s6":
				requireTools(t, envRequireS6, "s6-svscan", "s6-supervise", "s6-log")
			case "runit":
				requireTools(t, envRequireRunit, "runsvdir", "runsv", "svlogd", "chpst")
			}
			forEachRC(t, func(t *testing.T, version string) { testContract(t, version, b) })
		})
	}
}

func testContract(t *testing.T, version string, b contractBackend) {
	e := newRCv(t, true, version)
	e.Sh(t, "echo gosv_backend="+b.name+" >> /etc/conf.d/gosv-svscan && rc-update -u >/dev/null")

	// Start and ready: the scanner comes in as the dependency the hook
	// added, the start blocks until the daemon is ready, the service is
	// linked into that scanner's directory, status is 0.
	t0 := time.Now()
	e.mustSvc(t, "gosv-slowready", "start")
	if d := time.Since(t0); d < 400*time.Millisecond {
		t.Errorf("start returned after %v, before the daemon was ready", d)
	}
	if st := b.state(t, e, "gosv-slowready"); !st.up || !st.ready {
		t.Errorf("after start: %v, want up and ready", st)
	}
	if r := e.svc(t, b.scanner, "status"); r.Code != 0 {
		t.Errorf("%s was not started as a dependency: %s", b.scanner, r)
	}
	e.MustRun(t, "test", "-L", filepath.Join(b.scanDir, "gosv-slowready"))
	if r := e.svc(t, "gosv-slowready", "status"); r.Code != 0 {
		t.Errorf("status: %s, want 0", r)
	}
	e.mustSvc(t, "gosv-slowready", "stop")
	if r := e.svc(t, "gosv-slowready", "status"); r.Code != 3 {
		t.Errorf("status after stop: %s, want 3", r)
	}

	// sd_notify readiness (notify=socket): gosv's scanner reads the
	// socket, s6 and runit get it through gosv notify-fd-from-socket. The
	// start blocks until READY=1, and the watcher is gone with it.
	t0 = time.Now()
	e.mustSvc(t, "gosv-sdnotify", "start")
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("sd_notify: start returned after %v, before the daemon was ready", d)
	}
	if st := b.state(t, e, "gosv-sdnotify"); !st.up || !st.ready {
		t.Errorf("sd_notify: after start: %v, want up and ready", st)
	}
	e.mustSvc(t, "gosv-sdnotify", "stop")
	// A real sd_notify daemon, as a user (the exec helper drops
	// privileges under the wrapper): redis answers as soon as start
	// returns.
	e.Sh(t, `cat > /etc/init.d/gosv-redis <<'_EOF'
`+contractRedis+`_EOF
chmod 0755 /etc/init.d/gosv-redis`)
	e.mustSvc(t, "gosv-redis", "start")
	if err := probeUnix(e, "/run/gosv-redis/redis.sock", []byte("PING\r\n"), []byte("+PONG")); err != nil {
		t.Errorf("redis right after start: %v", err)
	}
	// The watcher exits right after its newline, maybe after the start.
	waitGone(t, e.procs(" notify-fd-watch "), eventTimeout)
	if r := e.Sh(t, "ls /run/gosv-notify/ 2>/dev/null | grep '^fd-'"); r.Stdout != "" {
		t.Errorf("sockets left after the start: %q", r.Stdout)
	}
	e.mustSvc(t, "gosv-redis", "stop")
	if ps := e.procs("redis-server"); len(ps) != 0 {
		t.Errorf("redis left running after stop: %+v", ps)
	}

	// A hand-written directory (gosv_service_path: what a supervisor=s6
	// service moves with) runs on the backend's scanner too.
	t0 = time.Now()
	e.mustSvc(t, "gosv-handwritten", "start")
	if d := time.Since(t0); d < 200*time.Millisecond {
		t.Errorf("hand-written: start returned after %v, before the daemon was ready", d)
	}
	e.MustRun(t, "test", "-L", filepath.Join(b.scanDir, "gosv-handwritten"))
	if r := e.svc(t, "gosv-handwritten", "status"); r.Code != 0 {
		t.Errorf("hand-written: status %s, want 0", r)
	}
	e.mustSvc(t, "gosv-handwritten", "stop")

	// A hand-written directory whose readiness a check script tells
	// (runit's sv check convention): gosv's scanner runs ./check itself,
	// runit's backend through gosv notifyoncheck. s6 ignores check.
	if b.name != "s6" {
		e.Sh(t, `mkdir -p /etc/sv/redis-check && cd /etc/sv/redis-check &&
cat > run <<'_EOF'
#!/bin/sh
mkdir -p /run/gosv-redis-check
exec redis-server --port 0 --unixsocket /run/gosv-redis-check/redis.sock --dir /run/gosv-redis-check --save '' --appendonly no --daemonize no
_EOF
cat > check <<'_EOF'
#!/bin/sh
exec redis-cli -s /run/gosv-redis-check/redis.sock ping >/dev/null 2>&1
_EOF
chmod 0755 run check
printf '#!/sbin/openrc-run\nsupervisor=gosv\ngosv_service_path=/etc/sv/redis-check\n' > /etc/init.d/gosv-redis-check
chmod 0755 /etc/init.d/gosv-redis-check`)
		t0 = time.Now()
		e.mustSvc(t, "gosv-redis-check", "start")
		if d := time.Since(t0); d < 200*time.Millisecond {
			t.Errorf("check: start returned after %v, before the first check (200 ms)", d)
		}
		if err := probeUnix(e, "/run/gosv-redis-check/redis.sock", []byte("PING\r\n"), []byte("+PONG")); err != nil {
			t.Errorf("check: redis right after start: %v", err)
		}
		waitGone(t, e.procs(" notify-fd-watch "), eventTimeout)
		e.mustSvc(t, "gosv-redis-check", "stop")
		if ps := e.procs("redis-server"); len(ps) != 0 {
			t.Errorf("check: redis left running after stop: %+v", ps)
		}
	}

	// Timeout with the reason and the last log lines; nothing left.
	r := e.svc(t, "gosv-neverready", "start")
	if r.Code != 1 {
		t.Fatalf("start of a never-ready daemon: %s, want exit 1", r)
	}
	for _, want := range []string{"* gosv-neverready: not ready within 500ms", "*   still warming up"} {
		wantLine(t, r, want)
	}
	if ps := e.procs(e.helper); len(ps) != 0 {
		t.Errorf("left running after a failed start: %+v", ps)
	}
	e.MustRun(t, "test", "!", "-e", filepath.Join(b.scanDir, "gosv-neverready"))
	if r := e.svc(t, "gosv-neverready", "status"); r.Code != 3 {
		t.Errorf("status after a failed start: %s, want 3", r)
	}

	// Stop of a forker that ignores SIGTERM: SIGKILL after timeout_kill,
	// its children too.
	e.mustSvc(t, "gosv-forker", "start")
	if ps := e.procs(e.helper); len(ps) != 3 {
		t.Fatalf("%d helper processes, want 3: %+v", len(ps), ps)
	}
	t0 = time.Now()
	e.mustSvc(t, "gosv-forker", "stop")
	if d := time.Since(t0); d < 300*time.Millisecond {
		t.Errorf("forker stopped after %v, before timeout_kill", d)
	}
	if ps := e.procs(e.helper); len(ps) != 0 {
		t.Errorf("left running after stop: %+v", ps)
	}

	// A crash loop is given up after respawn_max respawns: OpenRC marks
	// it stopped then failed, status says why.
	cl := b.watch(t, e, "gosv-crashloop")
	e.mustSvc(t, "gosv-crashloop", "start")
	cl.until(t, func(s svState) bool { return !s.wantUp && !s.up }, 3*eventTimeout)
	if r := e.svc(t, "gosv-crashloop", "status"); r.Code != 3 || !strings.Contains(r.Stdout, "respawned 3 times") {
		t.Errorf("status of a given-up crash loop: %s, want 3 and the reason", r)
	}
	if got := e.rcStatus(t, "gosv-crashloop"); got != "[ failed ]" {
		t.Errorf("rc-status of a given-up crash loop: %q, want [ failed ]", got)
	}

	// Two rc-service start at once (hostile14): one daemon, started, and
	// no error but OpenRC's own "already starting".
	r = e.Run(t, "sh", "-c", "rc-service gosv-plain start 2>&1 & rc-service gosv-plain start 2>&1; wait")
	if strings.Contains(r.Stdout, "ERROR") || strings.Contains(r.Stdout, "exists and is not a symlink") {
		t.Errorf("two starts at once: %s", r)
	}
	if ps := e.procs(e.helper); len(ps) != 1 {
		t.Errorf("%d helper processes after two starts at once, want 1: %+v", len(ps), ps)
	}
	if r := e.svc(t, "gosv-plain", "status"); r.Code != 0 {
		t.Errorf("status after two starts at once: %s, want 0", r)
	}
	e.mustSvc(t, "gosv-plain", "stop")

	// Crash restart: a SIGKILLed daemon comes back, status stays 0 and
	// says how it died.
	e.mustSvc(t, "gosv-plain", "start")
	before := b.state(t, e, "gosv-plain")
	l := b.watch(t, e, "gosv-plain")
	e.MustRun(t, "kill", "-KILL", strconv.FormatUint(before.pid, 10))
	l.until(t, func(s svState) bool { return s.up && s.ready && s.pid != before.pid }, eventTimeout)
	if after := b.state(t, e, "gosv-plain"); after.pid == before.pid || !after.up {
		t.Errorf("not restarted: before %v, after %v", before, after)
	}
	if r := e.svc(t, "gosv-plain", "status"); r.Code != 0 || !strings.Contains(r.Stdout, "last exit: signal SIGKILL") {
		t.Errorf("status after a crash: %s, want 0 and the last exit", r)
	}

	// rc-status agrees (the daemon record's pidfile names the service's
	// supervisor), and restart gives a new process.
	if got := e.rcStatus(t, "gosv-plain"); !strings.HasPrefix(got, "[ started") {
		t.Errorf("rc-status: %q, want started", got)
	}
	prev := b.state(t, e, "gosv-plain")
	e.mustSvc(t, "gosv-plain", "restart")
	if now := b.state(t, e, "gosv-plain"); now.pid == prev.pid || !now.up {
		t.Errorf("restart: before %v, after %v", prev, now)
	}

	// Scanner death (its supervisor first, so that nothing restarts it):
	// the daemon lives on unsupervised (64); stop still stops it.
	victims := e.procs("supervise-daemon " + b.scanner)
	for _, p := range e.procs(b.scannerCmd) {
		if !strings.HasPrefix(p.Cmdline, "supervise-daemon") {
			victims = append(victims, p)
		}
	}
	if len(victims) == 0 {
		t.Fatalf("no %s process found", b.scanner)
	}
	for _, p := range victims {
		e.MustRun(t, "kill", "-KILL", strconv.Itoa(p.NsPid))
		e.WaitReaped(t, p.NsPid, eventTimeout)
	}
	if r := e.svc(t, "gosv-plain", "status"); r.Code != 64 {
		t.Errorf("status after the scanner died: %s, want 64 (unsupervised)", r)
	}
	e.mustSvc(t, "gosv-plain", "stop")
	if ps := e.procs(e.helper); len(ps) != 0 {
		t.Errorf("left running after stop without a scanner: %+v", ps)
	}
}

// waitGone waits, within d, until every process of ps has exited.
func waitGone(t *testing.T, ps []Process, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for _, p := range ps {
		fd, err := unix.PidfdOpen(p.HostPid, 0)
		if err != nil {
			continue // gone already
		}
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			n, err := unix.Poll(fds, int(max(time.Until(deadline), 0).Milliseconds()))
			if err == unix.EINTR {
				continue
			}
			if n <= 0 {
				t.Errorf("still running after %v: %+v", d, p)
			}
			break
		}
		unix.Close(fd)
	}
}

// contractRedis is Debian's redis-server as its own user, ready by
// sd_notify (--supervised systemd), on a unix socket only.
const contractRedis = `#!/sbin/openrc-run
supervisor=gosv
command=/usr/bin/redis-server
command_args="--port 0 --unixsocket /run/gosv-redis/redis.sock --dir /run/gosv-redis --save '' --appendonly no --daemonize no --supervised systemd"
command_user=redis
notify=socket:ready
timeout_ready=10s
start_pre() {
	checkpath -d -o redis /run/gosv-redis
}
`

// svState is what the contract reads of a service's state, from its
// supervisor's own status file and without gosv's codecs: s6's
// supervise/status, or runit's in the runit directory gosv_backend=runit
// makes inside the service directory (runit has no readiness after the
// start: ready is up).
type svState struct {
	up, ready, wantUp bool
	pid               uint64
}

// statusDir is the directory whose supervise/status holds svc's state.
func (b contractBackend) statusDir(svc string) string {
	if b.name == "runit" {
		return filepath.Join(rcServices, svc, "runit")
	}
	return filepath.Join(rcServices, svc)
}

func (b contractBackend) state(t *testing.T, e *RC, svc string) svState {
	t.Helper()
	if b.name != "runit" {
		st := e.status(t, svc)
		return svState{up: st.Up(), ready: st.Flags&flagReady != 0, wantUp: st.Flags&flagWantUp != 0, pid: st.Pid}
	}
	p := e.host(filepath.Join(b.statusDir(svc), "supervise", "status"))
	raw, err := os.ReadFile(p)
	if err != nil || len(raw) != 20 {
		t.Fatalf("%s: %d bytes, %v; want runit's 20", p, len(raw), err)
	}
	// runsv.c update_status: TAI64N, pid (little-endian u32), paused,
	// want ('u'/'d'), got TERM, state (0 down, 1 run, 2 finish).
	pid := uint64(binary.LittleEndian.Uint32(raw[12:16]))
	up := raw[19] == 1 && pid != 0
	return svState{up: up, ready: up, wantUp: raw[17] == 'u', pid: pid}
}

// stateWatch waits for rewrites of a service's status file (both s6 and
// runsv rename a new one over it at each change).
type stateWatch struct {
	b   contractBackend
	e   *RC
	svc string
	f   *os.File
}

// watch starts watching svc's supervise/ (made when missing: both
// supervisors take an existing one), before what changes it.
func (b contractBackend) watch(t *testing.T, e *RC, svc string) *stateWatch {
	t.Helper()
	sup := e.host(filepath.Join(b.statusDir(svc), "supervise"))
	if err := os.MkdirAll(sup, 0o700); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, sup, unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		t.Fatalf("inotify %s: %v", sup, err)
	}
	w := &stateWatch{b: b, e: e, svc: svc, f: os.NewFile(uintptr(fd), "inotify")}
	t.Cleanup(func() { w.f.Close() })
	return w
}

// until waits, within d, until cond holds of the service's state.
func (w *stateWatch) until(t *testing.T, cond func(svState) bool, d time.Duration) {
	t.Helper()
	if err := w.f.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := os.Stat(w.e.host(filepath.Join(w.b.statusDir(w.svc), "supervise", "status"))); err == nil {
			if st := w.b.state(t, w.e, w.svc); cond(st) {
				return
			}
		}
		if _, err := w.f.Read(buf); err != nil {
			t.Fatalf("%s: waiting for its state: %v (last: %+v)", w.svc, err, w.b.state(t, w.e, w.svc))
		}
	}
}
