package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/logdir"
)

func TestNewLogCmd(t *testing.T) {
	tests := []struct {
		argv []string
		want logOptions
		err  string
	}{
		{[]string{"t", "./d"}, logOptions{NotifyFd: -1, Script: []string{"t", "./d"}}, ""},
		{[]string{"-d3", "-b", "-p", "-q", "-l", "100", "-B", "4096", "t", "./d"},
			logOptions{NotifyFd: 3, Protect: true, Quiet: true, LineLimit: 100, LossBytes: 4096, Script: []string{"t", "./d"}}, ""},
		{[]string{"-l0", "./d"}, logOptions{NotifyFd: -1, LineLimit: -1, Script: []string{"./d"}}, ""},
		{[]string{"--", "-x", "./d"}, logOptions{NotifyFd: -1, Script: []string{"-x", "./d"}}, ""},
		{[]string{"-v", "./d"}, logOptions{NotifyFd: -1, Script: []string{"./d"}}, ""},
		{[]string{}, logOptions{}, "usage"},
		{[]string{"-b"}, logOptions{}, "usage"},
		{[]string{"-x", "./d"}, logOptions{}, "usage: unknown option -x"},
		{[]string{"-B", "lots", "./d"}, logOptions{}, `usage: -B: invalid number "lots"`},
	}
	for _, tt := range tests {
		e, _, _ := testEnv()
		var got *logOptions
		err := execCmd(newLogCmd(e, func(o *logOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("%q: error %q, want %q", tt.argv, msg, tt.err)
			continue
		}
		if tt.err == "" && !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%q: %+v, want %+v", tt.argv, *got, tt.want)
		}
	}
}

func TestNewLogsCmd(t *testing.T) {
	e, _, _ := testEnv()
	var got *logsOptions
	err := execCmd(newLogsCmd(e, func(o *logsOptions) error { got = o; return nil }), []string{"-f", "-n", "5", "web"})
	if err != nil || got.Target != "web" || !got.Follow || got.Lines != 5 || got.ScanDir != logdir.DefaultScanDir {
		t.Errorf("%+v, %v", got, err)
	}
	if err := execCmd(newLogsCmd(e, nil), []string{"a", "b"}); usageMsg(err) == "" {
		t.Error("two arguments accepted")
	}
}

// logPipe is the pipe between a service and its loggers, held by the test
// as a supervisor holds it, so that loggers can come and go.
type logPipe struct{ r, w *os.File }

func newLogPipe(t *testing.T) *logPipe {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return &logPipe{r, w}
}

// startLogger starts gosv log on the pipe and waits until it is ready (-d).
func startLogger(t *testing.T, p *logPipe, script ...string) *exec.Cmd {
	t.Helper()
	nr, nw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer nr.Close()
	cmd := exec.Command(gosvBin, append([]string{"log", "-d3"}, script...)...)
	cmd.Stdin, cmd.Stderr = p.r, os.Stderr
	cmd.ExtraFiles = []*os.File{nw}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	nw.Close()
	nr.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := nr.Read(make([]byte, 1)); err != nil {
		cmd.Process.Kill()
		cmd.Wait()
		t.Fatalf("gosv log not ready: %v", err)
	}
	return cmd
}

// seq writes the numbered lines [from, to) to w, some of them in pieces.
func seq(t *testing.T, w *os.File, from, to int) {
	t.Helper()
	var b bytes.Buffer
	for i := from; i < to; i++ {
		b.WriteString(seqLine(i) + "\n")
	}
	data := b.Bytes()
	for len(data) > 0 {
		n := min(len(data), 1+rand.IntN(20000))
		if _, err := w.Write(data[:n]); err != nil {
			t.Fatal(err)
		}
		data = data[n:]
	}
}

// checkSeq reads the log directory and checks that lines 0..n-1 are all
// there, in order. Repeats are allowed only where afterKill, and only as a
// chunk written again from an earlier point; it returns how many lines
// were repeated.
//
// afterKill also allows what a SIGKILL may leave (LOGDIR.md, "Start-up
// recovery"): a .u archive whose last line is cut. Either a write(2) was
// interrupted midway, and the cut line is the start of a line that comes
// whole later (its batch was still in the pipe and is written again), or
// the logger had written an incomplete line (its newline had not come
// yet) and taken it out of the pipe: the next logger then writes the rest
// of it as a line of its own, with its own stamp. A cut anywhere else, or
// a rest that does not complete the cut line, fails.
func checkSeq(t testing.TB, dir string, n int, afterKill bool) int {
	t.Helper()
	files, err := logdir.Files(dir)
	if err != nil {
		t.Fatal(err)
	}
	next, repeats := 0, 0
	var cut string // the cut line ending the previous file, without its stamp
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(string(data), "\n")
		for i, ln := range lines[:len(lines)-1] {
			if i == 0 && cut != "" {
				// The rest of an incomplete line written before the kill?
				if _, rest, _ := strings.Cut(ln, " "); cut+rest == seqLine(next) {
					next++
					continue
				}
			}
			fields := strings.Fields(ln)
			if len(fields) < 3 || fields[1] != "seq" {
				t.Fatalf("%s: malformed line %q", f, ln)
			}
			i, _ := strconv.Atoi(fields[2])
			switch {
			case i == next:
				next++
			case i < next && afterKill:
				repeats++
			default:
				t.Fatalf("%s: line %d where %d was expected (a line lost or repeated): %q", f, i, next, ln)
			}
			if want := seqLine(i); !strings.HasSuffix(ln, want) {
				t.Fatalf("%s: damaged line %q", f, ln)
			}
		}
		cut = ""
		if last := lines[len(lines)-1]; last != "" { // "" when the file ends with a newline
			if !afterKill || !strings.HasSuffix(f, ".u") {
				t.Fatalf("%s: ends with a cut line %q", f, last)
			}
			if !isSeqPrefix(last) {
				t.Fatalf("%s: the cut line %q at its end is not the start of a line", f, last)
			}
			t.Logf("%s: ends with a cut line: %q", f, last)
			_, cut, _ = strings.Cut(last, " ")
		}
	}
	if next != n {
		t.Fatalf("%d lines logged, want %d", next, n)
	}
	return repeats
}

// seqLine is line i as seq writes it, without its newline.
func seqLine(i int) string { return fmt.Sprintf("seq %d %s", i, strings.Repeat("x", i%50)) }

// isSeqPrefix reports whether s is the start of a stamped seq line.
func isSeqPrefix(s string) bool {
	stamp, rest, ok := strings.Cut(s, " ")
	if !ok || len(stamp) != 25 || stamp[0] != '@' {
		return !ok && strings.HasPrefix(s, "@") && len(s) <= 25 // cut inside the stamp
	}
	num, after, whole := strings.Cut(strings.TrimPrefix(rest, "seq "), " ")
	switch {
	case !strings.HasPrefix(rest, "seq "):
		return strings.HasPrefix("seq ", rest)
	case !whole: // cut inside the number
		_, err := strconv.Atoi(num)
		return num == "" || err == nil
	}
	i, err := strconv.Atoi(num)
	return err == nil && strings.HasPrefix(seqLine(i), "seq "+num+" "+after)
}

// TestCheckSeq: checkSeq accepts what a SIGKILL may leave and nothing
// more (it must fail for a lost, glued or cut line elsewhere).
func TestCheckSeq(t *testing.T) {
	const stamp = "@400000006b135e8e2df287a6 "
	lines := func(from, to int) string {
		var b strings.Builder
		for i := from; i < to; i++ {
			b.WriteString(stamp + seqLine(i) + "\n")
		}
		return b.String()
	}
	u := "@400000006b135e8e2f60da83.u"
	for _, c := range []struct {
		name  string
		files map[string]string // the current file last
		ok    bool
	}{
		{"whole", map[string]string{"current": lines(0, 10)}, true},
		{"write cut, batch again", map[string]string{u: lines(0, 5) + stamp + "seq 5 xx", "current": lines(3, 10)}, true},
		{"cut in the stamp", map[string]string{u: lines(0, 5) + "@40000", "current": lines(5, 10)}, true},
		{"incomplete line, rest", map[string]string{u: lines(0, 5) + stamp + "seq 5", "current": stamp + " xxxxx\n" + lines(6, 10)}, true},
		{"line lost", map[string]string{u: lines(0, 5) + stamp + "seq 5 xx", "current": lines(6, 10)}, false},
		{"rest that does not fit", map[string]string{u: lines(0, 5) + stamp + "seq 5", "current": stamp + " xxx\n" + lines(6, 10)}, false},
		{"cut in current", map[string]string{"current": lines(0, 9) + stamp + "seq 9"}, false},
		{"cut in a .s", map[string]string{"@400000006b135e8e2f60da83.s": lines(0, 5) + stamp + "seq 5 xx", "current": lines(3, 10)}, false},
		{"not a line's start", map[string]string{u: lines(0, 5) + stamp + "sex 5", "current": lines(5, 10)}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, content := range c.files {
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			rec := &fatalRecorder{TB: t}
			done := make(chan struct{})
			go func() { defer close(done); checkSeq(rec, dir, 10, true) }()
			<-done
			if ok := rec.msg == ""; ok != c.ok {
				t.Fatalf("checkSeq passed %v, want %v (%s)", ok, c.ok, rec.msg)
			}
		})
	}
}

// fatalRecorder records the first Fatalf and ends its goroutine, as
// testing.T would, without failing the test.
type fatalRecorder struct {
	testing.TB
	msg string
}

func (r *fatalRecorder) Helper()                   {}
func (r *fatalRecorder) Logf(string, ...any)       {}
func (r *fatalRecorder) Fatal(args ...any)         { r.msg = fmt.Sprint(args...); runtime.Goexit() }
func (r *fatalRecorder) Fatalf(f string, a ...any) { r.msg = fmt.Sprintf(f, a...); runtime.Goexit() }

// TestLogSIGKILL kills gosv log at random moments while a writer logs
// numbered lines through a pipe the test holds: no line is lost; a chunk
// may be written twice, and the line in progress may be cut at the end of
// a .u archive (see checkSeq: without a stage that is all gosv log
// promises).
func TestLogSIGKILL(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := newLogPipe(t)
	script := []string{"t", "s4096", "n10000", dir}
	total := 0
	for range 20 {
		cmd := startLogger(t, p, script...)
		k := 1 + rand.IntN(3000)
		seq(t, p.w, total, total+k)
		total += k
		cmd.Process.Signal(syscall.SIGKILL)
		cmd.Wait()
	}
	cmd := startLogger(t, p, script...)
	p.w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last gosv log: %v", err)
	}
	repeats := checkSeq(t, dir, total, true)
	t.Logf("%d lines through 20 SIGKILLs, %d repeated", total, repeats)
}

// TestLogSIGTERM stops gosv log with SIGTERM at random moments: every
// line exactly once.
func TestLogSIGTERM(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := newLogPipe(t)
	script := []string{"t", "s4096", "n10000", dir}
	total := 0
	for range 20 {
		cmd := startLogger(t, p, script...)
		k := 1 + rand.IntN(3000)
		seq(t, p.w, total, total+k)
		total += k
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Fatalf("gosv log on SIGTERM: %v", err)
		}
	}
	cmd := startLogger(t, p, script...)
	p.w.Close()
	if err := cmd.Wait(); err != nil {
		t.Fatalf("last gosv log: %v", err)
	}
	checkSeq(t, dir, total, false)
}

// TestLogUnderSupervisor runs a service with a log/run under the real
// s6-svscan and under gosv svscan. With gosv log as the logger, it is
// SIGKILLed in the middle and restarted by its supervisor, which holds the
// pipe: no line is lost. The real s6-log (not killed: it loses what it
// buffered) must work under gosv svscan too.
func TestLogUnderSupervisor(t *testing.T) {
	for _, tt := range []struct {
		name, bin, logger string
		kill              bool
	}{
		{"s6-svscan/gosv-log", "/usr/bin/s6-svscan", gosvBin + " log", true},
		{"gosv-svscan/gosv-log", gosvBin, gosvBin + " log", true},
		{"gosv-svscan/s6-log", gosvBin, "/usr/bin/s6-log", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var args []string
			if tt.bin == gosvBin {
				args = append(args, "svscan")
			}
			if tt.bin != gosvBin || !strings.HasPrefix(tt.logger, gosvBin) {
				needS6(t)
			}
			testLogUnderSupervisor(t, tt.bin, args, tt.logger, tt.kill)
		})
	}
}

func testLogUnderSupervisor(t *testing.T, bin string, args []string, logger string, kill bool) {
	tmp := t.TempDir()
	scan, logDir := filepath.Join(tmp, "scan"), filepath.Join(tmp, "log")
	gate, never := filepath.Join(tmp, "gate"), filepath.Join(tmp, "never")
	for _, f := range []string{gate, never} {
		if err := unix.Mkfifo(f, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	os.Mkdir(logDir, 0o700)
	const n, half = 20000, 10000
	// The service writes n numbered lines, waiting on the gate fifo after
	// half of them, then blocks for good (a restart would repeat lines).
	files := map[string]string{
		"svc/run": fmt.Sprintf(`#!/bin/sh
lines() { awk -v from=$1 -v to=$2 'BEGIN { for (i = from; i < to; i++) { x = ""; for (j = 0; j < i %% 50; j++) x = x "x"; printf "seq %%d %%s\n", i, x } }'; }
lines 0 %d
read x < %s
lines %d %d
exec cat %s
`, half, gate, half, n, never),
		"svc/log/run": fmt.Sprintf("#!/bin/sh\nexec %s t s4096 n10000 %s\n", logger, logDir),
	}
	for name, content := range files {
		p := filepath.Join(scan, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	sv := exec.Command(bin, append(args, scan)...)
	sv.Stdout, sv.Stderr = os.Stderr, os.Stderr
	if err := sv.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			gosv(t, "svscanctl", "-t", scan)
			sv.Wait()
		}
	}
	defer stop()
	waitLog(t, logDir, half)
	if kill {
		res := gosv(t, "svstat", "-o", "pid", filepath.Join(scan, "svc", "log"))
		pid, err := strconv.Atoi(strings.TrimSpace(res.stdout))
		if err != nil || pid <= 0 {
			t.Fatalf("logger pid: %q %v", res.stdout, err)
		}
		syscall.Kill(pid, syscall.SIGKILL)
	}
	g, err := os.OpenFile(gate, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Write([]byte("go\n"))
	g.Close()
	waitLog(t, logDir, n)
	stop() // the loggers exit cleanly: no rotation under way while the test reads
	repeats := checkSeq(t, logDir, n, kill)
	t.Logf("%d lines, logger SIGKILLed: %v, %d repeated", n, kill, repeats)
}

// waitLog waits, on inotify events of the log directory, until it holds
// line want-1.
func waitLog(t *testing.T, dir string, want int) {
	t.Helper()
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	marker := fmt.Sprintf("seq %d ", want-1)
	deadline := time.Now().Add(60 * time.Second)
	buf := make([]byte, 4096)
	for {
		lines, err := logdir.Tail(dir, 3)
		if err == nil && bytes.Contains(bytes.Join(lines, nil), []byte(marker)) {
			return
		}
		left := time.Until(deadline)
		if left <= 0 {
			out, _ := exec.Command("ps", "-eo", "pid,ppid,stat,args").Output()
			t.Fatalf("line %d never logged; last lines %q\n%s", want-1, lines, out)
		}
		pfd := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if n, _ := unix.Poll(pfd, int(left.Milliseconds())+1); n > 0 {
			unix.Read(ino, buf)
		}
	}
}
