package logdir

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fakeClock is a clock tests advance by hand.
type fakeClock struct{ t time.Time }

func newClock() *fakeClock { return &fakeClock{t: time.Unix(1_800_000_000, 0)} }

func (c *fakeClock) Now() time.Time { return c.t }

func (c *fakeClock) Add(d time.Duration) { c.t = c.t.Add(d) }

// testPipe returns a pipe whose read end is non-blocking; both ends are
// closed at cleanup unless the test closed them (set to -1).
func testPipe(t *testing.T) *[2]int {
	t.Helper()
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := unix.SetNonblock(p[0], true); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for _, fd := range p {
			if fd >= 0 {
				unix.Close(fd)
			}
		}
	})
	return &p
}

func closeW(p *[2]int) {
	unix.Close(p[1])
	p[1] = -1
}

func writeAllT(t *testing.T, fd int, b []byte) {
	t.Helper()
	if _, err := writeFull(fd, b); err != nil {
		t.Fatal(err)
	}
}

func testScratch(t *testing.T) *Scratch {
	t.Helper()
	sc, err := NewScratch()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sc.Close() })
	return sc
}

func mustScript(t testing.TB, args ...string) *Script {
	t.Helper()
	s, err := ParseScript(args)
	if err != nil {
		t.Fatalf("ParseScript(%q): %v", args, err)
	}
	return s
}

func mustOpen(t testing.TB, s *Script, opts Options) *Logger {
	t.Helper()
	l, err := Open(s, opts)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// consumeAll calls Consume until it returns with nothing more to do now
// (no deadline of "now").
func consumeAll(t *testing.T, l *Logger, fd int, sc *Scratch) (time.Time, bool, error) {
	t.Helper()
	for {
		at, eof, err := l.Consume(fd, sc)
		if eof || at.IsZero() || at.After(l.opts.Now()) || err != nil {
			return at, eof, err
		}
	}
}

// logFiles returns the archives (oldest first) and current of dir.
func logFiles(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		if _, ok := archiveLabel(e.Name()); ok {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	if _, err := os.Stat(filepath.Join(dir, currentName)); err == nil {
		out = append(out, currentName)
	}
	return out
}

// logText is the concatenation of every archive and current of dir.
func logText(t *testing.T, dir string) string {
	t.Helper()
	var b bytes.Buffer
	for _, f := range logFiles(t, dir) {
		data, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		b.Write(data)
	}
	return b.String()
}

// seqLines is n lines "line 000001 ..." padded to width bytes with the newline.
func seqLines(from, n, width int) []byte {
	var b bytes.Buffer
	for i := from; i < from+n; i++ {
		s := fmt.Sprintf("line %06d ", i)
		b.WriteString(s + strings.Repeat("x", width-len(s)-1) + "\n")
	}
	return b.Bytes()
}

// stripStamps removes a leading TAI64N stamp from every line.
func stripStamps(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, ln := range lines {
		if _, ok := parseTAI64N([]byte(ln)); ok && len(ln) >= taiStampLen {
			lines[i] = ln[taiStampLen:]
		}
	}
	return strings.Join(lines, "")
}

// pipe makes a pipe with a non-blocking read end (benchmarks).
func pipe(p []int) error {
	if err := unix.Pipe2(p, unix.O_CLOEXEC); err != nil {
		return err
	}
	return unix.SetNonblock(p[0], true)
}
