package logdir

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/tests/testns"
)

// smallFS mounts a tmpfs of size bytes and returns its path.
func smallFS(t *testing.T, size int) string {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, fmt.Sprintf("size=%d", size)); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
	return mnt
}

// fill writes a file until the file system is full, then frees keep bytes.
func fill(t *testing.T, path string, keep int64) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	var n int64
	for {
		k, err := f.Write(buf)
		n += int64(k)
		if errors.Is(err, unix.ENOSPC) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Truncate(max(0, n-keep)); err != nil {
		t.Fatal(err)
	}
}

func pipeBytes(t *testing.T, fd int) int {
	t.Helper()
	n, err := unix.IoctlGetInt(fd, unix.TIOCINQ) // FIONREAD
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestENOSPC fills the file system under a log directory, in both modes.
func TestENOSPC(t *testing.T) {
	if !testns.InMountNS(t) {
		return
	}
	t.Run("lossless", testENOSPCLossless)
	t.Run("bounded", func(t *testing.T) { testENOSPCBounded(t, true) })
	t.Run("bounded-eof", func(t *testing.T) { testENOSPCBounded(t, false) })
}

// Lossless: the failure is reported once, nothing leaves the pipe until
// the disk has room, the service finds its pipe full, and after the disk
// is freed every line is there once, including a chunk whose write was
// cut short by the full disk.
func testENOSPCLossless(t *testing.T) {
	mnt := smallFS(t, 1<<20)
	dir := filepath.Join(mnt, "log")
	clock := newClock()
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, "t", "s8192", "n1000", dir), Options{Now: clock.Now})
	defer l.Close()
	input := seqLines(0, 300, 60)
	writeAllT(t, p[1], input[:6000])
	consumeAll(t, l, p[0], sc)
	fill(t, filepath.Join(mnt, "filler"), 8192) // room for 2 pages: the next big write is cut short
	writeAllT(t, p[1], input[6000:])
	at, _, err := consumeAll(t, l, p[0], sc)
	if !errors.Is(err, unix.ENOSPC) || !at.Equal(clock.t.Add(DefaultRetry)) {
		t.Fatalf("at %v, err %v", at, err)
	}
	held := pipeBytes(t, p[0])
	if _, _, err := consumeAll(t, l, p[0], sc); err != nil {
		t.Errorf("reported twice: %v", err)
	}
	if got := pipeBytes(t, p[0]); got != held || got == 0 {
		t.Errorf("pipe went from %d to %d bytes before the retry", held, got)
	}
	clock.Add(DefaultRetry)
	if _, _, err := consumeAll(t, l, p[0], sc); err != nil {
		t.Errorf("reported twice: %v", err)
	}
	unix.SetNonblock(p[1], true)
	for { // the service writes on until its pipe is full: it would block
		if _, err := unix.Write(p[1], []byte("more\n")); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		input = append(input, "more\n"...)
	}
	os.Remove(filepath.Join(mnt, "filler"))
	clock.Add(DefaultRetry)
	closeW(p)
	if _, eof, err := consumeAll(t, l, p[0], sc); !eof || err != nil {
		t.Fatalf("eof %v, err %v", eof, err)
	}
	if got := stripStamps(logText(t, dir)); got != string(input) {
		t.Errorf("lines lost or repeated:\n%.2000s", diffLines(got, string(input)))
	}
}

// Bounded loss (-B): the pipe keeps flowing, LossBytes of lines are kept,
// the rest dropped and counted, in order.
func testENOSPCBounded(t *testing.T, more bool) {
	mnt := smallFS(t, 1<<20)
	dir := filepath.Join(mnt, "log")
	clock := newClock()
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, dir), Options{Now: clock.Now, LossBytes: 600})
	defer l.Close()
	writeAllT(t, p[1], seqLines(0, 10, 60))
	consumeAll(t, l, p[0], sc)
	os.Truncate(filepath.Join(dir, "current"), 0) // so that the next write needs a new page
	fill(t, filepath.Join(mnt, "filler"), 0)
	writeAllT(t, p[1], seqLines(10, 100, 60))
	at, _, err := consumeAll(t, l, p[0], sc)
	if !errors.Is(err, unix.ENOSPC) || at.IsZero() {
		t.Fatalf("at %v, err %v", at, err)
	}
	if n := pipeBytes(t, p[0]); n != 0 {
		t.Errorf("bounded-loss mode left %d bytes in the pipe", n)
	}
	os.Remove(filepath.Join(mnt, "filler"))
	clock.Add(time.Hour)
	want := string(seqLines(10, 10, 60)) + "gosv: dropped 90 lines: the log directory was not writable\n"
	if more {
		writeAllT(t, p[1], seqLines(110, 5, 60))
		want += string(seqLines(110, 5, 60))
	}
	closeW(p)
	if _, eof, err := consumeAll(t, l, p[0], sc); !eof || err != nil {
		t.Fatalf("eof %v, err %v", eof, err)
	}
	if got := logText(t, dir); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}
}
