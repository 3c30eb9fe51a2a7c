package notifyfd

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// newChecker returns a checker of script (written to a file) whose
// notification fd is a pipe the test reads, and the channel that says
// the daemon died.
func newChecker(t *testing.T, script string, timeout time.Duration) (*checker, int, chan struct{}) {
	t.Helper()
	dir := t.TempDir()
	prog := filepath.Join(dir, "check")
	if err := os.WriteFile(prog, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(p[0]); unix.Close(p[1]) })
	dead := make(chan struct{})
	return &checker{prog: prog, notif: p[1], timeout: timeout, dead: dead}, p[0], dead
}

func readAll(fd int) string {
	var b [16]byte
	n, _ := unix.Read(fd, b[:])
	return string(b[:max(n, 0)])
}

// The check fails twice, then succeeds: one newline, after the schedule's
// first delays (200 ms, then 200 ms, then 400 ms).
func TestCheckReadyOnFirstSuccess(t *testing.T) {
	count := filepath.Join(t.TempDir(), "count")
	c, rd, _ := newChecker(t, `n=$(cat `+count+` 2>/dev/null || echo 0); echo $((n+1)) > `+count+`; [ "$n" -ge 2 ]`, 5*time.Second)
	start := time.Now()
	if code := c.run(); code != ExitReady {
		t.Fatalf("exit %d, want %d", code, ExitReady)
	}
	if d := time.Since(start); d < 800*time.Millisecond {
		t.Errorf("ready after %v: before the third run of the schedule (200+200+400 ms)", d)
	}
	if got := readAll(rd); got != "\n" {
		t.Fatalf("notification fd got %q, want one newline", got)
	}
	if b, _ := os.ReadFile(count); string(b) != "3\n" {
		t.Errorf("check ran %q times, want 3", b)
	}
}

// A check that hangs is killed at its limit and counts as a failure; the
// daemon's death ends the watcher with nothing written.
func TestCheckTimeoutAndDaemonDeath(t *testing.T) {
	runs := filepath.Join(t.TempDir(), "runs")
	c, rd, dead := newChecker(t, `echo x >> `+runs+`; exec sleep 60`, 100*time.Millisecond)
	fd, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := unix.InotifyAddWatch(fd, filepath.Dir(runs), unix.IN_MODIFY|unix.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	ino := os.NewFile(uintptr(fd), "inotify")
	defer ino.Close()
	ino.SetReadDeadline(time.Now().Add(10 * time.Second))
	done := make(chan int, 1)
	go func() { done <- c.run() }()
	// Two runs (each killed after 100 ms) prove the first was cut.
	for {
		if b, _ := os.ReadFile(runs); len(b) >= 4 {
			break
		}
		var buf [4096]byte
		if _, err := ino.Read(buf[:]); err != nil {
			t.Fatalf("the check did not run twice (the first not killed at its limit?): %v", err)
		}
	}
	close(dead)
	select {
	case code := <-done:
		if code != ExitReady {
			t.Fatalf("exit %d after the daemon's death, want %d", code, ExitReady)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the watcher outlived the daemon")
	}
	if got := readAll(rd); got != "" {
		t.Fatalf("notification fd got %q, want nothing", got)
	}
}
