package s6

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
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
