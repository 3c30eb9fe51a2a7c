package openrc

import (
	"fmt"
	"time"
)

// RespawnVerdict is what the respawn policy decides after a death.
type RespawnVerdict struct {
	GiveUp bool
	Count  int           // supervise-daemon's respawn_count after this death
	Delay  time.Duration // wait this long before the respawn
	Reason string        // when GiveUp: why, for openrc.reason and the log
}

// Decide replays supervise-daemon 0.63.3's respawn bookkeeping over the
// deaths since OpenRC started the service (oldest first) and returns the
// verdict for the last one. For each death at time t:
//
//	first == 0                  → first = t
//	period > 0 && t-first > period → count = 0, first = 0 (window reset)
//	otherwise                   → count++
//	max > 0 && count > max      → give up
//
// so the window slides from the first death counted, and max 0 never gives
// up. The delay is respawn_delay (0.63's delay step is not applied: gosv
// already throttles a crash loop to one spawn per second).
func (r Respawn) Decide(deaths []time.Time) RespawnVerdict {
	var first time.Time
	count := 0
	for _, t := range deaths {
		if first.IsZero() {
			first = t
		}
		if r.Period > 0 && t.Sub(first) > r.Period {
			count, first = 0, time.Time{}
		} else {
			count++
		}
	}
	v := RespawnVerdict{Count: count, Delay: r.Delay}
	if r.Max > 0 && count > r.Max {
		v.GiveUp = true
		if r.Period > 0 {
			v.Reason = fmt.Sprintf("respawned %d times within %v (respawn_max=%d, respawn_period=%v)", count, r.Period, r.Max, r.Period)
		} else {
			v.Reason = fmt.Sprintf("respawned %d times (respawn_max=%d)", count, r.Max)
		}
	}
	return v
}
