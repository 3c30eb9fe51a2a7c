//go:build integration

package tests

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Waits of the suite. Every wait on an event has one of these deadlines;
// none of them is a sleep.
const (
	eventTimeout = 10 * time.Second // a supervisor event or status rewrite
	waitMs       = "10000"          // the same, for the -t of s6 tools
)

// Env is a namespace with a scanner running on Scan.
type Env struct {
	*NS
	Scan    string // the scan directory
	Scanner *Proc  // the running scanner
	kind    string // scannerS6 or scannerGosv
}

// newEnv starts a namespace and the suite's scanner on an empty scan
// directory. gosv is installed inside (make install) when the scanner is
// gosv.
func newEnv(t testing.TB) *Env {
	t.Helper()
	return newEnvWith(t, suite.scanner)
}

// newEnvWith is newEnv with an explicit scanner kind.
func newEnvWith(t testing.TB, kind string) *Env {
	t.Helper()
	requireS6(t)
	if kind == scannerGosv {
		requireGosv(t)
	}
	e := &Env{NS: NewNS(t), kind: kind}
	if kind == scannerGosv {
		e.installGosv(t)
	}
	e.Scan = filepath.Join(e.Dir, "scan")
	if err := os.Mkdir(e.Scan, 0o755); err != nil {
		t.Fatal(err)
	}
	e.StartScanner(t)
	return e
}

// installGosv runs `make install DESTDIR= PREFIX=/usr` inside the
// namespace, so that gosv lands in the /usr overlay as a package would.
func (e *Env) installGosv(t testing.TB) {
	t.Helper()
	r := e.Run(t, "make", "-C", suite.repoRoot, "install", "DESTDIR=", "PREFIX=/usr", "GO="+suite.goTool)
	if r.Code != 0 {
		t.Fatalf("make install inside the namespace: %s", r)
	}
	e.MustRun(t, "test", "-x", gosvInstallBin)
}

// scannerArgs is the command line of the scanner, notifying readiness on fd 3.
func (e *Env) scannerArgs() []string {
	if e.kind == scannerS6 {
		return []string{"s6-svscan", "-d", "3", e.Scan}
	}
	return []string{gosvInstallBin, "svscan", "-d", "3", e.Scan}
}

// StartScanner starts the scanner on e.Scan and waits for its readiness
// notification (-d 3: a newline once its control fifo is set up).
func (e *Env) StartScanner(t testing.TB) {
	t.Helper()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	e.Scanner = e.Start(t, []*os.File{pw}, e.scannerArgs()...)
	pw.Close()
	if _, err := readLine(pr, eventTimeout); err != nil {
		t.Fatalf("scanner %q did not notify readiness: %v (log: %s)", e.scannerArgs(), err, readFile(e.Scanner.Log))
	}
}

// Service creates a service directory named name under e.Dir/sv from the
// template testdata/sv/<tmpl>, with extra files (name → content) added.
// It returns the directory's path; nothing supervises it yet.
func (e *Env) Service(t testing.TB, tmpl, name string, extra map[string]string) string {
	t.Helper()
	dst := filepath.Join(e.Dir, "sv", name)
	copyTree(t, filepath.Join("testdata", "sv", tmpl), dst)
	for f, content := range extra {
		if err := os.WriteFile(filepath.Join(dst, f), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dst
}

// Link supervises dir under name with the real s6-svlink, which returns
// once the supervisor has announced itself (event s).
func (e *Env) Link(t testing.TB, dir, name string) {
	t.Helper()
	e.MustRun(t, "s6-svlink", "-t", waitMs, e.Scan, dir, name)
}

// AddService creates a service from tmpl, links it as name and returns
// its directory.
func (e *Env) AddService(t testing.TB, tmpl, name string, extra map[string]string) string {
	t.Helper()
	dir := e.Service(t, tmpl, name, extra)
	e.Link(t, dir, name)
	return dir
}

// copyTree copies a template directory, keeping the executable bits.
func copyTree(t testing.TB, src, dst string) {
	t.Helper()
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(target, b, info.Mode().Perm())
	})
	if err != nil {
		t.Fatalf("copy %s: %v", src, err)
	}
}

// Status is supervise/status decoded without gosv's own codec, so that a
// bug there cannot hide a bug here (layout: s6-protocol.md §3.2).
type Status struct {
	Stamp, ReadyStamp [12]byte
	Pid               uint64
	Wstat             uint16
	Flags             byte
}

// Status flag bits.
const (
	flagPaused    = 0x01
	flagFinishing = 0x02
	flagWantUp    = 0x04
	flagReady     = 0x08
)

func (s Status) Up() bool { return s.Pid != 0 && s.Flags&flagFinishing == 0 }

func (s Status) String() string {
	return fmt.Sprintf("pid=%d wstat=%#04x flags=%#02x", s.Pid, s.Wstat, s.Flags)
}

// ReadStatus reads dir/supervise/status.
func ReadStatus(t testing.TB, dir string) Status {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "supervise", "status"))
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != 35 {
		t.Fatalf("%s/supervise/status: %d bytes, want 35", dir, len(b))
	}
	var s Status
	copy(s.Stamp[:], b[0:12])
	copy(s.ReadyStamp[:], b[12:24])
	s.Pid = binary.BigEndian.Uint64(b[24:32])
	s.Wstat = binary.BigEndian.Uint16(b[32:34])
	s.Flags = b[34]
	return s
}

// Listener is a subscription to a service's event/ fifodir, made the way
// s6-ftrigrd makes it (s6-protocol.md §5.2), so that the test can wait for
// events the s6 tools cannot wait for (s at supervisor start).
type Listener struct {
	dir  string
	r, w *os.File
	path string
	seen []byte
}

// Listen subscribes to dir/event, creating it as s6 listeners do.
func Listen(t testing.TB, dir string) *Listener {
	t.Helper()
	ev := filepath.Join(dir, "event")
	if err := os.Mkdir(ev, 0o700); err == nil {
		if err := os.Chmod(ev, 0o3730); err != nil {
			t.Fatal(err)
		}
	} else if !os.IsExist(err) {
		t.Fatal(err)
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZghijklmnopqrstuvwxyz-_0123456789abcdef"
	var suffix [6]byte
	for i := range suffix {
		suffix[i] = alphabet[rand.IntN(len(alphabet))]
	}
	name := fmt.Sprintf("ftrig1:@%s:%s", tai64nHex(time.Now()), suffix[:])
	tmp := filepath.Join(ev, "."+name)
	if err := unix.Mkfifo(tmp, 0o600); err != nil {
		t.Fatalf("mkfifo %s: %v", tmp, err)
	}
	// Non-blocking read end (pollable, so reads take deadlines) and a
	// write end kept open so that reads never see EOF.
	r, err := os.OpenFile(tmp, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	w, err := os.OpenFile(tmp, os.O_WRONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	l := &Listener{dir: dir, r: r, w: w, path: filepath.Join(ev, name)}
	if err := os.Rename(tmp, l.path); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.Close)
	return l
}

// tai64nHex formats t as the 24 hex digits of a TAI64N label.
func tai64nHex(t time.Time) string {
	return fmt.Sprintf("%016x%08x", uint64(1)<<62+uint64(t.Unix())+37, t.Nanosecond())
}

// Wait reads events until one of the bytes in want arrives (events already
// read by earlier Waits do not count) and returns it.
func (l *Listener) Wait(t testing.TB, want string) byte {
	t.Helper()
	return l.WaitTimeout(t, want, eventTimeout)
}

// WaitTimeout is Wait with a deadline d from now.
func (l *Listener) WaitTimeout(t testing.TB, want string, d time.Duration) byte {
	t.Helper()
	if err := l.r.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64)
	for {
		n, err := l.r.Read(buf)
		if err != nil {
			t.Fatalf("%s: waiting for one of %q (seen %q): %v", l.path, want, l.seen, errors.Unwrap(err))
		}
		for _, b := range buf[:n] {
			l.seen = append(l.seen, b)
			if strings.IndexByte(want, b) >= 0 {
				return b
			}
		}
	}
}

// Seen returns every event byte read so far.
func (l *Listener) Seen() string { return string(l.seen) }

func (l *Listener) Close() {
	os.Remove(l.path)
	l.r.Close()
	l.w.Close()
}

// StatusWatch waits for rewrites of a service's supervise/status: s6
// writes status.new and renames it over status for every change, even
// changes that send no event (-p, -O, ...), so the rename is the event.
type StatusWatch struct {
	dir string
	f   *os.File
}

// WatchStatus starts watching dir/supervise for renames onto status.
func WatchStatus(t testing.TB, dir string) *StatusWatch {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	sup := filepath.Join(dir, "supervise")
	if _, err := unix.InotifyAddWatch(fd, sup, unix.IN_MOVED_TO); err != nil {
		unix.Close(fd)
		t.Fatalf("inotify %s: %v", sup, err)
	}
	// NewFile of a non-blocking fd gives a pollable file: reads take deadlines.
	w := &StatusWatch{dir: dir, f: os.NewFile(uintptr(fd), "inotify")}
	t.Cleanup(func() { w.f.Close() })
	return w
}

// Drain forgets the renames that happened so far, so that the next Wait
// returns after a rename that follows the call (a command's own), not one
// queued by an earlier step.
func (w *StatusWatch) Drain(t testing.TB) {
	t.Helper()
	rc, err := w.f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	var rerr error
	if err := rc.Control(func(fd uintptr) {
		for {
			_, err := unix.Read(int(fd), buf)
			if err == unix.EINTR {
				continue
			}
			if err != nil && err != unix.EAGAIN {
				rerr = err
			}
			if err != nil {
				return
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	if rerr != nil {
		t.Fatalf("%s: draining the status watch: %v", w.dir, rerr)
	}
}

// Wait waits for the next rename onto status and returns the new status.
func (w *StatusWatch) Wait(t testing.TB) Status {
	t.Helper()
	if err := w.f.SetReadDeadline(time.Now().Add(eventTimeout)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := w.f.Read(buf)
		if err != nil {
			t.Fatalf("%s: waiting for a status rewrite: %v", w.dir, err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			// struct inotify_event: wd, mask, cookie, len (u32 each), name.
			nameLen := int(binary.NativeEndian.Uint32(buf[off+12:]))
			name := strings.TrimRight(string(buf[off+unix.SizeofInotifyEvent:off+unix.SizeofInotifyEvent+nameLen]), "\x00")
			off += unix.SizeofInotifyEvent + nameLen
			if name == "status" {
				return ReadStatus(t, w.dir)
			}
		}
	}
}

// svPids returns the pids recorded by svhelper -record ./pids in dir,
// oldest first (one line per start of the service). A start is recorded
// after u is announced: read it only after an event that follows the
// record (U for the ready template).
func svPids(t testing.TB, dir string) []int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "pids"))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, f := range strings.Fields(string(b)) {
		n, err := strconv.Atoi(f)
		if err != nil {
			t.Fatalf("%s/pids: %q", dir, f)
		}
		pids = append(pids, n)
	}
	return pids
}
