//go:build integration

package tests

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// clients is a set of client programs that speak the s6 protocol: the real
// s6 tools, or gosv's subcommands. In the gosv set, a tool gosv does not
// have yet falls back to s6's, so that a test of gosv svstat can still use
// s6-svwait to reach the state it checks.
type clients struct {
	name string
	gosv bool
}

// cmd returns the argv prefix of a client tool ("svc", "svstat", ...).
func (c clients) cmd(tool string) []string {
	if c.gosv && gosvHas(tool) {
		return []string{gosvInstallBin, tool}
	}
	return []string{"s6-" + tool}
}

// need fails t, in the gosv set, unless gosv has every tool under test:
// gosv is what is under test, so a missing command (a broken dispatch, a
// command dropped by mistake) is a failure, not a skip.
func (c clients) need(t testing.TB, tools ...string) {
	t.Helper()
	if !c.gosv {
		return
	}
	requireGosv(t)
	for _, tool := range tools {
		if !gosvHas(tool) {
			t.Fatalf("bin/gosv has no %s command", tool)
		}
	}
}

// gosvSubcommands caches gosvHas: bin/gosv does not change during a run.
var gosvSubcommands sync.Map // tool → bool

// gosvHas reports whether bin/gosv has the subcommand tool.
func gosvHas(tool string) bool {
	if suite.gosvErr != "" {
		return false
	}
	if v, ok := gosvSubcommands.Load(tool); ok {
		return v.(bool)
	}
	has := hasSubcommand(filepath.Join(suite.repoRoot, "bin", "gosv"), tool)
	gosvSubcommands.Store(tool, has)
	return has
}

// run runs a client tool with args inside e's namespace.
func (c clients) run(t testing.TB, e *Env, tool string, args ...string) Result {
	t.Helper()
	return e.Run(t, append(c.cmd(tool), args...)...)
}

// must is run that fails t unless the tool exits 0.
func (c clients) must(t testing.TB, e *Env, tool string, args ...string) Result {
	t.Helper()
	r := c.run(t, e, tool, args...)
	if r.Code != 0 {
		t.Fatalf("%s %q: %s", tool, args, r)
	}
	return r
}

// code runs a client tool and checks its exit code.
func (c clients) code(t testing.TB, e *Env, want int, tool string, args ...string) {
	t.Helper()
	if r := c.run(t, e, tool, args...); r.Code != want {
		t.Errorf("%s %q: %s, want exit %d", tool, args, r, want)
	}
}

// svstatFields is the -o list the suite compares in every state.
const svstatFields = "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum"

// wantSvstat checks the default line and the -o fields of svstat on dir
// against regexps (without the trailing newline) and returns the pid
// captured by the first group of line, or 0.
func (c clients) wantSvstat(t testing.TB, e *Env, dir, line, fields string) int {
	t.Helper()
	r := c.must(t, e, "svstat", dir)
	m := regexp.MustCompile("^" + line + "\n$").FindStringSubmatch(r.Stdout)
	if m == nil {
		t.Errorf("svstat %s = %q, want /%s/ (status %v)", filepath.Base(dir), r.Stdout, line, ReadStatus(t, dir))
	}
	if r := c.must(t, e, "svstat", "-o", svstatFields, dir); !regexp.MustCompile("^" + fields + "\n$").MatchString(r.Stdout) {
		t.Errorf("svstat -o %s %s = %q, want /%s/", svstatFields, filepath.Base(dir), r.Stdout, fields)
	}
	if m != nil && len(m) > 1 {
		pid, _ := strconv.Atoi(m[1])
		return pid
	}
	return 0
}

// clientSets are the client sets the compatibility suite runs with: the
// real s6 tools always; gosv's own when gosv is the scanner under test.
func clientSets() []clients {
	cs := []clients{{name: "s6-clients"}}
	if suite.scanner == scannerGosv {
		cs = append(cs, clients{name: "gosv-clients", gosv: true})
	}
	return cs
}

// TestS6Compat drives the scanner under test (GOSV_TEST_SCANNER) with
// s6's client tools, and with gosv's when the scanner is gosv. Every
// subtest gets a fresh namespace and scanner.
func TestS6Compat(t *testing.T) {
	for _, c := range clientSets() {
		t.Run(c.name, func(t *testing.T) {
			t.Run("svok", func(t *testing.T) { testSvok(t, c) })
			t.Run("svstat", func(t *testing.T) { testSvstat(t, c) })
			t.Run("svc", func(t *testing.T) { testSvc(t, c) })
			t.Run("svc-wait", func(t *testing.T) { testSvcWait(t, c) })
			t.Run("svwait", func(t *testing.T) { testSvwait(t, c) })
			t.Run("svscanctl", func(t *testing.T) { testSvscanctl(t, c) })
		})
	}
	t.Run("svlink-svunlink", testSvlink)
}

func testSvok(t *testing.T, c clients) {
	c.need(t, "svok")
	e := newEnv(t)
	up := e.AddService(t, "pause", "up", nil)
	stale := e.AddService(t, "pause", "stale", nil)
	// s6-svunlink returns after the supervisor's x event: stale keeps its
	// supervise/ directory, but nothing holds the lock any more.
	e.MustRun(t, "s6-svunlink", "-t", waitMs, e.Scan, "stale")
	if _, err := os.Stat(filepath.Join(stale, "supervise", "status")); err != nil {
		t.Fatalf("stale service lost its supervise/: %v", err)
	}
	c.code(t, e, 0, "svok", up)
	c.code(t, e, 1, "svok", stale)
	c.code(t, e, 1, "svok", filepath.Join(e.Dir, "sv", "missing"))
}

func testSvstat(t *testing.T, c clients) {
	c.need(t, "svstat")
	e := newEnv(t)
	const pidRe = `\(pid ([0-9]+)\) [0-9]+ seconds`

	t.Run("up-not-ready", func(t *testing.T) {
		dir := e.AddService(t, "notify", "notready", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		pid := c.wantSvstat(t, e, dir, "up "+pidRe, `true true true false false [0-9]+ -1 NA -1`)
		if p, ok := e.proc(pid); !ok || !strings.Contains(p.Cmdline, "svhelper") {
			t.Errorf("svstat pid %d is not the service's run:\n%s", pid, e.psTree())
		}
	})
	t.Run("up-ready", func(t *testing.T) {
		dir := e.AddService(t, "notify", "ready", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		makeReady(t, dir)
		c.must(t, e, "svwait", "-U", "-t", waitMs, dir)
		c.wantSvstat(t, e, dir, "up "+pidRe+", ready [0-9]+ seconds", `true true true true false [0-9]+ -1 NA -1`)
	})
	t.Run("down-with-finish", func(t *testing.T) {
		dir := e.AddService(t, "finish", "fin", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		c.must(t, e, "svc", "-wD", "-T", waitMs, "-d", dir)
		c.wantSvstat(t, e, dir, `down \(signal SIGTERM\) [0-9]+ seconds, normally up, ready [0-9]+ seconds`,
			`false false true false false -1 -1 SIGTERM 15`)
		if got := strings.TrimSpace(readFile(filepath.Join(dir, "finish.args"))); got != "256 15 fin" {
			t.Errorf("finish arguments %q, want %q", got, "256 15 fin")
		}
	})
	t.Run("exitcode-want-up", func(t *testing.T) {
		dir := e.Service(t, "exit3", "exit3", nil)
		l := Listen(t, dir)
		e.Link(t, dir, "exit3")
		// After D the supervisor waits 1 s before the next start (the
		// service never became ready): svstat runs inside that window. On
		// a machine slow enough to miss it, try the next cycle.
		for attempt := 0; ; attempt++ {
			l.Wait(t, "D")
			if st := ReadStatus(t, dir); !st.Up() || attempt == 3 {
				break
			}
		}
		c.wantSvstat(t, e, dir, `down \(exitcode 3\) [0-9]+ seconds, normally up, want up, ready [0-9]+ seconds`,
			`false true true false false -1 3 NA -1`)
	})
	t.Run("normally-down", func(t *testing.T) {
		dir := e.AddService(t, "pause", "normdown", map[string]string{"down": ""})
		c.wantSvstat(t, e, dir, `down \(exitcode 0\) [0-9]+ seconds, ready [0-9]+ seconds`,
			`false false false false false -1 0 NA -1`)
		c.must(t, e, "svc", "-u", dir)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		c.wantSvstat(t, e, dir, "up "+pidRe+", normally down", `true true false false false [0-9]+ -1 NA -1`)
	})
	t.Run("want-down", func(t *testing.T) {
		dir := e.AddService(t, "pause", "wantdown", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		w := WatchStatus(t, dir)
		c.must(t, e, "svc", "-O", dir)
		w.Wait(t)
		c.wantSvstat(t, e, dir, "up "+pidRe+", want down", `true false true false false [0-9]+ -1 NA -1`)
	})
	t.Run("paused", func(t *testing.T) {
		dir := e.AddService(t, "pause", "paused", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		w := WatchStatus(t, dir)
		c.must(t, e, "svc", "-p", dir)
		w.Wait(t)
		c.wantSvstat(t, e, dir, "up "+pidRe+", paused", `true true true false true [0-9]+ -1 NA -1`)
		c.must(t, e, "svc", "-c", dir)
		w.Wait(t)
		c.wantSvstat(t, e, dir, "up "+pidRe, `true true true false false [0-9]+ -1 NA -1`)
	})
}

func testSvc(t *testing.T, c clients) {
	c.need(t, "svc")
	e := newEnv(t)
	dir := e.AddService(t, "pause", "svc", nil)
	c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
	first := ReadStatus(t, dir)

	t.Run("d", func(t *testing.T) {
		host := e.hostPid(t, int(first.Pid))
		c.must(t, e, "svc", "-d", dir)
		c.must(t, e, "svwait", "-D", "-t", waitMs, dir)
		if st := ReadStatus(t, dir); st.Pid != 0 || st.Flags != flagReady || st.Wstat != 15 {
			t.Errorf("after -d: %v, want pid=0 wstat=0x000f flags=0x08", st)
		}
		if !waitExit(t, host, 0) {
			t.Errorf("run (pid %d) still alive after D", first.Pid)
		}
	})
	t.Run("u", func(t *testing.T) {
		c.must(t, e, "svc", "-u", dir)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		// NOTE: not svPids: a pause service records its pid after u is
		// announced, so the record may not be written yet.
		st := ReadStatus(t, dir)
		if !st.Up() || st.Pid == first.Pid || st.Flags != flagWantUp {
			t.Errorf("after -u: %v, want a new pid (first was %d) and flags 0x04", st, first.Pid)
		}
	})
	t.Run("o", func(t *testing.T) {
		c.must(t, e, "svc", "-wD", "-T", waitMs, "-d", dir)
		c.must(t, e, "svc", "-o", dir)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		c.wantSvstat(t, e, dir, `up \(pid [0-9]+\) [0-9]+ seconds, want down`, `true false true false false [0-9]+ -1 NA -1`)
		// Once: after it dies it stays down (want up is clear).
		c.must(t, e, "svc", "-k", dir)
		c.must(t, e, "svwait", "-D", "-t", waitMs, dir)
		c.wantSvstat(t, e, dir, `down \(signal SIGKILL\) [0-9]+ seconds, normally up, ready [0-9]+ seconds`,
			`false false true false false -1 -1 SIGKILL 9`)
	})
	t.Run("x", func(t *testing.T) {
		x := e.AddService(t, "pause", "x", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, x)
		l := Listen(t, x)
		// -x alone leaves the service running; with -d the supervisor
		// exits once the service is down.
		c.must(t, e, "svc", "-x", "-d", x)
		l.Wait(t, "x")
		if seen := l.Seen(); !strings.HasSuffix(seen, "Dx") {
			t.Errorf("events %q, want ...Dx", seen)
		}
	})
}

func testSvcWait(t *testing.T, c clients) {
	c.need(t, "svc")
	e := newEnv(t)

	t.Run("wD-d", func(t *testing.T) {
		dir := e.AddService(t, "finish", "wd", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
		c.must(t, e, "svc", "-wD", "-T", waitMs, "-d", dir)
		// -wD returns after D: finish has run and the status says so.
		if st := ReadStatus(t, dir); st.Pid != 0 || st.Flags != flagReady {
			t.Errorf("after -wD -d: %v, want down and ready", st)
		}
		if _, err := os.Stat(filepath.Join(dir, "finish.args")); err != nil {
			t.Errorf("-wD returned before finish ran: %v", err)
		}
	})
	t.Run("wU-u", func(t *testing.T) {
		dir := e.AddService(t, "ready", "wu", map[string]string{"down": ""})
		c.must(t, e, "svc", "-wU", "-T", waitMs, "-u", dir)
		if st := ReadStatus(t, dir); !st.Up() || st.Flags&flagReady == 0 {
			t.Errorf("after -wU -u: %v, want up and ready", st)
		}
	})
	t.Run("wU-timeout", func(t *testing.T) {
		dir := e.AddService(t, "notify", "never", map[string]string{"down": ""})
		c.code(t, e, 99, "svc", "-T", "300", "-wU", "-u", dir)
		// The -u was sent: the service is up, just never ready.
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
	})
}

func testSvwait(t *testing.T, c clients) {
	c.need(t, "svwait")
	e := newEnv(t)
	dir := e.AddService(t, "notify", "w", nil)

	c.code(t, e, 0, "svwait", "-u", "-t", waitMs, dir)
	c.code(t, e, 99, "svwait", "-U", "-t", "300", dir)
	c.code(t, e, 99, "svwait", "-d", "-t", "300", dir)
	c.code(t, e, 99, "svwait", "-D", "-t", "300", dir)

	bg := e.Start(t, nil, append(c.cmd("svwait"), "-U", "-t", waitMs, dir)...)
	makeReady(t, dir)
	if code := bg.Wait(t, eventTimeout); code != 0 {
		t.Errorf("svwait -U: exit %d, want 0 (log: %s)", code, readFile(bg.Log))
	}

	bg = e.Start(t, nil, append(c.cmd("svwait"), "-D", "-t", waitMs, dir)...)
	c.must(t, e, "svc", "-d", dir)
	if code := bg.Wait(t, eventTimeout); code != 0 {
		t.Errorf("svwait -D: exit %d, want 0 (log: %s)", code, readFile(bg.Log))
	}
	c.code(t, e, 0, "svwait", "-d", "-t", "300", dir)
	c.code(t, e, 99, "svwait", "-u", "-t", "300", dir)
}

func testSvscanctl(t *testing.T, c clients) {
	c.need(t, "svscanctl")

	t.Run("a", func(t *testing.T) {
		e := newEnv(t)
		dir := filepath.Join(e.Scan, "new")
		copyTree(t, filepath.Join("testdata", "sv", "pause"), dir)
		l := Listen(t, dir)
		c.must(t, e, "svscanctl", "-a", e.Scan)
		l.Wait(t, "s")
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir)
	})
	t.Run("h", func(t *testing.T) {
		e := newEnv(t)
		dir := e.AddService(t, "pause", "gone", nil)
		keep := e.AddService(t, "pause", "kept", nil)
		c.must(t, e, "svwait", "-u", "-t", waitMs, dir, keep)
		host := e.hostPid(t, int(ReadStatus(t, dir).Pid))
		l := Listen(t, dir)
		if err := os.Remove(filepath.Join(e.Scan, "gone")); err != nil {
			t.Fatal(err)
		}
		c.must(t, e, "svscanctl", "-h", e.Scan)
		l.Wait(t, "x")
		if !waitExit(t, host, 0) {
			t.Errorf("the removed service's run is still alive after its supervisor exited")
		}
		if st := ReadStatus(t, keep); !st.Up() {
			t.Errorf("the service still in the scan dir went down: %v", st)
		}
	})
	for _, letter := range []string{"q", "t"} {
		t.Run(letter, func(t *testing.T) {
			e := newEnv(t)
			a := e.AddService(t, "pause", "a", nil)
			b := e.AddService(t, "finish", "b", nil)
			c.must(t, e, "svwait", "-u", "-t", waitMs, a, b)
			c.must(t, e, "svscanctl", "-"+letter, e.Scan)
			if code := e.Scanner.Wait(t, eventTimeout); code != 0 {
				t.Errorf("scanner exit %d after -%s, want 0 (log: %s)", code, letter, readFile(e.Scanner.Log))
			}
			// The scanner waits for its services to be down before it
			// exits: only PID 1 may be left.
			if ps := e.Procs(); len(ps) != 1 {
				t.Errorf("processes left after the scanner exited:\n%s", e.psTree())
			}
			for _, dir := range []string{a, b} {
				if st := ReadStatus(t, dir); st.Pid != 0 {
					t.Errorf("%s: %v, want down", filepath.Base(dir), st)
				}
			}
		})
	}
}

// testSvlink checks that s6-svlink and s6-svunlink complete: they wait for
// the supervisor's s and x events, which the scanner must produce.
func testSvlink(t *testing.T) {
	e := newEnv(t)
	dir := e.Service(t, "pause", "linked", nil)
	e.MustRun(t, "s6-svlink", "-t", waitMs, e.Scan, dir, "linked")
	e.MustRun(t, "s6-svok", dir)
	e.MustRun(t, "s6-svwait", "-u", "-t", waitMs, dir)
	host := e.hostPid(t, int(ReadStatus(t, dir).Pid))
	e.MustRun(t, "s6-svunlink", "-t", waitMs, e.Scan, "linked")
	if _, err := os.Lstat(filepath.Join(e.Scan, "linked")); !os.IsNotExist(err) {
		t.Errorf("s6-svunlink left the link: %v", err)
	}
	if r := e.Run(t, "s6-svok", dir); r.Code != 1 {
		t.Errorf("s6-svok after s6-svunlink: %s, want exit 1", r)
	}
	if !waitExit(t, host, 0) {
		t.Errorf("the unlinked service's run is still alive")
	}
}

// makeReady makes a service of the notify template notify readiness.
func makeReady(t testing.TB, dir string) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(dir, "go-ready"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
}

// proc finds the namespace's process nsPid.
func (e *Env) proc(nsPid int) (Process, bool) {
	for _, p := range e.Procs() {
		if p.NsPid == nsPid {
			return p, true
		}
	}
	return Process{}, false
}

// hostPid maps a pid of the namespace to the host's pid of that process.
func (e *Env) hostPid(t testing.TB, nsPid int) int {
	t.Helper()
	if p, ok := e.proc(nsPid); ok {
		return p.HostPid
	}
	t.Fatalf("no process %d in the namespace:\n%s", nsPid, e.psTree())
	return 0
}
