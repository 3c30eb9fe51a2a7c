package supervise

// Happening is what an [ActEvent] reports: the vocabulary of the scan
// directory's events log, of the event hooks (gosv_on_event) and of the
// metrics. The machine emits them; the loop records and hands them on.
// They are not s6's event/ letters, which stay as s6 sends them.
type Happening uint8

const (
	HapStart     Happening = iota // a run was spawned (Pid)
	HapReady                      // the run signalled readiness
	HapExit                       // the run died (Wstat; Msg "unknown" for an adopted run, "no daemon" for a forking launch that found none)
	HapRestart                    // a respawn follows a death (After: its delay)
	HapBackoff                    // the restart policy delays the respawn (After: the delay; Msg: why)
	HapGiveUp                     // the restart policy stopped respawning (Msg: why)
	HapUnhealthy                  // the health check failed retries times in a row (Msg: the result)
	HapRecovered                  // a check passed after failures, or the service is healthy again
	numHappenings
)

var happeningNames = [numHappenings]string{"start", "ready", "exit", "restart", "backoff", "give-up", "unhealthy", "recovered"}

// String is the happening's name in the events log and in GOSV_EVENT.
func (h Happening) String() string {
	if h < numHappenings {
		return happeningNames[h]
	}
	return "invalid"
}
