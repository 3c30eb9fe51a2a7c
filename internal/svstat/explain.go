package svstat

import (
	"fmt"
	"strings"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// Why a service is not up, or not healthy, in words: from the gosv-only
// state files supervise/gosv/policy and supervise/gosv/health (PROTOCOL.md
// §9.6). The s6 status file says what; these say why.

// State is the gosv-only state that explains a status; nil when the
// file is missing or unreadable.
type State struct {
	Policy *servicedir.PolicyState
	Health *servicedir.HealthState
}

// ReadState reads dir's policy and health files. A bad file is left out:
// status output never fails on the explanation.
func ReadState(dir string) State {
	var s State
	if p, ok, err := servicedir.ReadPolicyState(dir); ok && err == nil {
		s.Policy = &p
	}
	if h, ok, err := servicedir.ReadHealthState(dir); ok && err == nil {
		s.Health = &h
	}
	return s
}

// Explain says why the service whose status is st is not up or not
// healthy, "" when nothing does: "backing off 8 s after 4 failures (last:
// exit 1)", "given up at 12:03:04: respawned 11 times within 12 s",
// "unhealthy: GET http://127.0.0.1:8080/health → 503 (3/3)". Times are
// in loc.
func Explain(st servicedir.Status, s State, now time.Time, loc *time.Location) string {
	var parts []string
	up := st.Up()
	afterUnhealthy := false // the last run died of its health check
	if p := s.Policy; p != nil && !up {
		switch {
		case st.WantUp && !p.Until.IsZero() && p.Failures > 0:
			parts = append(parts, fmt.Sprintf("backing off %s after %s (last: %s)",
				servicedir.DurationWords(p.Delay), plural(p.Failures, "failure"), lastWords(p)))
			afterUnhealthy = p.LastUnhealthy
		case !st.WantUp && p.GaveUp:
			parts = append(parts, fmt.Sprintf("given up at %s: %s", p.GaveUpAt.In(loc).Format(time.TimeOnly), p.Words()))
			afterUnhealthy = p.LastUnhealthy
		}
	}
	if h := s.Health; h != nil && (h.Health == servicedir.HealthUnhealthy || h.Health == servicedir.HealthFailing) {
		words := fmt.Sprintf("%s: %s → %s (%d/%d)", h.Health, h.Check, h.Last, h.Fails, h.Retries)
		switch {
		case up && h.OfRun(st.Stamp):
			parts = append(parts, words)
		case up && h.Health == servicedir.HealthUnhealthy:
			// This run has no result yet; the last one's says why it was restarted.
			parts = append(parts, "restarted after "+words)
		case afterUnhealthy && h.Health == servicedir.HealthUnhealthy:
			parts = append(parts, words)
		}
	}
	return strings.Join(parts, "; ")
}

func lastWords(p *servicedir.PolicyState) string {
	if p.LastUnhealthy {
		return "unhealthy, " + exitWords(p)
	}
	return exitWords(p)
}

func exitWords(p *servicedir.PolicyState) string {
	if !p.LastKnown {
		return "unknown exit"
	}
	return servicedir.ExitWords(p.LastWstat)
}

func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return fmt.Sprintf("%d %ss", n, word)
}
