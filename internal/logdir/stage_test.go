package logdir

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// stageCrash is what the hooks panic with to kill a staged logger.
type stageCrash struct{ at string }

// stageCase is one script fed in chunks through a staged logger.
type stageCase struct {
	name  string
	args  func(dirs []string) []string // the script, given its log directories
	ndirs int
	input []byte
	chunk int                             // bytes written to the pipe per Consume round
	want  func(dir int, in []byte) []byte // what directory dir must hold
	strip bool                            // remove the t stamps before comparing
}

func stageCases() []stageCase {
	all := func(_ int, in []byte) []byte { return in }
	return []stageCase{
		{name: "rotating", ndirs: 1, input: seqLines(0, 300, 60), chunk: 1500, want: all,
			args: func(d []string) []string { return []string{"s4096", "n100", d[0]} }},
		{name: "two-dirs", ndirs: 2, input: seqLines(0, 300, 60), chunk: 2000, want: all,
			args: func(d []string) []string { return []string{"s4096", "n100", d[0], "s3000", d[1]} }},
		// Tiny stamped lines: several writes per directory in one batch.
		{name: "stamped-tiny", ndirs: 1, input: seqLines(0, 12000, 13), chunk: 40000, want: all, strip: true,
			args: func(d []string) []string { return []string{"t", "s400000", "n100", d[0]} }},
		// Whole-line mode: chunks cut lines; a crash keeps the cut line.
		{name: "selection", ndirs: 1, input: seqLines(0, 300, 60), chunk: 1500,
			want: func(_ int, in []byte) []byte {
				var b []byte
				for _, ln := range bytes.SplitAfter(in, []byte("\n")) {
					if !bytes.HasPrefix(ln, []byte("line 00001")) {
						b = append(b, ln...)
					}
				}
				return b
			},
			args: func(d []string) []string { return []string{"s4096", "-line 00001.*", d[0]} }},
	}
}

// runStaged feeds c through a staged logger that is killed at the
// crashAt-th event (a stage point or a rotation step; 0: never), with a
// torn write when tear is set and the event is a write; a new logger
// takes the same stage and pipe and finishes. It returns the number of
// events seen and whether the crash happened.
func runStaged(t *testing.T, c stageCase, crashAt int, tear bool) (events int, crashed bool) {
	t.Helper()
	base := t.TempDir()
	var dirs []string
	for i := range c.ndirs {
		dirs = append(dirs, filepath.Join(base, fmt.Sprintf("log%d", i)))
	}
	script := mustScript(t, c.args(dirs)...)
	p := testPipe(t)
	sc := testScratch(t)
	st, err := NewStage()
	if err != nil {
		t.Fatal(err)
	}
	l := mustOpen(t, script, Options{Stage: st})
	hit := func(at string) {
		events++
		if events == crashAt {
			panic(stageCrash{at})
		}
	}
	l.hook = func(_ string, s rotStep) error { hit("before " + s.String()); return nil }
	l.stageHook = func(sp stagePoint, d *logDir, out []byte) {
		if sp == spWrite && tear && events+1 == crashAt {
			writeFull(d.fd, out[:len(out)/2])
		}
		hit(sp.String())
	}
	consume := func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(stageCrash); !ok {
					panic(r)
				}
				crashed = true
				abandon(l)
				fd, err := unix.Dup(st.Fd())
				if err != nil {
					t.Fatal(err)
				}
				st.Close()
				if st, err = StageFrom(fd); err != nil {
					t.Fatal(err)
				}
				l = mustOpen(t, script, Options{Stage: st})
			}
		}()
		consumeAll(t, l, p[0], sc)
	}
	for in := c.input; len(in) > 0; {
		n := min(c.chunk, len(in))
		writeAllT(t, p[1], in[:n])
		in = in[n:]
		consume()
		consume() // after a crash: the new logger takes over the stage
	}
	closeW(p)
	for range 3 {
		consume()
	}
	if _, eof, err := consumeAll(t, l, p[0], sc); !eof || err != nil {
		t.Fatalf("eof %v, err %v", eof, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if n := st.pending(); n != 0 {
		t.Errorf("%d bytes left in the stage", n)
	}
	st.Close()
	for i, dir := range dirs {
		got := logText(t, dir)
		if c.strip {
			got = stripStamps(got)
		}
		if want := string(c.want(i, c.input)); got != want {
			t.Fatalf("crash at event %d (tear %v): %s: lines lost or repeated:\n%s", crashAt, tear, dir, diffLines(got, want))
		}
	}
	return events, crashed
}

// TestStageCrashEverywhere kills a staged logger at every stage point
// and rotation step in turn (and tears every write in half), then lets a
// new logger take the stage over: every directory holds every line
// exactly once, in order.
func TestStageCrashEverywhere(t *testing.T) {
	for _, c := range stageCases() {
		t.Run(c.name, func(t *testing.T) {
			total, _ := runStaged(t, c, 0, false)
			stride := 1
			if testing.Short() || raceEnabled {
				stride = max(1, total/40)
			}
			for k := 1; k <= total; k += stride {
				for _, tear := range []bool{false, true} {
					if _, crashed := runStaged(t, c, k, tear); !crashed {
						t.Fatalf("event %d of %d never came", k, total)
					}
				}
			}
		})
	}
}

// TestStageKeepsCutLine: in whole-line mode an incomplete line stays in
// the stage, so a logger killed while it waits for its newline loses
// nothing (without a stage it was taken out of the pipe into memory).
func TestStageKeepsCutLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	script := mustScript(t, "-^x", dir)
	p := testPipe(t)
	sc := testScratch(t)
	st := newStageT(t)
	l := mustOpen(t, script, Options{Stage: st})
	writeAllT(t, p[1], []byte("a\nhalf of a li"))
	consumeAll(t, l, p[0], sc)
	abandon(l)
	l = mustOpen(t, script, Options{Stage: st})
	writeAllT(t, p[1], []byte("ne\nxno\nb\n"))
	closeW(p)
	if _, eof, err := consumeAll(t, l, p[0], sc); !eof || err != nil {
		t.Fatalf("eof %v, err %v", eof, err)
	}
	l.Close()
	if got := logText(t, dir); got != "a\nhalf of a line\nb\n" {
		t.Errorf("got %q", got)
	}
}

// TestStageEndsCutLineAtEOF: input that ends without a newline gets one,
// once, even if the logger is killed right after writing it.
func TestStageEndsCutLineAtEOF(t *testing.T) {
	for _, args := range [][]string{{}, {"-^x"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			script := mustScript(t, append(args, dir)...)
			p := testPipe(t)
			sc := testScratch(t)
			st := newStageT(t)
			l := mustOpen(t, script, Options{Stage: st})
			writeAllT(t, p[1], []byte("a\nno newline"))
			consumeAll(t, l, p[0], sc)
			closeW(p)
			l.stageHook = func(sp stagePoint, _ *logDir, _ []byte) {
				if sp == spWritten {
					panic(stageCrash{})
				}
			}
			func() {
				defer func() { recover() }()
				consumeAll(t, l, p[0], sc)
			}()
			abandon(l)
			l = mustOpen(t, script, Options{Stage: st})
			if _, eof, err := consumeAll(t, l, p[0], sc); !eof || err != nil {
				t.Fatalf("eof %v, err %v", eof, err)
			}
			l.Close()
			if got := logText(t, dir); got != "a\nno newline\n" {
				t.Errorf("got %q", got)
			}
		})
	}
}

// TestStageHolesBehindHead: the stage's pages behind P are freed.
func TestStageHolesBehindHead(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	sc := testScratch(t)
	st := newStageT(t)
	l := mustOpen(t, mustScript(t, dir), Options{Stage: st})
	defer l.Close()
	for i := range 64 {
		writeAllT(t, p[1], seqLines(i*1000, 1000, 64))
		consumeAll(t, l, p[0], sc)
	}
	var s unix.Stat_t
	if err := unix.Fstat(st.Fd(), &s); err != nil {
		t.Fatal(err)
	}
	if s.Size < 4_000_000 || s.Blocks*512 > 2*stageAhead+stageHeader+8192 {
		t.Errorf("stage size %d, %d bytes allocated", s.Size, s.Blocks*512)
	}
}

// TestStageSettlesRotatedFile: a write in flight whose file was renamed
// since (another logger rotated the directory) is found by its identity
// and settled there: the torn part is cut, and the batch is written once.
func TestStageSettlesRotatedFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	script := mustScript(t, dir)
	p := testPipe(t)
	sc := testScratch(t)
	st := newStageT(t)
	l := mustOpen(t, script, Options{Stage: st})
	in := seqLines(0, 100, 60)
	writeAllT(t, p[1], in[:3000])
	consumeAll(t, l, p[0], sc)
	writeAllT(t, p[1], in[3000:])
	l.stageHook = func(sp stagePoint, d *logDir, out []byte) {
		if sp == spWrite {
			writeFull(d.fd, out[:len(out)/2])
			panic(stageCrash{})
		}
	}
	func() {
		defer func() { recover() }()
		consumeAll(t, l, p[0], sc)
	}()
	abandon(l)
	archive := filepath.Join(dir, "@400000006b49d20000000000.s")
	if err := unix.Rename(filepath.Join(dir, currentName), archive); err != nil {
		t.Fatal(err)
	}
	l = mustOpen(t, script, Options{Stage: st})
	closeW(p)
	if _, eof, err := consumeAll(t, l, p[0], sc); !eof || err != nil {
		t.Fatalf("eof %v, err %v", eof, err)
	}
	l.Close()
	if got := logText(t, dir); got != string(in) {
		t.Errorf("lines lost or repeated:\n%s", diffLines(got, string(in)))
	}
}

func newStageT(t *testing.T) *Stage {
	t.Helper()
	st, err := NewStage()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// TestStageNotAPipe: a regular file as input is read into the stage.
func TestStageNotAPipe(t *testing.T) {
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
	l := mustOpen(t, mustScript(t, dir), Options{Stage: newStageT(t)})
	defer l.Close()
	_, eof, err := consumeAll(t, l, int(f.Fd()), testScratch(t))
	if !eof || err != nil {
		t.Fatalf("eof %v, err %v", eof, err)
	}
	if got := logText(t, dir); got != string(data)+"tail\n" {
		t.Errorf("got %d bytes, want %d", len(got), len(data)+5)
	}
}

// TestStageAfterUnstagedLogger: a logger without a stage stopped in the
// middle of a line; the first staged one continues it without a stamp.
func TestStageAfterUnstagedLogger(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	clock := newClock()
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, "t", dir), Options{Now: clock.Now})
	writeAllT(t, p[1], []byte("one\ntw"))
	consumeAll(t, l, p[0], sc)
	l.Close()
	l = mustOpen(t, mustScript(t, "t", dir), Options{Now: clock.Now, Stage: newStageT(t)})
	writeAllT(t, p[1], []byte("o\nthree\n"))
	consumeAll(t, l, p[0], sc)
	l.Close()
	if got, want := stripStamps(logText(t, dir)), "one\ntwo\nthree\n"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}
