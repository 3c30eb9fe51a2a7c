// Package events is the events log of a scan directory: one JSON line per
// start, ready, exit, restart, backoff, give-up, unhealthy and recovered of
// any of its services (issue 11), appended by the scanner's loop to a
// size-bounded, rotated log, and read back by `gosv events`.
//
// The layout inside the log directory (servicedir.ScanEventsDir, or
// servicedir.EventsLogDir under gosv supervise) belongs to this package:
// `current` is appended to, rotated files are `@TAI64N.s` (s6-log's
// naming, so that they sort by age), at most [Keep] of them. The spec is
// internal/servicedir/PROTOCOL.md §10 and docs/events-metrics.md.
package events

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// Record is one event: one line of the log, and what a hook is told.
type Record struct {
	Time    time.Time `json:"time"`
	Service string    `json:"service"`
	Event   string    `json:"event"` // supervise.Happening's name
	Pid     int       `json:"pid,omitempty"`
	// Exit: ExitCode when the run exited, Signal ("SIGKILL") when it was
	// killed; neither when the status is unknown (an adopted run).
	ExitCode *int   `json:"exit_code,omitempty"`
	Signal   string `json:"signal,omitempty"`
	// DelayMs: restart and backoff: the delay before the next spawn.
	DelayMs int64  `json:"delay_ms,omitempty"`
	Message string `json:"message,omitempty"`
}

// maxMessage bounds Message, so that a line stays well below PIPE_BUF
// and the log's bound holds.
const maxMessage = 1024

// New makes the record of an ActEvent of service at now.
func New(now time.Time, service string, a *supervise.Action) Record {
	r := Record{Time: now.UTC(), Service: service, Event: a.Hap.String(), Pid: a.Pid, Message: a.Msg}
	if len(r.Message) > maxMessage {
		r.Message = r.Message[:maxMessage]
	}
	switch a.Hap {
	case supervise.HapExit:
		if a.Msg == "" {
			ws := unix.WaitStatus(a.Wstat)
			if ws.Signaled() {
				r.Signal = "SIG" + servicedir.SignalName(ws.Signal())
			} else {
				c := ws.ExitStatus()
				r.ExitCode = &c
			}
		}
	case supervise.HapRestart, supervise.HapBackoff:
		r.DelayMs = a.After.Milliseconds()
	}
	return r
}

// Line is r as one line of the log, newline included.
func (r *Record) Line() []byte {
	b, err := json.Marshal(r)
	if err != nil {
		// Only strings, numbers and a time: cannot fail.
		panic(err)
	}
	return append(b, '\n')
}

// Parse reads one line of the log.
func Parse(line []byte) (Record, error) {
	var r Record
	if err := json.Unmarshal(line, &r); err != nil {
		return r, err
	}
	if r.Service == "" || r.Event == "" {
		return r, fmt.Errorf("not an event: no service or event")
	}
	return r, nil
}

// Delay is DelayMs as a duration.
func (r *Record) Delay() time.Duration { return time.Duration(r.DelayMs) * time.Millisecond }

// Text is r in words, as `gosv events` prints it: local time, service,
// what happened.
func (r *Record) Text() string {
	var b strings.Builder
	b.WriteString(r.Time.Local().Format("2006-01-02 15:04:05.000"))
	b.WriteByte(' ')
	b.WriteString(r.Service)
	b.WriteString(": ")
	b.WriteString(r.words())
	if r.Pid != 0 {
		b.WriteString(" (pid " + strconv.Itoa(r.Pid) + ")")
	}
	return b.String()
}

func (r *Record) words() string {
	msg := func(s string) string {
		if r.Message == "" {
			return s
		}
		return s + ": " + r.Message
	}
	switch r.Event {
	case "start":
		return "started"
	case "ready":
		return "ready"
	case "exit":
		switch {
		case r.ExitCode != nil:
			return "exited " + strconv.Itoa(*r.ExitCode)
		case r.Signal != "":
			return "killed by " + r.Signal
		}
		if r.Message == "" || r.Message == "unknown" {
			return "exited, status unknown (adopted from an earlier supervisor)"
		}
		return "exited, status unknown: " + r.Message
	case "restart":
		if r.DelayMs == 0 {
			return "restarting"
		}
		return "restarting in " + r.Delay().String()
	case "backoff":
		return msg("backing off " + r.Delay().String())
	case "give-up":
		return msg("given up")
	case "unhealthy":
		return msg("unhealthy")
	case "recovered":
		return msg("healthy again")
	}
	return msg(r.Event)
}

// Env is r as the environment of a hook: GOSV_EVENT, GOSV_SERVICE,
// GOSV_TIME (RFC 3339, UTC), GOSV_PID, GOSV_EXIT_CODE or
// GOSV_EXIT_SIGNAL, GOSV_DELAY (seconds), GOSV_MESSAGE, GOSV_TEXT (the
// line gosv events prints). Variables without a value are left out.
func (r *Record) Env(base []string) []string {
	env := append(base,
		"GOSV_EVENT="+r.Event,
		"GOSV_SERVICE="+r.Service,
		"GOSV_TIME="+r.Time.UTC().Format(time.RFC3339Nano),
		"GOSV_TEXT="+r.Text())
	if r.Pid != 0 {
		env = append(env, "GOSV_PID="+strconv.Itoa(r.Pid))
	}
	if r.ExitCode != nil {
		env = append(env, "GOSV_EXIT_CODE="+strconv.Itoa(*r.ExitCode))
	}
	if r.Signal != "" {
		env = append(env, "GOSV_EXIT_SIGNAL="+r.Signal)
	}
	if r.DelayMs != 0 {
		env = append(env, "GOSV_DELAY="+strconv.FormatFloat(r.Delay().Seconds(), 'f', -1, 64))
	}
	if r.Message != "" {
		env = append(env, "GOSV_MESSAGE="+r.Message)
	}
	return env
}
