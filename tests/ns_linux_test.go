//go:build integration

package tests

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Namespace timings.
const (
	// nsReadyTimeout bounds testinit's mount setup.
	nsReadyTimeout = 10 * time.Second
	// cmdWaitDelay bounds how long Run waits for stdout/stderr to close
	// after its command exited: a daemon started by mistake in the
	// foreground must not hang the suite.
	cmdWaitDelay = 2 * time.Second
	// zombieGrace is how long a zombie seen by checkNoZombies may take to
	// be reaped before it counts as a leak (see checkNoZombies).
	zombieGrace = 500 * time.Millisecond
)

// NS is one private mount+PID namespace whose PID 1 is tests/cmd/testinit.
// The host's / is visible inside, except that /etc, /usr and /var are
// copy-on-write overlays (their changes land in Dir/overlay) and /run, /tmp
// are fresh tmpfs mounts; Dir and the suite's work directory (helper
// binaries) are bound back at their host paths, so files under them have
// the same path inside and outside.
//
// An NS is used by one test goroutine.
type NS struct {
	t    testing.TB
	Dir  string    // per-namespace directory on the host's disk, same path inside
	init *exec.Cmd // testinit, the namespace's PID 1 (host pid in init.Process.Pid)
	bg   []*Proc   // background commands, waited for at teardown
	env  []string
	// pid1Done is closed when PID 1 exited, for a namespace whose PID 1
	// is a program under test (NewInitNS); nil otherwise.
	pid1Done  chan struct{}
	pid1State *os.ProcessState
}

// Result is the outcome of NS.Run.
type Result struct {
	Stdout, Stderr string
	Code           int // exit status, or 128+signal
}

func (r Result) String() string {
	return fmt.Sprintf("exit %d, stdout %q, stderr %q", r.Code, r.Stdout, r.Stderr)
}

// NewNS starts a namespace for t and registers its teardown with t.Cleanup:
// the check that no zombie is left, SIGKILL of PID 1 and the removal of Dir.
func NewNS(t testing.TB) *NS {
	t.Helper()
	return newNS(t, nil, nil)
}

// newNS starts a namespace with extra testinit arguments (-ro-root,
// -exec ...); with -exec, ready receives what PID 1 writes on fd 3
// after testinit's own "ready" line.
func newNS(t testing.TB, extra []string, ready chan<- string) *NS {
	t.Helper()
	requireRoot(t)
	dir := t.TempDir()
	n := &NS{t: t, Dir: dir, env: suiteEnv()}
	logf, err := os.Create(filepath.Join(dir, "testinit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	keepPr := false
	defer func() {
		if !keepPr {
			pr.Close()
		}
	}()
	args := []string{"-overlay-base", filepath.Join(dir, "overlay"), "-keep", suite.workDir, "-keep", dir}
	if under(suite.repoRoot, "/tmp", "/run") {
		args = append(args, "-keep", suite.repoRoot)
	}
	args = append(args, extra...)
	cmd := exec.Command(suite.testinit, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{pw}
	cmd.Env = n.env
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags: unix.CLONE_NEWNS | unix.CLONE_NEWPID,
		Pdeathsig:  unix.SIGKILL,
	}
	// NOTE: Pdeathsig fires when the forking *thread* exits, not the
	// process; keep this goroutine on one thread while it forks
	// (containerd StartLocked).
	runtime.LockOSThread()
	err = cmd.Start()
	runtime.UnlockOSThread()
	pw.Close()
	if err != nil {
		t.Fatalf("start testinit: %v", err)
	}
	n.init = cmd
	if ready != nil {
		n.pid1Done = make(chan struct{})
		go func() {
			// The only waiter of PID 1.
			cmd.Wait()
			n.pid1State = cmd.ProcessState
			close(n.pid1Done)
		}()
	}
	t.Cleanup(n.close)
	br := bufio.NewReader(pr)
	line, err := readLineFrom(pr, br, nsReadyTimeout)
	if err != nil || line != "ready" {
		t.Fatalf("namespace setup failed: %q %v (testinit log: %s)", line, err, readFile(logf.Name()))
	}
	if ready != nil {
		keepPr = true
		go func() {
			defer pr.Close()
			line, err := readLineFrom(pr, br, time.Hour)
			if err != nil {
				line = "error: " + err.Error()
			}
			ready <- line
		}()
	}
	return n
}

// Pid1 is the host pid of the namespace's init.
func (n *NS) Pid1() int { return n.init.Process.Pid }

// command builds an nsenter command running args inside the namespace.
func (n *NS) command(ctx context.Context, args ...string) *exec.Cmd {
	nsargs := append([]string{"--target", strconv.Itoa(n.Pid1()), "--mount", "--pid", "--wd=" + n.Dir, "--"}, args...)
	cmd := exec.CommandContext(ctx, "nsenter", nsargs...)
	cmd.Env = n.env
	return cmd
}

// Run runs args inside the namespace and returns its output and exit code.
// It fails the test if the command cannot be started or outlives the
// test's deadline.
func (n *NS) Run(t testing.TB, args ...string) Result {
	t.Helper()
	ctx, cancel := testContext(t)
	defer cancel()
	cmd := n.command(ctx, args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = cmdWaitDelay
	err := cmd.Run()
	r := Result{Stdout: stdout.String(), Stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case ctx.Err() != nil:
		t.Fatalf("%q: killed at the test deadline (%v): %s", args, ctx.Err(), r)
	case errors.As(err, &ee):
		r.Code = exitCode(ee.ProcessState)
	case err != nil:
		t.Fatalf("%q: %v: %s", args, err, r)
	}
	return r
}

// MustRun is Run that fails the test unless the command exits 0.
func (n *NS) MustRun(t testing.TB, args ...string) Result {
	t.Helper()
	r := n.Run(t, args...)
	if r.Code != 0 {
		t.Fatalf("%q: %s", args, r)
	}
	return r
}

// Sh runs a shell script inside the namespace.
func (n *NS) Sh(t testing.TB, script string) Result {
	t.Helper()
	return n.Run(t, "sh", "-c", script)
}

// Proc is a background command inside the namespace.
type Proc struct {
	Args  []string
	NsPid int // pid inside the namespace
	Log   string
	cmd   *exec.Cmd
	done  chan struct{}
	state *os.ProcessState
}

// Start runs args in the background inside the namespace, with stdout and
// stderr going to a log file, and extra files as fds 3, 4, ... (at most
// three). It returns once the command's in-namespace pid is known.
func (n *NS) Start(t testing.TB, extra []*os.File, args ...string) *Proc {
	t.Helper()
	if len(extra) > 3 {
		t.Fatalf("Start: at most 3 extra files")
	}
	logf, err := os.CreateTemp(n.Dir, "bg-*.log")
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	// The shell reports its pid on fd 6, closes it and becomes the command.
	script := `echo $$ >&6 && exec 6>&- && exec "$@"`
	cmd := n.command(context.Background(), append([]string{"sh", "-c", script, "sh"}, args...)...)
	cmd.Stdout, cmd.Stderr = logf, logf
	files := append([]*os.File{}, extra...)
	for len(files) < 3 {
		files = append(files, nil)
	}
	cmd.ExtraFiles = append(files, pw)
	err = cmd.Start()
	pw.Close()
	if err != nil {
		t.Fatalf("start %q: %v", args, err)
	}
	p := &Proc{Args: args, Log: logf.Name(), cmd: cmd, done: make(chan struct{})}
	go func() {
		// The only waiter of this nsenter process.
		p.cmd.Wait()
		p.state = p.cmd.ProcessState
		close(p.done)
	}()
	n.bg = append(n.bg, p)
	line, err := readLine(pr, nsReadyTimeout)
	if err != nil {
		t.Fatalf("start %q: no pid: %v (log: %s)", args, err, readFile(p.Log))
	}
	p.NsPid, err = strconv.Atoi(line)
	if err != nil {
		t.Fatalf("start %q: bad pid %q", args, line)
	}
	return p
}

// Wait waits for p to exit within d and returns its exit code.
func (p *Proc) Wait(t testing.TB, d time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
		return exitCode(p.state)
	case <-time.After(d):
		t.Fatalf("%q did not exit within %v (log: %s)", p.Args, d, readFile(p.Log))
		return -1
	}
}

// Exited reports whether p has exited, without waiting.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

func (n *NS) close() {
	t := n.t
	if n.pid1Done != nil {
		select {
		case <-n.pid1Done:
			n.pid1Done = nil // the namespace is gone with its PID 1
		default:
		}
	}
	switch {
	case n.pid1Done == nil && n.pid1State != nil:
	case !t.Failed():
		checkNoZombies(t, n)
	default:
		t.Logf("namespace processes at failure:\n%s", n.psTree())
	}
	// Killing PID 1 of a PID namespace makes the kernel SIGKILL every
	// other process in it.
	n.init.Process.Kill()
	if n.pid1Done != nil {
		<-n.pid1Done
	} else if n.pid1State == nil {
		n.init.Wait()
	}
	for _, p := range n.bg {
		select {
		case <-p.done:
		case <-time.After(nsReadyTimeout):
			t.Errorf("nsenter for %q still running after the namespace died", p.Args)
		}
	}
}

// Process is one process of the namespace, as seen from the host's /proc.
type Process struct {
	HostPid, NsPid int
	NsPPid, NsPgid int
	State          byte // R, S, D, Z, T...
	Comm, Cmdline  string
	hostPP, levels int
}

// Procs lists the processes of the namespace (PID 1 included) by scanning
// the host's /proc for processes whose PID namespace is n's.
func (n *NS) Procs() []Process {
	want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", n.Pid1()))
	if err != nil {
		n.t.Fatalf("namespace PID 1 is gone: %v", err)
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		n.t.Fatal(err)
	}
	var ps []Process
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid)); err != nil || ns != want {
			continue // gone, or not ours (nsenter itself stays in the host's)
		}
		if p, ok := readProcess(pid); ok {
			ps = append(ps, p)
		}
	}
	return ps
}

// readProcess reads /proc/pid/status and cmdline; ok is false if the
// process vanished meanwhile.
func readProcess(pid int) (Process, bool) {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return Process{}, false
	}
	p := Process{HostPid: pid}
	for _, line := range strings.Split(string(st), "\n") {
		k, v, _ := strings.Cut(line, ":")
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		last, _ := strconv.Atoi(f[len(f)-1]) // the innermost namespace's value
		switch k {
		case "Name":
			p.Comm = f[0]
		case "State":
			p.State = f[0][0]
		case "NSpid":
			p.NsPid = last
			p.levels = len(f)
		case "NSpgid":
			p.NsPgid = last
		case "PPid":
			p.hostPP, _ = strconv.Atoi(f[0])
		}
	}
	// The parent's pid as seen inside, or 0 when the parent is outside the
	// namespace (nsenter): then its NSpid has fewer levels than ours.
	if pp, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", p.hostPP)); err == nil {
		for _, line := range strings.Split(string(pp), "\n") {
			if k, v, _ := strings.Cut(line, ":"); k == "NSpid" {
				if f := strings.Fields(v); len(f) == p.levels {
					p.NsPPid, _ = strconv.Atoi(f[len(f)-1])
				}
			}
		}
	}
	cl, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
	p.Cmdline = strings.TrimSpace(strings.ReplaceAll(string(cl), "\x00", " "))
	return p, true
}

// waitExit waits up to d for the process hostPid to exit (to become a
// zombie or vanish), with a pidfd: no polling. It reports whether it exited.
func waitExit(t testing.TB, hostPid int, d time.Duration) bool {
	t.Helper()
	fd, err := unix.PidfdOpen(hostPid, 0)
	if err == unix.ESRCH {
		return true
	}
	if err != nil {
		t.Fatalf("pidfd_open %d: %v", hostPid, err)
	}
	defer unix.Close(fd)
	deadline := time.Now().Add(d)
	for {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		ms := max(0, int(time.Until(deadline).Milliseconds()))
		n, err := unix.Poll(fds, ms)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			t.Fatalf("poll pidfd of %d: %v", hostPid, err)
		}
		return n > 0
	}
}

// WaitReaped waits until testinit, the namespace's init, has reaped the
// process nsPid (its "reaped PID" line in testinit.log, watched with
// inotify): between its exit and that, it is a zombie that kill(pid, 0),
// and so OpenRC, still counts as alive.
func (n *NS) WaitReaped(t testing.TB, nsPid int, d time.Duration) {
	t.Helper()
	log := filepath.Join(n.Dir, "testinit.log")
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ino)
	if _, err := unix.InotifyAddWatch(ino, log, unix.IN_MODIFY); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("reaped %d\n", nsPid)
	deadline := time.Now().Add(d)
	buf := make([]byte, 4096)
	for !strings.Contains(readFile(log), want) {
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		ms := int(time.Until(deadline).Milliseconds())
		if ms <= 0 {
			t.Fatalf("pid %d not reaped by the namespace's init within %v", nsPid, d)
		}
		n, err := unix.Poll(fds, ms)
		if err != nil && err != unix.EINTR {
			t.Fatal(err)
		}
		if n > 0 && fds[0].Revents&unix.POLLIN != 0 {
			unix.Read(ino, buf) // only after POLLIN: a timeout must not block here
		}
	}
}

// psTree formats Procs for failure logs.
func (n *NS) psTree() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%6s %6s %6s %s %s\n", "PID", "PPID", "PGID", "S", "CMD")
	for _, p := range n.Procs() {
		fmt.Fprintf(&b, "%6d %6d %6d %c %s\n", p.NsPid, p.NsPPid, p.NsPgid, p.State, p.Cmdline)
	}
	return b.String()
}

// checkNoZombies fails t if a process of the namespace stays a zombie.
// NOTE: no event tells a third party that a zombie was reaped, and a
// process that has just died is legitimately a zombie until its parent's
// next wait. So the pids seen as zombies are looked at once more after
// zombieGrace; a zombie that survives that is a leak (tini test/reaping).
func checkNoZombies(t testing.TB, n *NS) {
	t.Helper()
	var zs []Process
	for _, p := range n.Procs() {
		if p.State == 'Z' {
			zs = append(zs, p)
		}
	}
	if len(zs) == 0 {
		return
	}
	time.Sleep(zombieGrace) // see the NOTE above
	var left []string
	for _, z := range zs {
		if p, ok := readProcess(z.HostPid); ok && p.State == 'Z' {
			left = append(left, fmt.Sprintf("pid %d (parent %d) %q", p.NsPid, p.NsPPid, p.Comm))
		}
	}
	if len(left) > 0 {
		t.Errorf("zombies left in the namespace: %s\n%s", strings.Join(left, ", "), n.psTree())
	}
}

// WriteFile writes a file under n.Dir (same path inside the namespace).
func (n *NS) WriteFile(t testing.TB, rel, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(n.Dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// testContext returns a context that ends a little before t's deadline,
// so that a hung command is reported by the test, not by the go tool.
func testContext(t testing.TB) (context.Context, context.CancelFunc) {
	tt, ok := t.(interface{ Deadline() (time.Time, bool) })
	if !ok {
		return context.WithCancel(context.Background())
	}
	dl, ok := tt.Deadline()
	if !ok {
		return context.WithCancel(context.Background())
	}
	return context.WithDeadline(context.Background(), dl.Add(-5*time.Second))
}

// readLine reads one line from r (a pipe) within d.
func readLine(r *os.File, d time.Duration) (string, error) {
	return readLineFrom(r, bufio.NewReader(r), d)
}

// readLineFrom reads one line from br, which buffers r, within d.
func readLineFrom(r *os.File, br *bufio.Reader, d time.Duration) (string, error) {
	if err := r.SetReadDeadline(time.Now().Add(d)); err != nil {
		return "", err
	}
	line, err := br.ReadString('\n')
	if err != nil && line == "" {
		return "", err
	}
	return strings.TrimSuffix(line, "\n"), nil
}

func exitCode(ps *os.ProcessState) int {
	ws, ok := ps.Sys().(syscall.WaitStatus)
	if ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

func readFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return err.Error()
	}
	return string(b)
}

func under(p string, dirs ...string) bool {
	for _, d := range dirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return true
		}
	}
	return false
}
