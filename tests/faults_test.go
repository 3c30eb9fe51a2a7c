//go:build integration

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The fault-injection suite of issue 9 (planted symlinks, the warning
// count table, the signal matrix against s6-svscan, a pids-cgroup limit).
// Observation windows are time-based where what is asserted is an absence
// (no repeated warning, no lost service): no event marks "nothing more
// happened". GOSV_FAULT_WINDOW (a Go duration) lengthens them for larger
// runs; the default keeps `make test` short.
const envFaultWindow = "GOSV_FAULT_WINDOW"

func faultWindow(t testing.TB, def time.Duration) time.Duration {
	t.Helper()
	s := os.Getenv(envFaultWindow)
	if s == "" {
		return def
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		t.Fatalf("%s=%q: want a positive Go duration", envFaultWindow, s)
	}
	return d
}

// logLines returns the lines of the scanner's log that contain all of subs.
func logLines(path string, subs ...string) []string {
	var out []string
next:
	for _, l := range strings.Split(readFile(path), "\n") {
		if l == "" {
			continue
		}
		for _, s := range subs {
			if !strings.Contains(l, s) {
				continue next
			}
		}
		out = append(out, l)
	}
	return out
}

// TestFaultPlantedSymlinks (issue 9, defect 4): a service directory owned
// by an ordinary user, with symlinks planted at every name the supervisor
// (root) writes, pointing at root's files. The targets stay untouched and
// nothing is created next to them, while the service is supervised.
func TestFaultPlantedSymlinks(t *testing.T) {
	requireGosv(t)
	e := newEnv(t)
	victims := filepath.Join(e.Dir, "victims")
	if err := os.Mkdir(victims, 0o755); err != nil {
		t.Fatal(err)
	}
	const precious = "root's file\n"
	for _, v := range []string{"a", "b", "d", "e"} {
		if err := os.WriteFile(filepath.Join(victims, v), []byte(precious), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	dir := e.Service(t, "exit3", "planted", nil) // dies every second: many rewrites
	if err := os.MkdirAll(filepath.Join(dir, "supervise", "gosv"), 0o700); err != nil {
		t.Fatal(err)
	}
	plant := map[string]string{
		"supervise/status.new":          "a",
		"supervise/gosv/pid.new":        "b",
		"supervise/gosv/supervisor.new": "c", // does not exist
		"supervise/death_tally":         "e", // truncated at every start by the old code
		"supervise/death_tally.new":     "f", // does not exist
	}
	for name, v := range plant {
		if err := os.Symlink(filepath.Join(victims, v), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	e.MustRun(t, "chown", "-R", "-h", "65534:65534", dir)
	l := Listen(t, dir)
	e.Link(t, dir, "planted")
	for range 3 {
		l.Wait(t, "d") // a death: status, pid record and death tally rewritten
	}
	// The user plants down, then the admin runs s6-svc -D.
	if err := os.Symlink(filepath.Join(victims, "d"), filepath.Join(dir, "down")); err != nil {
		t.Fatal(err)
	}
	w := WatchStatus(t, dir)
	e.MustRun(t, "s6-svc", "-D", dir)
	for st := w.Wait(t); st.Flags&flagWantUp != 0; st = w.Wait(t) {
	}
	for _, v := range []string{"a", "b", "d", "e"} {
		if b, err := os.ReadFile(filepath.Join(victims, v)); err != nil || string(b) != precious {
			t.Errorf("victims/%s changed: %q, %v", v, b, err)
		}
	}
	ents, _ := os.ReadDir(victims)
	if len(ents) != 4 {
		var names []string
		for _, en := range ents {
			names = append(names, en.Name())
		}
		t.Errorf("files in victims/: %v, want a b d e", names)
	}
	if got := logLines(e.Scanner.Log, "planted/down", "too many levels of symbolic links"); len(got) != 1 {
		t.Errorf("down refusal reported %d times, want once (log: %s)", len(got), readFile(e.Scanner.Log))
	}
	if st := ReadStatus(t, dir); st.Flags&flagWantUp != 0 {
		t.Errorf("status after -D: %v", st)
	}
}

// faultCondition is one row of the warning-count table.
type faultCondition struct {
	name string // service name; every line about it contains it
	what string
	max  int // warning lines allowed over the window
}

// TestFaultWarningCounts (issue 9, defect 6 and 7): each faulty condition
// lasts the whole window (30 s; GOSV_FAULT_WINDOW for longer), and the
// scanner's warning lines about it are counted. Each distinct problem may
// be reported once (then hourly); before the fix a bad max-death-tally
// was reported at every death, an unusable entry every 3 s, and a
// directory moved out of the scan directory failed at every write.
func TestFaultWarningCounts(t *testing.T) {
	requireGosv(t)
	window := faultWindow(t, 30*time.Second)
	e := newEnv(t)
	conds := []faultCondition{
		{"deathtally", "bad max-death-tally, run dies every second", 1},
		{"nfdhuge", "notification-fd 2000000, run dies every second", 1},
		{"nfdlimit", "notification-fd 99999 (above RLIMIT_NOFILE unless the hard limit is higher)", 1},
		{"supfile", "supervise is a regular file", 1},
		{"symloop", "scan entry is a symlink loop", 1},
		{"readonly", "service directory on a read-only mount", 1},
		{"moved", "real directory moved out of the scan directory, run dies every second", 0},
	}
	var crashing []string
	d := e.AddService(t, "exit3", "deathtally", map[string]string{"max-death-tally": "lots\n"})
	crashing = append(crashing, d)
	crashing = append(crashing, e.AddService(t, "exit3", "nfdhuge", map[string]string{"notification-fd": "2000000\n"}))
	e.AddService(t, "pause", "nfdlimit", map[string]string{"notification-fd": "99999\n"})
	sup := e.Service(t, "pause", "supfile", map[string]string{"supervise": "a file\n"})
	if err := os.Symlink(sup, filepath.Join(e.Scan, "supfile")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("symloop", filepath.Join(e.Scan, "symloop")); err != nil {
		t.Fatal(err)
	}
	ro := e.Service(t, "pause", "readonly", nil)
	e.MustRun(t, "mount", "--bind", ro, ro)
	e.MustRun(t, "mount", "-o", "remount,bind,ro", ro)
	if err := os.Symlink(ro, filepath.Join(e.Scan, "readonly")); err != nil {
		t.Fatal(err)
	}
	// A real directory in the scan directory, then moved out of it.
	mv := e.Service(t, "exit3", "moved", nil)
	l := Listen(t, mv)
	in := filepath.Join(e.Scan, "moved")
	if err := os.Rename(mv, in); err != nil {
		t.Fatal(err)
	}
	l.Wait(t, "d") // supervised and crashing
	out := filepath.Join(e.Dir, "elsewhere")
	if err := os.Rename(in, out); err != nil {
		t.Fatal(err)
	}
	crashing = append(crashing, out)
	e.MustRun(t, "s6-svscanctl", "-a", e.Scan) // takes the new entries at once

	// The fd limit: a second scanner with RLIMIT_NOFILE 40 and 20 services
	// (each takes 3 or 4 fds), so that some cannot be taken.
	scan2 := filepath.Join(e.Dir, "scan2")
	if err := os.Mkdir(scan2, 0o755); err != nil {
		t.Fatal(err)
	}
	const nEMFILE = 20
	for i := range nEMFILE {
		d := e.Service(t, "pause", fmt.Sprintf("fd%02d", i), nil)
		if err := os.Symlink(d, filepath.Join(scan2, filepath.Base(d))); err != nil {
			t.Fatal(err)
		}
	}
	lim := e.Start(t, nil, "prlimit", "--nofile=40:40", gosvInstallBin, "svscan", scan2)

	// NOTE: the only time-based wait of the test: it asserts that nothing
	// more is printed while the faults last, which no event can signal.
	<-time.After(window)

	for _, c := range crashing {
		n := len(svPids(t, c))
		t.Logf("%s: run started %d times", filepath.Base(c), n)
		if n < int(window/(2*time.Second)) {
			t.Errorf("%s ran %d times in %v: the fault did not last", filepath.Base(c), n, window)
		}
	}
	t.Logf("warning lines over %v:", window)
	t.Logf("%-10s %5s %5s  %s", "condition", "lines", "max", "what")
	for _, c := range conds {
		got := logLines(e.Scanner.Log, c.name)
		t.Logf("%-10s %5d %5d  %s", c.name, len(got), c.max, c.what)
		if len(got) > c.max {
			t.Errorf("%s: %d warning lines, at most %d allowed:\n%s", c.name, len(got), c.max, strings.Join(got, "\n"))
		}
	}
	emfile := logLines(lim.Log, "warning")
	t.Logf("%-10s %5d %5d  %s", "emfile", len(emfile), nEMFILE, "RLIMIT_NOFILE 40, 20 services")
	if len(logLines(lim.Log, "too many open files")) == 0 {
		t.Errorf("the fd limit was never hit (log: %s)", readFile(lim.Log))
	}
	if len(emfile) > nEMFILE {
		t.Errorf("emfile: %d warning lines, at most %d allowed:\n%s", len(emfile), nEMFILE, strings.Join(emfile, "\n"))
	}
	if lim.Exited() {
		t.Errorf("the fd-limited scanner died: %s", readFile(lim.Log))
	}
}
