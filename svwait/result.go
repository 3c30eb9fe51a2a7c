package svwait

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// ErrTimeout is matched (errors.Is) by every [*TimeoutError].
var ErrTimeout = errors.New("timed out")

// Reason says why a service kept a wait from its goal.
type Reason int

const (
	TimedOut         Reason = iota // not in the wanted state when the deadline passed
	Permanent                      // finish exited 125: event 'O' (s6 counts it)
	SupervisorExited               // the supervisor exited, event 'x' (s6 counts it)
	NoSupervisor                   // no supervisor held supervise/lock when the wait started (gosv only)
	SupervisorDied                 // the supervisor died during the wait without an 'x', e.g. SIGKILL (gosv only)
	Died                           // run died while the wait wanted it up (Waiter.FailOnDeath), or during Waiter.Stay (gosv only)
)

var reasonText = [...]string{
	TimedOut:         "timed out",
	Permanent:        "failed permanently",
	SupervisorExited: "supervisor exited",
	NoSupervisor:     "supervisor not running",
	SupervisorDied:   "supervisor died",
	Died:             "run died",
}

func (r Reason) String() string {
	if r >= 0 && int(r) < len(reasonText) {
		return reasonText[r]
	}
	return "reason " + strconv.Itoa(int(r))
}

// Service is what a wait knew about one service when it ended without
// the goal: the cause, the last state seen, how its run process last died
// and why its readiness check last failed.
type Service struct {
	Dir    string
	Reason Reason
	// Up and Ready are the last state seen: from supervise/status, then
	// from event bytes (s6's rules: down-and-ready counts as ready).
	Up, Ready bool
	// Deaths counts the deaths of run seen during the wait (event 'd').
	Deaths int
	// Wstat is the raw wait status of run's last death, from
	// supervise/status: read when the wait started and at each 'd' and
	// 'O'. It describes a death when Deaths > 0 or when the service is down.
	Wstat uint16
	// Check is supervise/gosv/check-output as read at the last event 'c'
	// (or when the wait started): the output and exit status of the last
	// failed readiness check; empty when no check failed.
	Check string
	// InStay: the failure came during [Waiter.Stay], after the goal was
	// reached. UpSince is then the up transition the stay began with
	// (supervise/status), so that time.Since(UpSince) says how long the
	// process lived.
	InStay  bool
	UpSince time.Time
}

// maxCheckInMessage bounds the check output quoted in one-line messages;
// its end is kept, where the exit status and the last error are.
const maxCheckInMessage = 200

// String is a one-line account: "DIR: REASON: STATE[; check: OUTPUT]".
func (s *Service) String() string {
	var b strings.Builder
	b.WriteString(s.Dir)
	b.WriteString(": ")
	if s.Reason != TimedOut {
		b.WriteString(s.Reason.String())
		b.WriteString(": ")
	}
	switch {
	case s.Up && s.Ready:
		b.WriteString("up and ready")
	case s.Up:
		b.WriteString("up, not ready")
	default:
		b.WriteString("down, ")
		b.WriteString(deathText(s.Wstat))
	}
	if s.Deaths > 0 {
		fmt.Fprintf(&b, "; run died %d time%s during the wait, last %s", s.Deaths, plural(s.Deaths), deathText(s.Wstat))
	}
	if c := oneLine(s.Check); c != "" {
		b.WriteString("; check: ")
		b.WriteString(c)
	}
	return b.String()
}

// deathText renders a raw wait status as s6-svstat does: "exit code N" or
// "signal SIGNAME".
func deathText(wstat uint16) string {
	return servicedir.DeathFromWstat(time.Time{}, wstat).String()
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// oneLine joins the non-blank lines of s with " / " and keeps at most the
// last maxCheckInMessage bytes.
func oneLine(s string) string {
	var lines []string
	for l := range strings.Lines(s) {
		if l = strings.TrimSpace(l); l != "" {
			lines = append(lines, l)
		}
	}
	out := strings.Join(lines, " / ")
	if len(out) > maxCheckInMessage {
		out = "…" + out[len(out)-maxCheckInMessage:]
	}
	return strings.ToValidUTF8(out, "")
}

// FailedError reports services that failed during the wait: permanent
// failure ('O'), a supervisor that exited ('x') in the wrong state,
// (gosv only) a supervisor that was not running or died, or a death of run
// under [Waiter.FailOnDeath] or [Waiter.Stay]. N is the number of failures
// counted, which the s6 tools use as their exit code.
type FailedError struct {
	N        int
	Services []Service // the failed services, in argument order
}

func (e *FailedError) Error() string {
	if len(e.Services) == 1 {
		return e.Services[0].String()
	}
	parts := make([]string, len(e.Services))
	for i := range e.Services {
		parts[i] = e.Services[i].String()
	}
	return fmt.Sprintf("%d services failed: %s", len(e.Services), strings.Join(parts, "; "))
}

// TimeoutError reports a wait whose deadline passed first. Services lists,
// in argument order, every service not in the wanted state, and those
// that failed meanwhile (an "all" wait goes on after a failure).
type TimeoutError struct {
	Deadline time.Time // the deadline that passed, after any ready-deadline extension
	Extended bool      // a service's supervise/gosv/ready-deadline moved it later
	Services []Service
}

func (e *TimeoutError) Error() string {
	var b strings.Builder
	b.WriteString("timed out")
	if e.Extended {
		b.WriteString(" (at the readiness deadline the service extended)")
	}
	for i := range e.Services {
		if i == 0 {
			b.WriteString(": ")
		} else {
			b.WriteString("; ")
		}
		b.WriteString(e.Services[i].String())
	}
	return b.String()
}

// Is makes errors.Is(err, ErrTimeout) true.
func (e *TimeoutError) Is(target error) bool { return target == ErrTimeout }
