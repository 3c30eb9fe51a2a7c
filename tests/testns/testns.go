// Package testns runs a test in a private mount namespace, where it may
// mount a small tmpfs (a full or read-only file system) without touching
// the host's mounts. Tests only: it re-executes the test binary.
package testns

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// env marks the re-executed test binary running in its own mount
// namespace; its value is the test's name.
const env = "GOSV_TEST_MOUNTNS"

// InMountNS re-runs the calling test in a child process with a private
// mount namespace and returns false; in that child it returns true. It
// skips when not root (tmpfs mounts need CAP_SYS_ADMIN). The child's
// output goes through a file, not a pipe: a supervisor the child leaves
// behind would keep a pipe open, and the wait for its end would never
// return.
func InMountNS(t *testing.T) bool {
	t.Helper()
	if os.Getenv(env) == t.Name() {
		if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
			t.Fatalf("make / private: %v", err)
		}
		return true
	}
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount a tmpfs in a private mount namespace")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^"+t.Name()+"$", "-test.v", "-test.count=1", "-test.timeout=2m")
	cmd.Env = append(os.Environ(), env+"="+t.Name())
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNS, Pdeathsig: syscall.SIGKILL}
	log, err := os.Create(filepath.Join(t.TempDir(), "out"))
	if err != nil {
		t.Fatal(err)
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	err = cmd.Run()
	out, _ := os.ReadFile(log.Name())
	if err != nil || !strings.Contains(string(out), "--- PASS: "+t.Name()) {
		t.Errorf("in a mount namespace: %v\n%s", err, out)
	} else if testing.Verbose() {
		t.Logf("in a mount namespace:\n%s", out)
	}
	return false
}
