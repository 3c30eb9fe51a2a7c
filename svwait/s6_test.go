package svwait

import (
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/gosv/gosv/internal/servicedir"
)

const s6Supervise = "/usr/bin/s6-supervise"

// needS6 skips when s6 is not installed, unless REQUIRE_S6=1.
func needS6(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(s6Supervise); err != nil {
		if os.Getenv("REQUIRE_S6") == "1" {
			t.Fatalf("REQUIRE_S6=1 but %s: %v", s6Supervise, err)
		}
		t.Skipf("s6 not installed: %v", err)
	}
}

// startS6Supervise runs the real s6-supervise on a fresh service dir and
// returns once it announced itself with 's'. It is stopped with SIGTERM and
// waited for at cleanup.
func startS6Supervise(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	run := "#!/bin/sh\nexec sleep 1000\n"
	if err := os.WriteFile(filepath.Join(dir, servicedir.RunFile), []byte(run), 0o755); err != nil {
		t.Fatal(err)
	}
	// Subscribe before the supervisor exists, so its 's' cannot be missed;
	// s6-supervise uses an existing event/ as is.
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	cmd := exec.Command(s6Supervise, dir)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// SIGTERM: s6-supervise brings the service down, then exits.
		cmd.Process.Signal(syscall.SIGTERM)
		if err := cmd.Wait(); err != nil {
			t.Errorf("s6-supervise: %v", err)
		}
	})
	ctx := testCtx(t)
	if d, ok := ctx.Deadline(); ok {
		sub.File.SetReadDeadline(d)
	}
	var b [1]byte
	for b[0] != 's' {
		if _, err := sub.File.Read(b[:]); err != nil {
			t.Fatalf("waiting for s6-supervise's 's' event: %v", err)
		}
	}
	return dir
}

func TestRealS6Supervise(t *testing.T) {
	needS6(t)
	dir := startS6Supervise(t)
	if err := Wait(testCtx(t), []string{dir}, Up, All); err != nil {
		t.Fatalf("wait up: %v", err)
	}
	w, err := Listen([]string{dir}, DownReady, Any)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	if err := servicedir.WriteControl(dir, []byte("d")); err != nil {
		t.Fatal(err)
	}
	if err := w.Wait(testCtx(t)); err != nil {
		t.Fatalf("wait down and ready: %v", err)
	}
	st, err := servicedir.ReadStatus(dir)
	if err != nil {
		t.Fatal(err)
	}
	if st.Up() || !st.Ready || st.WantUp || st.Wstat != uint16(syscall.SIGTERM) {
		t.Errorf("status after d: %+v, want down, ready, want down, killed by SIGTERM", st)
	}
}
