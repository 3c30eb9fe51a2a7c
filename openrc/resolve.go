package openrc

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// resolveTimeout bounds the sandboxed run of one service's files: they run
// no external command, so only a runaway loop can take this long.
const resolveTimeout = 2 * time.Second

// Vars are the variables the gosv backend reads, in the order the hook
// passes them. The hook (gosv.conf) must list exactly these; a test checks.
var Vars = []string{
	"supervisor", "name", "command", "command_args", "command_args_foreground",
	"command_user", "directory", "chroot", "umask", "input_file",
	"output_log", "error_log", "output_logger", "error_logger", "gosv_log_arguments",
	"notify", "ready", "start_wait", "stopsig", "retry", "timeout_ready", "timeout_down", "timeout_kill",
	"reload_signal", "respawn_delay", "respawn_max", "respawn_period",
	"gosv_respawn_delay_max", "gosv_respawn_reset", "gosv_respawn_on", "gosv_success_exit",
	"capabilities", "secbits", "no_new_privs", "rc_ulimit", "RC_ULIMIT",
	"SSD_NICELEVEL", "SSD_IONICELEVEL", "SSD_OOM_SCORE_ADJ",
	"pidfile", "command_background", "healthcheck_timer", "healthcheck_delay",
	"gosv_service_path", "gosv_svwait_options_start", "gosv_on_event", "gosv_on_event_timeout",
	"gosv_healthcheck", "gosv_healthcheck_timeout", "gosv_healthcheck_retries", "gosv_healthcheck_grace",
	"extra_commands", "extra_started_commands", "gosv_control_group", "gosv_backend",
}

// Layout says where OpenRC keeps its files. [DefaultLayout] is the system
// layout; tests point it into a temporary directory.
type Layout struct {
	RCConf     string   // /etc/rc.conf
	RCConfD    string   // /etc/rc.conf.d (its *.conf files, the gosv hook excepted)
	ConfD      string   // /etc/conf.d, for gosv-wide defaults ([Layout.DefaultsFile]); "" = none
	LibexecDir string   // RC_LIBEXECDIR: /usr/libexec/rc (0.63), /lib/rc (Debian's 0.45)
	SvcDir     string   // /run/openrc (RC_SVCDIR)
	InitDirs   []string // where init scripts live, searched in order by ls
	Runlevel   string   // the runlevel for conf.d/<svc>.<runlevel>; "" = read $SvcDir/softlevel
	Version    Version  // OpenRC's version; zero = read $LibexecDir/version
	// UserConf is the user's configuration directory in OpenRC 0.60+'s
	// user mode ($XDG_CONFIG_HOME/rc or ~/.config/rc); "" = the system
	// layout ([UserLayout]).
	UserConf string
}

// DefaultLayout is OpenRC's system layout. RC_SVCDIR and RC_LIBEXECDIR
// from env override it, as they do in openrc-run; without RC_LIBEXECDIR
// (a shell) the installed OpenRC's is detected ([LibexecDir]).
func DefaultLayout(getenv func(string) string) Layout {
	if l, ok := UserLayout(getenv); ok {
		return l.fill()
	}
	l := Layout{
		RCConf: "/etc/rc.conf", RCConfD: "/etc/rc.conf.d", ConfD: "/etc/conf.d", LibexecDir: LibexecDir(getenv), SvcDir: "/run/openrc",
		InitDirs: []string{"/etc/init.d", "/usr/local/etc/init.d"},
	}
	if v := getenv("RC_SVCDIR"); v != "" {
		l.SvcDir = v
	}
	l.Runlevel = getenv("RC_RUNLEVEL")
	return l.fill()
}

// fill reads what the layout leaves to the system: runlevel and version.
func (l Layout) fill() Layout {
	if l.Runlevel == "" {
		if b, err := os.ReadFile(filepath.Join(l.SvcDir, "softlevel")); err == nil {
			l.Runlevel = strings.TrimSpace(string(b))
		}
	}
	if l.Version.IsZero() {
		l.Version = ReadVersion(l.LibexecDir)
	}
	return l
}

// HookPath is where the hook is installed.
func (l Layout) HookPath() string { return filepath.Join(l.RCConfD, HookName) }

// Sources returns the files openrc-run.sh sources for the init script at
// path, in its order (§1 of the backends spec): rc.conf, rc.conf.d/*.conf,
// conf.d/<prefix>[.<runlevel>] for multiplexed names, conf.d/<svc>.<runlevel>
// or else conf.d/<svc>, and the script last. Files that do not exist are left
// out. The gosv hook itself is left out: it only matters inside openrc-run.
func (l Layout) Sources(script string) []string {
	var out []string
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }
	if exists(l.RCConf) {
		out = append(out, l.RCConf)
	}
	if m, _ := filepath.Glob(filepath.Join(l.RCConfD, "*.conf")); len(m) > 0 {
		sort := slices.Clone(m)
		slices.Sort(sort)
		for _, f := range sort {
			if filepath.Base(f) != HookName {
				out = append(out, f)
			}
		}
	}
	out = append(out, l.userConfs()...)
	confd := filepath.Join(filepath.Dir(script), "..", "conf.d")
	svc := filepath.Base(script)
	pick := func(base string) {
		if l.Runlevel != "" && exists(filepath.Join(confd, base+"."+l.Runlevel)) {
			out = append(out, filepath.Clean(filepath.Join(confd, base+"."+l.Runlevel)))
		} else if exists(filepath.Join(confd, base)) {
			out = append(out, filepath.Clean(filepath.Join(confd, base)))
		}
	}
	if prefix, _, ok := strings.Cut(svc, "."); ok && prefix != "" {
		pick(prefix)
	}
	pick(svc)
	// openrc-run.sh (0.60+): a user service whose script is not in the
	// user's own init.d (/etc/user/init.d) also reads the user's conf.d.
	if l.UserConf != "" && filepath.Clean(filepath.Dir(script)) != filepath.Join(l.UserConf, "init.d") {
		confd = filepath.Join(l.UserConf, "conf.d")
		pick(svc)
	}
	return append(out, script)
}

// Value is a variable as openrc-run would see it when the service starts.
type Value struct {
	Text string
	Set  bool // set, possibly to ""; unset variables have Set false
	// Pos is the last top-level assignment in the sourcing order; zero when
	// the value came from elsewhere (the hook, a default, the environment).
	Pos Pos
	// Unresolved, when valid, is the external command the value depends
	// on: the sandbox did not run it, so Text is meaningless.
	Unresolved Pos
	Cmd        string // that command's name
}

// Func is a shell function defined by the script or its configuration.
type Func struct {
	Pos   Pos
	Calls []string // names of the commands its body calls, in order, deduplicated
}

// Service is an OpenRC service resolved for the gosv backend: its name and
// files, the values of [Vars], its exported environment and its functions.
type Service struct {
	Name   string // RC_SVCNAME
	Script string // RC_SERVICE, the init script's path
	Files  []string
	Vars   map[string]Value
	Argv   []string // eval $command $command_args $command_args_foreground
	// ArgvUnresolved is valid when Argv depends on an external command.
	ArgvUnresolved Pos
	Env            []string            // exported variables for the daemon, OpenRC's own removed
	Funcs          map[string]Func     // functions defined by the sourced files
	Depend         map[string][]string // depend(): need, use, want, after, before, provide, keyword, config
	Layout         Layout
	// Live is true when the values are the hook's (openrc-run's shell),
	// false when they were resolved statically.
	Live bool
	// Problems found while resolving: unresolved values, a file that exits.
	Problems []Problem
}

// Get returns the value of a variable ("" when unset).
func (s *Service) Get(name string) string { return s.Vars[name].Text }

// IsSet reports whether a variable is set, possibly to "".
func (s *Service) IsSet(name string) bool { return s.Vars[name].Set }

// Resolve resolves the service whose init script is at script, statically:
// every file of l.Sources(script) is parsed and run, in order, in a sandbox
// that runs no external command. A syntax error is returned as a
// *ParseError; values that depend on an external command are marked
// unresolved and listed in Problems.
//
// The sandbox is a child process with hard limits ([ResolveTimeout],
// [ResolveMemory], [ResolveStack], [MaxSourceSize]): a script that
// loops, recurses, grows a string without end or reads a device or a
// FIFO stops with a *ResolveError naming it and the limit, and
// the caller's memory and time stay bounded. Cancelling ctx kills the
// child. The child is the running executable itself, re-executed as
// `EXE openrc resolve`: a program that calls Resolve must be gosv, or
// hand those arguments to [ServeResolve] (tests do it in TestMain).
func Resolve(ctx context.Context, l Layout, script string) (*Service, error) {
	svcs, errs := ResolveAll(ctx, l, []string{script})
	return svcs[0], errs[0]
}

// resolveHere is Resolve's work, done by the child ([ServeResolve]).
func resolveHere(ctx context.Context, l Layout, script string) (*Service, error) {
	l = l.fill()
	s := &Service{Name: filepath.Base(script), Script: script, Files: l.Sources(script), Layout: l,
		Vars: map[string]Value{}, Funcs: map[string]Func{}, Depend: map[string][]string{}}
	files := make([]*syntax.File, 0, len(s.Files))
	for _, name := range s.Files {
		src, err := readSource(name)
		if err != nil {
			return nil, err
		}
		f, err := Parse(name, src)
		if err != nil {
			return nil, err
		}
		s.Problems = append(s.Problems, PosixProblems(name, src)...)
		foreground(f)
		files = append(files, f)
	}
	sb := newSandbox(s, l)
	if err := sb.run(ctx, files); err != nil {
		return nil, err
	}
	s.applyDefaults()
	return s, nil
}

// foreground clears the & of every statement: the sandbox runs background
// jobs in order, so that what they record does not depend on scheduling.
func foreground(f *syntax.File) {
	syntax.Walk(f, func(n syntax.Node) bool {
		if st, ok := n.(*syntax.Stmt); ok {
			st.Background, st.Coprocess, st.Disown = false, false, false
		}
		return true
	})
}

// sandbox is one service's interpreter and what it records. The
// interpreter runs the two sides of a pipe concurrently, so the handlers
// take mu.
type sandbox struct {
	mu     sync.Mutex
	s      *Service
	l      Layout
	r      *interp.Runner
	file   string // the file being run, for positions
	calls  []Pos  // external commands met, by marker index
	cmds   []string
	inDeps bool
	// last is the position of the last command run, where a resolution
	// that runs out of time is reported.
	last Pos
	// refused is the first file the sandbox refused to read: it stops
	// the resolution.
	refused *ResolveError
}

// markerFmt replaces the output of an external command: any value that
// contains it depends on that command. NOTE: ESC bytes, because values of
// real scripts never hold them and the marker survives quoting and splitting.
const markerFmt = "\x1bgosv-unresolved-%d\x1b"

func newSandbox(s *Service, l Layout) *sandbox {
	return &sandbox{s: s, l: l}
}

func (sb *sandbox) env() expand.Environ {
	svc := sb.s.Name
	kv := []string{
		"PATH=" + l2path(sb.l.LibexecDir),
		"RC_SVCNAME=" + svc, "SVCNAME=" + svc, "RC_SERVICE=" + sb.s.Script,
		"RC_LIBEXECDIR=" + sb.l.LibexecDir, "RC_SVCDIR=" + sb.l.SvcDir,
		"RC_RUNLEVEL=" + sb.l.Runlevel, "RC_VERSION=" + sb.l.Version.String(),
		"RC_UNAME=Linux", "RC_SYS=",
	}
	return expand.ListEnviron(kv...)
}

// l2path is openrc-run's PATH: its helper dirs first.
func l2path(libexec string) string {
	return libexec + "/bin:" + libexec + "/sbin:/bin:/sbin:/usr/bin:/usr/sbin"
}

func (sb *sandbox) run(ctx context.Context, files []*syntax.File) error {
	ctx, cancel := context.WithTimeout(ctx, resolveTimeout)
	defer cancel()
	r, err := interp.New(
		interp.Env(sb.env()),
		interp.Dir("/"),
		interp.StdIO(nil, io.Discard, io.Discard),
		interp.CallHandler(sb.call),
		interp.ExecHandlers(func(interp.ExecHandlerFunc) interp.ExecHandlerFunc { return sb.exec }),
		interp.OpenHandler(sb.open),
	)
	if err != nil {
		return err
	}
	sb.r = r
	pre, err := Parse("<openrc>", []byte(prelude))
	if err != nil {
		return err // a bug in prelude
	}
	sb.source(ctx, pre)
	script := len(files) - 1
	for i, f := range files {
		if i == script {
			sb.modules(ctx)
		}
		exited := sb.source(ctx, f)
		if err := sb.stopped(ctx); err != nil {
			return err
		}
		if exited {
			sb.s.Problems = append(sb.s.Problems, Problem{Pos: Pos{File: f.Name}, Severity: Error,
				Msg: "the file exits the shell: openrc-run would stop here"})
			break
		}
	}
	sb.collect(ctx, files)
	return sb.stopped(ctx)
}

// stopped returns why the resolution must stop: a refused file, the time
// limit (at the last command run), or the caller's cancellation.
func (sb *sandbox) stopped(ctx context.Context) error {
	sb.mu.Lock()
	defer sb.mu.Unlock()
	switch {
	case sb.refused != nil:
		return sb.refused
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		p := sb.last
		if !p.IsValid() || strings.HasPrefix(p.File, "<") { // <depend>, <argv>: no file to point at
			p = Pos{File: sb.s.Script}
		}
		return &ResolveError{Pos: p, Msg: fmt.Sprintf("resolution exceeded %v (a loop that never ends?)", resolveTimeout), timedOut: true}
	case ctx.Err() != nil:
		return fmt.Errorf("resolve %s: %w", sb.s.Script, ctx.Err())
	}
	return nil
}

// source runs one file's statements as openrc-run.sh's `. FILE` would, as
// the body of a function so that a top-level return works. It reports
// whether the file exited the shell.
func (sb *sandbox) source(ctx context.Context, f *syntax.File) bool {
	sb.file = f.Name
	fn := &syntax.Stmt{Cmd: &syntax.FuncDecl{Name: lit("_gosv_sourced"), Body: &syntax.Stmt{Cmd: &syntax.Block{Stmts: f.Stmts}}}}
	sb.r.Run(ctx, fn)
	sb.r.Run(ctx, &syntax.Stmt{Cmd: &syntax.CallExpr{Args: []*syntax.Word{{Parts: []syntax.WordPart{lit("_gosv_sourced")}}}}})
	return sb.r.Exited()
}

func lit(s string) *syntax.Lit { return &syntax.Lit{Value: s} }

// modules replays what openrc-run.sh's supervisor modules do to the
// variables between conf.d and the script.
func (sb *sandbox) modules(ctx context.Context) {
	sb.file = "<openrc>"
	src := `extra_commands="healthcheck unhealthy ${extra_commands}"` + "\n"
	if sb.l.Version.HasDefaultReload() {
		src = `extra_commands="restart reload ${extra_commands}"` + "\n" + src
	}
	f, _ := Parse("<openrc>", []byte(src))
	sb.r.Run(ctx, f)
}

// call intercepts builtins that would act outside the sandbox and the
// dependency functions.
func (sb *sandbox) call(ctx context.Context, args []string) ([]string, error) {
	if p := interp.HandlerCtx(ctx).Pos; p.IsValid() {
		sb.mu.Lock()
		sb.last = posOf(sb.file, p)
		sb.mu.Unlock()
	}
	switch args[0] {
	case "kill", "wait", "exec", "ulimit", "umask", "trap":
		// Run no process, touch no limit: treat as an external command.
		return append([]string{"_gosv_external"}, args...), nil
	case "_gosv_dep":
		sb.mu.Lock()
		if sb.inDeps && len(args) > 1 {
			// librc deduplicates; sorting makes the pipe case deterministic.
			d := append(sb.s.Depend[args[1]], args[2:]...)
			slices.Sort(d)
			sb.s.Depend[args[1]] = slices.Compact(d)
		}
		sb.mu.Unlock()
		return []string{"true"}, nil
	}
	return args, nil
}

// exec stands for every external command: it records where it was called
// and prints a marker instead of running it.
func (sb *sandbox) exec(ctx context.Context, args []string) error {
	hc := interp.HandlerCtx(ctx)
	name := args[0]
	if name == "_gosv_external" && len(args) > 1 {
		name = args[1]
	}
	sb.mu.Lock()
	n := len(sb.calls)
	sb.calls = append(sb.calls, posOf(sb.file, hc.Pos))
	sb.cmds = append(sb.cmds, name)
	sb.mu.Unlock()
	fmt.Fprintf(hc.Stdout, markerFmt, n)
	return nil
}

// open allows reading regular files (a conf.d may source another) and
// turns every write into a write to nowhere. A file it refuses to read
// stops the resolution: as the shell would hang or run out of memory on
// it, no value after it could be trusted.
func (sb *sandbox) open(ctx context.Context, path string, flag int, perm os.FileMode) (io.ReadWriteCloser, error) {
	if flag&(os.O_WRONLY|os.O_RDWR|os.O_APPEND|os.O_CREATE|os.O_TRUNC) != 0 {
		return nopRWC{}, nil
	}
	hc := interp.HandlerCtx(ctx)
	if !filepath.IsAbs(path) {
		path = filepath.Join(hc.Dir, path)
	}
	f, err := openSource(path)
	var re *ResolveError
	if errors.As(err, &re) {
		sb.mu.Lock()
		if sb.refused == nil {
			re.Pos = Pos{File: sb.file}
			if strings.HasPrefix(sb.file, "<") { // <depend>, <argv>
				re.Pos = Pos{File: sb.s.Script}
			}
			sb.refused = re
		}
		sb.mu.Unlock()
	}
	return f, err
}

type nopRWC struct{}

func (nopRWC) Read([]byte) (int, error)    { return 0, io.EOF }
func (nopRWC) Write(b []byte) (int, error) { return len(b), nil }
func (nopRWC) Close() error                { return nil }

// unresolved returns the external command a value depends on, if any.
func (sb *sandbox) unresolved(text string) (Pos, string, bool) {
	i := strings.Index(text, "\x1bgosv-unresolved-")
	if i < 0 {
		return Pos{}, "", false
	}
	var n int
	if _, err := fmt.Sscanf(text[i:], markerFmt, &n); err != nil || n >= len(sb.calls) {
		return Pos{File: sb.s.Script}, "?", true
	}
	return sb.calls[n], sb.cmds[n], true
}

// collect reads the variables, functions, argv, environment and depend()
// out of the interpreter once every file has run.
func (sb *sandbox) collect(ctx context.Context, files []*syntax.File) {
	s := sb.s
	assigns := lastAssigns(files)
	conds := conditional(files, sb.r.Funcs)
	for _, name := range Vars {
		vr, ok := sb.r.Vars[name]
		v := Value{Text: vr.String(), Set: ok && vr.IsSet(), Pos: assigns[name]}
		if p, cmd, bad := sb.unresolved(v.Text); bad {
			v.Unresolved, v.Cmd, v.Text = p, cmd, ""
		} else if c, ok := conds[name]; ok {
			v.Unresolved, v.Cmd = c.pos, c.cmd
		}
		if v.Unresolved.IsValid() {
			s.Problems = append(s.Problems, Problem{Pos: v.Unresolved, Severity: Warning,
				Msg: fmt.Sprintf("%s depends on the external command %q: not resolved", name, v.Cmd)})
		}
		s.Vars[name] = v
	}
	sb.argv(ctx)
	s.Env = filterEnv(sb.exported(), sb.l.LibexecDir)
	for name, st := range sb.r.Funcs {
		if strings.HasPrefix(name, "_gosv_") || preludeFuncs[name] {
			continue
		}
		s.Funcs[name] = Func{Pos: funcPos(files, name), Calls: callsIn(st)}
	}
	if _, ok := sb.r.Funcs["depend"]; ok {
		sb.inDeps = true
		sb.file = "<depend>"
		sb.r.Run(ctx, &syntax.Stmt{Cmd: &syntax.CallExpr{Args: []*syntax.Word{{Parts: []syntax.WordPart{lit("depend")}}}}})
		sb.inDeps = false
	}
}

// argv evaluates the command line as supervise_start does (eval).
func (sb *sandbox) argv(ctx context.Context) {
	f, err := Parse("<openrc>", []byte(`eval set -- $command $command_args $command_args_foreground`))
	if err != nil {
		return
	}
	sb.file = "<argv>"
	sb.r.Run(ctx, f)
	for _, a := range sb.r.Params {
		if p, _, bad := sb.unresolved(a); bad {
			sb.s.ArgvUnresolved = p
			sb.s.Argv = nil
			return
		}
	}
	sb.s.Argv = slices.Clone(sb.r.Params)
}

func (sb *sandbox) exported() []string {
	var env []string
	for name, vr := range sb.r.Vars {
		if vr.Exported && vr.IsSet() {
			env = append(env, name+"="+vr.String())
		}
	}
	slices.Sort(env)
	return env
}

// openrcEnv are the variables OpenRC puts into every service's
// environment, which the daemon must not inherit (supervise-daemon's
// child_process removes RC_*, SSD_*, EINFO_* and SVCNAME too).
func isOpenRCVar(name string) bool {
	switch name {
	case "SVCNAME", "PWD", "OLDPWD", "SHLVL", "_", "IN_BACKGROUND", "IN_DRYRUN", "IN_HOTPLUG",
		"EERROR_QUIET", "EINFO_QUIET", "EINFO_VERBOSE", "EINFO_COLOR":
		return true
	}
	for _, p := range []string{"RC_", "SSD_", "EINFO_", "GOSV_OPENRC_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// hookGOMAXPROCS marks a GOMAXPROCS=1 the hook set for its own client
// (openrc/gosv.conf, _gosv_call), which the service must not inherit.
const hookGOMAXPROCS = "_gosv_gomaxprocs=1"

// filterEnv removes OpenRC's own variables from env, the hook's
// GOMAXPROCS, and OpenRC's helper directories from PATH.
func filterEnv(env []string, libexec string) []string {
	out := env[:0:0]
	hookSet := slices.Contains(env, hookGOMAXPROCS)
	for _, kv := range env {
		name, val, _ := strings.Cut(kv, "=")
		if isOpenRCVar(name) || name == "_gosv_gomaxprocs" || (hookSet && name == "GOMAXPROCS") {
			continue
		}
		if name == "PATH" {
			var keep []string
			for _, d := range strings.Split(val, ":") {
				if d != libexec+"/bin" && d != libexec+"/sbin" && d != "" {
					keep = append(keep, d)
				}
			}
			kv = "PATH=" + strings.Join(keep, ":")
		}
		out = append(out, kv)
	}
	return out
}

// NewestSource returns the newest modification time among s.Files.
func (s *Service) NewestSource() (time.Time, error) {
	var newest time.Time
	for _, f := range s.Files {
		fi, err := os.Stat(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return time.Time{}, err
		}
		if fi.ModTime().After(newest) {
			newest = fi.ModTime()
		}
	}
	return newest, nil
}
