package reap

import (
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdwait"
)

// startChild forks sh -c script and opens a pidfd on it.
func startChild(t *testing.T, script string) (pid, fd int) {
	t.Helper()
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", script}, &syscall.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	fd, err = unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return pid, fd
}

// waitReadable blocks until fd is readable (a pidfd: its process died),
// up to the test's deadline.
func waitReadable(t *testing.T, fd int) {
	t.Helper()
	end, _ := t.Deadline()
	if !fdwait.Readable(fd, end) {
		t.Fatalf("fd %d not readable by the deadline", fd)
	}
}

func TestSiginfoSize(t *testing.T) {
	if n := unsafe.Sizeof(siginfoChild{}); n != unsafe.Sizeof(unix.Siginfo{}) || n != 128 {
		t.Fatalf("siginfoChild is %d bytes, unix.Siginfo %d, want 128", n, unsafe.Sizeof(unix.Siginfo{}))
	}
}

// TestPidfdStatus: Pidfd returns the same raw status wait4 would, for an
// exit code and for a signal.
func TestPidfdStatus(t *testing.T) {
	for _, tc := range []struct {
		script string
		want   unix.WaitStatus
	}{
		{"exit 0", 0},
		{"exit 7", 7 << 8},
		{"exit 255", 255 << 8},
		{"kill -TERM $$", unix.WaitStatus(syscall.SIGTERM)},
		{"kill -KILL $$", unix.WaitStatus(syscall.SIGKILL)},
	} {
		pid, fd := startChild(t, tc.script)
		waitReadable(t, fd)
		e, ok := Pidfd(fd)
		if !ok || e.Pid != pid || e.Status != tc.want {
			t.Errorf("%s: Pidfd = %+v %v, want pid %d status %#x", tc.script, e, ok, pid, uint32(tc.want))
		}
		if _, ok := Pidfd(fd); ok {
			t.Errorf("%s: reaped twice", tc.script)
		}
	}
}

// TestPidfdNotExited: a live child is left alone (WNOHANG), and a child
// another wait reaped first is not reported again.
func TestPidfdNotExited(t *testing.T) {
	r, w, err := osPipe()
	if err != nil {
		t.Fatal(err)
	}
	// The child blocks reading the pipe until we close our write end.
	pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "read x"}, &syscall.ProcAttr{Files: []uintptr{uintptr(r), 1, 2}})
	unix.Close(r)
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	if e, ok := Pidfd(fd); ok {
		t.Fatalf("live child reaped: %+v", e)
	}
	unix.Close(w)
	waitReadable(t, fd)
	var ws unix.WaitStatus
	if got, err := unix.Wait4(pid, &ws, 0, nil); got != pid || err != nil {
		t.Fatalf("wait4(%d) = %d, %v", pid, got, err)
	}
	if e, ok := Pidfd(fd); ok {
		t.Fatalf("child reaped by wait4 reported again: %+v", e)
	}
}

func osPipe() (r, w int, err error) {
	var p [2]int
	err = unix.Pipe2(p[:], unix.O_CLOEXEC)
	return p[0], p[1], err
}
