package logdir

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRun: gosv log's job in one call: the notification once the log
// directory is open, every line of the input in current, and a clean
// return at the end of the input.
func TestRun(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	in, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	var p [2]int // raw fds: Run closes the write end
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	w.WriteString("one\ntwo\n")
	w.Close()
	err = Run(RunConfig{Script: []string{dir}, In: int(in.Fd()), NotifyFd: p[1]})
	if err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 8)
	if n, err := unix.Read(p[0], buf); n != 1 || buf[0] != '\n' {
		n = max(n, 0)
		t.Errorf("notification %q, %v", buf[:n], err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "current")); err != nil || string(b) != "one\ntwo\n" {
		t.Errorf("current %q, %v", b, err)
	}
}

// TestRunBadScript: a script Run cannot accept is a *ScriptError (gosv log
// exits 100 on it), before anything is opened.
func TestRunBadScript(t *testing.T) {
	var se *ScriptError
	if err := Run(RunConfig{Script: []string{"!processor"}, NotifyFd: -1}); !errors.As(err, &se) {
		t.Errorf("error %v, want a *ScriptError", err)
	}
}
