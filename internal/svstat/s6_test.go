package svstat

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

const s6Svstat = "/usr/bin/s6-svstat"

// needS6 skips when s6 is not installed, unless REQUIRE_S6=1.
func needS6(t *testing.T) {
	t.Helper()
	if _, err := os.Stat(s6Svstat); err != nil {
		if os.Getenv("REQUIRE_S6") == "1" {
			t.Fatalf("REQUIRE_S6=1 but %s: %v", s6Svstat, err)
		}
		t.Skipf("s6 not installed: %v", err)
	}
}

// fakeServiceDir makes a service dir that looks supervised: the supervise
// lock held by this process, a control fifo, st as status, and a down file
// unless normallyUp.
func fakeServiceDir(t *testing.T, st servicedir.Status, normallyUp bool) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, servicedir.SuperviseDir), 0o700); err != nil {
		t.Fatal(err)
	}
	lock, err := servicedir.Lock(filepath.Join(dir, servicedir.LockPath), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { lock.Close() })
	if err := unix.Mkfifo(filepath.Join(dir, servicedir.ControlPath), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := servicedir.WriteStatus(dir, &st); err != nil {
		t.Fatal(err)
	}
	if !normallyUp {
		if err := os.WriteFile(filepath.Join(dir, servicedir.DownFile), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestCompareS6Svstat prints synthetic states with the real s6-svstat and
// with Print and requires identical bytes.
func TestCompareS6Svstat(t *testing.T) {
	needS6(t)
	// Every stamp sits half a second off the whole second, so whole seconds
	// change at the same instant for all of them (see the t0/t1 check).
	base := time.Now()
	back := func(s int) time.Time {
		return base.Add(-time.Duration(s)*time.Second - 500*time.Millisecond)
	}
	st := func(up, ready, pid int, wstat uint16, flags string) servicedir.Status {
		s := servicedir.Status{Stamp: back(up), ReadyStamp: back(ready), Pid: pid, Wstat: wstat}
		s.Paused = strings.Contains(flags, "p")
		s.Finishing = strings.Contains(flags, "f")
		s.WantUp = strings.Contains(flags, "w")
		s.Ready = strings.Contains(flags, "r")
		return s
	}
	states := []struct {
		name       string
		st         servicedir.Status
		normallyUp bool
		clamped    bool // updownsince shows each program's own clock
	}{
		{"up not ready", st(3, 3, 13683, 0, "w"), true, false},
		{"up ready paused", st(10, 8, 13683, 0x300, "pwr"), true, false},
		{"finishing after d", st(0, 8, 14194, 15, "f"), true, false},
		{"finishing during r", st(1, 8, 14194, 15, "fw"), true, false},
		{"down exit 3 want up", st(0, 0, 0, 0x300, "wr"), true, false},
		{"down file never started", st(1, 1, 0, 0, "r"), false, false},
		{"up normally down want down", st(0, 2, 16090, 0, ""), false, false},
		{"sigkill finishing", st(0, 2, 14200, 9, "f"), true, false},
		{"unknown signal", st(5, 5, 0, 34, "r"), true, false},
		{"core dumped", st(5, 5, 0, 0x8b, ""), true, false},
		{"signal 29", st(5, 5, 0, 29, ""), true, false},
		{"future stamp", st(-100, 3, 0, 15, "r"), true, true},
		{"future readystamp", st(3, -100, 42, 0, "wr"), true, false},
	}
	allFields := "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor"
	fields, err := AppendFields(nil, allFields)
	if err != nil {
		t.Fatal(err)
	}
	short := []Field{Up, WantedUp, NormallyUp, Ready, Pid, ExitCode, Signal, UpdownFor}
	formats := []struct {
		args []string
		f    Format
	}{
		{nil, Format{}},
		{[]string{"-n"}, Format{Numeric: true}},
		{[]string{"-o", allFields}, Format{Fields: fields}},
		{[]string{"-uwNrpest"}, Format{Fields: short}},
	}
	for _, s := range states {
		dir := fakeServiceDir(t, s.st, s.normallyUp)
		for _, f := range formats {
			if s.clamped && len(f.f.Fields) == len(fields) {
				continue
			}
			var ours0, ours1 bytes.Buffer
			t0 := time.Now()
			want, err := exec.Command(s6Svstat, append(f.args, dir)...).Output()
			t1 := time.Now()
			if err != nil {
				t.Fatalf("%s: s6-svstat %v: %v", s.name, f.args, err)
			}
			if err := Print(&ours0, dir, f.f, func() time.Time { return t0 }); err != nil {
				t.Fatalf("%s: Print: %v", s.name, err)
			}
			Print(&ours1, dir, f.f, func() time.Time { return t1 })
			if !bytes.Equal(want, ours0.Bytes()) && !bytes.Equal(want, ours1.Bytes()) {
				t.Errorf("%s, %v:\ns6-svstat %q\n     gosv %q", s.name, f.args, want, ours0.String())
			}
		}
	}
}
