package reap

import (
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

func TestExitCode(t *testing.T) {
	for _, tc := range []struct {
		ws   unix.WaitStatus
		want int
	}{
		{0, 0},
		{3 << 8, 3},
		{255 << 8, 255},
		{unix.WaitStatus(syscall.SIGTERM), 143},
		{unix.WaitStatus(syscall.SIGKILL), 137},
		{unix.WaitStatus(syscall.SIGSEGV) | 0x80, 139}, // core dumped
	} {
		if got := ExitCode(tc.ws); got != tc.want {
			t.Errorf("ExitCode(%#x) = %d, want %d", uint32(tc.ws), got, tc.want)
		}
	}
}

// TestDrainReapsAll starts several children that exit at once and checks
// that Drain collects all of them, blocking on pidfds instead of sleeping.
func TestDrainReapsAll(t *testing.T) {
	const n = 5
	want := map[int]int{}
	var pidfds []int
	for i := 0; i < n; i++ {
		pid, err := syscall.ForkExec("/bin/sh", []string{"sh", "-c", "exit " + string(rune('0'+i))}, &syscall.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		want[pid] = i
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			t.Fatal(err)
		}
		pidfds = append(pidfds, fd)
	}
	// A pidfd becomes readable when its process exits (pidfd_open(2)).
	for _, fd := range pidfds {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, 10000); err != unix.EINTR {
				break
			}
		}
		unix.Close(fd)
	}
	got := Drain(nil)
	for _, e := range got {
		code, ok := want[e.Pid]
		if !ok {
			continue
		}
		if ExitCode(e.Status) != code {
			t.Errorf("pid %d: exit %d, want %d", e.Pid, ExitCode(e.Status), code)
		}
		delete(want, e.Pid)
	}
	if len(want) != 0 {
		t.Errorf("not reaped: %v", want)
	}
	if more := Drain(nil); len(more) != 0 {
		t.Errorf("second Drain returned %v", more)
	}
}
