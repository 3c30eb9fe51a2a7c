package logdir

import (
	"bytes"
	"path/filepath"
	"testing"
)

// TestFeederBigWrites: a writer that fills the pipe with large blocking
// writes (128 KiB, like cat) never stalls the edge-triggered Feeder. This
// is the case where a pipe left non-empty would deadlock: the kernel does
// not wake an edge-triggered reader when a write fills a non-empty pipe.
func TestFeederBigWrites(t *testing.T) {
	for _, script := range [][]string{{"t"}, {"t", "-^debug"}} {
		dir := filepath.Join(t.TempDir(), "log")
		p := testPipe(t)
		l := mustOpen(t, mustScript(t, append(script, "s1000000", "n100", dir)...), Options{})
		f, err := NewFeeder(l, p[0])
		if err != nil {
			t.Fatal(err)
		}
		input := seqLines(0, 100_000, 61) // 6.1 MB, lines straddle the 4 KiB pages
		done := make(chan error, 1)
		go func() {
			var err error
			for b := input; len(b) > 0 && err == nil; b = b[min(len(b), 128<<10):] {
				_, err = writeFull(p[1], b[:min(len(b), 128<<10)])
			}
			closeW(p)
			done <- err
		}()
		if err := f.Run(); err != nil {
			t.Fatal(err)
		}
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		f.Close()
		l.Close()
		if got := stripStamps(logText(t, dir)); !bytes.Equal([]byte(got), input) {
			t.Errorf("%q: %d bytes logged, want %d", script, len(got), len(input))
		}
	}
}

// TestFeederStop: Stop writes what the input holds and returns, leaving
// the pipe empty.
func TestFeederStop(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, dir), Options{})
	defer l.Close()
	f, err := NewFeeder(l, p[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeAllT(t, p[1], []byte("a\nb\npartial"))
	f.Stop()
	if err := f.Run(); err != nil {
		t.Fatal(err)
	}
	if got := logText(t, dir); got != "a\nb\npartial" || pipeLen(t, p[0]) != 0 {
		t.Errorf("got %q, pipe %d", got, pipeLen(t, p[0]))
	}
}

// TestFeederStopWholeLines: in whole-line mode (selections) the incomplete
// line taken into memory is written at Stop, not lost.
func TestFeederStopWholeLines(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "-^debug", dir), Options{})
	defer l.Close()
	f, err := NewFeeder(l, p[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	writeAllT(t, p[1], []byte("a\ndebug b\npartial"))
	f.Stop()
	if err := f.Run(); err != nil {
		t.Fatal(err)
	}
	if got := logText(t, dir); got != "a\npartial\n" || pipeLen(t, p[0]) != 0 {
		t.Errorf("got %q, pipe %d", got, pipeLen(t, p[0]))
	}
}
