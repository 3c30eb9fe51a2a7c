package runit

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

// TestStopNeverStarted: a stop of a service that was never started (no
// runit directory) succeeds, and creates nothing in its directory.
func TestStopNeverStarted(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, readyRun, nil)
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 5 * time.Second}); err != nil {
		t.Errorf("stop of a service never started = %v; want nil", err)
	}
	if _, err := os.Lstat(filepath.Join(svc.Dir, servicedir.RunitDir)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the stop created %s: %v", servicedir.RunitDir, err)
	}
	if st, err := b.Status(svc); err != nil || st.Supervised || st.Up {
		t.Errorf("status of a service never started = %+v, %v", st, err)
	}
}

// TestPlantedSymlinks: a symlink planted where the backend writes its
// runit directory (or control/, log/ in it) is refused with an error
// naming it, and nothing is written where it points.
func TestPlantedSymlinks(t *testing.T) {
	b, _ := scanner(t)
	for _, rel := range []string{servicedir.RunitDir, servicedir.RunitDir + "/" + servicedir.RunitControlDir, servicedir.RunitDir + "/" + servicedir.LogDir} {
		t.Run(strings.ReplaceAll(rel, "/", "_"), func(t *testing.T) {
			svc := service(t, readyRun, nil)
			target := t.TempDir()
			p := filepath.Join(svc.Dir, rel)
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(target, p); err != nil {
				t.Fatal(err)
			}
			err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 5 * time.Second})
			if err == nil || !strings.Contains(err.Error(), p) {
				t.Errorf("start = %v; want an error naming %s", err, p)
			}
			if ents, _ := os.ReadDir(target); len(ents) != 0 {
				t.Errorf("the start wrote %d files through the symlink %s (%s)", len(ents), p, ents[0].Name())
			}
			if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a refused start linked the directory: %v", err)
			}
		})
	}
}

// TestMissingChpst: chpst, then svlogd, missing from PATH fails the
// start naming it.
func TestMissingChpst(t *testing.T) {
	b, _ := scanner(t)
	t.Setenv("PATH", t.TempDir())
	svc := service(t, readyRun, nil)
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "chpst") {
		t.Errorf("start without chpst = %v; want an error naming it", err)
	}
	// chpst found, svlogd not.
	bin := t.TempDir()
	chpst, err := exec.LookPath("/usr/bin/chpst")
	if err != nil {
		t.Skip(err)
	}
	if err := os.Symlink(chpst, filepath.Join(bin, "chpst")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin)
	err = b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 5 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "svlogd") {
		t.Errorf("start without svlogd = %v; want an error naming it", err)
	}
	if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a refused start linked the directory: %v", err)
	}
}

// TestCorruptStatus: a truncated or oversized supervise/status under a
// live runsv gives one error naming the file; with no runsv the service
// is not supervised; stop still stops the running service.
func TestCorruptStatus(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, "exec sleep 1000\n", nil)
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st0, err := b.Status(svc)
	if err != nil || !st0.Up {
		t.Fatalf("status = %+v, %v", st0, err)
	}
	p := filepath.Join(svc.Dir, servicedir.RunitDir, servicedir.StatusPath)
	for _, bad := range []string{"short", strings.Repeat("x", 43)} {
		if err := os.WriteFile(p, []byte(bad), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Status(svc); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("status with a %d-byte status = %v; want an error naming %s", len(bad), err, p)
		}
	}
	if err := b.Stop(testCtx(t), svc, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if alive(st0.Pid) {
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
// not runsv's child (a corrupt file, or one planted: pid 1 would make
// the group kill kill(-1)) does not make the stop signal that process's
// group; the service itself is stopped.
func TestStatusPidNotTrusted(t *testing.T) {
	b, _ := scanner(t)
	svc := service(t, "exec sleep 1000\n", map[string]string{servicedir.TimeoutKillFile: "300\n"})
	if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	rdir := filepath.Join(svc.Dir, servicedir.RunitDir)
	st, err := servicedir.ReadRunitStatus(rdir)
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
	raw := st.Pack()
	if err := os.WriteFile(filepath.Join(rdir, servicedir.StatusPath), raw[:], 0o644); err != nil {
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

// TestOddNames: names with blanks and quotes work (the scripts quote
// them); a name runsvdir ignores (a leading dot) fails at once, saying
// why, rather than after TakeTimeout.
func TestOddNames(t *testing.T) {
	b, _ := scanner(t)
	for _, name := range []string{"a b", "it's", "-x"} {
		svc := service(t, "exec sleep 1000\n", nil)
		svc.Name = name
		if err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 20 * time.Second}); err != nil {
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
	svc := service(t, "exec sleep 1000\n", nil)
	svc.Name = ".hidden"
	t0 := time.Now()
	err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "dot") || time.Since(t0) > 2*time.Second {
		t.Errorf("start %q = %v after %v; want an error at once saying runsvdir ignores a leading dot", svc.Name, err, time.Since(t0))
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

// TestFullAndReadOnlyFS: a service directory on a full, then read-only,
// file system fails the start with one error naming a file and the
// cause; nothing is linked; a service already running is not lost.
func TestFullAndReadOnlyFS(t *testing.T) {
	if !testns.InMountNS(t) {
		return
	}
	b, _ := scanner(t)
	mnt := t.TempDir()
	fullMnt := mnt
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(fullMnt, unix.MNT_DETACH) })
	mk := func(name string) backends.Service {
		dir := filepath.Join(mnt, name)
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, servicedir.RunFile), []byte("#!/bin/sh\nexec sleep 1000\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return backends.Service{Name: name, Dir: dir}
	}
	running := mk("running")
	if err := b.Start(testCtx(t), running, backends.StartOptions{Goal: svwait.Up, Timeout: 20 * time.Second}); err != nil {
		t.Fatalf("start: %v", err)
	}
	st0, _ := b.Status(running)
	full := mk("full")
	f, err := os.Create(filepath.Join(mnt, "filler"))
	if err != nil {
		t.Fatal(err)
	}
	for _, err = f.Write(make([]byte, 4096)); err == nil; _, err = f.Write(make([]byte, 4096)) {
	}
	f.Close()
	if !errors.Is(err, unix.ENOSPC) {
		t.Fatalf("filling: %v", err)
	}
	check := func(svc backends.Service, cause string) {
		t.Helper()
		err := b.Start(testCtx(t), svc, backends.StartOptions{Goal: svwait.Up, Timeout: 5 * time.Second})
		t.Logf("start of %s on a %s file system: %v", svc.Name, cause, err)
		if err == nil || !strings.Contains(err.Error(), cause) || !strings.Contains(err.Error(), svc.Dir+"/") {
			t.Errorf("start of %s = %v; want an error naming a file in it and %q", svc.Name, err, cause)
		}
		if _, err := os.Lstat(filepath.Join(b.ScanDir, svc.Name)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("a failed start linked %s: %v", svc.Name, err)
		}
	}
	check(full, "no space left on device")
	if st, err := b.Status(running); err != nil || !st.Up || st.Pid != st0.Pid {
		t.Errorf("the running service after the failure: %+v, %v; want pid %d up", st, err, st0.Pid)
	}
	// The full directory's service still stops.
	if err := b.Stop(testCtx(t), running, backends.StopOptions{Timeout: 20 * time.Second}); err != nil {
		t.Errorf("stop on a full file system: %v", err)
	}
	if alive(st0.Pid) {
		t.Errorf("pid %d outlived the stop", st0.Pid)
	}
	// NOTE: a file system is remounted read-only only while nothing has
	// a file open for writing on it (runsv does): a fresh one.
	ro := t.TempDir()
	if err := unix.Mount("tmpfs", ro, "tmpfs", 0, "size=64k"); err != nil {
		t.Fatalf("mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(ro, unix.MNT_DETACH) })
	mnt = ro
	rosvc := mk("ro")
	if err := unix.Mount("", ro, "", unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("remount read-only: %v", err)
	}
	check(rosvc, "read-only file system")
}

// TestScannerDiesMidStart: runsvdir dying after the link is made and
// before it took the directory fails the start saying so, within the
// rewake period, not after TakeTimeout as "timed out".
func TestScannerDiesMidStart(t *testing.T) {
	b, cmd := scanner(t)
	// Stopped, it cannot take the link; killed once the link exists.
	cmd.Process.Signal(syscall.SIGSTOP)
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, b.ScanDir, unix.IN_CREATE); err != nil {
		t.Fatal(err)
	}
	go func() {
		var buf [4096]byte
		unix.Read(ino, buf[:])
		cmd.Process.Kill()
	}()
	t0 := time.Now()
	err = b.Start(testCtx(t), service(t, "exec sleep 1000\n", nil), backends.StartOptions{Goal: svwait.Up, Timeout: 20 * time.Second})
	if err == nil || !strings.Contains(err.Error(), "exited") || time.Since(t0) > 3*time.Second {
		t.Errorf("start = %v after %v; want an error saying runsvdir exited, within a few seconds", err, time.Since(t0))
	}
}
