package openrc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"mvdan.cc/sh/v3/syntax"

	"github.com/gosv/gosv/backends/registry"
	"github.com/gosv/gosv/internal/servicedir"
)

// Names in a generated service directory. The s6 ones are read by the
// supervisor; ExecFile, StartFile and ReasonFile only by gosv openrc.
const (
	ExecFile   = servicedir.OpenRCExecFile   // the exec helper's configuration ([ExecConfig])
	StartFile  = servicedir.OpenRCStartFile  // when OpenRC last started the service (unix nanoseconds)
	ReasonFile = servicedir.OpenRCReasonFile // why gosv last gave the service up
	// minDeathTally is s6's default max-death-tally; the respawn policy
	// needs respawn_max+1 records.
	minDeathTally = 100
	// wrapNotifyFd is the notification-fd of a notify=socket service under
	// a backend without sd_notify: gosv notify-fd-from-socket writes the
	// newline there and closes it in the daemon, so that any free number
	// does; runit's backend opens it from the run script's shell (0-9).
	wrapNotifyFd = 3
)

// generated lists every file Generate may write, so that files a previous
// configuration needed are removed. supervise/ and event/ are never touched.
var generated = []string{
	servicedir.RunFile, servicedir.FinishFile, ExecFile, servicedir.NotificationFDFile,
	servicedir.NotificationSocketFile, servicedir.TimeoutKillFile, servicedir.TimeoutFinishFile,
	servicedir.DownSignalFile, servicedir.MaxDeathTallyFile, servicedir.LogScriptFile, servicedir.LogRunPath,
	servicedir.PidfileFile, servicedir.TimeoutPidfileFile, servicedir.FinishWantedUpFile,
	servicedir.RespawnDelayFile, servicedir.RespawnDelayMaxFile, servicedir.RespawnResetFile,
	servicedir.RespawnMaxFile, servicedir.RespawnPeriodFile, servicedir.RespawnOnFile, servicedir.SuccessExitFile,
	servicedir.OnEventFile, servicedir.TimeoutOnEventFile, servicedir.ControlGroupFile,
	servicedir.HealthCheckFile, servicedir.HealthUnhealthyFile, servicedir.HealthTimerFile, servicedir.HealthDelayFile,
	servicedir.HealthTimeoutFile, servicedir.HealthGraceFile, servicedir.HealthRetriesFile,
}

// ExecConfig is what the generated run's exec helper applies before it
// execs the command ([Exec]), and the respawn policy the finish helper
// follows ([Finish]). It is stored as JSON in the service directory.
type ExecConfig struct {
	Service      string   `json:"service"`       // RC_SVCNAME
	Script       string   `json:"script"`        // RC_SERVICE
	RCSvcDir     string   `json:"rc_svcdir"`     // RC_SVCDIR, for options/<svc>
	LibexecDir   string   `json:"rc_libexecdir"` // RC_LIBEXECDIR, for mark_service_*
	Argv         []string `json:"argv"`
	Env          []string `json:"env"`
	User         string   `json:"user,omitempty"`
	Group        string   `json:"group,omitempty"`
	Directory    string   `json:"directory,omitempty"`
	Chroot       string   `json:"chroot,omitempty"`
	Umask        string   `json:"umask,omitempty"`  // octal
	Stdin        string   `json:"stdin,omitempty"`  // a file, or "" for the supervisor's
	Stdout       string   `json:"stdout,omitempty"` // a file to append to, or ""
	Stderr       string   `json:"stderr,omitempty"` // a file, "&1" = stdout, or ""
	Nice         *int     `json:"nice,omitempty"`
	IONice       *IONice  `json:"ionice,omitempty"`
	OOMScoreAdj  *int     `json:"oom_score_adj,omitempty"`
	Capabilities string   `json:"capabilities,omitempty"`
	Secbits      *uint32  `json:"secbits,omitempty"`
	NoNewPrivs   bool     `json:"no_new_privs,omitempty"`
	Cgroups      []string `json:"cgroups,omitempty"` // cgroup directories to join
	Respawn      Respawn  `json:"respawn"`
}

// GenConfig is what Generate needs besides the Spec.
type GenConfig struct {
	Gosv       string   // absolute path of the gosv binary
	RCSvcDir   string   // RC_SVCDIR
	LibexecDir string   // RC_LIBEXECDIR
	Cgroups    []string // the service's cgroups (see [ServiceCgroups])
	// Newest is the modification time of the newest source (script, conf.d,
	// rc.conf, the gosv binary): a directory generated after it is current.
	Newest time.Time
}

// ServicesDir is where generated directories live: $RC_SVCDIR/gosv-services.
func ServicesDir(rcSvcDir string) string { return filepath.Join(rcSvcDir, "gosv-services") }

// ScanDir is the scanner's scan directory: $RC_SVCDIR/gosv-scan.
func ScanDir(rcSvcDir string) string { return filepath.Join(rcSvcDir, "gosv-scan") }

// Stale reports whether the generated directory dir is older than newest
// (or missing), that is, whether Generate would rewrite it.
func Stale(dir string, newest time.Time) bool {
	fi, err := os.Stat(filepath.Join(dir, ExecFile))
	return err != nil || fi.ModTime().Before(newest)
}

// Generate writes the service directory dir for sp, file by file (each
// through a temporary file and a rename), unless it is already newer than
// gc.Newest. Files whose content is unchanged are not rewritten, files the
// configuration no longer needs are removed, and supervise/ and event/ are
// never touched: the supervisor reads the new files at its next spawn. It
// reports whether anything changed.
func Generate(sp *Spec, dir string, gc GenConfig) (bool, error) {
	if !sp.Declarative {
		return false, fmt.Errorf("generate %s: not a declarative service", sp.Name)
	}
	if !Stale(dir, gc.Newest) {
		return false, nil
	}
	files, err := Files(sp, gc)
	if err != nil {
		return false, err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, err
	}
	changed := false
	for _, name := range generated {
		content, want := files[name]
		p := filepath.Join(dir, name)
		if !want {
			err := os.Remove(p)
			if err == nil {
				changed = true
			} else if !errors.Is(err, fs.ErrNotExist) {
				return changed, err
			}
			continue
		}
		c, err := writeIfChanged(p, content, fileMode(name))
		if err != nil {
			return changed, err
		}
		changed = changed || c
	}
	if !changed {
		// Mark the directory current even when nothing changed, so the next
		// start skips the comparison.
		now := time.Now()
		os.Chtimes(filepath.Join(dir, ExecFile), now, now)
	}
	if files[servicedir.LogRunPath] == "" {
		os.Remove(filepath.Join(dir, servicedir.LogDir)) // only if empty: log/supervise stays
	}
	return changed, nil
}

func fileMode(name string) os.FileMode {
	if name == servicedir.RunFile || name == servicedir.FinishFile || name == servicedir.LogRunPath || name == servicedir.OnEventFile {
		return 0o755
	}
	return 0o644
}

// writeIfChanged writes content to p through p.new and a rename, unless p
// already holds exactly that, with mode exactly mode.
func writeIfChanged(p, content string, mode os.FileMode) (bool, error) {
	if old, err := os.ReadFile(p); err == nil && string(old) == content {
		if fi, err := os.Lstat(p); err == nil && fi.Mode() == mode { // a symlink is rewritten
			return false, nil
		}
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return false, err
	}
	// NOTE: through servicedir, so that a symlink planted at p or p.new is
	// replaced, never followed (gosv runs this as root).
	if err := servicedir.WriteFileMode(filepath.Dir(p), filepath.Base(p), []byte(content), uint32(mode.Perm())); err != nil {
		return false, err
	}
	return true, nil
}

// Files returns the content of every file of sp's service directory, by
// name relative to the directory.
func Files(sp *Spec, gc GenConfig) (map[string]string, error) {
	ec := execConfig(sp, gc)
	var js bytes.Buffer
	enc := json.NewEncoder(&js)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "\t")
	if err := enc.Encode(ec); err != nil {
		return nil, err
	}
	gen := fmt.Sprintf("# Generated by gosv from %s; gosv openrc start rewrites it.\n", sp.Script)
	head := "#!/bin/sh\n" + gen
	// NOTE: the run is, cheapest first: a shell script that execs the command
	// through env -i, when the service needs nothing a shell cannot do; gosv
	// itself through its #! line (the kernel runs `gosv openrc ./run NAME`);
	// a shell script that applies rc_ulimit with the shell's own ulimit (as
	// openrc-run.sh does) and then execs gosv.
	run, finish := head, head+"exec "+shQuote(gc.Gosv)+" openrc finish \"$@\"\n"
	direct := shebangOK(gc.Gosv)
	// wrap: a supervisor without sd_notify (s6-supervise, runsv) gets
	// notify=socket through gosv notify-fd-from-socket, which execs the
	// command (or the exec helper) with NOTIFY_SOCKET set.
	wrap := ""
	if sp.Notify == NotifySocket && sp.Backend != registry.Default {
		wrap = shQuote(gc.Gosv) + " notify-fd-from-socket -3 " + strconv.Itoa(wrapNotifyFd) + " -- "
	}
	if sh, ok := shellRun(sp, gc, head, wrap); ok {
		run = sh
	} else {
		switch {
		case sp.Ulimit != "":
			run += "ulimit " + sp.Ulimit + " || exit 111\n" + "exec " + wrap + shQuote(gc.Gosv) + " openrc exec\n"
		case wrap != "":
			run += "exec " + wrap + shQuote(gc.Gosv) + " openrc exec\n"
		case direct:
			run = "#!" + gc.Gosv + " openrc\n" + gen + "# (gosv openrc ./run: the exec helper, see " + ExecFile + ")\n"
		default:
			run += "exec " + shQuote(gc.Gosv) + " openrc exec\n"
		}
	}
	if direct {
		finish = "#!" + gc.Gosv + " openrc\n" + gen + "# (gosv openrc ./finish: the respawn policy, see " + ExecFile + ")\n"
	}
	f := map[string]string{
		servicedir.RunFile:    run,
		servicedir.FinishFile: finish,
		// finish decides nothing after a stop ([Finish]): the scanner
		// skips it then.
		servicedir.FinishWantedUpFile: "",
		ExecFile:                      js.String(),
		servicedir.TimeoutKillFile:    strconv.FormatInt(sp.TimeoutKill.Milliseconds(), 10) + "\n",
		servicedir.DownSignalFile:     "SIG" + servicedir.SignalName(sp.DownSignal) + "\n",
	}
	switch sp.Notify {
	case NotifyFd:
		f[servicedir.NotificationFDFile] = strconv.Itoa(sp.NotifyFd) + "\n"
	case NotifySocket:
		if wrap != "" {
			f[servicedir.NotificationFDFile] = strconv.Itoa(wrapNotifyFd) + "\n"
			break
		}
		// NOTE: "all", not "main": supervise-daemon takes READY=1 from any
		// process (systemd-notify run by a wrapper script, for one).
		f[servicedir.NotificationSocketFile] = "all\n"
	}
	if sp.Pidfile != "" {
		// A forking daemon: run is its launcher; the launch has the time
		// start waits (timeout_ready; 0 = no limit, as for start).
		f[servicedir.PidfileFile] = sp.Pidfile + "\n"
		f[servicedir.TimeoutPidfileFile] = strconv.FormatInt(sp.TimeoutReady.Milliseconds(), 10) + "\n"
	}
	policyFiles(f, &sp.Respawn)
	if n := min(sp.Respawn.Max+1, 4096); n > minDeathTally {
		f[servicedir.MaxDeathTallyFile] = strconv.Itoa(n) + "\n"
	}
	eventFiles(sp, f, head) // events.go
	groupFiles(sp, f)       // group.go
	sp.Health.files(f)
	if lg := sp.Logger; lg != nil {
		if lg.Auto {
			f[servicedir.LogScriptFile] = lg.Script + " " + lg.Dir + "\n"
		} else {
			f[servicedir.LogRunPath] = head + "exec /bin/sh -c " + shQuote(lg.Command) + "\n"
		}
	}
	return f, nil
}

// policyFiles adds the restart-policy files (PROTOCOL.md §9.6): the
// supervisor applies the policy; finish only tells OpenRC.
func policyFiles(f map[string]string, r *Respawn) {
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) + "\n" }
	f[servicedir.RespawnMaxFile] = strconv.Itoa(r.Max) + "\n"
	f[servicedir.RespawnPeriodFile] = ms(r.Period)
	if r.Delay > 0 {
		f[servicedir.RespawnDelayFile] = ms(r.Delay)
	}
	if r.DelayMax > 0 {
		f[servicedir.RespawnDelayMaxFile] = ms(r.DelayMax)
	}
	if r.Reset > 0 {
		f[servicedir.RespawnResetFile] = ms(r.Reset)
	}
	if r.On != servicedir.RespawnAlways {
		f[servicedir.RespawnOnFile] = r.On.String() + "\n"
	}
	if r.Success != "" {
		f[servicedir.SuccessExitFile] = r.Success + "\n"
	}
}

func execConfig(sp *Spec, gc GenConfig) *ExecConfig {
	ec := &ExecConfig{
		Service: sp.Name, Script: sp.Script, RCSvcDir: gc.RCSvcDir, LibexecDir: gc.LibexecDir, Argv: sp.Argv, Env: sp.Env,
		User: sp.User, Group: sp.Group, Directory: sp.Directory, Chroot: sp.Chroot,
		Stdin: sp.InputFile, Stdout: sp.OutputLog, Stderr: sp.ErrorLog,
		Nice: sp.Nice, IONice: sp.IONice, OOMScoreAdj: sp.OOMScoreAdj,
		Capabilities: sp.Capabilities, Secbits: sp.Secbits, NoNewPrivs: sp.NoNewPrivs,
		Cgroups: gc.Cgroups, Respawn: sp.Respawn,
	}
	if sp.Umask != nil {
		ec.Umask = fmt.Sprintf("%03o", *sp.Umask)
	}
	if ec.Env == nil {
		ec.Env = []string{}
	}
	if lg := sp.Logger; lg != nil && lg.Both && ec.Stderr == "" {
		ec.Stderr = "&1" // error_logger takes both streams
	}
	return ec
}

// ReadExecConfig reads dir's ExecFile.
func ReadExecConfig(dir string) (*ExecConfig, error) {
	b, err := os.ReadFile(filepath.Join(dir, ExecFile))
	if err != nil {
		return nil, err
	}
	var ec ExecConfig
	if err := json.NewDecoder(bytes.NewReader(b)).Decode(&ec); err != nil {
		return nil, &os.PathError{Op: "parse", Path: filepath.Join(dir, ExecFile), Err: err}
	}
	return &ec, nil
}

// shQuote quotes s for /bin/sh (dash, busybox sh: POSIX).
//
// NOTE: syntax.Quote refuses, in POSIX mode, strings with a control
// character (a tab, a newline) or invalid UTF-8, as it would need bash's
// $'...'; POSIX single quotes keep every byte but NUL, so those take them.
func shQuote(s string) string {
	if q, err := syntax.Quote(s, syntax.LangPOSIX); err == nil {
		return q
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// envProgram runs the command with exactly the service's environment.
const envProgram = "/usr/bin/env"

// shellRun returns a run that needs no exec helper: /bin/sh joins the
// cgroups, records child_pid, applies directory, umask and rc_ulimit, and
// env -i sets the environment (the supervisor's sd_notify variables pass
// through) and execs the command. Two small C programs start in a fraction
// of gosv's start-up time; this is every restart's and readiness's path.
// It is not possible when the service needs a user, chroot, capabilities,
// securebits, no_new_privs, priorities or redirections: gosv's exec helper
// does those.
//
// wrap, when not empty, is a command (and its arguments) that env runs
// with the service's command as its last arguments.
func shellRun(sp *Spec, gc GenConfig, head, wrap string) (string, bool) {
	if sp.User != "" || sp.Group != "" || sp.Chroot != "" || sp.Capabilities != "" || sp.Secbits != nil ||
		sp.NoNewPrivs || sp.Nice != nil || sp.IONice != nil || sp.OOMScoreAdj != nil ||
		sp.InputFile != "" || sp.OutputLog != "" || sp.ErrorLog != "" || len(sp.Argv) == 0 {
		return "", false
	}
	if fi, err := os.Stat(envProgram); err != nil || fi.Mode().Perm()&0o111 == 0 {
		return "", false
	}
	var b strings.Builder
	b.WriteString(head)
	if gc.RCSvcDir != "" {
		// As supervise-daemon's child: OpenRC's child_pid (the pid stays
		// the same through both execs). start_time and start_count are
		// written by start and by finish. Start creates the options
		// directory; OpenRC removes it when the service stops. NOTE: the
		// braces: dash reports a failed redirection before a 2>/dev/null
		// on the same command applies, into the service's log.
		fmt.Fprintf(&b, "{ printf %%s $$ >%s; } 2>/dev/null\n", shQuote(filepath.Join(gc.RCSvcDir, "options", sp.Name, "child_pid")))
	}
	for _, cg := range gc.Cgroups {
		fmt.Fprintf(&b, "echo 0 >%s 2>/dev/null\n", shQuote(filepath.Join(cg, "cgroup.procs")))
	}
	if sp.Directory != "" {
		fmt.Fprintf(&b, "cd %s || exit 111\n", shQuote(sp.Directory))
	}
	if sp.Umask != nil {
		fmt.Fprintf(&b, "umask %03o\n", *sp.Umask)
	}
	if sp.Ulimit != "" {
		b.WriteString("ulimit " + sp.Ulimit + " || exit 111\n")
	}
	if lg := sp.Logger; lg != nil && lg.Both {
		b.WriteString("exec 2>&1\n")
	}
	b.WriteString("exec " + envProgram + " -i --")
	for _, kv := range sp.Env {
		b.WriteString(" " + shQuote(kv))
	}
	for _, v := range supervisorVars {
		fmt.Fprintf(&b, " ${%s+\"%s=$%s\"}", v, v, v)
	}
	if wrap != "" {
		b.WriteString(" " + strings.TrimSuffix(wrap, " "))
	}
	for _, a := range sp.Argv {
		b.WriteString(" " + shQuote(a))
	}
	b.WriteString("\n")
	return b.String(), true
}

// shebangMax is the longest #! line every Linux reads whole (BINPRM_BUF_SIZE
// was 128 before 5.1).
const shebangMax = 127

// shebangOK reports whether path can be a #! interpreter with one argument.
func shebangOK(path string) bool {
	return filepath.IsAbs(path) && len(path)+len(" openrc")+2 < shebangMax && !strings.ContainsAny(path, " \t\n")
}
