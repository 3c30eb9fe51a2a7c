package fdhold

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestMain doubles as the holder: Open starts this binary with argv0
// gosv-fdholder, as the scanner starts gosv.
func TestMain(m *testing.M) {
	if filepath.Base(os.Args[0]) == "gosv-fdholder" {
		if err := Serve(3, 4); err != nil {
			os.Exit(111)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// open connects to the holder at path, starting it if needed.
func open(t *testing.T, path string) (*Client, map[string]int) {
	t.Helper()
	c, held, err := Connect(path, time.Second)
	if err == nil {
		return c, held
	}
	if err != ErrNoHolder {
		t.Fatal(err)
	}
	c, err = Start(path, "/proc/self/exe", "gosv-fdholder")
	if err != nil {
		t.Fatal(err)
	}
	return c, map[string]int{}
}

// TestPipeOutlivesItsUsers: bytes written to a pipe whose every other end
// was closed (the service exited, the scanner was killed) are still there
// for the next client.
func TestPipeOutlivesItsUsers(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fdholder")
	c, held := open(t, path)
	if c.Pid == 0 || len(held) != 0 {
		t.Fatalf("first Open: pid %d, held %v", c.Pid, held)
	}
	holder, err := os.FindProcess(c.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	if err := c.Store("svc", p[0]); err != nil {
		t.Fatal(err)
	}
	unix.Close(p[0])
	unix.Write(p[1], []byte("last words\n"))
	unix.Close(p[1])
	c.Close() // as a SIGKILLed client: no goodbye

	c2, held := open(t, path)
	if c2.Pid != 0 {
		t.Fatalf("a second holder was started")
	}
	fd, ok := held["svc"]
	if len(held) != 1 || !ok {
		t.Fatalf("held %v", held)
	}
	buf := make([]byte, 64)
	n, _ := unix.Read(fd, buf)
	if string(buf[:n]) != "last words\n" {
		t.Fatalf("read %q", buf[:n])
	}
	unix.Close(fd)
	// Nothing held and no client: the holder exits.
	if err := c2.DropAll(); err != nil {
		t.Fatal(err)
	}
	c2.Close()
	if st, err := holder.Wait(); err != nil || !st.Success() {
		t.Fatalf("holder: %v %v", st, err)
	}
}

// TestDropAndReplace: Drop closes, Store under a used key replaces.
func TestDropAndReplace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fdholder")
	c, _ := open(t, path)
	holder, _ := os.FindProcess(c.Pid)
	var a, b [2]int
	unix.Pipe2(a[:], unix.O_CLOEXEC)
	unix.Pipe2(b[:], unix.O_CLOEXEC)
	c.Store("k", a[0])
	c.Store("k", b[0])
	c.Store("gone", a[0])
	c.Drop("gone")
	c.Close()
	c, held := open(t, path)
	if len(held) != 1 {
		t.Fatalf("held %v", held)
	}
	var st1, st2 unix.Stat_t
	unix.Fstat(held["k"], &st1)
	unix.Fstat(b[0], &st2)
	if st1.Ino != st2.Ino {
		t.Fatalf("k is not the replacing pipe")
	}
	c.DropAll()
	c.Close()
	holder.Wait()
}

// TestBusyHolderIsNotAbsent: while the holder serves another client (a
// killed scanner whose forked child still holds its socket), Connect
// times out with an error other than ErrNoHolder, so that the scanner
// does not start a second holder and orphan the first one's pipes.
func TestBusyHolderIsNotAbsent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "fdholder")
	c, _ := open(t, path)
	holder, _ := os.FindProcess(c.Pid)
	var p [2]int
	unix.Pipe2(p[:], unix.O_CLOEXEC)
	c.Store("k", p[0])
	_, _, err := Connect(path, 100*time.Millisecond)
	if err == nil || err == ErrNoHolder {
		t.Fatalf("Connect to a busy holder: %v, want a timeout", err)
	}
	c.Close()
	c2, held, err := Connect(path, 10*time.Second)
	if err != nil || len(held) != 1 {
		t.Fatalf("Connect once free: %v, %d held", err, len(held))
	}
	closeHeld(held)
	c2.DropAll()
	c2.Close()
	holder.Wait()
	if _, _, err := Connect(path, time.Second); err != ErrNoHolder {
		t.Fatalf("Connect after the holder exited: %v, want ErrNoHolder", err)
	}
}

// TestHolderExitsWhenItsNameIsGone: a holder that holds a pipe for a
// scanner that never comes back (SIGKILLed, its scan directory removed)
// exits once its socket is unlinked: nothing can reach it any more. Before
// this, every such holder lived until reboot.
func TestHolderExitsWhenItsNameIsGone(t *testing.T) {
	for _, how := range []string{"unlink", "rmdir"} {
		t.Run(how, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "scan")
			if err := os.Mkdir(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, "fdholder")
			c, _ := open(t, path)
			holder, _ := os.FindProcess(c.Pid)
			var p [2]int
			unix.Pipe2(p[:], unix.O_CLOEXEC)
			if err := c.Store("k", p[0]); err != nil {
				t.Fatal(err)
			}
			unix.Close(p[0])
			defer unix.Close(p[1])
			c.Close() // the scanner is gone; the holder keeps the pipe
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
			if how == "rmdir" {
				if err := os.Remove(dir); err != nil {
					t.Fatal(err)
				}
			}
			// NOTE: Wait blocks until the holder exits; the test's
			// deadline bounds it.
			if st, err := holder.Wait(); err != nil || !st.Success() {
				t.Fatalf("holder: %v %v", st, err)
			}
			// Its read end is closed with it: the write end sees EPIPE.
			if _, err := unix.Write(p[1], []byte("x")); err != unix.EPIPE {
				t.Errorf("write after the holder's exit: %v, want EPIPE", err)
			}
		})
	}
}
