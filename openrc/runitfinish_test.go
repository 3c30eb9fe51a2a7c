package openrc

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// TestRunitFinish: under runsv, finish records each death in the death
// tally from runsv's arguments (exit code, or -1 and the signal), and
// once respawn_max is exceeded it tells runsv d, records the reason and
// marks the OpenRC service stopped then failed.
func TestRunitFinish(t *testing.T) {
	dir := t.TempDir()
	libexec := t.TempDir()
	marks := filepath.Join(t.TempDir(), "marks")
	os.MkdirAll(filepath.Join(libexec, "sbin"), 0o755)
	for _, st := range []string{"stopped", "failed"} {
		script := "#!/bin/sh\necho " + st + " \"$1\" >>" + marks + "\n"
		if err := os.WriteFile(filepath.Join(libexec, "sbin", "mark_service_"+st), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ec := &ExecConfig{Service: "web", RCSvcDir: t.TempDir(), LibexecDir: libexec, Respawn: Respawn{Max: 1, Period: time.Minute}}
	os.WriteFile(filepath.Join(dir, StartFile), []byte("1\n"), 0o644)
	rdir := filepath.Join(dir, servicedir.RunitDir)
	for _, d := range []string{filepath.Join(dir, servicedir.SuperviseDir), filepath.Join(rdir, servicedir.SuperviseDir)} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	st := servicedir.RunitStatus{Stamp: time.Now(), WantUp: true, State: servicedir.RunitDown}
	b := st.Pack()
	os.WriteFile(filepath.Join(rdir, servicedir.StatusPath), b[:], 0o644)
	ctl := filepath.Join(rdir, servicedir.ControlPath)
	if err := unix.Mkfifo(ctl, 0o600); err != nil {
		t.Fatal(err)
	}
	// runsv's side of the control FIFO.
	fd, err := unix.Open(ctl, unix.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)

	var out bytes.Buffer
	ec.runitFinish(dir, []string{"-1", "9"}, &out)
	if tally, _ := servicedir.ReadDeathTally(dir); len(tally) != 1 || tally[0].String() != "signal SIGKILL" {
		t.Fatalf("after a SIGKILL: tally %v", tally)
	}
	if _, err := os.Stat(filepath.Join(dir, ReasonFile)); err == nil {
		t.Fatalf("gave up after one death (respawn_max=1): %s", out.String())
	}
	ec.runitFinish(dir, []string{"3", "0"}, &out)
	tally, _ := servicedir.ReadDeathTally(dir)
	if len(tally) != 2 || tally[1].String() != "exit code 3" {
		t.Errorf("after an exit 3: tally %v", tally)
	}
	var buf [8]byte
	if n, _ := unix.Read(fd, buf[:]); string(buf[:max(n, 0)]) != "d" {
		t.Errorf("runsv was told %q, want d", buf[:max(n, 0)])
	}
	if r := Reason(dir); !strings.Contains(r, "respawned 2 times") || !strings.Contains(r, "under runsv") || !strings.Contains(r, "last death: exit code 3") {
		t.Errorf("reason %q", r)
	}
	if m, _ := os.ReadFile(marks); string(m) != "stopped web\nfailed web\n" {
		t.Errorf("marks %q, want stopped then failed", m)
	}
	// A death while runsv wants it down (a stop) is recorded, nothing more.
	st.WantUp = false
	b = st.Pack()
	os.WriteFile(filepath.Join(rdir, servicedir.StatusPath), b[:], 0o644)
	os.Remove(marks)
	ec.runitFinish(dir, []string{"0", "0"}, &out)
	if m, err := os.ReadFile(marks); err == nil {
		t.Errorf("a stop's death marked the service: %q", m)
	}
}
