package openrc

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/backends/registry"
	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// Operation timings.
const (
	// killGrace is how long after timeout_kill's SIGKILL a stop still
	// waits: the killed group must be reaped and finish must run.
	killGrace = 2 * time.Second
	// logLines is how many lines of the service's log a failed start shows.
	logLines = 10
	// logTailBytes bounds how much of a log file is read for them.
	logTailBytes = 64 << 10
)

// Status codes of `gosv openrc status`, supervise-daemon's (OpenRC's
// supervise-daemon.c, the rc_service_status codes; docs/openrc.md lists them).
const (
	StatusStarted      = 0
	StatusCrashed      = 32
	StatusUnsupervised = 64
)

// ErrFailed is wrapped by the errors of an operation that failed for a
// reason already printed (start, stop): the caller only sets the exit code.
var ErrFailed = errors.New("failed")

// Request is one call from the hook inside openrc-run: the service, the
// live values of [Vars] and the command line as openrc-run's shell
// evaluated it.
type Request struct {
	Name   string            // RC_SVCNAME
	Script string            // RC_SERVICE
	Vars   map[string]string // live values (--var NAME=VALUE); absent = unset
	Argv   []string          // start: eval $command $command_args $command_args_foreground (nil for the others)
	Env    []string          // the caller's environment (openrc-run's, with the script's exports)
	Layout Layout
	Gosv   string    // this gosv binary, for the generated run and finish
	Out    io.Writer // what the hook prints with ewarn/eerror
}

// LiveService builds the Service the hook describes: the live values win
// over anything a static resolution would find, and the gosv-wide
// defaults fill what they leave unset (see [DefaultVars]).
func LiveService(req *Request) *Service {
	s := &Service{Name: req.Name, Script: req.Script, Files: req.Layout.Sources(req.Script), Layout: req.Layout,
		Vars: map[string]Value{}, Funcs: map[string]Func{}, Depend: map[string][]string{}, Live: true, Argv: req.Argv}
	for k, v := range req.Vars {
		s.Vars[k] = Value{Text: v, Set: true}
	}
	s.Env = filterEnv(req.Env, req.Layout.LibexecDir)
	s.applyDefaults()
	return s
}

// backend is the supervision backend of the service: sp.Backend
// (gosv_backend), driving its scanner. A backend that runs gosv commands
// in what it generates is told which binary gosv is: req.Gosv, not the
// running client (gosv-openrc).
func (req *Request) backend(sp *Spec) backends.Backend {
	b := newBackend(sp, req.Layout.SvcDir)
	if u, ok := b.(backends.GosvUser); ok && req.Gosv != "" {
		u.UseGosv(req.Gosv)
	}
	return b
}

// newBackend is sp's backend (gosv_backend) on the scan directory it has
// under rcSvcDir.
func newBackend(sp *Spec, rcSvcDir string) backends.Backend {
	b, err := registry.New(sp.Backend, BackendScanDir(sp.Backend, rcSvcDir))
	if err != nil {
		// Spec has reported the unknown name as an error already.
		return registry.NewDefault(ScanDir(rcSvcDir))
	}
	return b
}

// S6ScanDir is OpenRC's s6 scan directory, $RC_SVCDIR/s6-scan (sh/s6.sh,
// init.d/s6-svscan): gosv_backend=s6 shares it with supervisor=s6.
func S6ScanDir(rcSvcDir string) string { return filepath.Join(rcSvcDir, "s6-scan") }

// S6SvscanLog is where gosv's init.d/s6-svscan sends s6-svscan's output
// (and so that of every s6 service without a log/), by default.
const S6SvscanLog = "/var/log/s6-svscan.log"

// RunitScanDir is OpenRC's runit scan directory, $RC_SVCDIR/sv
// (sh/runit.sh, init.d/runsvdir): gosv_backend=runit shares it with
// supervisor=runit.
func RunitScanDir(rcSvcDir string) string { return filepath.Join(rcSvcDir, "sv") }

// BackendScanDir is the scan directory of the backend called name.
func BackendScanDir(name, rcSvcDir string) string {
	switch name {
	case "s6":
		return S6ScanDir(rcSvcDir)
	case "runit":
		return RunitScanDir(rcSvcDir)
	}
	return ScanDir(rcSvcDir)
}

// printProblems prints problems for the hook and reports whether one is
// an error.
func printProblems(w io.Writer, probs []Problem) bool {
	bad := false
	for _, p := range probs {
		if p.Severity == Note {
			continue // for check, not for every start
		}
		fmt.Fprintf(w, "%s: %s\n", p.Severity, p.Msg)
		bad = bad || p.Severity == Error
	}
	return bad
}

// Start starts the service for openrc-run: generate (declarative) or find
// (hand-written) its directory, link it into the scanner's directory, wait
// until it is up, or ready when it has a readiness source, within
// timeout_ready, and record the daemon with OpenRC. On failure nothing is
// left running, the reason and the last lines of the service's log are
// printed, and the error wraps [ErrFailed].
func Start(ctx context.Context, req *Request) error {
	s := LiveService(req)
	if s.Argv == nil {
		s.Argv = []string{} // checked: start is given the command line
	}
	sp, probs := s.Spec()
	if printProblems(req.Out, append(s.Problems, probs...)) {
		return fmt.Errorf("start %s: invalid configuration: %w", req.Name, ErrFailed)
	}
	dir, opts, err := prepare(req, s, sp)
	if err != nil {
		fmt.Fprintln(req.Out, err)
		return fmt.Errorf("start %s: %w", req.Name, ErrFailed)
	}
	err = req.backend(sp).Start(ctx, backends.Service{Name: req.Name, Dir: dir}, opts)
	if err != nil {
		printStartFailure(req.Out, sp, req.Layout.SvcDir, req.Name, err)
		return fmt.Errorf("start %s: %w", req.Name, ErrFailed)
	}
	record(req, sp, dir)
	return nil
}

// printStartFailure prints why the start of name failed and the last
// lines of its log, once the catch-all logger (if that is its log) has
// written what the daemon wrote before it died.
func printStartFailure(w io.Writer, sp *Spec, rcSvcDir, name string, why error) {
	fmt.Fprintln(w, why)
	files, skip := logFiles(sp, rcSvcDir), ""
	if d := CatchAllDir(rcSvcDir); d != "" && len(files) > 0 && files[0] == filepath.Join(d, "current") {
		skip = syncCatchAll(rcSvcDir, name, why)
	}
	printLogTail(w, files, skip)
}

// launchGrace is how long a forking daemon's start waits beyond its
// launch deadline.
const launchGrace = time.Second

// prepare returns the service directory and what to wait for.
func prepare(req *Request, s *Service, sp *Spec) (string, backends.StartOptions, error) {
	opts := backends.StartOptions{Goal: svwait.Up, Timeout: sp.TimeoutReady}
	if !sp.Declarative {
		if fi, err := os.Stat(filepath.Join(sp.ServiceDir, servicedir.RunFile)); err != nil || fi.IsDir() {
			return "", opts, fmt.Errorf("no command, and no service directory with a run file at %s", sp.ServiceDir)
		}
		return sp.ServiceDir, withStartWait(sp, handWrittenWait(sp, opts)), nil
	}
	if sp.HasReadiness() {
		opts.Goal = svwait.UpReady
	}
	opts = withStartWait(sp, opts)
	if sp.Pidfile != "" && opts.Timeout > 0 {
		// The launch itself ends at timeout_ready (timeout-pidfile); the
		// wait outlasts it so that the supervisor's verdict, which says
		// why, fails the start rather than the wait's own timeout.
		opts.Timeout += launchGrace
	}
	dir := filepath.Join(ServicesDir(req.Layout.SvcDir), req.Name)
	newest, err := newestInput(s, req.Gosv) // a new gosv or client rewrites what they wrote
	if err != nil {
		return "", opts, err
	}
	if err := checkUser(sp); err != nil {
		return "", opts, err
	}
	gc := GenConfig{Gosv: req.Gosv, RCSvcDir: req.Layout.SvcDir, LibexecDir: req.Layout.LibexecDir,
		Cgroups: ServiceCgroups(req.Name), Newest: newest}
	if _, err := Generate(sp, dir, gc); err != nil {
		return "", opts, fmt.Errorf("unable to write %s: %v", dir, err)
	}
	stamp := strconv.FormatInt(time.Now().UnixNano(), 10) + "\n"
	if _, err := writeIfChanged(filepath.Join(dir, StartFile), stamp, 0o644); err != nil {
		return "", opts, err
	}
	os.Remove(filepath.Join(dir, ReasonFile))
	if err := (RC{SvcDir: req.Layout.SvcDir}).MakeOptionsDir(req.Name); err != nil {
		return "", opts, err
	}
	if lg := sp.Logger; lg != nil && lg.Auto {
		if err := makeLogDir(lg.Dir, sp); err != nil {
			return "", opts, err
		}
	}
	return dir, opts, nil
}

// withStartWait adds start_wait to a start that waits for up only: a
// readiness source says more than any window could.
func withStartWait(sp *Spec, opts backends.StartOptions) backends.StartOptions {
	if opts.Goal == svwait.Up {
		opts.StartWait = sp.StartWait
	}
	return opts
}

// handWrittenWait is what a start waits for in a hand-written directory:
// gosv_svwait_options_start when set (s6-svwait's -u/-U/-d/-D/-r/-R and
// -t ms), else ready if the directory has a readiness source, else up.
func handWrittenWait(sp *Spec, opts backends.StartOptions) backends.StartOptions {
	if len(sp.SvwaitOptionsStart) > 0 {
		p := getopt.New(sp.SvwaitOptionsStart, "uUdDrRaot:")
		for {
			opt, arg, err := p.Next()
			if err != nil || opt == getopt.End {
				break
			}
			if g, ok := svwait.GoalFor(byte(opt)); ok {
				opts.Goal = g
			}
			if opt == 't' {
				if ms, err := strconv.ParseUint(arg, 10, 31); err == nil {
					opts.Timeout = time.Duration(ms) * time.Millisecond
				}
			}
		}
		return opts
	}
	_, forking := os.Stat(filepath.Join(sp.ServiceDir, servicedir.PidfileFile))
	if ok, _ := servicedir.HasReadiness(sp.ServiceDir); ok || forking == nil {
		// A forking daemon is ready once the pidfile names it.
		opts.Goal = svwait.UpReady
	}
	return opts
}

// checkUser fails early, with a clear message, on an unknown user or
// group (the exec helper would fail at each respawn).
func checkUser(sp *Spec) error {
	if sp.User != "" {
		if _, err := lookupUser(sp.User); err != nil {
			return fmt.Errorf("command_user: unknown user %q", sp.User)
		}
	}
	if sp.Group != "" {
		if _, err := lookupGroup(sp.Group); err != nil {
			return fmt.Errorf("command_user: unknown group %q", sp.Group)
		}
	}
	return nil
}

// makeLogDir creates the in-process logger's directory, owned by the
// service's user as OpenRC's s6 backend does for /var/log/$name.
func makeLogDir(dir string, sp *Spec) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if sp.User == "" {
		return nil
	}
	u, err := lookupUser(sp.User)
	if err != nil {
		return nil
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(dir, uid, gid)
}

// record writes what supervise-daemon writes, so that rc-status,
// rc-status -c and --ifcrashed agree with status: the daemon record whose
// pidfile is the supervisor's record (supervise/gosv/supervisor: its pid
// lives exactly while the service is supervised), and the options
// child_pid, start_time and start_count (0: no respawn yet).
func record(req *Request, sp *Spec, dir string) {
	rc := RC{SvcDir: req.Layout.SvcDir, LibexecDir: req.Layout.LibexecDir}
	argv := sp.Argv
	if !sp.Declarative {
		argv = []string{filepath.Join(dir, servicedir.RunFile)}
	}
	if st, err := servicedir.ReadStatus(dir); err == nil && st.Up() {
		rc.SetValue(req.Name, "child_pid", strconv.Itoa(int(st.Pid)))
	}
	rc.SetValue(req.Name, "start_time", time.Now().Format("2006-01-02 15:04:05"))
	rc.SetValue(req.Name, "start_count", "0")
	if err := rc.SetDaemon(req.Name, argv, filepath.Join(dir, servicedir.SupervisorRecordPath)); err != nil {
		fmt.Fprintf(req.Out, "warning: unable to record the daemon with OpenRC: %v\n", err)
	}
}

// logFiles returns where the service's output goes, most specific first.
func logFiles(sp *Spec, rcSvcDir string) []string {
	var out []string
	if lg := sp.Logger; lg != nil && lg.Auto {
		out = append(out, filepath.Join(lg.Dir, "current"))
	}
	for _, f := range []string{sp.ErrorLog, sp.OutputLog} {
		if f != "" && !slices.Contains(out, f) {
			out = append(out, f)
		}
	}
	if len(out) == 0 && (sp.Logger == nil || !sp.Logger.Both) {
		if d := registry.LogDir(sp.Backend, BackendScanDir(sp.Backend, rcSvcDir), sp.Name); d != "" {
			out = append(out, filepath.Join(d, "current"))
		} else if sp.Backend == "s6" {
			// s6-svscan's output: OpenRC 0.63's s6-svscan logs it with
			// s6-log in $RC_SVCDIR/s6-logs, gosv's init.d/s6-svscan to a file.
			out = append(out, filepath.Join(rcSvcDir, "s6-logs", "current"), S6SvscanLog)
		} else if d := CatchAllDir(rcSvcDir); d != "" {
			out = append(out, filepath.Join(d, "current"))
		}
	}
	return out
}

// printLogTail prints the last logLines lines of the first readable file,
// leaving out the line skip (a failed start's own line, see
// syncCatchAll) and what follows it.
func printLogTail(w io.Writer, files []string, skip string) {
	for _, f := range files {
		lines, err := tail(f, logLines+1)
		if err != nil {
			continue
		}
		if skip != "" {
			for i, l := range lines {
				if stripStamp(l) == skip {
					lines = lines[:i]
					break
				}
			}
		}
		if len(lines) > logLines {
			lines = lines[len(lines)-logLines:]
		}
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(w, "last lines of %s:\n", f)
		for _, l := range lines {
			fmt.Fprintf(w, "  %s\n", stripStamp(l))
		}
		return
	}
}

// tail returns the last n lines of the file at p.
func tail(p string, n int) ([]string, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > logTailBytes {
		f.Seek(-logTailBytes, io.SeekEnd)
	}
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 4096), logTailBytes)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	return lines, nil
}

// linkedBackend sets sp.Backend to the backend whose scan directory links
// the service, when one does: the one that started it. A gosv_backend
// changed while the service runs then takes effect at its next start,
// and stop, status and reload still reach the supervisor that has it.
func (req *Request) linkedBackend(sp *Spec) {
	for _, name := range registry.Names() {
		if _, err := os.Lstat(filepath.Join(BackendScanDir(name, req.Layout.SvcDir), req.Name)); err == nil {
			sp.Backend = name
			return
		}
	}
}

// serviceDir finds the directory of a service: the link in its backend's
// scan directory first (what start used), then what sp says.
func (req *Request) serviceDir(sp *Spec) string {
	link := filepath.Join(BackendScanDir(sp.Backend, req.Layout.SvcDir), req.Name)
	if target, err := filepath.EvalSymlinks(link); err == nil {
		return target
	}
	if sp.Declarative {
		return filepath.Join(ServicesDir(req.Layout.SvcDir), req.Name)
	}
	return sp.ServiceDir
}

// Stop stops the service for openrc-run: its down-signal to the process
// group, SIGKILL after timeout_kill, a wait of up to timeout_down (and at
// least until the SIGKILL has had its effect), then the service is
// unlinked and its supervisor exits.
func Stop(ctx context.Context, req *Request) error {
	sp, _ := LiveService(req).Spec()
	req.linkedBackend(sp)
	dir := req.serviceDir(sp)
	timeout := max(sp.TimeoutDown, sp.TimeoutKill+killGrace)
	err := req.backend(sp).Stop(ctx, backends.Service{Name: req.Name, Dir: dir}, backends.StopOptions{Timeout: timeout})
	if err != nil {
		fmt.Fprintln(req.Out, err)
		return fmt.Errorf("stop %s: %w", req.Name, ErrFailed)
	}
	RC{SvcDir: req.Layout.SvcDir}.ClearDaemons(req.Name)
	return nil
}

// Status answers supervise_status for openrc-run (OpenRC's
// supervise-daemon.sh), service_stopping, service_starting,
// service_inactive and service_started included, with its codes:
// [StatusStopping], [StatusStarting], [StatusInactive] or [StatusStopped]
// when OpenRC does not think the service is started (see
// [RC.LibrcState]; a stopped one that gosv gave up says why). For a started one it prints the status line and
// returns [StatusStarted] while it is supervised (during a restart gap
// too), [StatusUnsupervised] when its supervisor is gone but its process
// lives, [StatusCrashed] when both are gone.
func Status(req *Request) int {
	if st := (RC{SvcDir: req.Layout.SvcDir}).LibrcState(req.Name); st != Started {
		if st == Stopped {
			// Why gosv stopped respawning it, when it did (finish wrote
			// it in the generated directory; no resolution needed).
			if r := Reason(filepath.Join(ServicesDir(req.Layout.SvcDir), req.Name)); r != "" {
				fmt.Fprintf(req.Out, "respawns stopped: %s\n", r)
			}
		}
		return stateStatus(st)
	}
	sp, _ := LiveService(req).Spec()
	req.linkedBackend(sp)
	dir := req.serviceDir(sp)
	st, err := req.backend(sp).Status(backends.Service{Name: req.Name, Dir: dir})
	if err != nil {
		fmt.Fprintln(req.Out, err)
		return StatusCrashed
	}
	fmt.Fprintln(req.Out, st.Line)
	switch {
	case st.Supervised:
		return StatusStarted
	case st.Up:
		return StatusUnsupervised
	}
	// NOTE: rc-status calls a service crashed, not unsupervised, only
	// without child_pid: drop it so that both say the same.
	rc := RC{SvcDir: req.Layout.SvcDir}
	rc.UnsetValue(req.Name, "child_pid")
	return StatusCrashed
}

// Reload sends reload_signal (SIGHUP by default) to the service's process.
func Reload(req *Request) error {
	sp, probs := LiveService(req).Spec()
	if printProblems(req.Out, probs) {
		return fmt.Errorf("reload %s: %w", req.Name, ErrFailed)
	}
	req.linkedBackend(sp)
	err := req.backend(sp).Signal(backends.Service{Name: req.Name, Dir: req.serviceDir(sp)}, sp.ReloadSignal)
	if err != nil {
		fmt.Fprintf(req.Out, "unable to send SIG%s: %v\n", servicedir.SignalName(sp.ReloadSignal), err)
		return fmt.Errorf("reload %s: %w", req.Name, ErrFailed)
	}
	return nil
}

// CatchAllDir is the catch-all log directory gosv-svscan recorded, or "".
func CatchAllDir(rcSvcDir string) string {
	b, err := os.ReadFile(filepath.Join(ScanDir(rcSvcDir), catchAllRecord))
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(b))
}

// stripStamp drops a leading TAI64N label ("@" and 24 hex digits, then a
// blank), which s6-log's t directive puts on every line.
func stripStamp(l string) string {
	const n = servicedir.TAI64NTextLen
	if _, ok := servicedir.ParseTAI64N([]byte(l)); ok && len(l) > n+1 && l[n] == ' ' {
		return l[n+1:]
	}
	return l
}
