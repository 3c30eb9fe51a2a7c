package servicedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Codecs of the restart-policy files (PROTOCOL.md §9.6): which deaths are
// respawned (respawn-on) and which exits count as a success (success-exit).
// The numeric policy files (respawn-delay, respawn-delay-max,
// respawn-reset, respawn-period, respawn-max) are uint files.

// RespawnOn says which deaths of a wanted-up service are respawned.
type RespawnOn uint8

const (
	RespawnAlways  RespawnOn = iota // every death (s6, supervise-daemon)
	RespawnFailure                  // every death but a success exit
	RespawnNever                    // no death: the service stays down
)

var respawnOnNames = [...]string{"always", "failure", "never"}

// String is the word respawn-on holds.
func (r RespawnOn) String() string {
	if int(r) < len(respawnOnNames) {
		return respawnOnNames[r]
	}
	return "invalid"
}

// ParseRespawnOn decodes the content of respawn-on: one word, blanks
// around it allowed. On false the value is RespawnAlways, the default.
func ParseRespawnOn(b []byte) (RespawnOn, bool) {
	s := strings.TrimSpace(string(b))
	for i, n := range respawnOnNames {
		if s == n {
			return RespawnOn(i), true
		}
	}
	return RespawnAlways, false
}

// MarshalText writes the word; UnmarshalText reads it back.
func (r RespawnOn) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *RespawnOn) UnmarshalText(b []byte) error {
	v, ok := ParseRespawnOn(b)
	if !ok {
		return fmt.Errorf("%w: respawn-on %q", ErrBadValue, b)
	}
	*r = v
	return nil
}

// ReadRespawnOn reads dir/respawn-on; a missing file is RespawnAlways, a
// bad one RespawnAlways with an *os.PathError wrapping [ErrBadValue].
func ReadRespawnOn(dir string) (RespawnOn, error) {
	b, p, err := readPolicyFile(dir, RespawnOnFile)
	if err != nil || b == nil {
		return RespawnAlways, err
	}
	r, ok := ParseRespawnOn(b)
	if !ok {
		return r, &os.PathError{Op: "parse", Path: p,
			Err: fmt.Errorf("%w %q (want always, failure or never; using always)", ErrBadValue, strings.TrimSpace(string(b)))}
	}
	return r, nil
}

// SuccessExits is the set of exits that count as a success: exit codes
// 0-255 and signals 1-64 (a death by one of them is a success too, as
// systemd's SuccessExitStatus= and supervisord's exitcodes).
type SuccessExits struct {
	Codes [4]uint64 // bit c: exit code c
	Sigs  uint64    // bit s-1: signal s
}

// DefaultSuccessExits is exit code 0 alone.
var DefaultSuccessExits = SuccessExits{Codes: [4]uint64{1}}

// maxSuccessExitBytes bounds success-exit: every code and a name for
// every signal fit with room to spare.
const maxSuccessExitBytes = 4096

// Has reports whether wait status wstat is one of the set's exits.
func (s SuccessExits) Has(wstat uint16) bool {
	ws := unix.WaitStatus(wstat)
	switch {
	case ws.Exited():
		c := ws.ExitStatus()
		return s.Codes[c/64]&(1<<(c%64)) != 0
	case ws.Signaled():
		n := int(ws.Signal())
		return n >= 1 && n <= 64 && s.Sigs&(1<<(n-1)) != 0
	}
	return false
}

// Format writes the set as success-exit holds it: the codes in increasing
// order, then the signals by name ("0 2 SIGHUP SIGTERM"), one line.
func (s SuccessExits) Format() []byte {
	var parts []string
	for c := 0; c < 256; c++ {
		if s.Codes[c/64]&(1<<(c%64)) != 0 {
			parts = append(parts, strconv.Itoa(c))
		}
	}
	for n := 1; n <= 64; n++ {
		if s.Sigs&(1<<(n-1)) != 0 {
			if name := SignalName(unix.Signal(n)); name != "???" {
				parts = append(parts, "SIG"+name)
			} else {
				parts = append(parts, "SIG"+strconv.Itoa(n))
			}
		}
	}
	return []byte(strings.Join(parts, " ") + "\n")
}

// ParseSuccessExits decodes success-exit: words separated by blanks or
// newlines, each an exit code (0-255) or a signal ("TERM", "SIGTERM",
// "SIG15"; 1-64). An empty file is the empty set (no exit is a success).
// The error names the first bad word.
func ParseSuccessExits(b []byte) (SuccessExits, error) {
	var s SuccessExits
	if len(b) > maxSuccessExitBytes {
		return s, fmt.Errorf("%w: larger than %d bytes", ErrBadValue, maxSuccessExitBytes)
	}
	for _, w := range strings.Fields(string(b)) {
		if c, ok := parseUint32(w); ok {
			if c > 255 {
				return s, fmt.Errorf("%w %q (an exit code is 0 to 255)", ErrBadValue, w)
			}
			s.Codes[c/64] |= 1 << (c % 64)
			continue
		}
		sig, ok := ParseSignal(w)
		if !ok || sig < 1 || sig > 64 {
			return s, fmt.Errorf("%w %q (want an exit code or a signal name)", ErrBadValue, w)
		}
		s.Sigs |= 1 << (sig - 1)
	}
	return s, nil
}

// ReadSuccessExits reads dir/success-exit; a missing file is
// [DefaultSuccessExits], a bad one the default with an *os.PathError.
func ReadSuccessExits(dir string) (SuccessExits, error) {
	b, p, err := readPolicyFile(dir, SuccessExitFile)
	if err != nil || b == nil {
		return DefaultSuccessExits, err
	}
	s, err := ParseSuccessExits(b)
	if err != nil {
		return DefaultSuccessExits, &os.PathError{Op: "parse", Path: p, Err: fmt.Errorf("%w; using 0", err)}
	}
	return s, nil
}

// readPolicyFile reads a small policy file (a config file: symlinks are
// followed, as for s6's); nil content means the file is missing.
func readPolicyFile(dir, name string) ([]byte, string, error) {
	p := filepath.Join(dir, name)
	buf := make([]byte, maxSuccessExitBytes+1)
	n, err := readAtMost(p, buf)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, p, nil
	}
	if err != nil {
		return nil, p, err
	}
	return buf[:n:n], p, nil
}

// Words says why the policy gave up: its recorded reason, or "respawned
// 11 times within 12 s" (respawn-max within respawn-period).
func (p *PolicyState) Words() string {
	switch {
	case p.Reason != "":
		return p.Reason
	case p.Within > 0:
		return fmt.Sprintf("respawned %d times within %s", p.Respawns, DurationWords(p.Within))
	}
	return fmt.Sprintf("respawned %d times", p.Respawns)
}

// ExitWords says how a run ended, in the restart policy's words (the
// events log, svstat's explanation): "exit 1", "signal SIGKILL".
func ExitWords(wstat uint16) string {
	ws := unix.WaitStatus(wstat)
	if ws.Signaled() {
		return "signal SIG" + SignalName(ws.Signal())
	}
	return "exit " + strconv.Itoa(ws.ExitStatus())
}

// DurationWords writes d for people: "8 s", "1.5 s", "20 ms", "2 min 5 s".
func DurationWords(d time.Duration) string {
	switch {
	case d < time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	case d < time.Minute:
		return strconv.FormatFloat(d.Round(100*time.Millisecond).Seconds(), 'f', -1, 64) + " s"
	case d%time.Minute < time.Second:
		return strconv.FormatInt(int64(d/time.Minute), 10) + " min"
	}
	return strconv.FormatInt(int64(d/time.Minute), 10) + " min " + strconv.FormatInt(int64(d%time.Minute/time.Second), 10) + " s"
}
