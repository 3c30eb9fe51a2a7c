package logdir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

func TestConsumeLines(t *testing.T) {
	tests := []struct {
		name   string
		writes []string // each followed by a Consume
		close  bool     // close the write end before the last Consume
		limit  int
		want   string
	}{
		{"whole lines", []string{"a\nb\n"}, false, 0, "a\nb\n"},
		{"partial line written", []string{"a\nb"}, false, 0, "a\nb"},
		{"partial completed", []string{"a\nb", "c\n"}, false, 0, "a\nbc\n"},
		{"eof adds newline", []string{"a\nb"}, true, 0, "a\nb\n"},
		{"empty lines", []string{"\n\n\n"}, false, 0, "\n\n\n"},
		{"line limit", []string{strings.Repeat("x", 100) + "\n"}, false, 48,
			strings.Repeat("x", 48) + "\n" + strings.Repeat("x", 48) + "\n" + "xxxx\n"},
		{"line limit exact", []string{strings.Repeat("x", 48) + "\n"}, false, 48, strings.Repeat("x", 48) + "\n"},
		{"line limit on partial", []string{strings.Repeat("y", 50)}, false, 48, strings.Repeat("y", 48) + "\nyy"},
		{"line limit across writes", []string{strings.Repeat("y", 30), strings.Repeat("y", 30) + "\n"}, false, 48,
			strings.Repeat("y", 48) + "\n" + strings.Repeat("y", 12) + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			p := testPipe(t)
			sc := testScratch(t)
			l := mustOpen(t, mustScript(t, dir), Options{LineLimit: tt.limit})
			defer l.Close()
			for i, w := range tt.writes {
				writeAllT(t, p[1], []byte(w))
				if tt.close && i == len(tt.writes)-1 {
					closeW(p)
				}
				if _, _, err := consumeAll(t, l, p[0], sc); err != nil {
					t.Fatal(err)
				}
			}
			if tt.close {
				if _, eof, _ := consumeAll(t, l, p[0], sc); !eof {
					t.Error("no eof")
				}
			}
			if got := logText(t, dir); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestStampOncePerLine: a line completed in a later batch gets one stamp,
// the time its first bytes were handled.
func TestStampOncePerLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	clock := newClock()
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, "t", dir), Options{Now: clock.Now})
	defer l.Close()
	writeAllT(t, p[1], []byte("one\ntw"))
	consumeAll(t, l, p[0], sc)
	clock.Add(time.Second)
	writeAllT(t, p[1], []byte("o\n"))
	consumeAll(t, l, p[0], sc)
	t0 := servicedir.TAI64NFromTime(clock.t.Add(-time.Second)).String()
	if got, want := logText(t, dir), t0+" one\n"+t0+" two\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestStampsAndPrefix(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	clock := newClock()
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "t", "T", "pP:", dir), Options{Now: clock.Now})
	defer l.Close()
	writeAllT(t, p[1], []byte("x\n"))
	consumeAll(t, l, p[0], testScratch(t))
	want := servicedir.TAI64NFromTime(clock.t).String() + " " +
		clock.t.Local().Format("2006-01-02 15:04:05.000000000") + "  P: x\n"
	if got := logText(t, dir); got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestWholeLineMode: with selections an incomplete line is taken out of
// the pipe into memory (the pipe is left empty) and handled whole.
func TestWholeLineMode(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, "-^x", dir), Options{})
	defer l.Close()
	writeAllT(t, p[1], []byte("a\nb"))
	consumeAll(t, l, p[0], sc)
	if got := logText(t, dir); got != "a\n" || pipeLen(t, p[0]) != 0 {
		t.Errorf("got %q, %d bytes left in the pipe", got, pipeLen(t, p[0]))
	}
	writeAllT(t, p[1], []byte("c\nxd\ne"))
	closeW(p)
	consumeAll(t, l, p[0], sc)
	if _, eof, _ := consumeAll(t, l, p[0], sc); !eof {
		t.Error("no eof")
	}
	if got := logText(t, dir); got != "a\nbc\ne\n" {
		t.Errorf("got %q", got)
	}
}

// TestContinueLineAfterRestart: a logger that stopped in the middle of a
// line leaves its rest to the next one, which adds no stamp.
func TestContinueLineAfterRestart(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	clock := newClock()
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "t", dir), Options{Now: clock.Now})
	writeAllT(t, p[1], []byte("one\ntw"))
	consumeAll(t, l, p[0], testScratch(t))
	l.Close()
	l = mustOpen(t, mustScript(t, "t", dir), Options{Now: clock.Now})
	defer l.Close()
	writeAllT(t, p[1], []byte("o\nthree\n"))
	consumeAll(t, l, p[0], testScratch(t))
	if got, want := stripStamps(logText(t, dir)), "one\ntwo\nthree\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

// TestPartialLineHangup: the writer closes after an incomplete line while
// the pipe is not empty; the line is written (with a newline) and EOF
// follows.
func TestPartialLineHangup(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, dir), Options{})
	defer l.Close()
	writeAllT(t, p[1], []byte("a\nb"))
	consumeAll(t, l, p[0], sc)
	closeW(p)
	_, eof, _ := consumeAll(t, l, p[0], sc)
	if !eof {
		_, eof, _ = consumeAll(t, l, p[0], sc)
	}
	if got := logText(t, dir); got != "a\nb\n" || !eof {
		t.Errorf("got %q, eof %v", got, eof)
	}
}

// TestNotAPipe: a regular file as input is read instead of teed.
func TestNotAPipe(t *testing.T) {
	tmp := t.TempDir()
	in := filepath.Join(tmp, "in")
	data := seqLines(0, 3000, 60)
	if err := os.WriteFile(in, append(data, "tail"...), 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(in)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	dir := filepath.Join(tmp, "log")
	l := mustOpen(t, mustScript(t, dir), Options{})
	defer l.Close()
	_, eof, err := consumeAll(t, l, int(f.Fd()), testScratch(t))
	if !eof || err != nil {
		t.Fatalf("eof %v, err %v", eof, err)
	}
	if got := logText(t, dir); got != string(data)+"tail\n" {
		t.Errorf("got %d bytes, want %d", len(got), len(data)+5)
	}
}

func TestSelectionToDirs(t *testing.T) {
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "a"), filepath.Join(tmp, "b")
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "-^debug", a, "-.*", "+^debug", "+error", b), Options{})
	defer l.Close()
	writeAllT(t, p[1], []byte("info 1\ndebug 2\nerror 3\ninfo 4\n"))
	consumeAll(t, l, p[0], testScratch(t))
	if got := logText(t, a); got != "info 1\nerror 3\ninfo 4\n" {
		t.Errorf("a: %q", got)
	}
	if got := logText(t, b); got != "debug 2\nerror 3\n" {
		t.Errorf("b: %q", got)
	}
}

// TestRotationSizeAndCount: archives never exceed s, are filled to within
// one line of it, and exactly n are kept; everything not trimmed is there
// once, in order.
func TestRotationSizeAndCount(t *testing.T) {
	for _, lineWidth := range []int{60, 61, 1000} {
		t.Run(fmt.Sprint(lineWidth), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			p := testPipe(t)
			sc := testScratch(t)
			l := mustOpen(t, mustScript(t, "s4096", "n3", dir), Options{})
			const total = 1000
			step := 50000 / lineWidth // stay below the pipe's 64 KiB
			for i := 0; i < total; i += step {
				writeAllT(t, p[1], seqLines(i, min(step, total-i), lineWidth))
				consumeAll(t, l, p[0], sc)
			}
			l.Close()
			files := logFiles(t, dir)
			if len(files) != 4 {
				t.Fatalf("files %v, want 3 archives and current", files)
			}
			for _, f := range files[:3] {
				fi, _ := os.Stat(filepath.Join(dir, f))
				if fi.Size() > 4096 || fi.Size() <= 4096-int64(lineWidth) {
					t.Errorf("%s: %d bytes, want (%d, 4096]", f, fi.Size(), 4096-lineWidth)
				}
				if fi.Mode().Perm() != donePerm || !strings.HasSuffix(f, ".s") {
					t.Errorf("%s: mode %v", f, fi.Mode())
				}
			}
			got := logText(t, dir)
			all := string(seqLines(0, total, lineWidth))
			if !strings.HasSuffix(all, got) || len(got) < 3*(4096-lineWidth) {
				t.Errorf("kept text is not the tail of the input (%d bytes)", len(got))
			}
		})
	}
}

func TestRotationTotalSize(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "s4096", "n100", "S10000", dir), Options{})
	defer l.Close()
	writeAllT(t, p[1], seqLines(0, 1000, 64))
	consumeAll(t, l, p[0], testScratch(t))
	var total int64
	files := logFiles(t, dir)
	for _, f := range files[:len(files)-1] {
		fi, _ := os.Stat(filepath.Join(dir, f))
		total += fi.Size()
	}
	if len(files) != 3 || total > 10000 {
		t.Errorf("files %v, archives total %d", files, total)
	}
}

// TestArchiveNamesGrow: a clock stepping back never makes a new archive
// sort before an older one.
func TestArchiveNamesGrow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	clock := newClock()
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, "s4096", dir), Options{Now: clock.Now})
	defer l.Close()
	for i := range 5 {
		writeAllT(t, p[1], seqLines(i*100, 100, 60))
		consumeAll(t, l, p[0], sc)
		clock.Add(-time.Hour)
	}
	if got, want := stripStamps(logText(t, dir)), string(seqLines(0, 500, 60)); got != want {
		t.Errorf("order broken:\n%.200q", got)
	}
}

// TestStampsDecodeWithS6 feeds the t stamps to the real s6-tai64nlocal.
func TestStampsDecodeWithS6(t *testing.T) {
	bin := needTool(t, "/usr/bin/s6-tai64nlocal")
	dir := filepath.Join(t.TempDir(), "log")
	clock := newClock()
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "t", dir), Options{Now: clock.Now})
	writeAllT(t, p[1], []byte("hello\n"))
	consumeAll(t, l, p[0], testScratch(t))
	l.Close()
	cmd := exec.Command(bin)
	cmd.Stdin = strings.NewReader(logText(t, dir))
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	want := clock.t.UTC().Format("2006-01-02 15:04:05.000000000") + " hello\n"
	if string(out) != want {
		t.Errorf("s6-tai64nlocal: %q, want %q", out, want)
	}
}

func TestLocked(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	l := mustOpen(t, mustScript(t, dir), Options{})
	defer l.Close()
	if _, err := Open(mustScript(t, dir), Options{}); !errors.Is(err, servicedir.ErrLocked) {
		t.Errorf("second Open: %v", err)
	}
}

// TestLockedByS6Log: a directory a running s6-log holds is refused, and
// s6-log refuses one a Logger holds.
func TestLockedByS6Log(t *testing.T) {
	s6log := needS6Log(t)
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(s6log, "-d3", dir)
	r, w, _ := os.Pipe()
	cmd.ExtraFiles = []*os.File{w}
	stdin, _ := cmd.StdinPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	if _, err := r.Read(make([]byte, 1)); err != nil { // s6-log is ready
		t.Fatal(err)
	}
	_, err := Open(mustScript(t, dir), Options{})
	stdin.Close()
	cmd.Wait()
	if !errors.Is(err, servicedir.ErrLocked) {
		t.Errorf("Open beside s6-log: %v", err)
	}
	l := mustOpen(t, mustScript(t, dir), Options{})
	defer l.Close()
	out, err := exec.Command(s6log, dir).CombinedOutput()
	if err == nil {
		t.Errorf("s6-log ran beside a Logger: %s", out)
	}
}

// TestS6LogDirInterop: a directory written by s6-log is continued by a
// Logger and the other way round.
func TestS6LogDirInterop(t *testing.T) {
	s6log := needS6Log(t)
	dir := filepath.Join(t.TempDir(), "log")
	cmd := exec.Command(s6log, "s4096", dir)
	cmd.Stdin = bytes.NewReader(seqLines(0, 100, 60))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("s6-log: %v %s", err, out)
	}
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "s4096", dir), Options{})
	writeAllT(t, p[1], seqLines(100, 100, 60))
	consumeAll(t, l, p[0], testScratch(t))
	l.Close()
	cmd = exec.Command(s6log, "s4096", dir)
	cmd.Stdin = bytes.NewReader(seqLines(200, 100, 60))
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("s6-log: %v %s", err, out)
	}
	if got := logText(t, dir); got != string(seqLines(0, 300, 60)) {
		t.Errorf("interleaved logs differ: %d bytes", len(got))
	}
}

func TestConsumeNoAlloc(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	for _, staged := range []bool{false, true} {
		dir := filepath.Join(t.TempDir(), "log")
		p := testPipe(t)
		sc := testScratch(t)
		var opts Options
		if staged {
			st := newStageT(t)
			opts.Stage = st
		}
		l := mustOpen(t, mustScript(t, "t", "-^debug", "s1000000", dir), opts)
		defer l.Close()
		chunk := seqLines(0, 100, 60)
		allocs := testing.AllocsPerRun(100, func() {
			if _, err := writeFull(p[1], chunk); err != nil {
				t.Fatal(err)
			}
			if _, _, err := l.Consume(p[0], sc); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("staged %v: %v allocations per Consume", staged, allocs)
		}
	}
}

func TestSetPipeSize(t *testing.T) {
	p := testPipe(t)
	n, err := SetPipeSize(p[0], PipeSize)
	if err != nil || n != PipeSize {
		t.Errorf("SetPipeSize = %d, %v", n, err)
	}
	if n, _ := unix.FcntlInt(uintptr(p[1]), unix.F_GETPIPE_SZ, 0); n != PipeSize {
		t.Errorf("pipe size %d", n)
	}
}

func pipeLen(t *testing.T, fd int) int {
	t.Helper()
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
	if err != nil {
		t.Fatal(err)
	}
	return n
}
