package openrc

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/gosv/gosv/internal/servicedir"
)

// reason is openrc.reason's text for a give-up, in OpenRC's words.
func (r Respawn) reason(p *servicedir.PolicyState) string {
	switch {
	case p.Reason != "":
		return strings.NewReplacer(servicedir.RespawnOnFile, "gosv_respawn_on").Replace(p.Reason)
	case r.Period > 0:
		// In svstat's words (servicedir.PolicyState.Words), with the
		// variables as the script sets them (respawn_period in seconds).
		return fmt.Sprintf("respawned %d times within %s (respawn_max=%d, respawn_period=%s)", p.Respawns,
			servicedir.DurationWords(r.Period), r.Max, strconv.FormatFloat(r.Period.Seconds(), 'f', -1, 64))
	}
	return fmt.Sprintf("respawned %d times (respawn_max=%d)", p.Respawns, r.Max)
}
