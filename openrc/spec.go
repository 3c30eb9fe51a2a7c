package openrc

import (
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends/registry"
	"github.com/gosv/gosv/internal/servicedir"
)

// Defaults of the variables the backend reads (issue 5; the respawn ones
// are supervise-daemon 0.63.3's).
const (
	DefaultTimeoutReady  = 30 * time.Second
	DefaultTimeoutDown   = 10 * time.Second
	DefaultTimeoutKill   = 10 * time.Second
	DefaultRespawnDelay  = 0
	DefaultRespawnMax    = 10
	DefaultRespawnPeriod = 12 * time.Second
	// DefaultStartWait is 0: a serial boot pays start_wait once per
	// service without readiness (bench/README.md, "start_wait").
	DefaultStartWait = 0
	// DefaultLogArguments is the in-process logger's script when
	// gosv_log_arguments is unset (0.63's s6_log_arguments default).
	DefaultLogArguments = "t s1048576 n10"
	// DefaultServicePath is where hand-written service directories live,
	// as for OpenRC's s6 backend; %s is RC_SVCNAME.
	DefaultServicePath = "/var/svc.d/%s"
)

// Notify is a readiness source.
type Notify int

const (
	NotifyNone   Notify = iota // no readiness: start waits for up
	NotifyFd                   // notify=fd:N: a newline on fd N (notification-fd)
	NotifySocket               // notify=socket:ready: sd_notify READY=1 (notification-socket)
)

// Logger is where a stream goes when output_logger/error_logger is set.
type Logger struct {
	Auto    bool   // gosv's in-process logger (log-script)
	Command string // else: a command run as the supervised log/ service
	Both    bool   // stderr too (error_logger)
	Script  string // Auto: the log script, without the directory
	Dir     string // Auto: /var/log/$RC_SVCNAME
}

// Respawn is the restart policy: supervise-daemon 0.63.3's (at each death
// the count grows, or is reset when the first counted death is more than
// Period ago; more than Max deaths, Max > 0, gives up) and gosv's
// (backoff, respawn-on, success-exit). The supervisor applies it from the
// service directory's policy files (docs/restart-policy.md).
type Respawn struct {
	Delay  time.Duration `json:"delay"`
	Max    int           `json:"max"`
	Period time.Duration `json:"period"`
	// DelayMax (gosv_respawn_delay_max) caps Delay's doubling; 0 = none.
	DelayMax time.Duration `json:"delay_max,omitempty"`
	// Reset (gosv_respawn_reset): a run this long resets the backoff; 0 = Period.
	Reset time.Duration `json:"reset,omitempty"`
	// On (gosv_respawn_on) and Success (gosv_success_exit, as success-exit
	// holds it; "" = exit 0) say which deaths are respawned.
	On      servicedir.RespawnOn `json:"on,omitempty"`
	Success string               `json:"success_exit,omitempty"`
}

// IONice is an I/O scheduling class and priority (ioprio_set).
type IONice struct {
	Class int `json:"class"`
	Data  int `json:"data"`
}

// Spec is a service's configuration for the gosv backend, typed and
// checked. Build it with [Service.Spec].
type Spec struct {
	Name        string
	Script      string
	Backend     string // gosv_backend: a name of backends/registry (gosv, s6, runit)
	Declarative bool   // command is set: the directory is generated
	ServiceDir  string // hand-written directory (gosv_service_path), when not declarative
	Argv        []string
	User, Group string
	Directory   string
	Chroot      string
	Umask       *uint32
	InputFile   string
	OutputLog   string
	ErrorLog    string
	Logger      *Logger
	Notify      Notify
	NotifyFd    int
	DownSignal  unix.Signal
	// StopSignals are retry's later signals, kept for the lint.
	ReloadSignal unix.Signal
	TimeoutReady time.Duration // 0 = forever
	// StartWait: without a readiness source, start succeeds only if the
	// daemon is still up this long after it was spawned (0 = at once).
	StartWait    time.Duration
	TimeoutDown  time.Duration
	TimeoutKill  time.Duration
	Respawn      Respawn
	Capabilities string
	Secbits      *uint32
	NoNewPrivs   bool
	Ulimit       string
	Nice         *int
	IONice       *IONice
	OOMScoreAdj  *int
	Env          []string
	// SvwaitOptionsStart are gosv_svwait_options_start's words (hand-written
	// directories only).
	SvwaitOptionsStart []string
	// ReloadListed: reload is in extra_commands or extra_started_commands.
	ReloadListed bool
	// Pidfile: the command is a forking daemon that writes this pidfile
	// (pidfile set, no command_args_foreground, no command_background).
	Pidfile string
	// OnEvent is gosv_on_event: the hook of every event of the service
	// (a shell command); OnEventTimeout bounds one run (0: the default).
	OnEvent        string
	OnEventTimeout time.Duration
	// Health: the health check files (health.go); nil = none.
	Health *HealthSpec
	// ControlGroup is gosv_control_group: a group name or gid (group.go).
	ControlGroup string
}

// HasReadiness reports whether start waits for readiness, not just up: a
// forking daemon is ready once its pidfile names it, or by notify.
func (sp *Spec) HasReadiness() bool { return sp.Notify != NotifyNone || sp.Pidfile != "" }

// specBuilder collects problems while reading variables.
type specBuilder struct {
	s     *Service
	probs []Problem
}

func (b *specBuilder) add(name string, sev Severity, format string, a ...any) {
	b.probs = append(b.probs, Problem{Pos: b.pos(name), Severity: sev, Msg: fmt.Sprintf(format, a...)})
}

// pos is where a variable was set, or the script when that is unknown.
func (b *specBuilder) pos(name string) Pos {
	if p := b.s.Vars[name].Pos; p.IsValid() {
		return p
	}
	return Pos{File: b.s.Script}
}

// get returns a variable's value, and false when it is unset or unresolved
// (an unresolved value is never used: the problem is already reported).
func (b *specBuilder) get(name string) (string, bool) {
	v := b.s.Vars[name]
	return v.Text, v.Set && !v.Unresolved.IsValid()
}

// Spec checks the service's values and returns its configuration. Problems
// with Severity Error mean the service cannot start as written; Spec still
// returns what it could read, with defaults in place of the bad values.
func (s *Service) Spec() (*Spec, []Problem) {
	b := &specBuilder{s: s}
	sp := &Spec{Name: s.Name, Script: s.Script, Env: s.Env}
	b.layout(sp)
	b.process(sp)
	b.io(sp)
	b.notify(sp)
	b.signals(sp)
	b.timeouts(sp)
	b.privileges(sp)
	b.forking(sp)
	b.events(sp)
	b.health(sp)
	b.controlGroup(sp) // group.go
	b.backend(sp)
	b.ignored()
	return sp, b.probs
}

// layout decides between the declarative form and a hand-written directory.
func (b *specBuilder) layout(sp *Spec) {
	cmd, hasCmd := b.get("command")
	path, hasPath := b.get("gosv_service_path")
	switch {
	case hasCmd && cmd != "":
		sp.Declarative = true
		if hasPath {
			b.add("gosv_service_path", Warning, "both command and gosv_service_path are set: the service is built from command, gosv_service_path is ignored")
		}
		sp.Argv = b.s.Argv
		switch {
		case b.s.ArgvUnresolved.IsValid():
			b.probs = append(b.probs, Problem{Pos: b.s.ArgvUnresolved, Severity: Error,
				Msg: "the command line depends on an external command: not resolved"})
		case b.s.Live && b.s.Argv == nil:
			// The hook passes the command line to start only.
		case len(sp.Argv) == 0:
			b.add("command", Error, "command expands to nothing")
		}
	case b.s.Vars["command"].Unresolved.IsValid():
		sp.Declarative = true
	default:
		if !hasPath || path == "" {
			path = fmt.Sprintf(DefaultServicePath, b.s.Name)
		}
		sp.ServiceDir = path
		if opts, ok := b.get("gosv_svwait_options_start"); ok {
			sp.SvwaitOptionsStart = strings.Fields(opts)
		}
	}
	for _, l := range []string{"extra_commands", "extra_started_commands"} {
		if v, ok := b.get(l); ok && containsWord(v, "reload") {
			sp.ReloadListed = true
		}
	}
}

func containsWord(s, w string) bool {
	for _, f := range strings.Fields(s) {
		if f == w {
			return true
		}
	}
	return false
}

// process reads how the daemon is started: user, directories, umask,
// limits and priorities.
func (b *specBuilder) process(sp *Spec) {
	if v, ok := b.get("command_user"); ok && v != "" {
		sp.User, sp.Group, _ = strings.Cut(v, ":")
		if sp.User == "" {
			b.add("command_user", Error, "command_user %q: no user", v)
		}
	}
	if v, ok := b.get("directory"); ok && v != "" {
		sp.Directory = v
	}
	if v, ok := b.get("chroot"); ok && v != "" {
		sp.Chroot = v
	}
	if v, ok := b.get("umask"); ok && v != "" {
		n, err := strconv.ParseUint(v, 8, 32)
		if err != nil || n > 0o777 {
			b.add("umask", Error, "umask: invalid value %q (octal, at most 0777)", v)
		} else {
			u := uint32(n)
			sp.Umask = &u
		}
	}
	if v, ok := b.get("rc_ulimit"); ok && v != "" {
		sp.Ulimit = v
	} else if v, ok := b.get("RC_ULIMIT"); ok && v != "" {
		sp.Ulimit = v
	}
	sp.Nice = b.int("SSD_NICELEVEL", -20, 19)
	sp.OOMScoreAdj = b.int("SSD_OOM_SCORE_ADJ", -1000, 1000)
	if v, ok := b.get("SSD_IONICELEVEL"); ok && v != "" {
		io, err := parseIONice(v)
		if err != nil {
			b.add("SSD_IONICELEVEL", Error, "SSD_IONICELEVEL: %v", err)
		} else {
			sp.IONice = io
		}
	}
}

func (b *specBuilder) int(name string, lo, hi int) *int {
	v, ok := b.get(name)
	if !ok || v == "" {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil || n < lo || n > hi {
		b.add(name, Error, "%s: invalid value %q (an integer from %d to %d)", name, v, lo, hi)
		return nil
	}
	return &n
}

// parseIONice reads start-stop-daemon's --ionice class[:data].
func parseIONice(v string) (*IONice, error) {
	cs, ds, hasData := strings.Cut(v, ":")
	c, err := strconv.Atoi(cs)
	if err != nil || c < 0 || c > 3 {
		return nil, fmt.Errorf("invalid class %q (0 to 3)", cs)
	}
	io := &IONice{Class: c}
	if hasData {
		d, err := strconv.Atoi(ds)
		if err != nil || d < 0 || d > 7 {
			return nil, fmt.Errorf("invalid data %q (0 to 7)", ds)
		}
		io.Data = d
	}
	return io, nil
}

// io reads stdin, stdout, stderr and the loggers.
func (b *specBuilder) io(sp *Spec) {
	sp.InputFile, _ = b.get("input_file")
	sp.OutputLog, _ = b.get("output_log")
	sp.ErrorLog, _ = b.get("error_log")
	ol, hasOL := b.get("output_logger")
	el, hasEL := b.get("error_logger")
	hasOL, hasEL = hasOL && ol != "", hasEL && el != ""
	if hasOL && hasEL {
		b.add("output_logger", Warning, "output_logger and error_logger are both set: error_logger takes both streams, output_logger is ignored")
	}
	lg := &Logger{}
	switch {
	case hasEL:
		lg.Both, lg.Command = true, el
	case hasOL:
		lg.Command = ol
	default:
		lg = nil
	}
	if lg != nil {
		if lg.Command == "auto" {
			lg.Auto, lg.Command = true, ""
			lg.Dir = filepath.Join("/var/log", b.s.Name)
			lg.Script = DefaultLogArguments
			if v, ok := b.get("gosv_log_arguments"); ok && strings.TrimSpace(v) != "" {
				lg.Script = strings.TrimSpace(v)
			}
		}
		if sp.OutputLog != "" {
			b.add("output_log", Warning, "output_log and a logger are both set: output_log wins for stdout, as with supervise-daemon")
		}
		sp.Logger = lg
	}
}

// backend reads gosv_backend: the supervisor under the service, gosv's
// own tree unless it names another backend of backends/registry.
func (b *specBuilder) backend(sp *Spec) {
	sp.Backend = registry.Default
	if v, ok := b.get("gosv_backend"); ok && v != "" {
		if !slices.Contains(registry.Names(), v) {
			b.add("gosv_backend", Error, "gosv_backend: unknown backend %q (known: %s)", v, strings.Join(registry.Names(), ", "))
			return
		}
		if v != registry.Default && b.s.Layout.UserConf != "" {
			// The other backends' scanners (init.d/s6-svscan,
			// init.d/runsvdir) are system services on a system scan
			// directory: a user's service cannot join them.
			b.add("gosv_backend", Error, "gosv_backend=%s: user services (rc-service --user) run on gosv's own tree only", v)
			return
		}
		sp.Backend = v
	}
}

// signals reads stopsig, retry and reload_signal.
func (b *specBuilder) signals(sp *Spec) {
	sp.DownSignal, sp.ReloadSignal = unix.SIGTERM, unix.SIGHUP
	if v, ok := b.get("retry"); ok && v != "" {
		sched, err := ParseRetry(v)
		if err != nil {
			b.add("retry", Error, "retry: %v", err)
		} else {
			sp.DownSignal = sched.Signal
			if sched.Timeout > 0 {
				sp.TimeoutKill = sched.Timeout
			}
			if len(sched.Dropped) > 0 {
				b.add("retry", Warning, "retry %q: gosv sends %s, then SIGKILL after %v; the other steps (%s) are dropped",
					v, servicedir.SignalName(sched.Signal), sched.Timeout, strings.Join(sched.Dropped, "/"))
			}
		}
	}
	if v, ok := b.get("stopsig"); ok && v != "" {
		if sig, ok := parseSignal(v); ok {
			sp.DownSignal = sig
		} else {
			b.add("stopsig", Error, "stopsig: invalid signal %q", v)
		}
	}
	if v, ok := b.get("reload_signal"); ok && v != "" {
		if sig, ok := parseSignal(v); ok {
			sp.ReloadSignal = sig
		} else {
			b.add("reload_signal", Error, "reload_signal: invalid signal %q", v)
		}
	}
}

// parseSignal accepts OpenRC's spellings: TERM, SIGTERM, sigterm, 15.
func parseSignal(s string) (unix.Signal, bool) {
	sig, ok := servicedir.ParseSignal(strings.TrimSpace(s))
	if !ok || sig == 0 || sig > 64 {
		return 0, false
	}
	return sig, true
}

// Retry is a stop schedule (start-stop-daemon's --retry) as gosv runs it:
// one signal, then SIGKILL after Timeout.
type Retry struct {
	Signal  unix.Signal
	Timeout time.Duration
	Dropped []string // steps gosv cannot run, for the lint
}

// ParseRetry reads a --retry schedule: "TIMEOUT" (SIGTERM, then SIGKILL
// after TIMEOUT seconds) or "SIG/TIMEOUT[/SIG/TIMEOUT...]". gosv keeps the
// first signal and sends SIGKILL once the first timeout has passed.
func ParseRetry(s string) (Retry, error) {
	parts := strings.Split(strings.TrimSpace(s), "/")
	if len(parts) == 1 {
		n, err := strconv.Atoi(parts[0])
		if err != nil || n < 0 {
			return Retry{}, fmt.Errorf("invalid schedule %q", s)
		}
		return Retry{Signal: unix.SIGTERM, Timeout: time.Duration(n) * time.Second}, nil
	}
	r := Retry{}
	sig, ok := parseSignal(parts[0])
	if !ok {
		return Retry{}, fmt.Errorf("invalid schedule %q: bad signal %q", s, parts[0])
	}
	r.Signal = sig
	n, err := strconv.Atoi(parts[1])
	if err != nil || n < 0 {
		return Retry{}, fmt.Errorf("invalid schedule %q: bad timeout %q", s, parts[1])
	}
	r.Timeout = time.Duration(n) * time.Second
	rest := parts[2:]
	if len(rest) > 0 {
		if last, ok := parseSignal(rest[0]); ok && last == unix.SIGKILL && len(rest) <= 2 {
			return r, nil
		}
		r.Dropped = rest
	}
	return r, nil
}

// timeouts reads the timeout_* and respawn_* durations.
func (b *specBuilder) timeouts(sp *Spec) {
	sp.TimeoutReady = b.duration("timeout_ready", time.Millisecond, DefaultTimeoutReady)
	if v, ok := b.get("timeout_ready"); ok && sp.TimeoutReady == 0 && strings.TrimSpace(v) != "" {
		b.add("timeout_ready", Warning, "timeout_ready=0: start waits forever for the service to be ready, holding OpenRC's lock")
	}
	sp.TimeoutDown = b.duration("timeout_down", time.Millisecond, DefaultTimeoutDown)
	sp.StartWait = b.duration("start_wait", time.Second, DefaultStartWait)
	kill := b.duration("timeout_kill", time.Millisecond, -1)
	switch {
	case kill >= 0:
		sp.TimeoutKill = kill
	case sp.TimeoutKill == 0:
		sp.TimeoutKill = DefaultTimeoutKill
	}
	sp.Respawn.Delay = b.duration("respawn_delay", time.Second, DefaultRespawnDelay)
	sp.Respawn.Period = b.duration("respawn_period", time.Second, DefaultRespawnPeriod)
	sp.Respawn.Max = DefaultRespawnMax
	if v, ok := b.get("respawn_max"); ok && v != "" {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 {
			b.add("respawn_max", Error, "respawn_max: invalid value %q (a count, 0 = never give up)", v)
		} else {
			sp.Respawn.Max = n
		}
	}
	b.policy(&sp.Respawn)
}

// policy reads gosv's restart-policy variables.
func (b *specBuilder) policy(r *Respawn) {
	r.DelayMax = b.duration("gosv_respawn_delay_max", time.Second, 0)
	r.Reset = b.duration("gosv_respawn_reset", time.Second, 0)
	if r.DelayMax > 0 && r.DelayMax < r.Delay {
		b.add("gosv_respawn_delay_max", Warning, "gosv_respawn_delay_max=%v is below respawn_delay=%v: no backoff", r.DelayMax, r.Delay)
	}
	if v, ok := b.get("gosv_respawn_on"); ok && strings.TrimSpace(v) != "" {
		on, ok := servicedir.ParseRespawnOn([]byte(v))
		if !ok {
			b.add("gosv_respawn_on", Error, "gosv_respawn_on: invalid value %q (want always, failure or never)", v)
		}
		r.On = on
	}
	if v, ok := b.get("gosv_success_exit"); ok {
		set, err := servicedir.ParseSuccessExits([]byte(v))
		if err != nil {
			b.add("gosv_success_exit", Error, "gosv_success_exit: %v", err)
		} else {
			r.Success = strings.TrimSpace(string(set.Format()))
		}
	}
}

// duration reads a duration variable; def when unset, empty or invalid.
func (b *specBuilder) duration(name string, bare, def time.Duration) time.Duration {
	v, ok := b.get(name)
	if !ok || strings.TrimSpace(v) == "" {
		return def
	}
	d, err := ParseDuration(v, bare)
	if err != nil {
		b.add(name, Error, "%s: %v", name, err)
		return def
	}
	return d
}

// privileges reads capabilities, secbits and no_new_privs.
func (b *specBuilder) privileges(sp *Spec) {
	if v, ok := b.get("capabilities"); ok && v != "" {
		if _, err := ParseIAB(v); err != nil {
			b.add("capabilities", Error, "capabilities: %v", err)
		} else {
			sp.Capabilities = v
		}
	}
	if v, ok := b.get("secbits"); ok && v != "" {
		n, err := strconv.ParseUint(strings.TrimSpace(v), 0, 32)
		if err != nil {
			b.add("secbits", Error, "secbits: invalid value %q", v)
		} else {
			u := uint32(n)
			sp.Secbits = &u
		}
	}
	if v, ok := b.get("no_new_privs"); ok {
		sp.NoNewPrivs = yesno(v)
	}
}

// yesno is OpenRC's yesno for a value (not a variable name).
func yesno(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "yes", "true", "on", "1":
		return true
	}
	return false
}

// ignored lints the variables gosv accepts and ignores.
func (b *specBuilder) ignored() {
	// Nothing any more: health checks are read by health (health.go).
}

// forking decides how a service with a pidfile is supervised. A daemon
// that forks away is supervised through its pidfile, as systemd's
// Type=forking with PIDFile= does; the foreground (command_args_foreground,
// or command_background, where gosv runs the command in the foreground
// already) is simpler and faster, and check says so.
func (b *specBuilder) forking(sp *Spec) {
	pf, ok := b.get("pidfile")
	pf = strings.TrimSpace(pf)
	if !ok || pf == "" {
		return
	}
	fg, hasFg := b.get("command_args_foreground")
	bg, _ := b.get("command_background")
	switch {
	case !sp.Declarative:
		b.add("pidfile", Warning, "pidfile is ignored for a hand-written service directory: a pidfile file in the directory makes it a forking daemon")
	case yesno(bg):
		b.add("command_background", Warning, "command_background=yes: gosv runs the command in the foreground itself (no --background needed) and never writes pidfile %s", pf)
	case hasFg && strings.TrimSpace(fg) != "":
		// The daemon stays in the foreground; its pidfile is its own business.
	case !filepath.IsAbs(pf):
		b.add("pidfile", Error, "pidfile %q: not an absolute path", pf)
	default:
		sp.Pidfile = filepath.Clean(pf)
		b.add("pidfile", Warning, "pidfile without command_args_foreground: %s is supervised as a forking daemon (start waits for it to exit 0 and for %s to name its daemon, within timeout_ready); if the daemon has a don't-fork option, put it in command_args_foreground to supervise it in the foreground", b.s.Name, sp.Pidfile)
	}
}

// notify reads the readiness source: notify, or ready, its name in OpenRC
// 0.60-0.61, which supervise-daemon and start-stop-daemon still take (and
// prefer, with a warning) in 0.63.
func (b *specBuilder) notify(sp *Spec) {
	name := "notify"
	v, ok := b.get(name)
	if r, rok := b.get("ready"); rok && r != "" {
		if ok && v != "" && v != r {
			b.add("ready", Warning, "ready=%s overrides notify=%s (ready is OpenRC 0.60-0.61's name for notify): set only notify", r, v)
		} else {
			b.add("ready", Warning, "ready is OpenRC 0.60-0.61's name for notify: use notify=%s", r)
		}
		name, v, ok = "ready", r, true
	}
	if !ok || v == "" {
		return
	}
	if !sp.Declarative {
		b.add(name, Warning, "%s is ignored for a hand-written service directory: its own notification-fd or check says when it is ready", name)
		return
	}
	n, fd, err := parseNotify(name, v)
	if err != nil {
		b.add(name, Error, "%v", err)
		return
	}
	sp.Notify, sp.NotifyFd = n, fd
}

// parseNotify reads notify=fd:N or notify=socket:ready (name is notify
// or ready, for the message).
func parseNotify(name, v string) (Notify, int, error) {
	switch {
	case v == "socket:ready":
		return NotifySocket, 0, nil
	case strings.HasPrefix(v, "fd:"):
		n, err := strconv.Atoi(v[3:])
		if err != nil || n < 3 || n > 1<<20 {
			return NotifyNone, 0, fmt.Errorf("%s %q: the fd must be a number of at least 3", name, v)
		}
		return NotifyFd, n, nil
	}
	return NotifyNone, 0, fmt.Errorf("unknown %s %q (fd:N or socket:ready)", name, v)
}
