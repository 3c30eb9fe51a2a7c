//go:build integration

package tests

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestNamespace checks the harness itself: what testinit mounts, that
// nothing leaks to the host, and that orphans are reaped.
func TestNamespace(t *testing.T) {
	n := NewNS(t)
	marker := "gosv-ns-test-" + filepath.Base(n.Dir)

	t.Run("pid1", func(t *testing.T) {
		r := n.MustRun(t, "cat", "/proc/1/comm")
		if got := strings.TrimSpace(r.Stdout); got != "testinit" {
			t.Errorf("PID 1 is %q, want testinit", got)
		}
	})
	t.Run("mounts", func(t *testing.T) {
		r := n.MustRun(t, "cat", "/proc/self/mountinfo")
		for _, want := range []string{" /etc rw", " /usr rw", " /var rw", " /run rw", " /tmp rw", " /proc rw"} {
			if !strings.Contains(r.Stdout, want) {
				t.Errorf("no mount%q in namespace:\n%s", want, r.Stdout)
			}
		}
		n.MustRun(t, "test", "-f", "/run/openrc/softlevel")
		n.MustRun(t, "test", "-d", n.Dir)
		n.MustRun(t, "test", "-x", suite.testinit)
	})
	t.Run("overlays-stay-inside", func(t *testing.T) {
		for _, dir := range []string{"/etc", "/usr", "/var", "/run", "/tmp"} {
			p := filepath.Join(dir, marker)
			n.MustRun(t, "sh", "-c", "echo x > "+p)
			if _, err := os.Stat(p); !os.IsNotExist(err) {
				os.Remove(p) // never leave it, even though the test failed
				t.Errorf("%s written in the namespace is visible on the host (%v)", p, err)
			}
		}
		if _, err := os.Stat(filepath.Join(n.Dir, "overlay", "etc", "upper", marker)); err != nil {
			t.Errorf("write to /etc did not land in the overlay's upper dir: %v", err)
		}
	})
	t.Run("orphans-reaped", func(t *testing.T) {
		// The shell exits at once; its child is reparented to testinit,
		// which must reap it when it exits.
		n.MustRun(t, "sh", "-c", "svhelper exit 0 & exit 0")
	})
	t.Run("start", func(t *testing.T) {
		p := n.Start(t, nil, "svhelper", "exit", "7")
		if code := p.Wait(t, eventTimeout); code != 7 {
			t.Errorf("exit code %d, want 7", code)
		}
	})
	t.Run("openrc", func(t *testing.T) {
		requireTools(t, envRequireRC, "openrc", "rc-status")
		r := n.Run(t, "rc-status", "--runlevel")
		if r.Code != 0 {
			t.Errorf("rc-status in the namespace: %s", r)
		}
	})
}

// errRecorder is a testing.TB whose Errorf is recorded instead of failing.
type errRecorder struct {
	testing.TB
	errs []string
}

func (r *errRecorder) Errorf(format string, args ...any) {
	r.errs = append(r.errs, format)
}

// TestZombieCheckFails proves that checkNoZombies can fail: a parent that
// never reaps (svhelper pause, after the shell execs it) keeps its exited
// child as a zombie.
func TestZombieCheckFails(t *testing.T) {
	n := NewNS(t)
	fifo := filepath.Join(n.Dir, "child-ran")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// Read-write open: never blocks, never reads EOF.
	f, err := os.OpenFile(fifo, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p := n.Start(t, nil, "sh", "-c", "(echo x > "+fifo+") & exec svhelper pause")
	if line, err := readLine(f, eventTimeout); err != nil || line != "x" {
		t.Fatalf("child did not run: %q %v", line, err)
	}
	var child *Process
	for _, q := range n.Procs() {
		if q.NsPPid == p.NsPid {
			child = &q
		}
	}
	if child == nil {
		t.Fatalf("no child of %d:\n%s", p.NsPid, n.psTree())
	}
	if !waitExit(t, child.HostPid, eventTimeout) {
		t.Fatalf("child %d did not exit", child.NsPid)
	}
	rec := &errRecorder{TB: t}
	checkNoZombies(rec, n)
	if len(rec.errs) == 0 {
		t.Fatalf("checkNoZombies found no zombie under pid %d:\n%s", p.NsPid, n.psTree())
	}
	n.MustRun(t, "kill", "-KILL", strconv.Itoa(p.NsPid))
	p.Wait(t, eventTimeout)
}
