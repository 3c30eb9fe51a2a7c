package events

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/supervise"
)

var t0 = time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)

func TestNewRecord(t *testing.T) {
	for _, tc := range []struct {
		a    supervise.Action
		json string
		text string
	}{
		{supervise.Action{Hap: supervise.HapStart, Pid: 7}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"start","pid":7}`, "web: started (pid 7)"},
		{supervise.Action{Hap: supervise.HapReady, Pid: 7}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"ready","pid":7}`, "web: ready (pid 7)"},
		{supervise.Action{Hap: supervise.HapExit, Pid: 7, Wstat: 3 << 8}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"exit","pid":7,"exit_code":3}`, "web: exited 3 (pid 7)"},
		{supervise.Action{Hap: supervise.HapExit, Pid: 7, Wstat: 9}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"exit","pid":7,"signal":"SIGKILL"}`, "web: killed by SIGKILL (pid 7)"},
		{supervise.Action{Hap: supervise.HapExit, Pid: 7, Msg: "unknown"}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"exit","pid":7,"message":"unknown"}`, "web: exited, status unknown (adopted from an earlier supervisor) (pid 7)"},
		{supervise.Action{Hap: supervise.HapRestart, After: 700 * time.Millisecond}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"restart","delay_ms":700}`, "web: restarting in 700ms"},
		{supervise.Action{Hap: supervise.HapBackoff, After: 8 * time.Second, Msg: "4 failures"}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"backoff","delay_ms":8000,"message":"4 failures"}`, "web: backing off 8s: 4 failures"},
		{supervise.Action{Hap: supervise.HapGiveUp, Msg: "respawned 11 times within 12s"}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"give-up","message":"respawned 11 times within 12s"}`, "web: given up: respawned 11 times within 12s"},
		{supervise.Action{Hap: supervise.HapUnhealthy, Msg: "503 (3/3)"}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"unhealthy","message":"503 (3/3)"}`, "web: unhealthy: 503 (3/3)"},
		{supervise.Action{Hap: supervise.HapRecovered}, `{"time":"2026-12-04T21:00:00Z","service":"web","event":"recovered"}`, "web: healthy again"},
	} {
		tc.a.Kind = supervise.ActEvent
		r := New(t0, "web", &tc.a)
		if got := strings.TrimSpace(string(r.Line())); got != tc.json {
			t.Errorf("%v: line %s, want %s", tc.a.Hap, got, tc.json)
		}
		back, err := Parse(r.Line())
		if err != nil || string(back.Line()) != string(r.Line()) {
			t.Errorf("%v: round trip %v %s", tc.a.Hap, err, back.Line())
		}
		if got := r.Text(); !strings.HasSuffix(got, " "+tc.text) {
			t.Errorf("%v: text %q, want … %q", tc.a.Hap, got, tc.text)
		}
	}
}

func TestEnv(t *testing.T) {
	r := New(t0, "web", &supervise.Action{Kind: supervise.ActEvent, Hap: supervise.HapExit, Pid: 7, Wstat: 9})
	env := strings.Join(r.Env(nil), "\n")
	for _, want := range []string{"GOSV_EVENT=exit", "GOSV_SERVICE=web", "GOSV_PID=7", "GOSV_EXIT_SIGNAL=SIGKILL", "GOSV_TIME=2026-12-04T21:00:00Z"} {
		if !strings.Contains(env, want+"\n") && !strings.HasSuffix(env, want) {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "GOSV_EXIT_CODE") {
		t.Errorf("a killed run has no exit code:\n%s", env)
	}
}

func line(i int) []byte {
	r := Record{Time: t0, Service: "s", Event: "start", Pid: i + 1}
	return r.Line()
}

func readPids(t *testing.T, dir string) []int {
	t.Helper()
	var pids []int
	rd := &Reader{Dir: dir, Each: func(r *Record, _ []byte) error { pids = append(pids, r.Pid); return nil }}
	if err := rd.ReadAll(); err != nil {
		t.Fatal(err)
	}
	return pids
}

// TestRotation: the log stays within its bound, keeps the newest lines in
// order, and loses none of them until they fall off the end.
func TestRotation(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ev")
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.max, l.keep = 200, 2
	tick := t0
	l.now = func() time.Time { tick = tick.Add(time.Second); return tick }
	n := len(line(0))
	for i := 0; i < 100; i++ {
		if err := l.Append(line(i)); err != nil {
			t.Fatal(err)
		}
	}
	l.Close()
	old, _ := rotated(dir)
	if len(old) != 2 {
		t.Fatalf("rotated files %v, want 2", old)
	}
	pids := readPids(t, dir)
	perFile := 200 / n
	if len(pids) < 2*perFile || pids[len(pids)-1] != 100 {
		t.Fatalf("read %v", pids)
	}
	for i := 1; i < len(pids); i++ {
		if pids[i] != pids[i-1]+1 {
			t.Fatalf("out of order or lost: %v", pids)
		}
	}
}

// TestTornLine: a line cut short (disk full) is skipped, the next one is read.
func TestTornLine(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ev")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, currentName), append(line(0), line(1)[:20]...), 0o644)
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.Append(line(2))
	l.Close()
	if got := fmt.Sprint(readPids(t, dir)); got != "[1 3]" {
		t.Fatalf("read %s, want [1 3]", got)
	}
}

// TestSymlinkRefused: current planted as a symlink is never written through.
func TestSymlinkRefused(t *testing.T) {
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "ev")
	os.Mkdir(dir, 0o755)
	target := filepath.Join(tmp, "victim")
	os.WriteFile(target, nil, 0o644)
	os.Symlink(target, filepath.Join(dir, currentName))
	if _, err := Open(dir); err == nil {
		t.Fatal("opened a symlinked current")
	}
	os.Symlink(tmp, filepath.Join(tmp, "evlink"))
	if _, err := Open(filepath.Join(tmp, "evlink")); err == nil {
		t.Fatal("opened a symlinked log directory")
	}
}

// TestFollow: lines appended after the start, across a rotation, are
// delivered in order.
func TestFollow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "ev")
	l, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	l.max, l.keep = 300, 10
	l.Append(line(0))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan int, 100)
	done := make(chan error, 1)
	rd := &Reader{Dir: dir, Each: func(r *Record, _ []byte) error { got <- r.Pid; return nil }}
	go func() { done <- rd.Follow(ctx) }()
	if p := <-got; p != 1 {
		t.Fatalf("first %d", p)
	}
	for i := 1; i < 30; i++ {
		if err := l.Append(line(i)); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.After(10 * time.Second)
	for want := 2; want <= 30; want++ {
		select {
		case p := <-got:
			if p != want {
				t.Fatalf("got pid %d, want %d", p, want)
			}
		case <-deadline:
			t.Fatalf("waited for %d", want)
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// TestFullDisk: a write on a full filesystem fails, is reported, and the
// log carries on once space is back.
func TestFullDisk(t *testing.T) {
	if os.Getuid() != 0 {
		t.Skip("needs root to mount a tmpfs")
	}
	mnt := t.TempDir()
	if err := unix.Mount("tmpfs", mnt, "tmpfs", 0, "size=8k"); err != nil {
		t.Skip("tmpfs:", err)
	}
	defer unix.Unmount(mnt, unix.MNT_DETACH)
	l, err := Open(filepath.Join(mnt, "ev"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	filler := filepath.Join(mnt, "fill")
	os.WriteFile(filler, make([]byte, 64<<10), 0o644) // fails part-way: the disk is full
	var failed bool
	for i := 0; i < 200 && !failed; i++ {
		failed = l.Append(line(i)) != nil
	}
	if !failed {
		t.Fatal("no write failed on a full tmpfs")
	}
	os.Remove(filler)
	if err := l.Append(line(999)); err != nil {
		t.Fatal(err)
	}
	pids := readPids(t, filepath.Join(mnt, "ev"))
	if pids[len(pids)-1] != 1000 {
		t.Fatalf("last %v", pids)
	}
}
