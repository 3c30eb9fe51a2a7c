//go:build integration

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Tests of `gosv init` (issue 12): gosv itself is PID 1 of the test's
// PID namespace (testinit sets the namespace up, then executes it).

const (
	initWait      = 30 * time.Second // bound of every wait for PID 1
	initTimeoutMs = "10000"
)

// initNS is a namespace whose PID 1 is `gosv init -d 3 ARGS...`.
type initNS struct {
	*NS
	ready chan string // "" once the scanner took the scan directory; "error: ..." if PID 1 closed fd 3 first
}

// newInitNS starts gosv init as PID 1, with GOSV_TRACE in p's directory;
// roRoot makes every mount but /run, /tmp and the kept directories
// read-only first.
func newInitNS(t *testing.T, p *prepared, roRoot bool, args ...string) *initNS {
	t.Helper()
	requireGosv(t)
	ready := make(chan string, 1)
	var extra []string
	if roRoot {
		extra = append(extra, "-ro-root")
	}
	extra = append(extra, "-exec", "/usr/bin/env", "GOSV_TRACE="+p.path("trace"),
		filepath.Join(suite.repoRoot, "bin", "gosv"), "init", "-d", "3")
	return &initNS{NS: newNS(t, append(extra, args...), ready), ready: ready}
}

// waitReady waits for the scanner's readiness line.
func (n *initNS) waitReady(t *testing.T) {
	t.Helper()
	select {
	case line := <-n.ready:
		if line != "" {
			t.Fatalf("gosv init not ready: %q; log:\n%s", line, n.log())
		}
	case <-time.After(initWait):
		t.Fatalf("gosv init not ready within %v; log:\n%s", initWait, n.log())
	}
}

// waitExit waits for PID 1 to exit and returns its exit code (128+signal
// if a signal killed it).
func (n *initNS) waitExit(t *testing.T) int {
	t.Helper()
	select {
	case <-n.pid1Done:
		return exitCode(n.pid1State)
	case <-time.After(initWait):
		t.Fatalf("gosv init still running after %v; log:\n%s", initWait, n.log())
		return -1
	}
}

// log is PID 1's stdout and stderr (testinit's log, inherited).
func (n *initNS) log() string { return readFile(filepath.Join(n.Dir, "testinit.log")) }

// signal sends sig to PID 1 from the host (a parent namespace: any
// signal PID 1 has a handler for is delivered).
func (n *initNS) signal(t *testing.T, sig unix.Signal) {
	t.Helper()
	if err := unix.Kill(n.Pid1(), sig); err != nil {
		t.Fatalf("kill PID 1: %v", err)
	}
}

// prepared is a directory made before PID 1 starts (scripts and service
// directories must exist when gosv init takes them), under the suite's
// work directory, which every namespace sees at the same path.
type prepared struct{ dir string }

func prepare(t *testing.T) *prepared {
	t.Helper()
	dir, err := os.MkdirTemp(suite.workDir, "init-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return &prepared{dir: dir}
}

func (p *prepared) path(rel string) string { return filepath.Join(p.dir, rel) }

func (p *prepared) file(t *testing.T, rel, content string, mode os.FileMode) string {
	t.Helper()
	f := p.path(rel)
	if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return f
}

func (p *prepared) script(t *testing.T, rel, body string) string {
	t.Helper()
	return p.file(t, rel, "#!/bin/sh\n"+body+"\n", 0o755)
}

// readyService writes a service that installs trap (a shell trap
// command, or "") and only then says it is ready on fd 3, so that a test
// waiting for U knows the trap is in place.
func (p *prepared) readyService(t *testing.T, name, trap string) {
	t.Helper()
	p.file(t, "sv/"+name+"/notification-fd", "3\n", 0o644)
	p.script(t, "sv/"+name+"/run", trap+"\necho >&3\nexec 3>&-\nwhile :; do sleep 1 & wait; done")
}

// marks reads the lines appended to the marks file.
func (p *prepared) marks() []string {
	b, _ := os.ReadFile(p.path("marks"))
	return strings.Fields(strings.ReplaceAll(string(b), " ", "_"))
}

// mark is a shell command appending WORD to the marks file.
func (p *prepared) mark(word string) string {
	return fmt.Sprintf("echo %s >>%s", word, p.path("marks"))
}

// TestInitStage1Failure: a failing stage 1 is reported, no service and no
// main command start, stage 3 runs, and the exit code is stage 1's.
func TestInitStage1Failure(t *testing.T) {
	p := prepare(t)
	s1 := p.script(t, "1", p.mark("stage1")+"; exit 3")
	s3 := p.script(t, "3", p.mark("stage3"))
	p.script(t, "sv/svc/run", p.mark("service")+"; exec sleep 1000")
	n := newInitNS(t, p, false, "-1", s1, "-3", s3, p.path("sv"), "--", "sh", "-c", p.mark("main"))
	if code := n.waitExit(t); code != 3 {
		t.Fatalf("exit %d, want 3 (stage 1's); log:\n%s", code, n.log())
	}
	if got := strings.Join(p.marks(), " "); got != "stage1 stage3" {
		t.Fatalf("ran %q, want stage1 stage3 only", got)
	}
	if log := n.log(); !strings.Contains(log, "stage 1 failed (exit 3)") {
		t.Fatalf("no clear message about stage 1; log:\n%s", log)
	}
}

// TestInitMainCommand: the container's exit code is the main command's,
// or 128+signal; the services are stopped (the service's TERM trap runs)
// and stage 3 runs after them.
func TestInitMainCommand(t *testing.T) {
	for _, tt := range []struct {
		name, script string
		code         int
	}{
		{"exit-7", "exit 7", 7},
		{"killed", "kill -KILL $$", 137},
		{"exit-0", "exit 0", 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := prepare(t)
			s3 := p.script(t, "3", p.mark("stage3"))
			p.readyService(t, "svc", "trap '"+p.mark("service-term")+"; exit 0' TERM")
			// The main command waits for the service's trap, then ends.
			main := p.script(t, "main", filepath.Join(suite.repoRoot, "bin", "gosv")+" svwait -U -t "+initTimeoutMs+" "+p.path("sv/svc")+" || exit 99\n"+tt.script)
			n := newInitNS(t, p, false, "-3", s3, p.path("sv"), "--", main)
			if code := n.waitExit(t); code != tt.code {
				t.Fatalf("exit %d, want %d; log:\n%s", code, tt.code, n.log())
			}
			if got := strings.Join(p.marks(), " "); got != "service-term stage3" {
				t.Fatalf("marks %q, want service-term then stage3", got)
			}
		})
	}
}

// TestInitSigtermOrder: on SIGTERM every service gets its down-signal;
// one that ignores it is SIGKILLed after -t (never before), its finish
// sees signal 9; then stage 3 runs, then PID 1 exits (0 without a main
// command, 143 with one killed by the SIGTERM passed on).
func TestInitSigtermOrder(t *testing.T) {
	for _, withMain := range []bool{false, true} {
		t.Run(fmt.Sprintf("main=%v", withMain), func(t *testing.T) {
			p := prepare(t)
			const killMs = 1500
			p.readyService(t, "polite", "trap '"+p.mark("polite-term")+"; exit 0' TERM")
			p.readyService(t, "stubborn", "trap '' TERM")
			p.script(t, "sv/stubborn/finish", p.mark("stubborn-finish-$1-$2"))
			s3 := p.script(t, "3", p.mark("stage3"))
			args := []string{"-t", strconv.Itoa(killMs), "-3", s3, p.path("sv")}
			want := 0
			if withMain {
				args = append(args, "--", "sleep", "1000")
				want = 128 + int(unix.SIGTERM)
			}
			n := newInitNS(t, p, false, args...)
			n.waitReady(t)
			n.MustRun(t, filepath.Join(suite.repoRoot, "bin", "gosv"), "svwait", "-U", "-t", initTimeoutMs,
				p.path("sv/polite"), p.path("sv/stubborn"))
			start := time.Now()
			n.signal(t, unix.SIGTERM)
			code := n.waitExit(t)
			took := time.Since(start)
			if code != want {
				t.Fatalf("exit %d, want %d; log:\n%s", code, want, n.log())
			}
			got := strings.Join(p.marks(), " ")
			if got != "polite-term stubborn-finish-256-9 stage3" {
				t.Fatalf("marks %q, want polite-term, then stubborn's finish after SIGKILL (256 9), then stage3", got)
			}
			// The SIGKILL comes from -t's deadline: not before it.
			if took < killMs*time.Millisecond {
				t.Fatalf("exited %v after SIGTERM, before -t %dms", took, killMs)
			}
			if !strings.Contains(n.log(), "sending SIGKILL") {
				t.Fatalf("no SIGKILL message; log:\n%s", n.log())
			}
		})
	}
}

// TestInitOrphans: 10,000 orphans made in a burst are all reaped by PID 1
// (each reaped orphan is a trace line), and no zombie is left.
func TestInitOrphans(t *testing.T) {
	const n10k = 10000
	p := prepare(t)
	if err := os.MkdirAll(p.path("sv"), 0o755); err != nil {
		t.Fatal(err)
	}
	n := newInitNS(t, p, false, p.path("sv"))
	n.waitReady(t)
	r := n.MustRun(t, "svhelper", "orphans", strconv.Itoa(n10k))
	if strings.TrimSpace(r.Stdout) != strconv.Itoa(n10k) {
		t.Fatalf("orphans: %s", r)
	}
	waitCount(t, p.path("trace"), "ev=orphan ", n10k, 2*time.Minute)
	var zombies []string
	for _, pr := range n.Procs() {
		if pr.State == 'Z' {
			zombies = append(zombies, fmt.Sprint(pr.NsPid))
		}
	}
	if len(zombies) > 0 {
		t.Fatalf("%d zombies left after the orphans were reaped: %v", len(zombies), zombies)
	}
	n.signal(t, unix.SIGTERM)
	if code := n.waitExit(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, n.log())
	}
}

// TestInitReadOnlyRoot: with every mount but /run, /tmp and the test's
// directory read-only, stage 1 copies the services to /run (as
// s6-overlay does), gosv supervises them there, and shuts down cleanly.
func TestInitReadOnlyRoot(t *testing.T) {
	p := prepare(t)
	p.script(t, "tmpl/svc/run", "exec sleep 1000")
	s1 := p.script(t, "1", "set -e\n! touch /etc/gosv-ro-probe 2>/dev/null\n! touch /gosv-ro-probe 2>/dev/null\ncp -a "+p.path("tmpl")+" /run/sv\n"+p.mark("stage1"))
	n := newInitNS(t, p, true, "-1", s1, "/run/sv")
	n.waitReady(t)
	if got := strings.Join(p.marks(), " "); got != "stage1" {
		t.Fatalf("stage 1: marks %q (was / writable?); log:\n%s", got, n.log())
	}
	n.MustRun(t, filepath.Join(suite.repoRoot, "bin", "gosv"), "svwait", "-u", "-t", initTimeoutMs, "/run/sv/svc")
	n.signal(t, unix.SIGTERM)
	if code := n.waitExit(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, n.log())
	}
}

// TestInitLetters: the scanner's letters reach PID 1: b is refused (the
// services stay), t stops everything and, in a container, exits 0.
// Before that, every catchable signal but the shutdown ones is sent from
// inside the namespace: none may end PID 1 (kernel rule: PID 1 gets only
// the signals it handles, and gosv handles them all).
func TestInitLetters(t *testing.T) {
	for _, l := range []string{"-t", "-i", "-q", "s6:-i"} {
		t.Run(l, func(t *testing.T) {
			ctl := []string{filepath.Join(suite.repoRoot, "bin", "gosv"), "svscanctl"}
			if s6l, ok := strings.CutPrefix(l, "s6:"); ok {
				requireTools(t, envRequireS6, "s6-svscanctl")
				ctl, l = []string{"s6-svscanctl"}, s6l
			}
			p := prepare(t)
			p.script(t, "sv/svc/run", "exec sleep 1000")
			n := newInitNS(t, p, false, p.path("sv"))
			n.waitReady(t)
			gosv := filepath.Join(suite.repoRoot, "bin", "gosv")
			n.MustRun(t, gosv, "svwait", "-u", "-t", initTimeoutMs, p.path("sv/svc"))
			var sigs []string
			for s := unix.Signal(1); s < 32; s++ {
				switch s {
				case unix.SIGTERM, unix.SIGINT, unix.SIGPWR, unix.SIGQUIT, unix.SIGKILL, unix.SIGSTOP:
					continue
				}
				sigs = append(sigs, strconv.Itoa(int(s)))
			}
			n.MustRun(t, "sh", "-c", "for s in "+strings.Join(sigs, " ")+"; do kill -$s 1; done")
			n.MustRun(t, append(ctl, "-b", p.path("sv"))...)
			n.MustRun(t, append(ctl, l, p.path("sv"))...)
			if code := n.waitExit(t); code != 0 {
				t.Fatalf("exit %d, want 0; log:\n%s", code, n.log())
			}
			if log := n.log(); !strings.Contains(log, "ignoring letter b") {
				t.Fatalf("b not refused; log:\n%s", log)
			}
		})
	}
}

// waitCount waits until file holds substr at least n times.
func waitCount(t *testing.T, file, substr string, n int, d time.Duration) {
	t.Helper()
	waitFileFor(t, file, d, func(b []byte) bool { return strings.Count(string(b), substr) >= n },
		fmt.Sprintf("%d times %q", n, substr))
}

// TestInitAdopts: stage 2 adopts what a previous scanner left running,
// as gosv svscan does. Stage 1 starts `gosv svscan` on the scan
// directory, waits for the service and its logger, and SIGKILLs it: the
// service and the logger, orphaned, become PID 1's children, and gosv
// init's scanner must take them over, starting neither a second time,
// and the logger must still get the service's lines.
func TestInitAdopts(t *testing.T) {
	p := prepare(t)
	gosv := filepath.Join(suite.repoRoot, "bin", "gosv")
	// The service writes a line per SIGHUP (the test's way to make it talk).
	p.script(t, "sv/svc/run", "echo $$ >>./pids\ntrap 'echo hup' HUP\necho started\nwhile :; do sleep 1 & wait; done")
	p.script(t, "sv/svc/log/run", "echo $$ >>../logpids\nexec cat >>"+p.path("logged"))
	// The first scanner's readiness line (-d) comes through a fifo.
	s1 := p.script(t, "1", "set -e\nmkfifo "+p.path("fifo")+"\n"+gosv+" svscan -d 3 "+p.path("sv")+" 3>"+p.path("fifo")+" &\nscanner=$!\n"+
		"read ready <"+p.path("fifo")+"\n"+
		gosv+" svwait -u -t "+initTimeoutMs+" "+p.path("sv/svc")+" "+p.path("sv/svc/log")+"\n"+
		"kill -KILL $scanner\nwait $scanner || :\n"+p.mark("stage1"))
	n := newInitNS(t, p, false, "-1", s1, p.path("sv"))
	n.waitReady(t)
	n.MustRun(t, gosv, "svwait", "-u", "-t", initTimeoutMs, p.path("sv/svc"), p.path("sv/svc/log"))
	n.MustRun(t, gosv, "svc", "-h", p.path("sv/svc"))
	waitCount(t, p.path("logged"), "hup", 1, initWait)
	pids := strings.Fields(readFile(p.path("sv/svc/pids")))
	logpids := strings.Fields(readFile(p.path("sv/svc/logpids")))
	if len(pids) != 1 || len(logpids) != 1 {
		t.Fatalf("service started %d times, logger %d times, want once each (adopted); log:\n%s", len(pids), len(logpids), n.log())
	}
	if got := strings.Join(p.marks(), " "); got != "stage1" {
		t.Fatalf("marks %q", got)
	}
	n.signal(t, unix.SIGTERM)
	if code := n.waitExit(t); code != 0 {
		t.Fatalf("exit %d; log:\n%s", code, n.log())
	}
}

// TestInitSignalsToMain: SIGTERM, SIGINT and SIGPWR start stage 3 and
// reach the main command as SIGTERM, SIGINT and SIGTERM; another signal
// (SIGHUP, SIGUSR1) is forwarded to it as tini does. The main command
// (sleep) dies of what it got, and that is the exit code.
func TestInitSignalsToMain(t *testing.T) {
	for _, tt := range []struct {
		sig  unix.Signal
		code int
	}{
		{unix.SIGTERM, 128 + int(unix.SIGTERM)},
		{unix.SIGINT, 128 + int(unix.SIGINT)},
		{unix.SIGPWR, 128 + int(unix.SIGTERM)},
		{unix.SIGHUP, 128 + int(unix.SIGHUP)},
		{unix.SIGUSR1, 128 + int(unix.SIGUSR1)},
	} {
		t.Run(unix.SignalName(tt.sig), func(t *testing.T) {
			p := prepare(t)
			if err := os.MkdirAll(p.path("sv"), 0o755); err != nil {
				t.Fatal(err)
			}
			// NOTE: sleep, not a shell: a non-interactive shell's
			// background jobs ignore SIGINT.
			n := newInitNS(t, p, false, p.path("sv"), "--", "sleep", "1000")
			n.waitReady(t)
			n.signal(t, tt.sig)
			if code := n.waitExit(t); code != tt.code {
				t.Fatalf("exit %d, want %d; log:\n%s", code, tt.code, n.log())
			}
		})
	}
}
