package notifyfd

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// fixture is a watcher on a fresh socket, its notification fd the write
// end of a pipe the test reads.
type fixture struct {
	w    watcher
	path string
	rd   int
}

func newFixture(t *testing.T, daemon int) *fixture {
	t.Helper()
	path := filepath.Join(t.TempDir(), "n.sock")
	sock, err := BindSocket(path, 0)
	if err != nil {
		t.Fatal(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	pidfd, err := unix.PidfdOpen(daemon, 0)
	if err != nil {
		t.Fatal(err)
	}
	sid, err := unix.Getsid(daemon)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(sock); unix.Close(p[0]); unix.Close(p[1]); unix.Close(pidfd) })
	return &fixture{w: watcher{sock: sock, notif: p[1], pidfd: pidfd, daemon: daemon, sid: sid}, path: path, rd: p[0]}
}

func (f *fixture) send(t *testing.T, msg string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if err := unix.Sendto(fd, []byte(msg), 0, &unix.SockaddrUnix{Name: f.path}); err != nil {
		t.Fatal(err)
	}
}

// written returns what the watcher wrote to the notification fd.
func (f *fixture) written() string {
	var b [16]byte
	n, _ := unix.Read(f.rd, b[:])
	return string(b[:max(n, 0)])
}

func TestReadyWritesNewline(t *testing.T) {
	f := newFixture(t, os.Getpid())
	f.send(t, "STATUS=starting\nMAINPID=1")
	f.send(t, "STATUS=up\nREADY=1\n")
	if code := f.w.run(10 * time.Second); code != ExitReady {
		t.Fatalf("exit %d, want %d", code, ExitReady)
	}
	if got := f.written(); got != "\n" {
		t.Fatalf("notification fd got %q, want one newline", got)
	}
}

// A process of another session (a foreign sender: the socket is 0666)
// does not make the service ready; the daemon's own datagram does.
func TestForeignSenderIgnored(t *testing.T) {
	f := newFixture(t, os.Getpid())
	sender := exec.Command("/usr/bin/python3", "-c", `import socket,sys
s=socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.sendto(b"READY=1", sys.argv[1])`, f.path)
	sender.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if out, err := sender.CombinedOutput(); err != nil {
		t.Skipf("python3 sender: %v %s", err, out)
	}
	// The foreign datagram is queued; the watcher reads it and goes on to
	// its deadline.
	if code := f.w.run(200 * time.Millisecond); code != ExitTimeout {
		t.Fatalf("exit %d after a foreign READY=1, want the timeout %d", code, ExitTimeout)
	}
	if got := f.written(); got != "" {
		t.Fatalf("notification fd got %q after a foreign READY=1, want nothing", got)
	}
	f.send(t, "READY=1")
	if code := f.w.run(10 * time.Second); code != ExitReady || f.written() != "\n" {
		t.Fatalf("exit %d, want ready after the daemon's own READY=1", code)
	}
}

func TestTimeout(t *testing.T) {
	f := newFixture(t, os.Getpid())
	f.send(t, "READY=0\nSTATUS=READY=1")
	start := time.Now()
	if code := f.w.run(100 * time.Millisecond); code != ExitTimeout {
		t.Fatalf("exit %d, want %d", code, ExitTimeout)
	}
	if d := time.Since(start); d < 100*time.Millisecond {
		t.Fatalf("returned after %v, before the timeout", d)
	}
	if got := f.written(); got != "" {
		t.Fatalf("notification fd got %q, want nothing", got)
	}
}

// The daemon's death ends the watcher (no timeout set), with nothing
// written.
func TestDaemonDeathEndsWatcher(t *testing.T) {
	daemon := exec.Command("/bin/sleep", "60")
	if err := daemon.Start(); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, daemon.Process.Pid)
	done := make(chan int, 1)
	go func() { done <- f.w.run(0) }()
	daemon.Process.Kill()
	daemon.Wait()
	select {
	case code := <-done:
		if code != ExitReady {
			t.Fatalf("exit %d, want %d", code, ExitReady)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher outlived the daemon")
	}
	if got := f.written(); got != "" {
		t.Fatalf("notification fd got %q, want nothing", got)
	}
}
