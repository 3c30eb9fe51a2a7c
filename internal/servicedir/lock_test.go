package servicedir

import (
	"bufio"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestLock(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	assertLocked(t, p, false) // missing file

	f, err := Lock(p, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(p); err != nil || fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("lock file: %v, %v", fi, err)
	}
	assertLocked(t, p, true) // F_GETLK in this same process sees the OFD lock

	// A second Lock from the same process fails: OFD locks conflict per open
	// file, unlike POSIX locks, which a process never conflicts with.
	_, err = Lock(p, 0o644)
	var pe *os.PathError
	if !errors.Is(err, ErrLocked) || !errors.Is(err, unix.EAGAIN) || !errors.As(err, &pe) || pe.Path != p || pe.Op != "lock" {
		t.Errorf("second Lock = %v, want lock %s: ErrLocked", err, p)
	}
	if pid, err := HolderPid(p); pid != -1 || err != nil {
		t.Errorf("HolderPid of an OFD lock = %d, %v; want -1", pid, err)
	}

	f.Close()
	assertLocked(t, p, false)
	if pid, err := HolderPid(p); pid != 0 || err != nil {
		t.Errorf("HolderPid unlocked = %d, %v; want 0", pid, err)
	}
	f2, err := Lock(p, 0o644) // the file exists now
	if err != nil {
		t.Fatalf("Lock after release: %v", err)
	}
	f2.Close()
}

// TestLockSurvivesOtherClose: closing another descriptor of the locked
// file, which drops a POSIX lock, leaves an OFD lock in place.
func TestLockSurvivesOtherClose(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	f, err := Lock(p, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	other, err := os.ReadFile(p) // open + close of a second descriptor
	if err != nil || len(other) != 0 {
		t.Fatal(err)
	}
	assertLocked(t, p, true)
	if _, err := Lock(p, 0o600); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock after closing another fd = %v, want ErrLocked", err)
	}
}

// TestHolderPidPosix: a classic POSIX lock of another process is reported
// with its pid, and counts for IsLocked.
func TestHolderPidPosix(t *testing.T) {
	p := filepath.Join(t.TempDir(), "lock")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"=posixlock", helperPathEnv+"="+p)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		stdin.Close()
		if err := cmd.Wait(); err != nil {
			t.Errorf("helper: %v", err)
		}
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); line != "locked\n" {
		t.Fatalf("helper said %q, %v", line, err)
	}
	if pid, err := HolderPid(p); pid != cmd.Process.Pid || err != nil {
		t.Errorf("HolderPid = %d, %v; want %d", pid, err, cmd.Process.Pid)
	}
	assertLocked(t, p, true)
	if _, err := Lock(p, 0o644); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock over a POSIX lock = %v, want ErrLocked", err)
	}
}

func TestIsLockedErrors(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "file")
	writeFile(t, file, nil)
	_, err := IsLocked(filepath.Join(file, "lock"))
	assertPathError(t, err, filepath.Join(file, "lock"), unix.ENOTDIR)
	_, err = Lock(filepath.Join(dir, "nodir", "lock"), 0o644)
	assertPathError(t, err, filepath.Join(dir, "nodir", "lock"), os.ErrNotExist)
}

// TestLockSeenByS6svok: the real s6-svok (s6_svc_ok, F_GETLK) sees our OFD lock.
func TestLockSeenByS6svok(t *testing.T) {
	bin := requireS6(t, "s6-svok")
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, SuperviseDir))
	svok := func() int { return exitCode(t, exec.Command(bin, dir)) }
	if rc := svok(); rc != 1 {
		t.Errorf("s6-svok without lock file = %d, want 1", rc)
	}
	f, err := Lock(filepath.Join(dir, LockPath), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	if rc := svok(); rc != 0 {
		t.Errorf("s6-svok with our lock = %d, want 0", rc)
	}
	f.Close()
	if rc := svok(); rc != 1 {
		t.Errorf("s6-svok after unlock = %d, want 1", rc)
	}
}

func assertLocked(t *testing.T, p string, want bool) {
	t.Helper()
	if got, err := IsLocked(p); got != want || err != nil {
		t.Errorf("IsLocked(%s) = %v, %v; want %v", p, got, err, want)
	}
}
