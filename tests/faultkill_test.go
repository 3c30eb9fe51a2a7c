//go:build integration

package tests

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Fault injection (issue 9): scanner SIGKILLs and restarts with
// crash-looping services whose every output line is numbered, then a count
// of every line in the logs. Time-bounded by default; larger runs with
//
//	GOSV_FAULT_KILLS=100 GOSV_FAULT_SERVICES=50 go test -tags integration -count=1 -run TestFault -v ./tests/
//
// and GOSV_FAULT_REPORT=FILE appends the figures to FILE.

// faultTimeout bounds the wait for every service to be back after a
// scanner restart: with many services on a loaded machine (shared CI
// runners, ext4 with online discard making unlink(2) wait for the disk) a
// restart can take longer than eventTimeout.
const faultTimeout = 60 * time.Second

// talkLines is how many lines each run writes before it is ready.
const talkLines = 20

// talkRun is the run script of the fault services: see svhelper talk.
// SIGTERM is ignored until talk catches it, so that a run stopped right
// after its start still says bye (SIG_IGN survives exec; Go's
// signal.Notify replaces it for SIGTERM).
const talkRun = "#!/bin/sh\ntrap '' TERM\nexec svhelper -record ./pids talk 20 3 ./gate\n"

// faultSvc is one service of a fault run. Service directories live on
// the namespace's /run (a tmpfs): the suite is about process kills, and
// on a busy ext4 mounted with discard every rename over a status file
// waits for the disk, which would time the test rather than gosv.
type faultSvc struct {
	name   string
	in     string   // the directory's path inside the namespace
	dir    string   // the same, seen from the test (through /proc/PID1/root)
	logDir string   // where its lines end up (test's view)
	gate   *os.File // the fifo its runs wait on, held read-write
	// endedAt says, by run number, in which kill cycle the run was let go
	// (failure reports only).
	endedAt map[int]string
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// addTalker creates and links a talk service: in-process logging with
// script (log-script), or a log/ service running gosv log with logScript
// when script is empty.
func (e *Env) addTalker(t *testing.T, name, script, logScript string) *faultSvc {
	t.Helper()
	in := "/run/fault/" + name
	dir := fmt.Sprintf("/proc/%d/root%s", e.Pid1(), in)
	s := &faultSvc{name: name, in: in, dir: dir, endedAt: map[int]string{}}
	files := map[string]string{"run": talkRun, "notification-fd": "3\n"}
	if script != "" {
		files["log-script"] = script + "\n"
		s.logDir = filepath.Join(dir, "log")
	} else {
		files["log/run"] = "#!/bin/sh\nexec " + gosvInstallBin + " log " + logScript + " ./main\n"
		s.logDir = filepath.Join(dir, "log", "main")
	}
	for f, content := range files {
		p := filepath.Join(dir, f)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		mode := os.FileMode(0o644)
		if filepath.Base(f) == "run" {
			mode = 0o755
		}
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
	}
	gate := filepath.Join(dir, "gate")
	if err := unix.Mkfifo(gate, 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := os.OpenFile(gate, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	s.gate = f
	e.Link(t, in, name)
	return s
}

// release lets the current (or next) run of s end, as a crash.
func (s *faultSvc) release(t *testing.T) {
	if _, err := s.gate.Write([]byte("\n")); err != nil {
		t.Fatal(err)
	}
}

// waitUpNew waits until each service is up with a pid other than old's,
// and ready unless it is a run that was already alive before the restart
// (pre: run pids by service), subscribed before looking.
// NOTE: such a run, spawned by the killed scanner (recorded, or found
// orphaned if the kill fell between its fork and its pid record), reports
// readiness through the pipe the fd holder kept since before its fork;
// it may simply not have written it yet when the new scanner is up.
func (e *Env) waitUpNew(t *testing.T, svcs []*faultSvc, old map[string]uint64, pre map[string][]int, ls map[string]*Listener) {
	t.Helper()
	for _, s := range svcs {
		for {
			st := ReadStatus(t, s.dir)
			if st.Up() && st.Pid != old[s.name] && (st.Flags&flagReady != 0 || slices.Contains(pre[s.name], int(st.Pid))) {
				break
			}
			ls[s.name].WaitTimeout(t, "uU", faultTimeout)
		}
	}
}

// runPids returns the namespace pids of the live run processes of each
// service (cwd = its dir).
func (e *Env) runPids(svcs []*faultSvc) map[string][]int {
	byDir := map[string]string{}
	for _, s := range svcs {
		byDir[s.in] = s.name
	}
	pids := map[string][]int{}
	for _, p := range e.Procs() {
		if p.State == 'Z' || !strings.HasPrefix(p.Cmdline, "svhelper -record ./pids talk") {
			continue
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", p.HostPid)); err == nil {
			pids[byDir[cwd]] = append(pids[byDir[cwd]], p.NsPid)
		}
	}
	return pids
}

// procUsage is a process's CPU time, lifetime and PSS, from /proc.
type procUsage struct {
	cpu, life time.Duration
	pssKiB    int
	fds       int
}

func readUsage(hostPid int) (procUsage, bool) {
	var u procUsage
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", hostPid))
	if err != nil {
		return u, false
	}
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	stt, _ := strconv.ParseInt(f[12], 10, 64)
	start, _ := strconv.ParseInt(f[19], 10, 64)
	const tick = 10 * time.Millisecond // CLK_TCK 100 on Linux
	u.cpu = time.Duration(ut+stt) * tick
	up, _ := os.ReadFile("/proc/uptime")
	if secs, err := strconv.ParseFloat(strings.Fields(string(up))[0], 64); err == nil {
		u.life = time.Duration(secs*float64(time.Second)) - time.Duration(start)*tick
	}
	sm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", hostPid))
	for _, line := range strings.Split(string(sm), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "Pss" {
			u.pssKiB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	if ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", hostPid)); err == nil {
		u.fds = len(ents)
	}
	return u, true
}

// lineCount checks the logs of svcs against the starts each recorded:
// every run K wrote "run K line 1..N" and "run K bye" exactly once.
type lineCount struct{ checked, lost, duplicated, unexpected int }

func countLines(t *testing.T, svcs []*faultSvc) lineCount {
	t.Helper()
	var c lineCount
	for _, s := range svcs {
		runs := len(svPids(t, s.dir))
		seen := map[string]int{}
		names, _ := filepath.Glob(filepath.Join(s.logDir, "@*"))
		sort.Strings(names) // TAI64N labels sort in time order
		names = append(names, filepath.Join(s.logDir, "current"))
		for _, n := range names {
			b, err := os.ReadFile(n)
			if err != nil {
				t.Fatal(err)
			}
			for _, l := range strings.Split(string(b), "\n") {
				if _, text, ok := strings.Cut(l, " "); ok && strings.HasPrefix(l, "@") {
					seen[text]++
				} else if l != "" {
					seen[l]++
				}
			}
		}
		for k := 1; k <= runs; k++ {
			for j := 0; j <= talkLines; j++ {
				want := fmt.Sprintf("run %d line %d", k, j)
				if j == 0 {
					want = fmt.Sprintf("run %d bye", k)
				}
				c.checked++
				switch seen[want] {
				case 0:
					c.lost++
					if c.lost <= 5 {
						t.Errorf("%s: lost %q (run ended in %s); log files:\n%s", s.name, want, s.endedAt[k], listDir(s.logDir))
					}
				case 1:
				default:
					c.duplicated++
					if c.duplicated <= 5 {
						t.Errorf("%s: %q logged %d times", s.name, want, seen[want])
					}
				}
				delete(seen, want)
			}
		}
		for l, n := range seen {
			c.unexpected += n
			t.Errorf("%s: unexpected log line %q (x%d)", s.name, l, n)
		}
	}
	return c
}

func report(t *testing.T, line string) {
	t.Helper()
	t.Log(line)
	if p := os.Getenv("GOSV_FAULT_REPORT"); p != "" {
		if f, err := os.OpenFile(p, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644); err == nil {
			fmt.Fprintln(f, line)
			f.Close()
		}
	}
}

// TestFaultScannerKills: N scanner SIGKILLs with crash-looping services,
// half logged in process ("t s8192 nN ./log", small s so that
// rotations happen), half by log/ services (gosv log, same script). Every other kill,
// the services crash and write their last line while no scanner runs
// (the fd holder keeps their pipes); the others release the crash loop and
// kill the scanner at once, in the middle of its reaping and logging.
// Asserts: one run process per service after each restart, every line
// logged exactly once, no zombie, and no fd holder left at the end.
func TestFaultScannerKills(t *testing.T) {
	requireGosv(t)
	kills := envInt("GOSV_FAULT_KILLS", 12)
	nsvc := envInt("GOSV_FAULT_SERVICES", 6)
	// Rotation at 8 KiB makes about kills/5 archives per service; n keeps
	// them all, but not one more archive per kill (s6-log's recovery,
	// which issue 9 defect 2 was).
	script := fmt.Sprintf("t s8192 n%d", kills/2+5)
	e := newEnv(t)
	t.Cleanup(func() { e.dumpScanner(t) }) // runs before the namespace's teardown
	var svcs []*faultSvc
	for i := 0; i < nsvc; i++ {
		if i%2 == 0 {
			svcs = append(svcs, e.addTalker(t, fmt.Sprintf("ip%d", i), script+" ./log", ""))
		} else {
			svcs = append(svcs, e.addTalker(t, fmt.Sprintf("lg%d", i), "", script))
		}
	}
	dirs := make([]string, len(svcs))
	for i, s := range svcs {
		dirs[i] = s.in
	}
	e.MustRun(t, append([]string{"s6-svwait", "-U", "-t", waitMs}, dirs...)...)
	var peak procUsage
	var cpuPeak float64
	var dupServices int
	begin := time.Now()
	for i := 0; i < kills; i++ {
		old := map[string]uint64{}
		hostRuns := map[string]int{}
		for _, s := range svcs {
			old[s.name] = ReadStatus(t, s.dir).Pid
			hostRuns[s.name] = e.hostPid(t, int(old[s.name]))
		}
		scanner := e.hostPid(t, e.Scanner.NsPid)
		if u, ok := readUsage(scanner); ok {
			peak.pssKiB = max(peak.pssKiB, u.pssKiB)
			if u.life > 0 {
				cpuPeak = max(cpuPeak, float64(u.cpu)/float64(u.life))
			}
		}
		crashWhileDown := i%2 == 0
		for _, s := range svcs {
			// Which kill each run ended in, for the failure report.
			if k := slices.Index(svPids(t, s.dir), int(old[s.name])); k >= 0 {
				s.endedAt[k+1] = fmt.Sprintf("kill %d (gate opened %s)", i, map[bool]string{true: "while no scanner ran", false: "just before the SIGKILL"}[crashWhileDown])
			}
		}
		if !crashWhileDown {
			for _, s := range svcs {
				s.release(t)
			}
		}
		e.MustRun(t, "kill", "-KILL", strconv.Itoa(e.Scanner.NsPid))
		if code := e.Scanner.Wait(t, eventTimeout); code != 128+9 {
			t.Fatalf("scanner exit %d, want killed by SIGKILL", code)
		}
		e.waitScanLockFree(t)
		if crashWhileDown {
			for _, s := range svcs {
				s.release(t)
			}
		}
		for _, s := range svcs {
			if !waitExit(t, hostRuns[s.name], eventTimeout) {
				t.Fatalf("%s: run %d did not exit after its gate opened", s.name, old[s.name])
			}
		}
		ls := map[string]*Listener{}
		for _, s := range svcs {
			ls[s.name] = Listen(t, s.dir)
		}
		pre := e.runPids(svcs)
		e.StartScanner(t)
		e.waitUpNew(t, svcs, old, pre, ls)
		for _, l := range ls {
			l.Close()
		}
		runs := e.runPids(svcs)
		for _, s := range svcs {
			if n := len(runs[s.name]); n != 1 {
				dupServices++
				t.Errorf("kill %d: %s has %d run processes:\n%s", i, s.name, n, e.psTree())
				e.stopTwins(t, s, runs[s.name])
			}
		}
		if n := e.countCmd("gosv-fdholder"); n != 1 {
			t.Errorf("kill %d: %d fd holders, want 1:\n%s", i, n, e.psTree())
		}
	}
	elapsed := time.Since(begin)
	var holder procUsage
	holderPid := 0
	for _, p := range e.Procs() {
		if p.Cmdline == "gosv-fdholder" {
			holder, _ = readUsage(p.HostPid)
			holderPid = p.HostPid
		}
	}
	// A clean stop: SIGTERM reaches every run, which says bye; the scanner
	// drains the in-process logs, the loggers drain to EOF.
	e.MustRun(t, "kill", "-TERM", strconv.Itoa(e.Scanner.NsPid))
	if code := e.Scanner.Wait(t, eventTimeout); code != 0 {
		t.Fatalf("scanner exit %d on SIGTERM (log: %s)", code, readFile(e.Scanner.Log))
	}
	if holderPid != 0 && !waitExit(t, holderPid, eventTimeout) {
		t.Errorf("the fd holder outlived the scanner's clean exit:\n%s", e.psTree())
	}
	c := countLines(t, svcs)
	zombies := 0
	for _, p := range e.Procs() {
		if p.State == 'Z' {
			zombies++
		}
	}
	report(t, fmt.Sprintf("fault-kills: kills=%d services=%d (in-process %d, log/ %d) lines_checked=%d lost=%d duplicated=%d unexpected=%d duplicate_services=%d zombies_seen=%d peak_scanner_cpu=%.1f%% peak_scanner_pss=%dKiB holder_pss=%dKiB holder_fds=%d elapsed=%s",
		kills, nsvc, (nsvc+1)/2, nsvc/2, c.checked, c.lost, c.duplicated, c.unexpected, dupServices, zombies,
		100*cpuPeak, peak.pssKiB, holder.pssKiB, holder.fds, elapsed.Round(time.Second)))
	if c.lost+c.duplicated+c.unexpected+dupServices != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d lines; %d duplicate services\nscanner warnings:\n%s",
			c.lost, c.duplicated, c.unexpected, dupServices, e.scannerWarnings())
	}
	checkNoZombies(t, e.NS)
}

// countCmd counts the live processes of the namespace whose command line
// is cmdline.
func (e *Env) countCmd(cmdline string) int {
	n := 0
	for _, p := range e.Procs() {
		if p.Cmdline == cmdline && p.State != 'Z' {
			n++
		}
	}
	return n
}

// TestFaultLogScriptDotLog: the README's log-script ("t s1048576 n10
// ./log") across scanner restarts by SIGTERM and by SIGKILL (issue 9
// defect 1): log/ is never taken for a logger service, no spawn of
// log/run is attempted, and every line is logged exactly once.
func TestFaultLogScriptDotLog(t *testing.T) {
	requireGosv(t)
	restarts := envInt("GOSV_FAULT_RESTARTS", 6)
	e := newEnv(t)
	s := e.addTalker(t, "readme", "t s1048576 n10 ./log", "")
	svcs := []*faultSvc{s}
	e.MustRun(t, "s6-svwait", "-U", "-t", waitMs, s.in)
	for i := 0; i < restarts; i++ {
		old := map[string]uint64{s.name: ReadStatus(t, s.dir).Pid}
		sig := "-KILL"
		if i%2 == 0 {
			sig = "-TERM" // stops the service too: it says bye
		}
		e.MustRun(t, "kill", sig, strconv.Itoa(e.Scanner.NsPid))
		e.Scanner.Wait(t, eventTimeout)
		e.waitScanLockFree(t)
		ls := map[string]*Listener{s.name: Listen(t, s.dir)}
		if sig == "-KILL" {
			old = map[string]uint64{} // the adopted run counts as ready
		}
		pre := e.runPids(svcs)
		e.StartScanner(t)
		e.waitUpNew(t, svcs, old, pre, ls)
		ls[s.name].Close()
		if _, err := os.Stat(filepath.Join(s.dir, "log", "supervise")); err == nil {
			t.Fatalf("restart %d (%s): log/ was taken for a logger service", i, sig)
		}
		// A crash after each restart: the new scanner must log it.
		ls = map[string]*Listener{s.name: Listen(t, s.dir)}
		old = map[string]uint64{s.name: ReadStatus(t, s.dir).Pid}
		host := e.hostPid(t, int(old[s.name]))
		s.release(t)
		waitExit(t, host, eventTimeout)
		e.waitUpNew(t, svcs, old, nil, ls)
		ls[s.name].Close()
	}
	e.MustRun(t, "kill", "-TERM", strconv.Itoa(e.Scanner.NsPid))
	e.Scanner.Wait(t, eventTimeout)
	c := countLines(t, svcs)
	log := readFile(e.Scanner.Log)
	report(t, fmt.Sprintf("fault-readme-log-script: restarts=%d (SIGTERM %d, SIGKILL %d) lines_checked=%d lost=%d duplicated=%d unexpected=%d",
		restarts, (restarts+1)/2, restarts/2, c.checked, c.lost, c.duplicated, c.unexpected))
	if strings.Contains(log, "log/run") {
		t.Errorf("the scanner tried log/run:\n%s", log)
	}
	if c.lost+c.duplicated+c.unexpected != 0 {
		t.Errorf("lost %d, duplicated %d, unexpected %d lines", c.lost, c.duplicated, c.unexpected)
	}
}

// dumpScanner logs, after a failure, where each thread of the running
// scanner is in the kernel, and its log.
func (e *Env) dumpScanner(t *testing.T) {
	if !t.Failed() || e.Scanner == nil || e.Scanner.Exited() {
		return
	}
	var b strings.Builder
	for _, p := range e.Procs() {
		if p.NsPid != e.Scanner.NsPid {
			continue
		}
		tasks, _ := os.ReadDir(fmt.Sprintf("/proc/%d/task", p.HostPid))
		for _, task := range tasks {
			dir := fmt.Sprintf("/proc/%d/task/%s/", p.HostPid, task.Name())
			fmt.Fprintf(&b, "thread %s: wchan %s syscall %s\n%s", task.Name(), readFile(dir+"wchan"), readFile(dir+"syscall"), readFile(dir+"stack"))
		}
		fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", p.HostPid))
		for _, fd := range fds {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", p.HostPid, fd.Name()))
			fmt.Fprintf(&b, "fd %s -> %s\n", fd.Name(), l)
		}
	}
	t.Logf("scanner threads:\n%s\nscanner log:\n%s", b.String(), readFile(e.Scanner.Log))
}

// listDir describes a log directory's files for failure logs.
func listDir(dir string) string {
	var b strings.Builder
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if fi, err := e.Info(); err == nil {
			fmt.Fprintf(&b, "  %v %7d %s\n", fi.Mode(), fi.Size(), e.Name())
		}
	}
	return b.String()
}

// waitScanLockFree waits until no process holds the scan directory's lock
// after a scanner was killed: a child it had forked but that has not yet
// called execve (slow under load) holds a copy of the locked file until
// then, and a scanner started meanwhile exits ("lock held", as
// s6-svscan). The release of the last copy is an inotify IN_CLOSE event.
func (e *Env) waitScanLockFree(t *testing.T) {
	t.Helper()
	path := filepath.Join(e.Scan, ".s6-svscan", "lock")
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, path, unix.IN_CLOSE_WRITE|unix.IN_CLOSE_NOWRITE); err != nil {
		t.Fatal(err)
	}
	end := time.Now().Add(faultTimeout)
	buf := make([]byte, 4096)
	for {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0}
		if err := unix.FcntlFlock(uintptr(fd), unix.F_OFD_GETLK, &lk); err != nil {
			t.Fatal(err)
		}
		if lk.Type == unix.F_UNLCK {
			return
		}
		left := time.Until(end)
		if left <= 0 {
			t.Fatalf("%s still locked %v after the scanner's death:\n%s", path, faultTimeout, e.psTree())
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if n, _ := unix.Poll(fds, int(left/time.Millisecond)+1); n > 0 {
			unix.Read(ino, buf)
		}
	}
}

// stopTwins stops the run processes of s that its supervisor does not
// know (a duplicate), so that the run goes on and every line is still
// accounted for: the twin writes its last line on SIGTERM, into the same
// log pipe.
func (e *Env) stopTwins(t *testing.T, s *faultSvc, pids []int) {
	t.Helper()
	known := int(ReadStatus(t, s.dir).Pid)
	for _, pid := range pids {
		if pid == known {
			continue
		}
		host := e.hostPid(t, pid)
		unix.Kill(host, unix.SIGTERM)
		if !waitExit(t, host, eventTimeout) {
			t.Fatalf("%s: twin run %d did not exit on SIGTERM", s.name, pid)
		}
	}
}

// scannerWarnings collects the warnings of every scanner the test started
// (their logs are the namespace's bg-*.log files), for failure reports.
func (e *Env) scannerWarnings() string {
	logs, _ := filepath.Glob(filepath.Join(e.Dir, "bg-*.log"))
	var b strings.Builder
	n := 0
	for _, l := range logs {
		for _, line := range strings.Split(readFile(l), "\n") {
			if (strings.Contains(line, "gosv svscan") || strings.Contains(line, "svhelper: fatal: write")) && n < 100 {
				fmt.Fprintf(&b, "%s: %s\n", filepath.Base(l), line)
				n++
			}
		}
	}
	return b.String()
}
