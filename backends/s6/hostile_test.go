package s6

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
	"github.com/gosv/gosv/tests/testns"
)

// Bad input (BRIEF.md): one clear error naming the file and the cause,
// never a running service or a log line lost, never a file written
// through a symlink planted in a service directory.

// TestStopNeverStarted: a stop of a service never started succeeds.
func TestStopNeverStarted(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, nil)
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 5 * time.Second}); err != nil {
		t.Errorf("stop of a service never started = %v; want nil", err)
	}
	if st, err := b.Status(svc); err != nil || st.Supervised || st.Up {
		t.Errorf("status of a service never started = %+v, %v", st, err)
	}
}

// TestPlantedLogSymlink: a symlink planted at log/ of a directory whose
// logger gosv writes (log-script) is refused naming it; nothing is
// written where it points.
func TestPlantedLogSymlink(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n",
		servicedir.LogScriptFile: "n3 " + filepath.Join(t.TempDir(), "log") + "\n"})
	target := t.TempDir()
	p := filepath.Join(svc.Dir, servicedir.LogDir)
	if err := os.Symlink(target, p); err != nil {
		t.Fatal(err)
	}
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), p) {
		t.Errorf("start = %v; want an error naming %s", err, p)
	}
	if ents, _ := os.ReadDir(target); len(ents) != 0 {
		t.Errorf("the start wrote %s through the symlink %s", ents[0].Name(), p)
	}
	if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start linked the directory: %v", err)
	}
}

// TestMissingS6Log: s6-log missing from PATH fails a start that needs
// it, naming it, rather than a logger that exits 127 every second while
// the service's pipe fills.
func TestMissingS6Log(t *testing.T) {
	b, _ := scanner(t)
	t.Setenv("PATH", t.TempDir())
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n",
		servicedir.LogScriptFile: "n3 " + filepath.Join(t.TempDir(), "log") + "\n"})
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "s6-log") {
		t.Errorf("start without s6-log = %v; want an error naming it", err)
	}
	if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start linked the directory: %v", err)
	}
}

// TestCorruptStatus: a truncated supervise/status under a
// live s6-supervise gives one error naming the service; stop still
// stops the running service.
func TestCorruptStatus(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st0, err := b.Status(svc)
	if err != nil || !st0.Up {
		t.Fatalf("status = %+v, %v", st0, err)
	}
	pidfd, err := unix.PidfdOpen(st0.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)
	p := filepath.Join(svc.Dir, servicedir.StatusPath)
	// NOTE: as s6-svstat, bytes after the 35th are ignored: only a
	// truncated file is an error.
	for _, bad := range []string{"short", strings.Repeat("x", 34)} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Status(svc); err == nil || !strings.Contains(err.Error(), svc.Dir) {
			t.Errorf("status with a %d-byte status = %v; want an error naming %s", len(bad), err, svc.Dir)
		}
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}
	if n, _ := unix.Poll(fds, 0); n != 1 {
		t.Errorf("pid %d outlived the stop", st0.Pid)
	}
}

// decoy starts a process of the test's own, in a process group of its
// own, and returns a pidfd that is readable once it is dead.
func decoy(t *testing.T) (int, int) {
	t.Helper()
	cmd := exec.Command("sleep", "1000")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return cmd.Process.Pid, fd
}

func dead(pidfd int) bool {
	n, _ := unix.Poll([]unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}}, 0)
	return n == 1
}

// TestStatusPidNotTrusted: a supervise/status naming a process that is
// not the supervisor's child (a corrupt file, or one planted: pid 1
// would make the group kill kill(-1)) does not make the stop signal
// that process's group; the service itself is stopped.
func TestStatusPidNotTrusted(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st, err := servicedir.ReadStatus(svc.Dir)
	if err != nil || !st.Up() {
		t.Fatalf("status = %+v, %v", st, err)
	}
	svcFd, err := unix.PidfdOpen(st.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(svcFd)
	pid, fd := decoy(t)
	st.Pid = pid
	b6 := st.Pack()
	if err := os.WriteFile(filepath.Join(svc.Dir, servicedir.StatusPath), b6[:], 0o644); err != nil {
		t.Fatal(err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Errorf("stop: %v", err)
	}
	if dead(fd) {
		t.Errorf("the stop killed pid %d, which the planted status named", pid)
	}
	if !dead(svcFd) {
		t.Errorf("the service outlived the stop")
	}
}

// TestOddNames: names with blanks and quotes work; a name s6-svscan
// ignores (a leading dot) fails at once, saying why, rather than after
// TakeTimeout.
func TestOddNames(t *testing.T) {
	b, _ := scanner(t)
	for _, name := range []string{"a b", "it's", "-x"} {
		svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
		svc.Name = name
		if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second}); err != nil {
			t.Errorf("start %q: %v", name, err)
			continue
		}
		if st, err := b.Status(svc); err != nil || !st.Up {
			t.Errorf("status %q = %+v, %v", name, st, err)
		}
		if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
			t.Errorf("stop %q: %v", name, err)
		}
	}
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	svc.Name = ".hidden"
	t0 := time.Now()
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady, Timeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "dot") || time.Since(t0) > 2*time.Second {
		t.Errorf("start %q = %v after %v; want an error at once saying s6-svscan ignores a leading dot", svc.Name, err, time.Since(t0))
	}
}

// TestStartTimeoutZero: timeout 0 is no timeout, not an immediate one.
func TestStartTimeoutZero(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, map[string]string{servicedir.NotificationFDFile: "3\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.UpReady}); err != nil {
		t.Fatalf("start with timeout 0: %v", err)
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{}); err != nil {
		t.Errorf("stop with timeout 0: %v", err)
	}
}

// TestScanDirNotADirectory: the scan directory being a file fails the
// start naming it.
func TestScanDirNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "sv")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	b := New(f)
	err := b.Start(testCtx(t), service(t, readyRun, nil), backends.StartOptions{Goal: svwait.Up, Timeout: 5 * time.Second})
	if !errors.Is(err, backends.ErrNoSupervisor) || !strings.Contains(err.Error(), f) {
		t.Errorf("start = %v; want ErrNoSupervisor naming %s", err, f)
	}
}

// TestFullAndReadOnlyFS: a service directory on a full, or a read-only,
// file system fails the start with one error naming the cause; nothing
// is linked.
func TestFullAndReadOnlyFS(t *testing.T) {
	if !testns.InMountNS(t) {
		return
	}
	b, _ := scanner(t)
	for _, c := range []struct{ name, cause string }{{"full", "no space left on device"}, {"ro", "read-only file system"}} {
		mnt := t.TempDir()
		if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
			t.Fatalf("mount tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(mnt, unix.MNT_DETACH) })
		dir := filepath.Join(mnt, c.name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, servicedir.RunFile), []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		if c.name == "full" {
			f, err := os.Create(filepath.Join(mnt, "filler"))
			if err != nil {
				t.Fatal(err)
			}
			for _, err = f.Write(make([]byte, 4096)); err == nil; _, err = f.Write(make([]byte, 4096)) {
			}
			f.Close()
		} else if err := unix.Mount("", mnt, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
			t.Fatalf("remount read-only: %v", err)
		}
		svc := backends.Service{Name: c.name, Dir: dir}
		t0 := time.Now()
		err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 20 * time.Second})
		t.Logf("start on a %s file system, after %v: %v", c.cause, time.Since(t0), err)
		if err == nil || !strings.Contains(err.Error(), c.cause) {
			t.Errorf("start of %s = %v; want an error saying %q", c.name, err, c.cause)
		}
		if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed start linked %s: %v", svc.Name, err)
		}
	}
}
