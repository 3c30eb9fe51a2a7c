package openrc

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"mvdan.cc/sh/v3/syntax"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// Health checks of OpenRC services (docs/health.md). As supervise-daemon
// 0.63 does, a script's healthcheck() runs every healthcheck_timer
// seconds, the first after healthcheck_delay, as `/etc/init.d/NAME
// healthcheck`; when it fails, `/etc/init.d/NAME unhealthy` runs and the
// service is restarted. gosv adds a timeout, retries, a start grace and
// declarative checks (gosv_healthcheck), and runs every check as a child
// of the loop or a socket in it, never blocking supervision.

// HealthSpec is what the health files of a generated directory say.
type HealthSpec struct {
	Check     string // the health-check line
	Unhealthy string // the hook's command, "" for none
	Every     time.Duration
	Delay     time.Duration // 0 = Every
	Timeout   time.Duration // 0 = Every
	Grace     time.Duration
	Retries   int // 0 = 1
}

// healthVars are the variables of health checks (all in [Vars]).
var healthVars = []string{"healthcheck_timer", "healthcheck_delay", "gosv_healthcheck",
	"gosv_healthcheck_timeout", "gosv_healthcheck_retries", "gosv_healthcheck_grace"}

// health reads the health check variables and functions.
func (b *specBuilder) health(sp *Spec) {
	fns := b.scriptFuncs("healthcheck", "unhealthy")
	hasCheck, hasHook := fns[0], fns[1]
	decl, _ := b.get("gosv_healthcheck")
	decl = strings.TrimSpace(decl)
	timer, timerSet := b.get("healthcheck_timer")
	timerSet = timerSet && strings.TrimSpace(timer) != ""
	h := &HealthSpec{}
	bad := false
	switch {
	case decl != "":
		c, err := servicedir.ParseHealthCheck(decl)
		if err != nil {
			// The other variables are still checked: one error each.
			b.add("gosv_healthcheck", Error, "gosv_healthcheck: %v", err)
			bad = true
		}
		h.Check = c.String()
	case hasCheck.ok && timerSet:
		h.Check = "exec:" + shQuote(sp.Script) + " healthcheck"
	case hasCheck.ok:
		b.probs = append(b.probs, Problem{Pos: hasCheck.pos, Severity: Warning,
			Msg: "healthcheck() is never run: healthcheck_timer is not set (as with supervise-daemon)"})
		return
	default:
		for _, name := range healthVars {
			if v, ok := b.get(name); ok && strings.TrimSpace(v) != "" {
				b.add(name, Warning, "%s is set but there is no check: define healthcheck() or set gosv_healthcheck", name)
				return
			}
		}
		return
	}
	h.Every = b.duration("healthcheck_timer", time.Second, supervise.DefaultHealthEvery)
	if h.Every < supervise.MinHealthEvery {
		b.add("healthcheck_timer", Error, "healthcheck_timer: %v is too short (at least %v)", h.Every, supervise.MinHealthEvery)
		h.Every = supervise.DefaultHealthEvery
	}
	h.Delay = b.duration("healthcheck_delay", time.Second, 0)
	h.Timeout = b.duration("gosv_healthcheck_timeout", time.Second, 0)
	h.Grace = b.duration("gosv_healthcheck_grace", time.Second, 0)
	if n := b.int("gosv_healthcheck_retries", 1, 1<<20); n != nil {
		h.Retries = *n
	}
	if hasHook.ok {
		h.Unhealthy = shQuote(sp.Script) + " unhealthy"
	}
	if bad {
		return
	}
	if !sp.Declarative {
		pos := hasCheck.pos
		if decl != "" {
			pos = b.pos("gosv_healthcheck")
		}
		b.probs = append(b.probs, Problem{Pos: pos, Severity: Warning, Msg: "health checks of a hand-written directory (gosv_service_path) are its own files (" +
			servicedir.HealthCheckFile + ", …): the variables are ignored"})
		return
	}
	sp.Health = h
	pos := hasCheck.pos
	if decl != "" {
		pos = b.pos("gosv_healthcheck")
	}
	b.probs = append(b.probs, Problem{Pos: pos, Severity: Note, Msg: h.describe(sp.Name)})
}

// describe says in one line what the checks do (gosv openrc check).
func (h *HealthSpec) describe(name string) string {
	delay, timeout, retries := h.Delay, h.Timeout, max(h.Retries, 1)
	if delay == 0 {
		delay = h.Every
	}
	if timeout == 0 {
		timeout = h.Every
	}
	s := fmt.Sprintf("health check %s every %v (first %v after start", h.Check, h.Every, delay)
	if h.Grace > 0 {
		s += fmt.Sprintf(", failures in the first %v not counted", h.Grace)
	}
	s += fmt.Sprintf("), each cut after %v; %d failure(s) in a row ", timeout, retries)
	if h.Unhealthy != "" {
		s += "run unhealthy(), then "
	}
	return s + "restart " + name
}

// files adds the health files to a generated directory's.
func (h *HealthSpec) files(f map[string]string) {
	if h == nil {
		return
	}
	f[servicedir.HealthCheckFile] = h.Check + "\n"
	if h.Unhealthy != "" {
		f[servicedir.HealthUnhealthyFile] = h.Unhealthy + "\n"
	}
	ms := func(name string, d time.Duration) {
		if d > 0 {
			f[name] = strconv.FormatInt(d.Milliseconds(), 10) + "\n"
		}
	}
	ms(servicedir.HealthTimerFile, h.Every)
	ms(servicedir.HealthDelayFile, h.Delay)
	ms(servicedir.HealthTimeoutFile, h.Timeout)
	ms(servicedir.HealthGraceFile, h.Grace)
	if h.Retries > 0 {
		f[servicedir.HealthRetriesFile] = strconv.Itoa(h.Retries) + "\n"
	}
}

type funcAt struct {
	ok  bool
	pos Pos
}

// scriptFuncs says whether the service defines each function of names:
// from the resolution, or (a live request from the hook, which passes no
// functions) from the script's own top-level definitions.
func (b *specBuilder) scriptFuncs(names ...string) []funcAt {
	out := make([]funcAt, len(names))
	var stmts []*syntax.Stmt
	if b.s.Live && b.s.Script != "" {
		if src, err := os.ReadFile(b.s.Script); err == nil {
			if f, err := Parse(b.s.Script, src); err == nil {
				stmts = f.Stmts
			}
		}
	}
	for i, name := range names {
		if f, ok := b.s.Funcs[name]; ok {
			out[i] = funcAt{true, f.Pos}
			continue
		}
		for _, st := range stmts {
			if fd, ok := st.Cmd.(*syntax.FuncDecl); ok && fd.Name.Value == name {
				out[i] = funcAt{true, posOf(b.s.Script, fd.Pos())}
			}
		}
	}
	return out
}
