package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/openrc"
)

// The resolver bombs of the fault-injection suite (issue 9): init scripts
// that would hang or exhaust `gosv openrc check`, run through the real
// binary. Each must end in one error line naming the script and the
// cause, within the time limit plus a margin, with the peak resident
// memory of gosv and its resolver child under the memory limit plus a
// margin.
//
// Every run is guarded so that a regression fails the test instead of
// taking the machine or the test binary down: gosv runs in its own
// process group, under prlimit's RLIMIT_DATA of 1 GiB, and the group is
// SIGKILLed at a hard deadline.

const (
	// bombMargin is what a loaded 2-core CI machine may add to the limit.
	bombMargin = 2 * time.Second
	// bombDeadline is the guard: the group is killed then.
	bombDeadline = openrc.ResolveTimeout + 10*time.Second
	// bombRSS bounds the peak RSS of gosv and of its resolver child
	// (wait4 gives the larger): the child's RLIMIT_DATA is ResolveMemory;
	// its binary's pages and stack are not data.
	bombRSS = openrc.ResolveMemory + 32<<20
	// bombGuardData is the guard's RLIMIT_DATA for gosv and its child.
	bombGuardData = 1 << 30
)

// bombScript writes an init script with body after the usual lines.
func bombScript(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, "init.d", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	src := "#!/sbin/openrc-run\nsupervisor=gosv\ncommand=/bin/true\n" + body + "\n"
	if err := os.WriteFile(p, []byte(src), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

type bombRun struct {
	stdout, stderr string
	code           int
	elapsed        time.Duration
	maxRSS         int64 // bytes: gosv's and its waited-for children's peak
	killed         bool  // by the guard
}

// startCheck starts `gosv openrc check script` in its own process group,
// under the RLIMIT_DATA guard, with a layout inside dir.
func startCheck(t *testing.T, dir string, scripts ...string) (*exec.Cmd, *bytes.Buffer, *bytes.Buffer) {
	t.Helper()
	args := append([]string{gosvBin, "openrc", "check"}, scripts...)
	if p, err := exec.LookPath("prlimit"); err == nil {
		args = append([]string{p, "--data=" + strconv.Itoa(bombGuardData), "--"}, args...)
	} else {
		t.Logf("no prlimit: running without the RLIMIT_DATA guard")
	}
	c := exec.Command(args[0], args[1:]...)
	c.Env = append(os.Environ(), "RC_LIBEXECDIR="+dir, "RC_SVCDIR="+filepath.Join(dir, "run"))
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	c.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	return c, &out, &errb
}

// waitCheck waits for a started check, killing its process group at the
// guard's deadline.
func waitCheck(t *testing.T, c *exec.Cmd, out, errb *bytes.Buffer, start time.Time, deadline time.Duration) bombRun {
	t.Helper()
	guard := time.AfterFunc(time.Until(start.Add(deadline)), func() {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // the group we created
	})
	err := c.Wait()
	killed := !guard.Stop()
	r := bombRun{stdout: out.String(), stderr: errb.String(), elapsed: time.Since(start), killed: killed}
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatal(err)
	}
	r.code = c.ProcessState.ExitCode()
	if ru, ok := c.ProcessState.SysUsage().(*syscall.Rusage); ok {
		r.maxRSS = ru.Maxrss << 10
	}
	if killed {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL) // leave nothing behind
	}
	return r
}

func TestOpenRCCheckBombs(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := filepath.Join(dir, "big.conf")
	if err := os.WriteFile(big, bytes.Repeat([]byte("# padding\n"), (openrc.MaxSourceSize/10)+1), 0o644); err != nil {
		t.Fatal(err)
	}
	// The interpreter stops itself at the limit and says where; on a
	// loaded machine gosv's kill, 0.5 s later, may come first.
	limit := regexp.QuoteMeta(fmt.Sprintf("resolution exceeded %v", openrc.ResolveTimeout)) + `( \(a loop that never ends\?\))?`
	memory := regexp.QuoteMeta(fmt.Sprintf("memory limit %d MiB", openrc.ResolveMemory>>20))
	notRegular := func(p string) string { return regexp.QuoteMeta("refusing to read " + p + ": not a regular file") }
	tests := []struct {
		name, body string
		want       string // the error line after "SCRIPT[:LINE:COL]: error: "
	}{
		{"zero-cmdsubst", `x=$(< /dev/zero)`, notRegular("/dev/zero")},
		{"zero-dot", `. /dev/zero`, notRegular("/dev/zero")},
		{"fifo-cmdsubst", `x=$(< ` + fifo + `)`, notRegular(fifo)},
		{"fifo-read", `read x < ` + fifo, notRegular(fifo)},
		{"urandom-mapfile", `mapfile -t a < /dev/urandom`, notRegular("/dev/urandom")},
		{"big-file", `. ` + big, regexp.QuoteMeta("refusing to read " + big + ": larger than 1 MiB")},
		{"string-doubling", `x=a; while :; do x=$x$x; done`, memory},
		// Many small allocations: about 1.6 s to the memory limit on an
		// idle machine, so on a loaded one the time limit may come first.
		{"array-doubling", `a=(x); while :; do a=("${a[@]}" "${a[@]}"); done`, "(" + memory + "|" + limit + ")"},
		{"deep-recursion", `f() { f; }; f`, limit},
		// Parsed, not run: the parser's recursion meets the stack limit.
		{"deep-nesting", strings.Repeat("(", 200000) + ":" + strings.Repeat(")", 200000),
			regexp.QuoteMeta(fmt.Sprintf("recursion too deep (stack limit %d MiB)", openrc.ResolveStack>>20))},
		{"infinite-loop", `while :; do :; done`, limit},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			script := bombScript(t, dir, tt.name, tt.body)
			start := time.Now()
			c, out, errb := startCheck(t, dir, script)
			r := waitCheck(t, c, out, errb, start, bombDeadline)
			t.Logf("%s: exit %d after %v, peak RSS %d MiB", tt.name, r.code, r.elapsed.Round(time.Millisecond), r.maxRSS>>20)
			if r.killed {
				t.Fatalf("still running after %v: killed (stdout %q, stderr %q)", bombDeadline, r.stdout, lastLines(r.stderr))
			}
			line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(script) + `(:\d+:\d+)?: error: ` + tt.want + `$`)
			if r.code != 1 || !line.MatchString(r.stdout) || strings.Count(r.stdout, script) != 1 {
				t.Errorf("exit %d, want 1 and one line %q\nstdout:\n%sstderr:\n%s", r.code, line, r.stdout, lastLines(r.stderr))
			}
			if bound := openrc.ResolveTimeout + bombMargin; r.elapsed > bound {
				t.Errorf("took %v, more than %v", r.elapsed, bound)
			}
			if r.maxRSS > bombRSS {
				t.Errorf("peak RSS %d MiB, more than %d MiB", r.maxRSS>>20, bombRSS>>20)
			}
		})
	}

	// All at once, each after a good script, in one check: the resolver
	// child is shared until a bomb kills it. Each bomb gets its line,
	// and no good script an error. Three bombs run into the time limit,
	// and the string doubling may take seconds near the memory limit.
	t.Run("all-at-once", func(t *testing.T) {
		var scripts []string
		for i, tt := range tests {
			good := bombScript(t, dir, fmt.Sprintf("good%02d", i), `command_args="-n `+strconv.Itoa(i)+`"`)
			scripts = append(scripts, good, filepath.Join(dir, "init.d", tt.name))
		}
		bound := 4*(openrc.ResolveTimeout+time.Second/2) + 2*bombMargin
		start := time.Now()
		c, out, errb := startCheck(t, dir, scripts...)
		r := waitCheck(t, c, out, errb, start, bound+bombDeadline)
		t.Logf("%d scripts: exit %d after %v, peak RSS %d MiB", len(scripts), r.code, r.elapsed.Round(time.Millisecond), r.maxRSS>>20)
		if r.killed {
			t.Fatalf("still running after %v: killed (stdout %q, stderr %q)", bound+bombDeadline, r.stdout, lastLines(r.stderr))
		}
		for i, tt := range tests {
			line := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(scripts[2*i+1]) + `(:\d+:\d+)?: error: ` + tt.want + `$`)
			if !line.MatchString(r.stdout) {
				t.Errorf("%s: no line %q", tt.name, line)
			}
			if good := scripts[2*i] + ": error"; strings.Contains(r.stdout, good) {
				t.Errorf("%s: an error for the good script before it", tt.name)
			}
		}
		if t.Failed() {
			t.Logf("stdout:\n%sstderr:\n%s", r.stdout, lastLines(r.stderr))
		}
		if r.code != 1 || r.elapsed > bound || r.maxRSS > bombRSS {
			t.Errorf("exit %d after %v, peak RSS %d MiB; want 1, at most %v and %d MiB", r.code, r.elapsed, r.maxRSS>>20, bound, bombRSS>>20)
		}
	})
}

// TestOpenRCCheckSIGTERM: a SIGTERM ends `gosv openrc check` at once,
// even while its resolution runs an endless loop, and leaves no resolver
// behind. The test knows the loop runs when the resolver opens a marker
// file the script reads first (inotify IN_OPEN): no sleep.
func TestOpenRCCheckSIGTERM(t *testing.T) {
	dir := t.TempDir()
	marker := filepath.Join(dir, "marker")
	if err := os.WriteFile(marker, []byte("x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	events := os.NewFile(uintptr(in), "inotify")
	defer events.Close()
	if _, err := unix.InotifyAddWatch(in, marker, unix.IN_OPEN); err != nil {
		t.Fatal(err)
	}
	script := bombScript(t, dir, "loop", `x=$(< `+marker+`)`+"\nwhile :; do :; done")
	start := time.Now()
	c, out, errb := startCheck(t, dir, script)
	events.SetReadDeadline(start.Add(openrc.ResolveTimeout))
	var buf [4096]byte
	if _, err := events.Read(buf[:]); err != nil {
		waitCheck(t, c, out, errb, start, bombDeadline)
		t.Fatalf("the resolver never opened %s: %v", marker, err)
	}
	term := time.Now()
	if err := c.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	r := waitCheck(t, c, out, errb, start, bombDeadline)
	took := time.Since(term)
	t.Logf("SIGTERM at %v into the resolution: exit %d %v later", term.Sub(start).Round(time.Millisecond), r.code, took.Round(time.Millisecond))
	if r.killed || took > time.Second {
		t.Errorf("exited %v after SIGTERM (killed by the guard: %v), want well under 1s", took, r.killed)
	}
	if r.code != exitSystem || !strings.Contains(r.stderr, ": fatal: interrupted") {
		t.Errorf("exit %d, stderr %q; want %d and \"interrupted\"", r.code, r.stderr, exitSystem)
	}
	if left := groupMembers(c.Process.Pid); len(left) > 0 {
		syscall.Kill(-c.Process.Pid, syscall.SIGKILL)
		t.Errorf("processes left in the group: %v", left)
	}
}

// groupMembers lists the processes of process group pgid (one read of
// /proc, after the group's leader was waited for).
func groupMembers(pgid int) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if g, err := unix.Getpgid(pid); err == nil && g == pgid {
			out = append(out, pid)
		}
	}
	return out
}

// lastLines keeps the end of a long stderr (a Go crash's traceback).
func lastLines(s string) string {
	if len(s) > 2000 {
		return "…" + s[len(s)-2000:]
	}
	return s
}

// TestOpenRCCheckUnderUlimit: under a user's lower hard limits (CPU
// time, data) the resolver keeps them instead of failing to raise them.
func TestOpenRCCheckUnderUlimit(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		t.Skip("no prlimit")
	}
	dir := t.TempDir()
	script := bombScript(t, dir, "good", `command_args="-v"`)
	c := exec.Command(prlimit, "--cpu=3:3", "--data=209715200:209715200", "--", gosvBin, "openrc", "check", script)
	c.Env = append(os.Environ(), "RC_LIBEXECDIR="+dir, "RC_SVCDIR="+filepath.Join(dir, "run"))
	out, _ := c.CombinedOutput()
	if strings.Contains(string(out), script+": error") || strings.Contains(string(out), "resolver failed") {
		t.Errorf("check under ulimit -t 3 -d 200M:\n%s", out)
	}
}
