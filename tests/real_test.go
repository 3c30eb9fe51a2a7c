//go:build integration

package tests

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The real-daemon tier (issue 8 §6): Debian's nginx, redis-server,
// memcached, dnsmasq, cron and mosquitto (installed by `make test-deps`),
// started by the init scripts of testdata/real (see its README) under
// supervisor=gosv in foreground and in forking mode, and under
// supervisor=supervise-daemon in foreground mode for comparison, on every
// OpenRC version. One namespace per (version, daemon) runs the phases one
// after the other; each phase runs every check of realChecks.
//
// In a gosv phase every check asserts gosv's contract. In the
// supervise-daemon phase the same conditions are only recorded: that phase
// is the reference the docs compare gosv with (docs/real-daemons.md),
// written by GOSV_REAL_TABLE=FILE.

// envRealTable names the file the tier writes its result tables to.
const envRealTable = "GOSV_REAL_TABLE"

// Deadlines of the tier.
const (
	// realRestartTimeout bounds a restart after a SIGKILL: gosv throttles a
	// crash loop to one start per second, and the daemon must come up.
	realRestartTimeout = 15 * time.Second
	// settleTimeout bounds the exit of a second instance (a forking
	// launcher that has written its pidfile) once the first is up.
	settleTimeout = 5 * time.Second
	// svcTimeout bounds one rc-service command: gosv fails a start whose
	// daemon dies at once, but supervise-daemon 0.63 waits forever for the
	// readiness of a daemon that died.
	svcTimeout = 30 * time.Second
	// probeTimeout bounds one request to a daemon.
	probeTimeout = 2 * time.Second
)

// realDaemon is one daemon of the tier.
type realDaemon struct {
	name string // init script and conf.d name
	bin  string // the daemon's program
	comm string // its process name
	// config is the file the broken-configuration check appends broken to;
	// reason is what the failed start must show.
	config, broken, reason string
	// ready: the foreground mode has a readiness source (notify), so the
	// daemon serves as soon as start returns.
	ready bool
	// reloadLog is the log file where the daemon says reloadLine when it
	// gets SIGHUP; empty when the daemon has no reload.
	reloadLog, reloadLine string
	// upFile is a file the daemon itself creates (pidfile, socket) in
	// every mode once it runs: its directory's changes are the events that
	// wake a test waiting for a new instance to exec the daemon.
	upFile string
	// setup runs once in the namespace before the first start.
	setup string
	// probe makes one request to the daemon; nil: the daemon serves nothing.
	probe func(e *RC, port int) error
}

var realDaemons = []realDaemon{
	{
		name: "nginx", bin: "/usr/sbin/nginx", comm: "nginx",
		config: "/etc/nginx/nginx.conf", broken: "bogus_directive on;", reason: `unknown directive "bogus_directive"`,
		reloadLog: "/var/log/nginx/error.log", reloadLine: "signal 1 (SIGHUP) received",
		upFile: "/run/nginx/nginx.pid",
		probe:  func(e *RC, port int) error { return probeHTTP(port) },
	},
	{
		name: "redis", bin: "/usr/bin/redis-server", comm: "redis-server",
		config: "/etc/redis/redis.conf", broken: "bogus-directive yes", reason: "bogus-directive",
		ready: true, upFile: "/run/redis/redis.sock",
		probe: func(e *RC, _ int) error {
			return probeUnix(e, "/run/redis/redis.sock", []byte("PING\r\n"), []byte("+PONG"))
		},
	},
	{
		name: "memcached", bin: "/usr/bin/memcached", comm: "memcached",
		config: "/etc/conf.d/memcached", broken: `MEMCACHED_OPTS="--bogus-option"`, reason: "--bogus-option",
		upFile: "/run/memcached/memcached.sock",
		probe: func(e *RC, _ int) error {
			return probeUnix(e, "/run/memcached/memcached.sock", []byte("version\r\n"), []byte("VERSION "))
		},
	},
	{
		name: "dnsmasq", bin: "/usr/sbin/dnsmasq", comm: "dnsmasq",
		config: "/etc/dnsmasq.conf", broken: "bogus-option", reason: "bad option",
		reloadLog: "/var/log/dnsmasq-gosv.log", reloadLine: "read /etc/dnsmasq-gosv.hosts - 1 names",
		upFile: "/run/dnsmasq/dnsmasq.pid",
		probe:  func(e *RC, port int) error { return probeDNS(port, "gosv.test", [4]byte{127, 0, 0, 53}) },
	},
	{
		name: "cron", bin: "/usr/sbin/cron", comm: "cron",
		config: "/etc/conf.d/cron", broken: `CRON_OPTS="-Z"`, reason: "invalid option",
		upFile: "/run/crond.pid",
		// No job of the host's crontabs may run in the namespace: /home,
		// /root and /work are the host's.
		setup: "rm -f /etc/cron.d/* /var/spool/cron/crontabs/* && : >/etc/crontab",
	},
	{
		name: "mosquitto", bin: "/usr/sbin/mosquitto", comm: "mosquitto",
		config: "/etc/mosquitto/mosquitto.conf", broken: "bogus_option true", reason: "bogus_option",
		ready:     true,
		reloadLog: "/var/log/mosquitto/mosquitto.log", reloadLine: "Reloading config.",
		upFile: "/run/mosquitto/mosquitto.sock",
		probe: func(e *RC, _ int) error {
			// MQTT 3.1.1 CONNECT, clean session, empty client id; CONNACK 0.
			connect := []byte{0x10, 12, 0, 4, 'M', 'Q', 'T', 'T', 4, 0x02, 0, 60, 0, 0}
			return probeUnix(e, "/run/mosquitto/mosquitto.sock", connect, []byte{0x20, 0x02, 0x00, 0x00})
		},
	},
}

// realPhase is one way to run a daemon.
type realPhase struct {
	sup        string // "gosv" or "supervise-daemon"
	foreground bool
}

func (p realPhase) String() string {
	if p.sup != "gosv" {
		return p.sup
	}
	if p.foreground {
		return "gosv-foreground"
	}
	return "gosv-forking"
}

var realPhases = []realPhase{{"gosv", true}, {"gosv", false}, {"supervise-daemon", true}}

// realChecks are the checks of a phase, in the order they run.
var realChecks = []string{"broken-config", "start", "status", "reload", "kill-daemon", "restart", "kill-supervisor", "stop"}

// TestRealDaemons runs the tier; see the comment at the top of the file.
func TestRealDaemons(t *testing.T) {
	for _, v := range rcVersions {
		for _, d := range realDaemons {
			t.Run(v+"/"+d.name, func(t *testing.T) {
				requireTools(t, envRequireRC, d.bin)
				t0 := time.Now()
				r := newReal(t, newRCv(t, true, v), d, v)
				for _, p := range realPhases {
					t.Run(p.String(), func(t *testing.T) { r.runPhase(t, p) })
					r.reset(t)
				}
				realResults.duration(v, d.name, time.Since(t0))
				t.Logf("%s on OpenRC %s: %v", d.name, v, time.Since(t0).Round(time.Millisecond))
			})
		}
	}
	if p := os.Getenv(envRealTable); p != "" {
		if err := os.WriteFile(p, []byte(realResults.markdown()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// real is one namespace running one daemon.
type real struct {
	e       *RC
	d       realDaemon
	version string
	port    int
	// startWait: this gosv takes start_wait (issue 8 §2), which gives a
	// foreground daemon without readiness its fail-fast start.
	startWait bool
}

func newReal(t *testing.T, e *RC, d realDaemon, version string) *real {
	t.Helper()
	r := &real{e: e, d: d, version: version, port: freePort(t)}
	src := filepath.Join("testdata", "real")
	err := filepath.WalkDir(src, func(p string, de os.DirEntry, err error) error {
		if err != nil || de.IsDir() || filepath.Base(p) == "README.md" {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		if strings.HasPrefix(rel, "conf.d/") {
			return nil // per phase: configure
		}
		dst := filepath.Join("/etc", strings.TrimPrefix(rel, "etc/"))
		r.installFile(t, p, dst, nil)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.setup != "" {
		if res := e.Sh(t, d.setup); res.Code != 0 {
			t.Fatalf("setup: %s", res)
		}
	}
	hook := e.MustRun(t, "cat", rcHook).Stdout
	r.startWait = strings.Contains(hook, "start_wait")
	return r
}

// installFile installs the template src at dst inside the namespace, with
// the placeholders replaced.
func (r *real) installFile(t *testing.T, src, dst string, extra []string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	repl := append([]string{"@PORT@", strconv.Itoa(r.port)}, extra...)
	text := strings.NewReplacer(repl...).Replace(string(b))
	mode := os.FileMode(0o644)
	if strings.Contains(dst, "/init.d/") {
		mode = 0o755
	}
	staged := r.e.WriteFile(t, filepath.Join("stage", filepath.Base(dst)), text, mode)
	r.e.MustRun(t, "install", "-D", "-m", fmt.Sprintf("%o", mode), staged, dst)
}

// configure writes the daemon's conf.d for phase p and refreshes OpenRC's
// dependency tree (supervisor=gosv adds need gosv-svscan; OpenRC compares
// whole seconds, so a conf.d written in the same second may look current).
func (r *real) configure(t *testing.T, p realPhase) {
	t.Helper()
	fg := "no"
	if p.foreground {
		fg = "yes"
	}
	r.installFile(t, filepath.Join("testdata", "real", "conf.d", r.d.name), "/etc/conf.d/"+r.d.name,
		[]string{"@SUPERVISOR@", p.sup, "@FOREGROUND@", fg})
	r.e.MustRun(t, "rc-update", "-u")
}

// phaseRun is the state of one phase.
type phaseRun struct {
	*real
	p       realPhase
	main    Process // the daemon's instance after the last check
	ready   bool    // the daemon serves as soon as start returns (gosv's contract)
	started bool    // the start check found the daemon
}

func (r *real) runPhase(t *testing.T, p realPhase) {
	r.configure(t, p)
	if p.sup == "gosv" {
		// check tells which way gosv will supervise the script.
		c := r.e.Run(t, gosvInstallBin, "openrc", "check", r.d.name)
		if forking := strings.Contains(c.Stdout, "supervised as a forking daemon"); forking == p.foreground {
			t.Errorf("gosv openrc check, %s: %s", p, c)
		}
	}
	// gosv's contract: a daemon with readiness serves when start returns.
	// A forking daemon counts as ready once its pidfile names it, which
	// some write before they listen (mosquitto): recorded, not asserted.
	ph := &phaseRun{real: r, p: p, ready: p.sup == "gosv" && r.d.ready && p.foreground}
	t0 := time.Now()
	for _, c := range realChecks {
		ok := t.Run(c, func(t *testing.T) {
			x := &check{t: t, ph: ph, name: c}
			defer x.record()
			switch c {
			case "broken-config":
				ph.brokenConfig(x)
			case "start":
				ph.start(x)
			case "status":
				ph.status(x)
			case "reload":
				ph.reload(x)
			case "kill-daemon":
				ph.killDaemon(x)
			case "restart":
				ph.restart(x)
			case "kill-supervisor":
				ph.killSupervisor(x)
			case "stop":
				ph.stop(x)
			}
		})
		if c == "start" && (!ok || !ph.started) {
			for _, rest := range realChecks[slices.Index(realChecks, c)+1:] {
				realResults.set(r.version, r.d.name, p, rest, "not run: no start")
			}
			if p.sup == "gosv" {
				t.Fatalf("the daemon did not start: the other checks cannot run")
			}
			t.Logf("%s: the daemon did not start: the other checks cannot run", p)
			break
		}
	}
	t.Logf("%s: %v", p, time.Since(t0).Round(time.Millisecond))
}

// check is one check of a phase. Its conditions (expect) are assertions in
// a gosv phase, observations in the supervise-daemon phase; either way
// they end up in the result table.
type check struct {
	t     *testing.T
	ph    *phaseRun
	name  string
	notes []string
	info  []string
	skip  string
}

// expect records a failed condition of gosv's contract.
func (x *check) expect(cond bool, format string, args ...any) bool {
	x.t.Helper()
	if cond {
		return true
	}
	msg := fmt.Sprintf(format, args...)
	x.notes = append(x.notes, msg)
	if x.ph.p.sup == "gosv" {
		x.t.Error(msg)
	} else {
		x.t.Log("supervise-daemon: " + msg)
	}
	return false
}

// note records an observation that is no condition (timings, details).
func (x *check) note(format string, args ...any) {
	x.info = append(x.info, fmt.Sprintf(format, args...))
}

// stop ends a check that cannot go on: a failure in a gosv phase; in the
// supervise-daemon phase, where its conditions were recorded, a skip.
func (x *check) stop() {
	if x.ph.p.sup == "gosv" {
		x.t.FailNow()
	}
	x.t.SkipNow()
}

func (x *check) skipf(format string, args ...any) {
	x.skip = fmt.Sprintf(format, args...)
	x.t.Skip(x.skip)
}

func (x *check) record() {
	if x.t.Failed() && x.ph.p.sup == "gosv" {
		// What gosv said: the scanner's and the daemons' catch-all log.
		r := x.ph.e.Run(x.t, "tail", "-n", "30", "/var/log/gosv/current")
		x.t.Logf("last lines of /var/log/gosv/current:\n%s", r.Stdout)
		x.t.Logf("processes:\n%s", x.ph.e.psTree())
	}
	var cell string
	switch {
	case x.skip != "":
		cell = "skip: " + x.skip
	case x.t.Failed() && len(x.notes) == 0:
		cell = "**fail** (see the test log)"
	case len(x.notes) > 0:
		cell = "✗ " + strings.Join(x.notes, "; ")
	default:
		cell = "✓"
	}
	if len(x.info) > 0 {
		cell += " (" + strings.Join(x.info, ", ") + ")"
	}
	realResults.set(x.ph.version, x.ph.d.name, x.ph.p, x.name, cell)
}

// svc runs rc-service for the daemon, killed after svcTimeout: then Code
// is -1.
func (r *real) svc(t *testing.T, args ...string) Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), svcTimeout)
	defer cancel()
	cmd := r.e.command(ctx, append([]string{"rc-service", r.d.name}, args...)...)
	// NOTE: the service's openrc-run dies, not nsenter: nsenter then reaps
	// it and exits. Killing nsenter would leave its child a zombie of a
	// parent outside the namespace. What openrc-run started goes in reset.
	cmd.Cancel = func() error {
		for _, p := range r.e.procs("/etc/init.d/" + r.d.name + " ") {
			unix.Kill(p.HostPid, unix.SIGKILL)
		}
		return nil
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = cmdWaitDelay
	err := cmd.Run()
	res := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		res.Code = -1
		res.Stderr += fmt.Sprintf("\nrc-service %s: no answer within %v", strings.Join(args, " "), svcTimeout)
	case errors.As(err, &ee):
		res.Code = exitCode(ee.ProcessState)
	case err != nil:
		t.Fatalf("rc-service %q: %v", args, err)
	}
	return res
}

// brokenConfig: with a broken configuration the start fails, with the
// daemon's reason, and leaves nothing running.
func (ph *phaseRun) brokenConfig(x *check) {
	t, d := x.t, ph.d
	if ph.p.sup == "gosv" && ph.p.foreground && !d.ready && !ph.startWait {
		x.skipf("needs start_wait (issue 8 §2): %s has no readiness", d.name)
	}
	orig := ph.e.MustRun(t, "cat", d.config).Stdout
	ph.e.WriteFile(t, "stage/broken", orig+"\n"+d.broken+"\n", 0o644)
	ph.e.MustRun(t, "cp", filepath.Join(ph.e.Dir, "stage/broken"), d.config)
	defer func() {
		ph.e.WriteFile(t, "stage/orig", orig, 0o644)
		ph.e.MustRun(t, "cp", filepath.Join(ph.e.Dir, "stage/orig"), d.config)
	}()
	t0 := time.Now()
	res := ph.svc(t, "start")
	x.note("%v", time.Since(t0).Round(10*time.Millisecond))
	out := res.Stdout + res.Stderr
	switch res.Code {
	case -1:
		x.expect(false, "start does not return within %v", svcTimeout)
	case 0:
		x.expect(false, "start says ok (%s)", lastLine(out))
	}
	if !x.expect(strings.Contains(out, d.reason), "the reason (%q) is not shown", d.reason) {
		t.Logf("start: %s", res)
	}
	// A failed start leaves nothing behind, supervisor included.
	waitAllExit(t, ph.all(), eventTimeout)
	x.expect(len(ph.all()) == 0, "left running: %s", procList(ph.all()))
	st := ph.svc(t, "status")
	x.expect(st.Code == 3, "status after: %d (%s)", st.Code, lastLine(st.Stdout+st.Stderr))
	ph.real.reset(t)
}

// start: start blocks until the daemon is up (ready when it has a
// readiness source, or forks), and there is exactly one instance.
func (ph *phaseRun) start(x *check) {
	t, d := x.t, ph.d
	t0 := time.Now()
	res := ph.svc(t, "start")
	x.note("%v", time.Since(t0).Round(10*time.Millisecond))
	if res.Code != 0 {
		if ph.p.sup == "gosv" {
			t.Fatalf("start: %s", res)
		}
		x.expect(false, "start fails: %s", lastLine(res.Stdout+res.Stderr))
		return
	}
	wantLine(t, res, "* Starting "+ph.startName()+" ... [ ok ]")
	// Right after start returned: a ready daemon must serve now.
	var probeErr error
	if d.probe != nil {
		probeErr = d.probe(ph.e, ph.port)
	}
	main, ok := ph.waitInstance(x, 0, eventTimeout)
	if !ok {
		x.expect(false, "no instance of %s supervised after start: %s", d.comm, procList(ph.all()))
		x.stop()
	}
	ph.main, ph.started = main, true
	if ph.ready && d.probe != nil {
		x.expect(probeErr == nil, "not serving when start returned: %v", probeErr)
	} else if d.probe != nil {
		if probeErr == nil {
			x.note("serving at once")
		} else {
			x.note("not yet serving")
		}
	}
	if ph.p.sup == "gosv" && ph.ready {
		st := ph.e.status(t, d.name)
		x.expect(st.Flags&flagReady != 0, "not ready in supervise/status when start returned: %v", st)
	}
}

// startName is the name OpenRC prints: the script's name= or the service.
func (ph *phaseRun) startName() string {
	switch ph.d.name {
	case "redis":
		return "Redis server"
	case "mosquitto":
		return "Mosquitto MQTT broker"
	}
	return ph.d.name
}

// status: rc-service status says started (and, for gosv, the pid).
func (ph *phaseRun) status(x *check) {
	t := x.t
	res := ph.svc(t, "status")
	out := res.Stdout + res.Stderr
	x.expect(res.Code == 0 && strings.Contains(out, "status: started"), "status: exit %d, %q", res.Code, lastLine(out))
	if ph.p.sup == "gosv" {
		x.expect(strings.Contains(out, fmt.Sprintf("up (pid %d)", ph.main.NsPid)), "status does not name pid %d: %q", ph.main.NsPid, out)
	}
	if got := ph.e.rcStatus(t, ph.d.name); !x.expect(strings.HasPrefix(got, "[ started"), "rc-status: %q", got) {
		return
	}
}

// reload: rc-service reload reaches the daemon (it logs it), which keeps
// its pid.
func (ph *phaseRun) reload(x *check) {
	t, d := x.t, ph.d
	if d.reloadLog == "" {
		x.skipf("%s has no reload", d.name)
	}
	log := ph.e.host(d.reloadLog)
	before := fileSize(log)
	res := ph.svc(t, "reload")
	if !x.expect(res.Code == 0, "reload: exit %d, %q", res.Code, lastLine(res.Stdout+res.Stderr)) {
		return
	}
	seen := waitDir(t, filepath.Dir(log), eventTimeout, func() bool {
		return bytes.Contains(readFrom(log, before), []byte(d.reloadLine))
	})
	x.expect(seen, "the daemon did not log %q", d.reloadLine)
	main := ph.one(x)
	x.expect(main.NsPid == ph.main.NsPid, "pid changed: %d, was %d", main.NsPid, ph.main.NsPid)
}

// killDaemon: after a SIGKILL of the daemon, the supervisor starts a new
// one: a new pid, one instance, serving.
func (ph *phaseRun) killDaemon(x *check) {
	t := x.t
	old := ph.main
	ph.e.MustRun(t, "kill", "-KILL", strconv.Itoa(old.NsPid))
	waitExit(t, old.HostPid, eventTimeout)
	t0 := time.Now()
	main, ok := ph.waitInstance(x, old.NsPid, realRestartTimeout)
	if !x.expect(ok, "not restarted within %v: %s", realRestartTimeout, procList(ph.all())) {
		return
	}
	x.note("back in %v", time.Since(t0).Round(10*time.Millisecond))
	ph.main = main
	x.expect(ph.main.NsPid != old.NsPid, "same pid %d", old.NsPid)
	ph.serving(x)
}

// restart: rc-service restart gives a new instance, the old one gone.
func (ph *phaseRun) restart(x *check) {
	t := x.t
	old := ph.main
	t0 := time.Now()
	res := ph.svc(t, "restart")
	x.note("%v", time.Since(t0).Round(10*time.Millisecond))
	if !x.expect(res.Code == 0, "restart: exit %d, %q", res.Code, lastLine(res.Stdout+res.Stderr)) {
		t.Logf("restart: %s", res)
		return
	}
	x.expect(waitExit(t, old.HostPid, eventTimeout), "old pid %d still running", old.NsPid)
	main, ok := ph.waitInstance(x, old.NsPid, eventTimeout)
	if !x.expect(ok, "no new instance: %s", procList(ph.all())) {
		return
	}
	ph.main = main
	ph.serving(x)
}

// killSupervisor: SIGKILL of the supervisor (gosv: the scanner, which
// supervise-daemon restarts; supervise-daemon: the service's own
// supervise-daemon) leaves exactly one instance, the same one.
func (ph *phaseRun) killSupervisor(x *check) {
	t := x.t
	var sup []Process
	if ph.p.sup == "gosv" {
		sup = ph.e.procs("gosv svscan")
	} else {
		sup = ph.e.procs("supervise-daemon " + ph.d.name + " ")
	}
	if len(sup) != 1 {
		x.expect(false, "supervisors: %s", procList(sup))
		x.stop()
	}
	var l *Listener
	if ph.p.sup == "gosv" {
		l = ph.e.listen(t, rcServices+"/"+ph.d.name)
	}
	ph.e.MustRun(t, "kill", "-KILL", strconv.Itoa(sup[0].NsPid))
	waitExit(t, sup[0].HostPid, eventTimeout)
	if l != nil {
		// 's': a new scanner took the directory.
		_, err := l.tryWait("s", realRestartTimeout)
		x.expect(err == nil, "no new scanner took the service: %v", err)
	}
	ph.settle(t)
	main := ph.one(x)
	x.expect(main.NsPid == ph.main.NsPid, "a new instance %d replaced %d", main.NsPid, ph.main.NsPid)
	res := ph.svc(t, "status")
	x.expect(res.Code == 0, "status: exit %d, %q", res.Code, lastLine(res.Stdout+res.Stderr))
}

// stop: rc-service stop leaves no process of the daemon.
func (ph *phaseRun) stop(x *check) {
	t := x.t
	procs := ph.all()
	t0 := time.Now()
	res := ph.svc(t, "stop")
	x.note("%v", time.Since(t0).Round(10*time.Millisecond))
	if !x.expect(res.Code == 0, "stop: exit %d, %q", res.Code, lastLine(res.Stdout+res.Stderr)) {
		t.Logf("stop: %s", res)
	}
	waitAllExit(t, procs, eventTimeout)
	x.expect(len(ph.all()) == 0, "left running: %s", procList(ph.all()))
	st := ph.svc(t, "status")
	x.expect(st.Code == 3, "status after stop: exit %d", st.Code)
}

// serving checks that a daemon with a readiness source serves.
func (ph *phaseRun) serving(x *check) {
	if ph.ready && ph.d.probe != nil {
		err := ph.d.probe(ph.e, ph.port)
		x.expect(err == nil, "not serving: %v", err)
	}
}

// reset leaves the namespace without the daemon or its supervisor for the
// next phase: stop, zap, and SIGKILL (by pid) of what is left, which is a
// failure of a gosv phase only if its own checks did not already fail.
func (r *real) reset(t *testing.T) {
	// An rc-service that did not answer first (see svc).
	hung := r.e.procs("/etc/init.d/" + r.d.name + " ")
	for _, p := range hung {
		r.e.Run(t, "kill", "-KILL", strconv.Itoa(p.NsPid))
	}
	waitAllExit(t, hung, eventTimeout)
	r.svc(t, "stop")
	r.svc(t, "zap")
	left := append(r.daemonProcs(), r.e.procs("supervise-daemon "+r.d.name+" ")...)
	for _, p := range left {
		r.e.Run(t, "kill", "-KILL", strconv.Itoa(p.NsPid))
		waitExit(t, p.HostPid, eventTimeout)
	}
	if len(left) > 0 {
		t.Logf("reset: killed %s", procList(left))
	}
	// NOTE: supervise-daemon 0.63 removes its notify socket only when the
	// daemon said READY=1; after the SIGKILL of one that never got it, the
	// next start fails with "bind: Address already in use".
	r.e.Run(t, "rm", "-f", rcSvcDir+"/supervise-"+r.d.name+".sock")
}

// daemonProcs lists every live process of the daemon (workers included).
func (r *real) daemonProcs() []Process {
	var out []Process
	for _, p := range r.e.Procs() {
		if p.Comm == r.d.comm && p.State != 'Z' {
			out = append(out, p)
		}
	}
	return out
}

func (ph *phaseRun) all() []Process { return ph.daemonProcs() }

// instances lists the daemon's instances: its processes whose parent is
// not one of them (workers are not instances).
func (ph *phaseRun) instances() []Process {
	all := ph.all()
	pids := map[int]bool{}
	for _, p := range all {
		pids[p.NsPid] = true
	}
	var out []Process
	for _, p := range all {
		if !pids[p.NsPPid] {
			out = append(out, p)
		}
	}
	return out
}

// one returns the single instance, or records that there is not one.
func (ph *phaseRun) one(x *check) Process {
	x.t.Helper()
	in := ph.instances()
	if len(in) != 1 {
		x.expect(false, "%d instances: %s", len(in), procList(in))
		if len(in) == 0 {
			x.stop()
		}
	}
	return in[0]
}

// settle waits for instances other than the supervised one to exit (a
// forking launcher, a stopped instance): their exit is the event.
func (ph *phaseRun) settle(t *testing.T) {
	sp, _ := ph.supervisedPid(t)
	var others []Process
	for _, p := range ph.instances() {
		if p.NsPid != sp {
			others = append(others, p)
		}
	}
	t0 := time.Now()
	if !waitAllExit(t, others, settleTimeout) {
		t.Logf("settle: still there %v after the supervised pid %d was up: %s", time.Since(t0).Round(time.Millisecond), sp, procDetails(others))
	}
}

// procDetails says, for each process of ps, where it waits (state, wchan,
// kernel stack, fds): what an instance that outlives settleTimeout waits for.
func procDetails(ps []Process) string {
	var s []string
	for _, p := range ps {
		dir := "/proc/" + strconv.Itoa(p.HostPid)
		stat, _ := os.ReadFile(dir + "/stat")
		wchan, _ := os.ReadFile(dir + "/wchan")
		stack, _ := os.ReadFile(dir + "/stack")
		var fds []string
		ents, _ := os.ReadDir(dir + "/fd")
		for _, e := range ents {
			l, _ := os.Readlink(dir + "/fd/" + e.Name())
			fds = append(fds, e.Name()+"->"+l)
		}
		s = append(s, fmt.Sprintf("%d (ppid %d) %q: stat %q wchan %q fds %v stack:\n%s", p.NsPid, p.NsPPid, p.Cmdline, strings.TrimSpace(string(stat)), wchan, fds, stack))
	}
	return strings.Join(s, "\n")
}

// waitInstance waits until the supervisor supervises an instance of the
// daemon other than old (0: any) that has exec'd the daemon and is up
// (and ready when the phase promises readiness), then for the other
// instances to go, and returns it, checking that it is the only one. The
// wake-ups are the changes of the supervisor's record (supervise/,
// options/) and of the directory of the daemon's upFile: no event says
// that a process exec'd, but the daemon writes its upFile after it did.
func (ph *phaseRun) waitInstance(x *check, old int, d time.Duration) (Process, bool) {
	t := x.t
	t.Helper()
	up := func() bool {
		pid, ok := ph.supervisedPid(t)
		if !ok || pid == old || !ph.isInstance(pid) {
			return false
		}
		if ph.p.sup == "gosv" {
			// NOTE: in forking mode the status says up with the
			// launcher's pid, not ready, until the daemon is named
			// (then its pid, and ready: internal/servicedir/PROTOCOL.md, pidfile); the
			// launcher is no instance to keep (taking it for one left
			// the daemon to settle, which never exits).
			st := ph.e.status(t, ph.d.name)
			return st.Up() && (!ph.ready && ph.p.foreground || st.Flags&flagReady != 0)
		}
		return true
	}
	if !waitDirs(t, []string{ph.watchDir(), filepath.Dir(ph.e.host(ph.d.upFile))}, d, up) {
		return Process{}, false
	}
	ph.settle(t)
	main := ph.one(x)
	sp, _ := ph.supervisedPid(t)
	x.expect(main.NsPid == sp, "the supervisor's pid %d is not the daemon's %d", sp, main.NsPid)
	return main, true
}

// isInstance reports whether nsPid is an instance of the daemon.
func (ph *phaseRun) isInstance(nsPid int) bool {
	for _, p := range ph.instances() {
		if p.NsPid == nsPid {
			return true
		}
	}
	return false
}

// waitAllExit waits for every process of ps to exit, within d in all, and
// reports whether they did.
func waitAllExit(t testing.TB, ps []Process, d time.Duration) bool {
	deadline := time.Now().Add(d)
	all := true
	for _, p := range ps {
		all = waitExit(t, p.HostPid, max(0, time.Until(deadline))) && all
	}
	return all
}

// supervisedPid is the pid the supervisor supervises: gosv's
// supervise/status, supervise-daemon's child_pid.
func (ph *phaseRun) supervisedPid(t *testing.T) (int, bool) {
	if ph.p.sup == "gosv" {
		b, err := os.ReadFile(ph.e.host(filepath.Join(rcServices, ph.d.name, "supervise", "status")))
		if err != nil || len(b) != 35 {
			return 0, false
		}
		pid := int(uint64(b[24])<<56 | uint64(b[25])<<48 | uint64(b[26])<<40 | uint64(b[27])<<32 |
			uint64(b[28])<<24 | uint64(b[29])<<16 | uint64(b[30])<<8 | uint64(b[31]))
		return pid, pid != 0
	}
	b, err := os.ReadFile(ph.e.host(filepath.Join(rcSvcDir, "options", ph.d.name, "child_pid")))
	if err != nil {
		return 0, false
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid, err == nil
}

// watchDir is where the supervisor's record of the pid changes.
func (ph *phaseRun) watchDir() string {
	if ph.p.sup == "gosv" {
		return ph.e.host(filepath.Join(rcServices, ph.d.name, "supervise"))
	}
	return ph.e.host(filepath.Join(rcSvcDir, "options", ph.d.name))
}

// tryWait is Listener.WaitTimeout that returns the error instead of
// failing the test.
func (l *Listener) tryWait(want string, d time.Duration) (byte, error) {
	if err := l.r.SetReadDeadline(time.Now().Add(d)); err != nil {
		return 0, err
	}
	buf := make([]byte, 64)
	for {
		n, err := l.r.Read(buf)
		if err != nil {
			return 0, fmt.Errorf("waiting for one of %q (seen %q): %w", want, l.seen, err)
		}
		for _, b := range buf[:n] {
			l.seen = append(l.seen, b)
			if strings.IndexByte(want, b) >= 0 {
				return b, nil
			}
		}
	}
}

// waitDir waits until cond holds, checking it again after every change in
// dir (inotify: creation, write, rename, removal), for at most d. It
// reports whether cond held.
func waitDir(t testing.TB, dir string, d time.Duration, cond func() bool) bool {
	t.Helper()
	return waitDirs(t, []string{dir}, d, cond)
}

// waitDirs is waitDir on several directories; those that do not exist
// (yet) are not watched.
func waitDirs(t testing.TB, dirs []string, d time.Duration, cond func() bool) bool {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	// The watch goes first: a change between cond and the read wakes it.
	mask := uint32(unix.IN_CREATE | unix.IN_MODIFY | unix.IN_CLOSE_WRITE | unix.IN_MOVED_TO | unix.IN_DELETE)
	watched := 0
	for _, dir := range dirs {
		if _, err := unix.InotifyAddWatch(fd, dir, mask); err == nil {
			watched++
		} else if !errors.Is(err, unix.ENOENT) {
			t.Fatalf("inotify %s: %v", dir, err)
		}
	}
	if watched == 0 {
		t.Fatalf("inotify: none of %q exists", dirs)
	}
	if err := f.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for !cond() {
		if _, err := f.Read(buf); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				return cond()
			}
			t.Fatalf("inotify %q: %v", dirs, err)
		}
	}
	return true
}

func fileSize(p string) int64 {
	fi, err := os.Stat(p)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// readFrom returns the contents of p from offset off.
func readFrom(p string, off int64) []byte {
	f, err := os.Open(p)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, _ := io.ReadAll(io.NewSectionReader(f, off, 1<<30))
	return b
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return strings.TrimSpace(lines[len(lines)-1])
}

func procList(ps []Process) string {
	if len(ps) == 0 {
		return "none"
	}
	var s []string
	for _, p := range ps {
		s = append(s, fmt.Sprintf("%d (ppid %d) %q", p.NsPid, p.NsPPid, p.Cmdline))
	}
	return strings.Join(s, ", ")
}

// freePort returns a loopback port free for TCP and UDP (dnsmasq takes
// both) at the time of the call.
func freePort(t *testing.T) int {
	t.Helper()
	for i := 0; i < 20; i++ {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp4", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
	t.Fatal("no free loopback port for TCP and UDP")
	return 0
}

// Probes: one request each, with probeTimeout.

func probeHTTP(port int) error {
	c := http.Client{Timeout: probeTimeout}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return fmt.Errorf("HTTP %s", resp.Status)
	}
	return nil
}

// probeUnix sends req on the unix socket at path (inside the namespace)
// and wants a reply that starts with want.
func probeUnix(e *RC, path string, req, want []byte) error {
	c, err := net.DialTimeout("unix", e.host(path), probeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write(req); err != nil {
		return err
	}
	got := make([]byte, 0, 64)
	buf := make([]byte, 64)
	for len(got) < len(want) {
		n, err := c.Read(buf)
		got = append(got, buf[:n]...)
		if err != nil {
			return fmt.Errorf("reply %q: %w", got, err)
		}
	}
	if !bytes.HasPrefix(got, want) {
		return fmt.Errorf("reply %q, want %q", got, want)
	}
	return nil
}

// probeDNS asks 127.0.0.1:port for name's A record and wants addr.
func probeDNS(port int, name string, addr [4]byte) error {
	q := []byte{0x67, 0x73, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0}
	for _, l := range strings.Split(name, ".") {
		q = append(append(q, byte(len(l))), l...)
	}
	q = append(q, 0, 0, 1, 0, 1)
	c, err := net.DialTimeout("udp4", fmt.Sprintf("127.0.0.1:%d", port), probeTimeout)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(probeTimeout))
	if _, err := c.Write(q); err != nil {
		return err
	}
	buf := make([]byte, 512)
	n, err := c.Read(buf)
	if err != nil {
		return err
	}
	resp := buf[:n]
	if n < 12 || resp[0] != 0x67 || resp[1] != 0x73 || resp[3]&0x0f != 0 || resp[6]|resp[7] == 0 {
		return fmt.Errorf("DNS reply %x", resp)
	}
	if !bytes.HasSuffix(resp, addr[:]) {
		return fmt.Errorf("DNS reply %x lacks %v", resp, addr)
	}
	return nil
}

// realResults collects the cells of the result tables.
var realResults = &resultTable{cells: map[string]string{}, took: map[string]time.Duration{}}

type resultTable struct {
	mu    sync.Mutex
	cells map[string]string // version/daemon/phase/check
	took  map[string]time.Duration
}

func (r *resultTable) set(version, daemon string, p realPhase, check, cell string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cells[version+"/"+daemon+"/"+p.String()+"/"+check] = cell
}

func (r *resultTable) duration(version, daemon string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.took[version+"/"+daemon] = d
}

// markdown formats one table per phase: a row per daemon and version, a
// column per check.
func (r *resultTable) markdown() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var b strings.Builder
	for _, p := range realPhases {
		fmt.Fprintf(&b, "### %s\n\n| daemon | OpenRC | %s |\n|---|---|%s\n", p, strings.Join(realChecks, " | "), strings.Repeat("---|", len(realChecks)))
		for _, d := range realDaemons {
			for _, v := range rcVersions {
				fmt.Fprintf(&b, "| %s | %s |", d.name, v)
				for _, c := range realChecks {
					cell, ok := r.cells[v+"/"+d.name+"/"+p.String()+"/"+c]
					if !ok {
						cell = "not run"
					}
					fmt.Fprintf(&b, " %s |", strings.ReplaceAll(cell, "|", `\|`))
				}
				b.WriteString("\n")
			}
		}
		b.WriteString("\n")
	}
	var keys []string
	for k := range r.took {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	b.WriteString("Duration per namespace (all three phases):\n\n")
	var total time.Duration
	for _, k := range keys {
		fmt.Fprintf(&b, "- %s: %v\n", k, r.took[k].Round(100*time.Millisecond))
		total += r.took[k]
	}
	fmt.Fprintf(&b, "- total: %v\n", total.Round(100*time.Millisecond))
	return b.String()
}
