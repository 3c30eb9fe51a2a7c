package servicedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var listenerNameRE = regexp.MustCompile(`^ftrig1:@[0-9a-f]{24}:[A-Za-z0-9_-]{6}$`)

func TestListenerName(t *testing.T) {
	now := time.Unix(0x6b0246de-37, 0x3453eb63)
	for range 50 {
		name := listenerName(now)
		if len(name) != EventFifoNameLen || !listenerNameRE.MatchString(name) ||
			!strings.HasPrefix(name, "ftrig1:@400000006b0246de3453eb63:") {
			t.Fatalf("listenerName = %q", name)
		}
	}
}

func TestMakeEventDir(t *testing.T) {
	gid := os.Getegid()
	wantMode := os.ModeDir | os.ModeSetgid | os.ModeSticky | 0o730
	t.Run("new", func(t *testing.T) {
		old := unix.Umask(0o077) // must not matter
		defer unix.Umask(old)
		d := filepath.Join(t.TempDir(), EventDir)
		if err := MakeEventDir(d, gid); err != nil {
			t.Fatal(err)
		}
		assertDirMode(t, d, wantMode, gid)
	})
	t.Run("public", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), EventDir)
		if err := MakeEventDir(d, -1); err != nil {
			t.Fatal(err)
		}
		assertDirMode(t, d, os.ModeDir|os.ModeSticky|0o733, -1)
	})
	t.Run("existing untouched", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), EventDir)
		mkdir(t, d)
		if err := os.Chmod(d, 0o751); err != nil {
			t.Fatal(err)
		}
		if err := MakeEventDir(d, gid); err != nil {
			t.Fatal(err)
		}
		assertDirMode(t, d, os.ModeDir|0o751, -1)
	})
	t.Run("dangling symlink", func(t *testing.T) {
		root := t.TempDir()
		d := filepath.Join(root, EventDir)
		if err := os.Symlink("elsewhere", d); err != nil {
			t.Fatal(err)
		}
		if err := MakeEventDir(d, gid); err != nil {
			t.Fatal(err)
		}
		assertDirMode(t, filepath.Join(root, "elsewhere"), wantMode, gid)
	})
	t.Run("symlink to existing dir", func(t *testing.T) {
		root := t.TempDir()
		mkdir(t, filepath.Join(root, "target"))
		d := filepath.Join(root, EventDir)
		if err := os.Symlink(filepath.Join(root, "target"), d); err != nil {
			t.Fatal(err)
		}
		if err := MakeEventDir(d, gid); err != nil {
			t.Fatal(err)
		}
		assertDirMode(t, d, os.ModeDir|0o755, -1)
	})
	t.Run("file", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), EventDir)
		writeFile(t, d, nil)
		assertPathError(t, MakeEventDir(d, gid), d, unix.ENOTDIR)
	})
	t.Run("no parent", func(t *testing.T) {
		d := filepath.Join(t.TempDir(), "nope", EventDir)
		assertPathError(t, MakeEventDir(d, gid), d, fs.ErrNotExist)
	})
}

func assertDirMode(t *testing.T, p string, mode os.FileMode, gid int) {
	t.Helper()
	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode() != mode {
		t.Errorf("%s: mode %v, want %v", p, fi.Mode(), mode)
	}
	if st := fi.Sys().(*syscall.Stat_t); gid >= 0 && int(st.Gid) != gid {
		t.Errorf("%s: gid %d, want %d", p, st.Gid, gid)
	}
}

func TestSubscribeNotify(t *testing.T) {
	dir := t.TempDir()
	sub, err := Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	ev := filepath.Join(dir, EventDir)
	if filepath.Dir(sub.Path) != ev || !listenerNameRE.MatchString(filepath.Base(sub.Path)) {
		t.Errorf("Path = %s", sub.Path)
	}
	fi, err := os.Lstat(sub.Path)
	if err != nil || fi.Mode() != os.ModeNamedPipe|0o600 {
		t.Errorf("fifo %v, %v; want prw-------", fi.Mode(), err)
	}
	assertDirMode(t, ev, os.ModeDir|os.ModeSetgid|os.ModeSticky|0o730, os.Getegid())
	if names := dirNames(t, ev); len(names) != 1 {
		t.Errorf("event/ holds %v, want only the fifo (no temporary)", names)
	}

	var n Notifier
	for _, e := range []string{"s", "u", "OD"} {
		if c, err := n.Notify(ev, e); c != 1 || err != nil {
			t.Fatalf("Notify(%q) = %d, %v; want 1", e, c, err)
		}
		if got := readEvents(t, sub, len(e)); got != e {
			t.Errorf("read %q, want %q", got, e)
		}
	}
	if err := Notify(ev, "x"); err != nil {
		t.Fatal(err)
	}
	if got := readEvents(t, sub, 1); got != "x" {
		t.Errorf("read %q, want x", got)
	}

	if err := sub.Close(); err != nil {
		t.Fatal(err)
	}
	if err := sub.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	if _, err := os.Lstat(sub.Path); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("fifo left after Close: %v", err)
	}
	if c, err := n.Notify(ev, "d"); c != 0 || err != nil {
		t.Errorf("Notify after Close = %d, %v", c, err)
	}
}

// TestSubscriptionDeadline: the read end is pollable, so SetReadDeadline
// interrupts a Read that has nothing to read (no EOF: we hold a writer).
func TestSubscriptionDeadline(t *testing.T) {
	sub, err := Subscribe(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	start := time.Now()
	if err := sub.File.SetReadDeadline(start.Add(50 * time.Millisecond)); err != nil {
		t.Fatal(err)
	}
	n, err := sub.File.Read(make([]byte, 8))
	if !errors.Is(err, os.ErrDeadlineExceeded) || n != 0 {
		t.Fatalf("Read = %d, %v; want ErrDeadlineExceeded", n, err)
	}
	if el := time.Since(start); el < 50*time.Millisecond {
		t.Errorf("Read returned after %v, before the deadline", el)
	}
	// A Read blocked without a deadline is woken by an event.
	if err := sub.File.SetReadDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	got := make(chan string)
	go func() {
		b := make([]byte, 8)
		n, _ := sub.File.Read(b)
		got <- string(b[:n])
	}()
	if err := Notify(filepath.Dir(sub.Path), "U"); err != nil {
		t.Fatal(err)
	}
	if s := <-got; s != "U" {
		t.Errorf("blocked Read got %q", s)
	}
}

// TestNotifyFilter: stale listeners are unlinked; names that are not
// exactly 39 bytes, temporaries, and listener-named non-fifos are left
// alone and never written to.
func TestNotifyFilter(t *testing.T) {
	dir := t.TempDir()
	ev := filepath.Join(dir, EventDir)
	sub, err := Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	name := filepath.Base(sub.Path)
	stale := name[:len(name)-6] + "STALE1"
	mkfifo := func(n string) {
		if err := unix.Mkfifo(filepath.Join(ev, n), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	mkfifo(stale)                       // 39 bytes, no reader: removed
	mkfifo("." + stale)                 // a temporary: skipped
	mkfifo(stale[:38])                  // 38 bytes: skipped
	mkfifo(stale + "x")                 // 40 bytes: skipped
	mkfifo("ftrig1" + stale[8:] + "xx") // old-style prefix: skipped
	regular := name[:len(name)-6] + "REGULR"
	writeFile(t, filepath.Join(ev, regular), nil)
	target := filepath.Join(dir, "target")
	writeFile(t, target, nil)
	link := name[:len(name)-6] + "SYMLNK"
	if err := os.Symlink(target, filepath.Join(ev, link)); err != nil {
		t.Fatal(err)
	}

	var n Notifier
	if c, err := n.Notify(ev, "u"); c != 1 || err != nil {
		t.Fatalf("Notify = %d, %v; want 1 listener", c, err)
	}
	if got := readEvents(t, sub, 1); got != "u" {
		t.Errorf("listener read %q", got)
	}
	want := []string{"." + stale, "ftrig1" + stale[8:] + "xx", link, name, regular, stale[:38], stale + "x"}
	if got := dirNames(t, ev); strings.Join(got, " ") != strings.Join(sorted(want), " ") {
		t.Errorf("event/ after Notify:\n%v\nwant\n%v", got, sorted(want))
	}
	for _, p := range []string{filepath.Join(ev, regular), target} {
		if b, _ := os.ReadFile(p); len(b) != 0 {
			t.Errorf("%s was written to: %q", p, b)
		}
	}
}

// TestNotifyFullFifo: a listener that does not read cannot block the
// notifier; its fifo stays (EAGAIN is not EPIPE).
func TestNotifyFullFifo(t *testing.T) {
	sub, err := Subscribe(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	fill := make([]byte, 4096)
	for {
		if _, err := unix.Write(sub.w, fill); err == unix.EAGAIN {
			break
		} else if err != nil {
			t.Fatal(err)
		}
	}
	var n Notifier
	if c, err := n.Notify(filepath.Dir(sub.Path), "d"); c != 0 || err != nil {
		t.Errorf("Notify into a full fifo = %d, %v; want 0, nil", c, err)
	}
	if _, err := os.Lstat(sub.Path); err != nil {
		t.Errorf("full fifo removed: %v", err)
	}
}

// TestDeliverEPIPE: the reader leaves between our open and our write. The
// write fails with EPIPE (the runtime ignores the SIGPIPE for fds other
// than 1 and 2), and the fifo is flagged stale. Were SIGPIPE fatal, the
// test binary would die here.
func TestDeliverEPIPE(t *testing.T) {
	p := filepath.Join(t.TempDir(), "fifo")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := unix.Open(p, unix.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(w)
	if ok, stale := deliver(w, []byte("u")); !ok || stale {
		t.Errorf("deliver with a reader = %v, %v", ok, stale)
	}
	unix.Close(r)
	if ok, stale := deliver(w, []byte("d")); ok || !stale {
		t.Errorf("deliver without a reader = ok %v, stale %v; want false, true", ok, stale)
	}
}

func TestNotifyErrors(t *testing.T) {
	dir := t.TempDir()
	if err := Notify(filepath.Join(dir, "nope"), "u"); err != nil {
		t.Errorf("missing event dir: %v", err)
	}
	file := filepath.Join(dir, "file")
	writeFile(t, file, nil)
	assertPathError(t, Notify(file, "u"), file, unix.ENOTDIR)
	// Subscribe fails cleanly where event/ cannot be made.
	if _, err := Subscribe(filepath.Join(dir, "nope")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Subscribe(missing dir) = %v", err)
	}
}

// TestNotifierDoesNotAllocate guards the supervisor's hot path: with a
// Notifier kept across calls, notifying makes no heap allocation, with or
// without listeners and without an event dir.
func TestNotifierDoesNotAllocate(t *testing.T) {
	dir := t.TempDir()
	sub, err := Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	empty := filepath.Join(t.TempDir(), EventDir)
	mkdir(t, empty)
	var n Notifier
	for _, d := range []string{filepath.Dir(sub.Path), empty, filepath.Join(dir, "missing")} {
		n.Notify(d, "u") // warm the buffers
		if a := testing.AllocsPerRun(100, func() { n.Notify(d, "u") }); a != 0 {
			t.Errorf("Notify(%s) allocates %v times", d, a)
		}
	}
}

func BenchmarkNotify(b *testing.B) {
	for _, listeners := range []int{0, 1, 8} {
		b.Run(fmt.Sprintf("listeners=%d", listeners), func(b *testing.B) {
			dir := b.TempDir()
			if err := os.Mkdir(filepath.Join(dir, EventDir), 0o755); err != nil {
				b.Fatal(err)
			}
			for range listeners {
				sub, err := Subscribe(dir)
				if err != nil {
					b.Fatal(err)
				}
				defer sub.Close()
				go drain(sub)
			}
			ev := filepath.Join(dir, EventDir)
			var n Notifier
			b.ReportAllocs()
			for b.Loop() {
				n.Notify(ev, "u")
			}
		})
	}
}

func drain(s *Subscription) {
	b := make([]byte, 4096)
	for {
		if _, err := s.File.Read(b); err != nil {
			return
		}
	}
}

// readEvents reads from sub until it has n bytes or the test deadline
// passes. Events written separately may arrive in one read.
func readEvents(t *testing.T, sub *Subscription, n int) string {
	t.Helper()
	if err := sub.File.SetReadDeadline(testDeadline(t)); err != nil {
		t.Fatal(err)
	}
	var got []byte
	buf := make([]byte, 64)
	for len(got) < n {
		m, err := sub.File.Read(buf)
		got = append(got, buf[:m]...)
		if err != nil {
			t.Fatalf("reading events after %q: %v", got, err)
		}
	}
	return string(got)
}

// testDeadline is a little before the test's own deadline, or 10 s away.
func testDeadline(t *testing.T) time.Time {
	if d, ok := t.Deadline(); ok {
		return d.Add(-time.Second)
	}
	return time.Now().Add(10 * time.Second)
}

func dirNames(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names
}

func sorted(s []string) []string {
	s = append([]string(nil), s...)
	slices.Sort(s)
	return s
}
