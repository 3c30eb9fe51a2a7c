package servicedir

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// requireS6 returns the path of the real s6 tool name, skipping the test
// when s6 is not installed unless REQUIRE_S6=1 (then it fails).
func requireS6(t *testing.T, name string) string {
	t.Helper()
	p := optionalS6(t, name)
	if p == "" {
		t.Skipf("/usr/bin/%s not installed", name)
	}
	return p
}

// optionalS6 is requireS6 for tests that only add a cross-check when s6
// is there: "" when it is missing (a failure under REQUIRE_S6=1).
func optionalS6(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("/usr/bin", name)
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv("REQUIRE_S6") == "1" {
			t.Fatalf("REQUIRE_S6=1 but %s is missing: %v", p, err)
		}
		return ""
	}
	return p
}

// exitCode runs cmd and returns its exit status (fatal if it cannot run).
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return 0
}

// liveDir makes a service directory that real s6 clients believe has a
// supervisor: supervise/lock held (our OFD lock) and supervise/control
// with a reader, both released at the end of the test.
func liveDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mkControlFifo(t, dir)
	openFifoReader(t, filepath.Join(dir, ControlPath))
	f, err := Lock(filepath.Join(dir, LockPath), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return dir
}

// TestS6svstatReadsOurStatus writes the states of s6-protocol.md §6 with
// WriteStatus and compares what the real s6-svstat prints, in field mode
// (exact) and in its default line (seconds within a few of the expected).
func TestS6svstatReadsOurStatus(t *testing.T) {
	bin := requireS6(t, "s6-svstat")
	const fields = "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum"
	for _, tt := range []struct {
		s      Status
		down   bool // a ./down file
		fields string
		line   string // S and R stand for the seconds
	}{
		{Status{Pid: 13683, WantUp: true}, false,
			"true true true false false 13683 -1 NA -1", "up (pid 13683) S seconds"},
		{Status{Pid: 13683, WantUp: true, Ready: true}, false,
			"true true true true false 13683 -1 NA -1", "up (pid 13683) S seconds, ready R seconds"},
		{Status{Pid: 13683, WantUp: true, Ready: true, Paused: true}, false,
			"true true true true true 13683 -1 NA -1", "up (pid 13683) S seconds, paused, ready R seconds"},
		{Status{Pid: 14194, Wstat: 15, Finishing: true}, false,
			"false false true false false -1 -1 SIGTERM 15", "down (signal SIGTERM) S seconds, normally up"},
		{Status{Wstat: 15, Ready: true}, false,
			"false false true false false -1 -1 SIGTERM 15", "down (signal SIGTERM) S seconds, normally up, ready R seconds"},
		{Status{Wstat: 0x300, WantUp: true, Ready: true}, false,
			"false true true false false -1 3 NA -1", "down (exitcode 3) S seconds, normally up, want up, ready R seconds"},
		{Status{Ready: true}, true,
			"false false false false false -1 0 NA -1", "down (exitcode 0) S seconds, ready R seconds"},
		{Status{Pid: 16090, WantUp: true}, true,
			"true true false false false 16090 -1 NA -1", "up (pid 16090) S seconds, normally down"},
		{Status{Pid: 16090}, true,
			"true false false false false 16090 -1 NA -1", "up (pid 16090) S seconds, normally down, want down"},
		{Status{Wstat: 0x89}, false, // SIGKILL with core flag
			"false false true false false -1 -1 SIGKILL 9", "down (signal SIGKILL) S seconds, normally up"},
	} {
		dir := liveDir(t)
		if tt.down {
			writeFile(t, filepath.Join(dir, DownFile), nil)
		}
		now := time.Now()
		s := tt.s
		s.Stamp = now.Add(-100 * time.Second)
		s.ReadyStamp = now.Add(-50 * time.Second)
		if err := WriteStatus(dir, &s); err != nil {
			t.Fatal(err)
		}
		out := s6output(t, bin, "-o", fields+",updownsince,readysince", dir)
		want := fmt.Sprintf("%s %s %s", tt.fields, TAI64NFromTime(s.Stamp), TAI64NFromTime(s.ReadyStamp))
		if out != want {
			t.Errorf("s6-svstat -o for %+v:\n got %s\nwant %s", tt.s, out, want)
		}
		re := "^" + regexp.QuoteMeta(tt.line) + "$"
		re = strings.Replace(re, "S seconds", "10[0-9] seconds", 1)
		re = strings.Replace(re, "R seconds", "5[0-9] seconds", 1)
		if out := s6output(t, bin, dir); !regexp.MustCompile(re).MatchString(out) {
			t.Errorf("s6-svstat for %+v:\n got %s\nwant %s", tt.s, out, tt.line)
		}
	}
}

// TestSignalNamesMatchS6svstat: for every signal number, s6-svstat names
// a signaled death exactly as SignalName does (the skalibs table as built).
func TestSignalNamesMatchS6svstat(t *testing.T) {
	bin := requireS6(t, "s6-svstat")
	dir := liveDir(t)
	for sig := unix.Signal(1); sig <= 65; sig++ {
		if sig == 0x7f {
			continue
		}
		s := Status{Stamp: time.Now(), ReadyStamp: time.Now(), Wstat: uint16(sig)}
		if err := WriteStatus(dir, &s); err != nil {
			t.Fatal(err)
		}
		out := s6output(t, bin, "-o", "signal,signum", dir)
		if want := fmt.Sprintf("SIG%s %d", SignalName(sig), sig); out != want {
			t.Errorf("signal %d: s6-svstat says %q, SignalName gives %q", sig, out, want)
		}
	}
}

// s6output runs bin with args and returns its stdout without the newline.
func s6output(t *testing.T, bin string, args ...string) string {
	t.Helper()
	out, err := exec.Command(bin, args...).Output()
	if err != nil {
		t.Fatalf("%s %v: %v (%s)", bin, args, err, out)
	}
	return strings.TrimSuffix(string(out), "\n")
}

// TestS6svwaitWakesOnOurNotify: the real s6-svwait subscribes (through
// s6-ftrigrd) and reads the status; our WriteStatus + Notify must then
// finish its wait with the exit code s6 documents.
func TestS6svwaitWakesOnOurNotify(t *testing.T) {
	bin := requireS6(t, "s6-svwait")
	down := Status{WantUp: true, Ready: true}
	up := Status{Pid: os.Getpid(), WantUp: true}
	for _, tt := range []struct {
		name   string
		flag   string
		before Status
		after  Status
		events string
		rc     int
	}{
		{"up", "-u", down, up, "u", 0},
		{"up and ready", "-U", down, Status{Pid: os.Getpid(), WantUp: true, Ready: true}, "uU", 0},
		{"down and ready", "-D", up, down, "dD", 0},
		{"supervisor exits", "-u", down, down, "x", 1},
		{"permanent failure", "-u", down, down, "OD", 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			mkdir(t, filepath.Join(dir, SuperviseDir))
			if err := WriteStatus(dir, &tt.before); err != nil {
				t.Fatal(err)
			}
			ev := filepath.Join(dir, EventDir)
			if err := MakeEventDir(ev, os.Getegid()); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command(bin, tt.flag, "-t", "2000", dir)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			waitListener(t, ev, func() {
				if err := cmd.Start(); err != nil {
					t.Fatal(err)
				}
			})
			if err := WriteStatus(dir, &tt.after); err != nil {
				t.Fatal(err)
			}
			var n Notifier
			for i, e := range tt.events {
				// The first event must reach s6-svwait; a later one may
				// find it gone already (O ends a -u wait at once, and
				// s6-svwait's exit races the D that follows).
				if c, err := n.Notify(ev, string(e)); err != nil || c != 1 && (i == 0 || c != 0) {
					t.Errorf("Notify(%q) reached %d listeners, %v", e, c, err)
				}
			}
			err := cmd.Wait()
			if rc := cmd.ProcessState.ExitCode(); rc != tt.rc {
				t.Errorf("s6-svwait %s exited %d (%v, %q), want %d", tt.flag, rc, err, stderr.String(), tt.rc)
			}
		})
	}
}

// waitListener runs start and returns the name of the first listener
// fifo renamed into eventDir, watching with inotify (no polling).
func waitListener(t *testing.T, eventDir string, start func()) string {
	t.Helper()
	fd, err := unix.InotifyInit1(unix.IN_NONBLOCK | unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), "inotify")
	defer f.Close()
	if _, err := unix.InotifyAddWatch(fd, eventDir, unix.IN_MOVED_TO); err != nil {
		t.Fatal(err)
	}
	start()
	if err := f.SetReadDeadline(testDeadline(t)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	for {
		n, err := f.Read(buf)
		if err != nil {
			t.Fatalf("waiting for a listener in %s: %v", eventDir, err)
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&buf[off]))
			name := buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			name = name[:max(0, bytes.IndexByte(name, 0))]
			if strings.HasPrefix(string(name), eventFifoPrefix) {
				return string(name)
			}
			off += unix.SizeofInotifyEvent + int(ev.Len)
		}
	}
}

// TestS6FtrigNotifyReachesOurSubscription: s6's own notifier
// (s6-ftrig-notify, ftrigw_notify) finds and writes to our fifo.
func TestS6FtrigNotifyReachesOurSubscription(t *testing.T) {
	bin := requireS6(t, "s6-ftrig-notify")
	dir := t.TempDir()
	sub, err := Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	for _, e := range []string{"U", "OD"} {
		if out, err := exec.Command(bin, filepath.Join(dir, EventDir), e).CombinedOutput(); err != nil {
			t.Fatalf("s6-ftrig-notify: %v %s", err, out)
		}
		if got := readEvents(t, sub, len(e)); got != e {
			t.Errorf("got %q, want %q", got, e)
		}
	}
}

// TestRealS6Supervise drives a real s6-supervise with this package alone:
// Subscribe before it starts, read its status, lock and death tally, and
// control it with WriteControl.
func TestRealS6Supervise(t *testing.T) {
	bin := requireS6(t, "s6-supervise")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "svc")
	mkdir(t, dir)
	run := "#!/bin/sh\nexec '" + self + "' -test.run='^$'\n"
	if err := os.WriteFile(filepath.Join(dir, RunFile), []byte(run), 0o755); err != nil {
		t.Fatal(err)
	}
	sub, err := Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()

	sup := exec.Command(bin, dir)
	sup.Env = append(os.Environ(), helperEnv+"=pause") // inherited by ./run
	sup.Stderr = os.Stderr
	if err := sup.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopSupervise(t, sup, dir) })

	if got := readEvents(t, sub, 2); got != "su" {
		t.Fatalf("events at start %q, want su", got)
	}
	st, err := ReadStatus(dir)
	if err != nil || !st.Up() || !st.WantUp || st.Ready || st.Wstat != 0 {
		t.Fatalf("status after start: %+v, %v", st, err)
	}
	if _, err := ProcStartTime(st.Pid); err != nil {
		t.Errorf("run pid %d: %v", st.Pid, err)
	}
	lock := filepath.Join(dir, LockPath)
	if pid, err := HolderPid(lock); pid != sup.Process.Pid || err != nil {
		t.Errorf("HolderPid = %d, %v; want s6-supervise %d", pid, err, sup.Process.Pid)
	}
	if _, err := Lock(lock, 0o644); !errors.Is(err, ErrLocked) {
		t.Errorf("Lock over s6-supervise's = %v, want ErrLocked", err)
	}

	if err := WriteControl(dir, []byte("d")); err != nil {
		t.Fatal(err)
	}
	if got := readEvents(t, sub, 2); got != "dD" {
		t.Fatalf("events after d %q, want dD", got)
	}
	st, err = ReadStatus(dir)
	if err != nil || st.Up() || st.Pid != 0 || st.WantUp || !st.Ready || st.Wstat != uint16(unix.SIGTERM) {
		t.Errorf("status after d: %+v, %v", st, err)
	}
	ds, err := ReadDeathTally(dir)
	if err != nil || len(ds) != 1 || ds[0].Code != 143 || ds[0].Sig != 15 || !ds[0].Stamp.Equal(st.Stamp) {
		t.Errorf("death tally %+v, %v; want one SIGTERM record at %v", ds, err, st.Stamp)
	}

	if err := WriteControl(dir, []byte("x")); err != nil {
		t.Fatal(err)
	}
	if got := readEvents(t, sub, 1); got != "x" {
		t.Errorf("event after x %q", got)
	}
	if err := sup.Wait(); err != nil {
		t.Errorf("s6-supervise: %v", err)
	}
	if err := WriteControl(dir, []byte("u")); !errors.Is(err, ErrNotListening) || !errors.Is(err, unix.ENXIO) {
		t.Errorf("WriteControl after exit = %v, want ErrNotListening (ENXIO)", err)
	}
	assertLocked(t, lock, false)
}

// stopSupervise kills, by pid, what TestRealS6Supervise left running after
// a failure: the run process named in the status file, then s6-supervise.
func stopSupervise(t *testing.T, sup *exec.Cmd, dir string) {
	if sup.ProcessState != nil {
		return
	}
	if st, err := ReadStatus(dir); err == nil && st.Pid > 0 {
		_ = unix.Kill(st.Pid, unix.SIGTERM)
	}
	_ = sup.Process.Kill()
	_ = sup.Wait()
}

// TestS6superviseRefusesOurLock: the conflict works the other way too: a
// real s6-supervise will not start on a directory whose lock gosv holds
// ("another instance ... is already running", exit 100), and leaves the
// status file alone.
func TestS6superviseRefusesOurLock(t *testing.T) {
	bin := requireS6(t, "s6-supervise")
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, RunFile), []byte("#!/bin/sh\nexit 1\n"))
	mkdir(t, filepath.Join(dir, SuperviseDir))
	f, err := Lock(filepath.Join(dir, LockPath), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd := exec.Command(bin, dir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if rc := exitCode(t, cmd); rc != 100 || !strings.Contains(stderr.String(), "already running") {
		t.Errorf("s6-supervise under our lock exited %d (%q), want 100", rc, stderr.String())
	}
	if _, err := os.Lstat(filepath.Join(dir, StatusPath)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("s6-supervise wrote a status under our lock: %v", err)
	}
}
