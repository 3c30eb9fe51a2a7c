package main

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// notifyDaemon is a daemon that prints its pid, sends READY=1 if asked
// (its first argument), and waits.
const notifyDaemon = `import os, socket, sys, time
print(os.getpid(), flush=True)
if sys.argv[1] == "ready":
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.sendto(b"STATUS=up\nREADY=1\n", os.environ["NOTIFY_SOCKET"])
time.sleep(60)
`

// startNotifyDaemon runs notifyDaemon under gosv notify-fd-from-socket -3 3
// with fd 3 a pipe; it returns the daemon, its pid as it printed it, and
// the pipe's read end.
func startNotifyDaemon(t *testing.T, mode string) (*exec.Cmd, int, *os.File) {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("no python3")
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rd.Close() })
	cmd := exec.Command(gosvBin, "notify-fd-from-socket", "-3", "3", "--", py, "-c", notifyDaemon, mode)
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("daemon: %v", err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(line))
	return cmd, pid, rd
}

func TestNotifyFdFromSocketReady(t *testing.T) {
	cmd, pid, rd := startNotifyDaemon(t, "ready")
	if pid != cmd.Process.Pid {
		t.Errorf("daemon pid %d, want the wrapper's %d (exec in place)", pid, cmd.Process.Pid)
	}
	rd.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [8]byte
	n, err := rd.Read(b[:])
	if err != nil || string(b[:n]) != "\n" {
		t.Fatalf("notification fd: %q, %v; want a newline", b[:n], err)
	}
	// The watcher exited and closed its end: EOF, the daemon holding none.
	if n, err := rd.Read(b[:]); n != 0 || err == nil {
		t.Fatalf("after the newline: %q, %v; want EOF", b[:n], err)
	}
}

// Without READY=1, the watcher lives until the daemon dies, then exits.
func TestNotifyFdFromSocketDaemonDeath(t *testing.T) {
	cmd, _, rd := startNotifyDaemon(t, "silent")
	rd.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	var b [8]byte
	if n, err := rd.Read(b[:]); !os.IsTimeout(err) {
		t.Fatalf("notification fd before READY=1: %q, %v; want nothing", b[:n], err)
	}
	cmd.Process.Kill()
	cmd.Wait()
	// The watcher's end is its last: EOF once it exited.
	rd.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := rd.Read(b[:]); n != 0 || err == nil || os.IsTimeout(err) {
		t.Fatalf("after the daemon's death: %q, %v; want EOF (the watcher gone)", b[:n], err)
	}
}

// gosv notifyoncheck: the check succeeds once the daemon made its file;
// the daemon keeps the wrapper's pid and the watcher is gone after the
// newline.
func TestNotifyOnCheck(t *testing.T) {
	dir := t.TempDir()
	flag := filepath.Join(dir, "up")
	check := filepath.Join(dir, "check")
	if err := os.WriteFile(check, []byte("#!/bin/sh\nexec test -e "+flag+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	rd, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	cmd := exec.Command(gosvBin, "notifyoncheck", "-3", "3", "-c", check, "--", "/bin/sh", "-c", `echo $$; touch "$0"; exec sleep 60`, flag)
	cmd.ExtraFiles = []*os.File{wr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	line, err := bufio.NewReader(out).ReadString('\n')
	if pid, _ := strconv.Atoi(strings.TrimSpace(line)); err != nil || pid != cmd.Process.Pid {
		t.Errorf("daemon pid %q (%v), want the wrapper's %d", line, err, cmd.Process.Pid)
	}
	rd.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [8]byte
	if n, err := rd.Read(b[:]); err != nil || string(b[:n]) != "\n" {
		t.Fatalf("notification fd: %q, %v; want a newline", b[:n], err)
	}
	if n, err := rd.Read(b[:]); n != 0 || err == nil {
		t.Fatalf("after the newline: %q, %v; want EOF (the watcher gone)", b[:n], err)
	}
}
