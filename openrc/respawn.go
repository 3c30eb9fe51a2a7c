package openrc

import (
	"fmt"
	"strings"

	"github.com/gosv/gosv/internal/servicedir"
)

// reason is openrc.reason's text for a give-up, in OpenRC's words.
func (r Respawn) reason(p *servicedir.PolicyState) string {
	switch {
	case p.Reason != "":
		return strings.NewReplacer(servicedir.RespawnOnFile, "gosv_respawn_on").Replace(p.Reason)
	case r.Period > 0:
		return fmt.Sprintf("respawned %d times within %v (respawn_max=%d, respawn_period=%v)", p.Respawns, r.Period, r.Max, r.Period)
	}
	return fmt.Sprintf("respawned %d times (respawn_max=%d)", p.Respawns, r.Max)
}
