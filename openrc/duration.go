package openrc

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// errBadDuration is wrapped by every duration parse error.
var errBadDuration = errors.New("invalid duration")

// durationUnits are OpenRC 0.63's parse_duration suffixes (its typo
// "miliseconds" included), plus the spellings users write anyway.
var durationUnits = map[string]time.Duration{
	"ms": time.Millisecond, "miliseconds": time.Millisecond, "milliseconds": time.Millisecond,
	"s": time.Second, "sec": time.Second, "seconds": time.Second,
	"m": time.Minute, "min": time.Minute, "minutes": time.Minute,
	"h": time.Hour, "hour": time.Hour, "hours": time.Hour,
}

// ParseDuration parses an OpenRC duration: a non-negative decimal integer
// followed by a unit (500ms, 5sec, 2min, 1h, as OpenRC 0.63's
// parse_duration). A bare integer is in bare units: OpenRC reads
// timeout_* in milliseconds and respawn_* in seconds.
func ParseDuration(s string, bare time.Duration) (time.Duration, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, fmt.Errorf("%w %q", errBadDuration, s)
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w %q: out of range", errBadDuration, s)
	}
	unit := bare
	if suffix := t[i:]; suffix != "" {
		u, ok := durationUnits[suffix]
		if !ok {
			return 0, fmt.Errorf("%w %q: unknown unit %q", errBadDuration, s, suffix)
		}
		unit = u
	}
	if n > math.MaxInt64/int64(unit) {
		return 0, fmt.Errorf("%w %q: out of range", errBadDuration, s)
	}
	return time.Duration(n) * unit, nil
}
