package servicedir

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"time"
)

// Supervision state beyond s6's status file (PROTOCOL.md §9.6): why a
// service is not up, or not healthy. The supervisor rewrites each file
// atomically when the state changes; svstat, gosv openrc and the metrics
// read them. The s6 status file stays byte-compatible: none of this is in it.
const (
	// PolicyStatePath: the restart policy's state (backoff, give-up),
	// one JSON object ([PolicyState]).
	PolicyStatePath = "supervise/gosv/policy"
	// HealthStatePath: the health check's state, one JSON object
	// ([HealthState]).
	HealthStatePath = "supervise/gosv/health"
)

// PolicyState is the content of supervise/gosv/policy.
type PolicyState struct {
	// Failures counts the consecutive runs that ended, by the policy's
	// rules, in failure (reset by a run that stayed up long enough).
	Failures int `json:"failures"`
	// Delay is the current (backing off) or next respawn delay.
	Delay time.Duration `json:"delay_ns"`
	// Until is when the pending respawn happens; zero when none is pending.
	Until time.Time `json:"until,omitempty"`
	// LastWstat is the wait status of the last run's death; LastKnown is
	// false when it is unknown (an adopted run).
	LastWstat uint16 `json:"last_wstat"`
	LastKnown bool   `json:"last_known"`
	// LastUnhealthy: the last run was stopped because its health check
	// failed (supervise/gosv/health says how); its death is a failure
	// whatever its wait status.
	LastUnhealthy bool `json:"last_unhealthy,omitempty"`
	// GaveUp is set when the policy stopped respawning: GaveUpAt, and
	// Respawns deaths within Within (respawn_max in respawn_period), or
	// Reason (e.g. "exit 0 is a success exit and respawn_on=failure").
	GaveUp   bool          `json:"gave_up,omitempty"`
	GaveUpAt time.Time     `json:"gave_up_at,omitempty"`
	Respawns int           `json:"respawns,omitempty"`
	Within   time.Duration `json:"within_ns,omitempty"`
	Reason   string        `json:"reason,omitempty"`
	// Completed: the service stayed down because its run ended the way
	// respawn_on=failure wants no respawn for (a success exit), not
	// because it failed too often.
	Completed bool `json:"completed,omitempty"`
}

// Health says what the last health checks found.
type Health uint8

const (
	HealthUnknown   Health = iota // no check has finished since the start (or no check)
	HealthOK                      // the last check passed
	HealthFailing                 // the last check failed, fewer than the retries in a row
	HealthUnhealthy               // retries failures in a row: unhealthy() and a restart follow
)

var healthNames = [...]string{"unknown", "healthy", "failing", "unhealthy"}

func (h Health) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return "invalid"
}

// MarshalText writes the health as its name.
func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText reads a name written by MarshalText.
func (h *Health) UnmarshalText(b []byte) error {
	for i, n := range healthNames {
		if string(b) == n {
			*h = Health(i)
			return nil
		}
	}
	return fmt.Errorf("%w: health %q", ErrBadValue, b)
}

// HealthState is the content of supervise/gosv/health.
type HealthState struct {
	Health Health `json:"health"`
	// Check names the check: "healthcheck()", "tcp:HOST:PORT",
	// "GET http://…", "exec:…".
	Check string `json:"check"`
	// Fails counts the consecutive failures; Retries is how many make
	// the service unhealthy.
	Fails   int `json:"fails"`
	Retries int `json:"retries"`
	// Last is the last result in words ("503", "connection refused",
	// "timed out after 5s", "exit 1"), At when it came.
	Last string    `json:"last,omitempty"`
	At   time.Time `json:"at,omitempty"`
}

// OfRun reports whether the state is a result of the run that started at
// runStart (the status file's Stamp while up). The file keeps the last
// run's result until the next run's first one, to say why it was
// restarted: that one is not the running run's health.
func (h *HealthState) OfRun(runStart time.Time) bool { return !h.At.Before(runStart) }

// maxSupState bounds both files (and their reads): the strings in them
// are bounded by their writers.
const maxSupState = 2048

// FormatPolicyState and FormatHealthState encode the files' content (one
// line). They fail only on a state too large to keep.
func FormatPolicyState(p *PolicyState) ([]byte, error) { return formatSupState(p) }
func FormatHealthState(h *HealthState) ([]byte, error) { return formatSupState(h) }

func formatSupState(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if len(b)+1 > maxSupState {
		return nil, errors.New("state too large")
	}
	return append(b, '\n'), nil
}

// ParsePolicyState and ParseHealthState decode what the Format functions
// wrote; anything else is an error wrapping [ErrBadValue].
func ParsePolicyState(b []byte) (PolicyState, error) {
	var p PolicyState
	return p, parseSupState(b, &p)
}

func ParseHealthState(b []byte) (HealthState, error) {
	var h HealthState
	return h, parseSupState(b, &h)
}

func parseSupState(b []byte, v any) error {
	if len(b) > maxSupState {
		return fmt.Errorf("%w: state file larger than %d bytes", ErrBadValue, maxSupState)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadValue, err)
	}
	return nil
}

// WritePolicyState and WriteHealthState replace the files atomically,
// without following symlinks.
func WritePolicyState(dir string, p *PolicyState) error {
	b, err := FormatPolicyState(p)
	if err != nil {
		return err
	}
	return writeAtomic(dir, PolicyStatePath, b, 0o644)
}

func WriteHealthState(dir string, h *HealthState) error {
	b, err := FormatHealthState(h)
	if err != nil {
		return err
	}
	return writeAtomic(dir, HealthStatePath, b, 0o644)
}

// ReadPolicyState and ReadHealthState read the files; ok is false when
// the file is missing (the policy or check never acted), err when it is
// unreadable or malformed.
func ReadPolicyState(dir string) (p PolicyState, ok bool, err error) {
	b, err := ReadStateFile(dir, PolicyStatePath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return p, false, nil
		}
		return p, false, err
	}
	p, err = ParsePolicyState(b)
	return p, err == nil, err
}

func ReadHealthState(dir string) (h HealthState, ok bool, err error) {
	b, err := ReadStateFile(dir, HealthStatePath)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return h, false, nil
		}
		return h, false, err
	}
	h, err = ParseHealthState(b)
	return h, err == nil, err
}
