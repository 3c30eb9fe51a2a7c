package initd

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// fakeSys records what the executor asks of the kernel: reboot(2) is
// never called for real, and KillAll kills nothing.
type fakeSys struct {
	machine bool
	mu      sync.Mutex
	calls   []string
}

func (f *fakeSys) Machine() bool { return f.machine }
func (f *fakeSys) KillAll(sig unix.Signal) {
	f.record(fmt.Sprintf("killall %s", unix.SignalName(sig)))
}
func (f *fakeSys) Sync() { f.record("sync") }
func (f *fakeSys) Reboot(cmd int) error {
	f.record(fmt.Sprintf("reboot %#x", uint32(cmd)))
	return nil
}

func (f *fakeSys) record(s string) {
	f.mu.Lock()
	f.calls = append(f.calls, s)
	f.mu.Unlock()
}

func TestEndChoosesRebootCommand(t *testing.T) {
	tests := []struct {
		how  How
		want []string
	}{
		{Exit, nil},
		{Halt, []string{"sync", "reboot 0xcdef0123"}},
		{Poweroff, []string{"sync", "reboot 0x4321fedc"}},
		{Reboot, []string{"sync", "reboot 0x1234567"}},
	}
	for _, tt := range tests {
		f := &fakeSys{}
		r := &runner{sys: f, stderr: &bytes.Buffer{}, m: Machine{How: tt.how}}
		if err := r.end(); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f.calls, tt.want) {
			t.Errorf("%v: calls %q, want %q", tt.how, f.calls, tt.want)
		}
	}
}

// runInit runs Run in the test process with a fake kernel, an empty scan
// directory (or the given services) and the scanner's readiness on a
// pipe; after readiness, poke is called; Run must end within 20 s.
func runInit(t *testing.T, f *fakeSys, o Options, poke func(scandir string)) (int, string) {
	t.Helper()
	dir := t.TempDir()
	if o.ScanDir == "" {
		o.ScanDir = dir
	}
	var stderr syncBuf
	o.Prog, o.Stderr, o.Sys = "gosv init", &stderr, f
	if o.Kill == 0 {
		o.Kill = 2 * time.Second
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	o.NotifyFd = int(pw.Fd())
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := Run(o)
		done <- result{code, err}
	}()
	ready := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := pr.Read(b)
		ready <- err
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatalf("no readiness: %v (%s)", err, stderr.String())
		}
		if poke != nil {
			poke(o.ScanDir)
		}
	case r := <-done:
		return r.code, stderr.String()
	case <-time.After(20 * time.Second):
		t.Fatalf("not ready within 20s: %s", stderr.String())
	}
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("Run: %v (%s)", r.err, stderr.String())
		}
		return r.code, stderr.String()
	case <-time.After(20 * time.Second):
		t.Fatalf("Run did not end within 20s: %s", stderr.String())
	}
	return 0, ""
}

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// TestRunLettersChooseTheEnd drives the whole executor (the real scanner
// and its control FIFO) on a fake kernel standing for the machine's PID
// 1: each letter of svscanctl must end in its reboot(2) command, after a
// sync and the final kill, and CAD must have been turned off first.
func TestRunLettersChooseTheEnd(t *testing.T) {
	for _, tt := range []struct {
		letter string
		cmd    string
	}{{"t", "reboot 0x4321fedc"}, {"i", "reboot 0x1234567"}, {"q", "reboot 0xcdef0123"}} {
		t.Run(tt.letter, func(t *testing.T) {
			f := &fakeSys{machine: true}
			code, out := runInit(t, f, Options{}, func(dir string) {
				if err := os.WriteFile(filepath.Join(dir, servicedir.ScanCtlPath), []byte(tt.letter), 0); err != nil {
					t.Error(err)
				}
			})
			want := []string{"reboot 0x0", "killall SIGTERM", "killall SIGCONT", "sync", tt.cmd}
			if code != 0 || !reflect.DeepEqual(f.calls, want) {
				t.Fatalf("code %d, calls %q; want 0, %q (%s)", code, f.calls, want, out)
			}
		})
	}
}

// TestRunContainerExitsWithMainCode: not the machine's PID 1, the end is
// an exit with the main command's code, and reboot(2) is never called.
func TestRunContainerExitsWithMainCode(t *testing.T) {
	for _, tt := range []struct {
		script string
		code   int
	}{{"exit 5", 5}, {"kill -9 $$", 137}, {"exit 0", 0}} {
		f := &fakeSys{}
		code, out := runInit(t, f, Options{Main: []string{"sh", "-c", tt.script}}, nil)
		if code != tt.code {
			t.Errorf("%q: code %d, want %d (%s)", tt.script, code, tt.code, out)
		}
		for _, c := range f.calls {
			if strings.HasPrefix(c, "reboot") || c == "sync" {
				t.Errorf("%q: a container called %s", tt.script, c)
			}
		}
	}
}

// TestRunMainNotFound: a missing main command is exit 127 with a message
// naming it, and the services are stopped as for any end.
func TestRunMainNotFound(t *testing.T) {
	code, out := runInit(t, &fakeSys{}, Options{Main: []string{"/nonexistent/cmd"}}, nil)
	if code != CodeNoExec || !strings.Contains(out, "/nonexistent/cmd") {
		t.Fatalf("code %d, stderr %q; want %d and the command's name", code, out, CodeNoExec)
	}
}

// TestRunStage1Failure: a failing stage 1 starts no service and no main
// command, runs stage 3, and its code is the exit code.
func TestRunStage1Failure(t *testing.T) {
	dir := t.TempDir()
	mark := filepath.Join(dir, "marks")
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		return p
	}
	s1 := write("1", "echo stage1 >>"+mark+"; exit 4")
	s3 := write("3", "echo stage3 >>"+mark)
	code, out := runInit(t, &fakeSys{}, Options{Stage1: s1, Stage3: s3, Main: []string{"sh", "-c", "echo main >>" + mark}}, nil)
	got, _ := os.ReadFile(mark)
	if code != 4 || string(got) != "stage1\nstage3\n" || !strings.Contains(out, "stage 1 failed (exit 4)") {
		t.Fatalf("code %d, marks %q, stderr %q; want 4, stage1+stage3 only, a message", code, got, out)
	}
}
