package scan

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/svctl"
	"github.com/gosv/gosv/svwait"
)

// warnings collects the scanner's stderr lines as they come.
type warnings struct {
	mu    sync.Mutex
	lines []string
	more  chan struct{} // signalled after each line
}

// startScannerWarnings is startScanner with the scanner's stderr captured.
func startScannerWarnings(t *testing.T, dir string) (*tree, *warnings) {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	wr := &warnings{more: make(chan struct{}, 1)}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			os.Stderr.WriteString(sc.Text() + "\n")
			wr.mu.Lock()
			wr.lines = append(wr.lines, sc.Text())
			wr.mu.Unlock()
			select {
			case wr.more <- struct{}{}:
			default:
			}
		}
	}()
	tr := startScannerTo(t, dir, w)
	w.Close()
	return tr, wr
}

// count returns how many lines contain all of subs.
func (w *warnings) count(subs ...string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	n := 0
next:
	for _, l := range w.lines {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		n++
	}
	return n
}

// sync makes the scanner print a marker warning (an unknown svscanctl
// letter) and waits for it: every line the scanner printed before is then
// in w. Each call needs a distinct letter (the marker is reported once).
func (w *warnings) sync(t *testing.T, scan string, letter byte) {
	t.Helper()
	if err := svctl.Svscanctl(scan, []byte{letter}); err != nil {
		t.Fatal(err)
	}
	want := "received unknown control command: '" + string(letter) + "'"
	timeout := time.After(10 * time.Second)
	for w.count(want) == 0 {
		select {
		case <-w.more:
		case <-timeout:
			t.Fatalf("no %q from the scanner", want)
		}
	}
}

// TestMovedServiceKeepsSupervising (issue 9, defect 7): a real service
// directory moved out of the scan directory stays supervised through the
// directory the scanner holds, as s6-supervise does from inside it: its
// deaths and restarts are recorded in the moved directory, with no
// warning.
func TestMovedServiceKeepsSupervising(t *testing.T) {
	scan := t.TempDir()
	_, w := startScannerWarnings(t, scan)
	src := mksvc(t, scan, "mv", pauseRun, map[string]string{"notification-fd": "3\n"})
	sub, err := servicedir.Subscribe(src)
	if err != nil {
		t.Fatal(err)
	}
	in := filepath.Join(scan, "mv")
	if err := os.Rename(src, in); err != nil {
		t.Fatal(err)
	}
	waitEvent(t, sub, "s")
	sub.Close()
	waitFor(t, in, svwait.Up)
	out := filepath.Join(t.TempDir(), "moved")
	if err := os.Rename(in, out); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		pid := status(t, out).Pid
		wt, err := svwait.Listen([]string{out}, svwait.Down, svwait.All)
		if err != nil {
			t.Fatal(err)
		}
		unix.Kill(pid, unix.SIGKILL)
		if err := wt.Wait(deadline(t)); err != nil {
			t.Fatalf("death %d not seen in the moved directory: %v", i, err)
		}
		wt.Close()
		waitFor(t, out, svwait.Up)
		if st := status(t, out); st.Pid == pid || st.Wstat != uint16(unix.SIGKILL) {
			t.Fatalf("restart %d: status %+v", i, st)
		}
	}
	if ds, err := servicedir.ReadDeathTally(out); err != nil || len(ds) != 3 {
		t.Errorf("death tally of the moved dir: %d records, %v; want 3", len(ds), err)
	}
	w.sync(t, scan, 'Y')
	// The marker itself, and the early-death line of the first kill (it
	// comes within a second of the start: a report by design).
	if n := w.count("warning") - w.count("after its start:"); n != 1 {
		t.Errorf("%d warnings, want none but the marker", n-1)
	}
	// d still reaches it, and the service goes down for good.
	ctlWait(t, out, "d", svwait.DownReady)
}

// TestWarningsOnce (issue 9, defect 6): a problem the scanner meets again
// and again is reported once, naming the file and the right bound.
func TestWarningsOnce(t *testing.T) {
	scan := t.TempDir()
	_, w := startScannerWarnings(t, scan)
	// A crash-looping service with a bad max-death-tally: read at each death.
	crash := "#!/bin/sh\nexit 3\n"
	dt := link(t, scan, mksvc(t, scan, "dt", crash, map[string]string{"max-death-tally": "lots\n"}))
	// notification-fd beyond any limit, and beyond this process's.
	nf1 := link(t, scan, mksvc(t, scan, "nf1", crash, map[string]string{"notification-fd": "2000000\n"}))
	var rl unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &rl)
	nf2 := link(t, scan, mksvc(t, scan, "nf2", pauseRun, map[string]string{"notification-fd": "99999\n"}))
	// Unusable entries: supervise/ is a file; a symlink loop.
	bad := mksvc(t, scan, "badsup", pauseRun, map[string]string{"supervise": "not a dir\n"})
	if err := os.Symlink(bad, filepath.Join(scan, "badsup")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("loop", filepath.Join(scan, "loop")); err != nil {
		t.Fatal(err)
	}
	// Five deaths of each crashing service (spawns are 1 s apart).
	for _, d := range []string{dt, nf1} {
		sub, err := servicedir.Subscribe(d)
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			waitEvent(t, sub, "d")
		}
		sub.Close()
	}
	waitFor(t, nf2, svwait.Up)
	// Rescans retake the unusable entries.
	for i := 0; i < 4; i++ {
		svctl.Svscanctl(scan, []byte("a"))
	}
	w.sync(t, scan, 'Y')
	for _, c := range []struct {
		subs []string
		want int
	}{
		{[]string{"dt/max-death-tally", "invalid value"}, 1},
		{[]string{"nf1/notification-fd", "fd 2000000", "must be at most"}, 1},
		{[]string{"badsup", "not a directory"}, 1},
		{[]string{"loop", "too many levels of symbolic links"}, 1},
	} {
		if n := w.count(c.subs...); n != c.want {
			t.Errorf("%d lines with %q, want %d", n, c.subs, c.want)
		}
	}
	if rl.Cur <= 99999 {
		if n := w.count("nf2/notification-fd", "fd 99999", "RLIMIT_NOFILE"); n != 1 {
			t.Errorf("%d lines naming nf2/notification-fd and RLIMIT_NOFILE, want 1", n)
		}
	}
	if n := w.count("bad file descriptor"); n != 0 {
		t.Errorf("%d spawn failures with EBADF, want 0 (notification-fd validated first)", n)
	}

	// A new version of the file is a new problem: reported once more,
	// even with the same bad value.
	sub, err := servicedir.Subscribe(dt)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	tmp := filepath.Join(dt, "max-death-tally.tmp")
	if err := os.WriteFile(tmp, []byte("lots\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dt, "max-death-tally")); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		waitEvent(t, sub, "d")
	}
	w.sync(t, scan, 'W')
	if n := w.count("dt/max-death-tally", "invalid value"); n != 2 {
		t.Errorf("%d lines about max-death-tally after it was rewritten, want 2", n)
	}
}
