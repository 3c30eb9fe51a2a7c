package logdir

import (
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

const (
	taiStampLen = 1 + 24 + 1 // "@" 24 hex digits, space: what s6-tai64nlocal reads
	// isoLayout is s6-log's T stamp (skalibs localtmn_fmt): local time,
	// nanoseconds, followed by two spaces. s6-log's doc calls it ISO 8601;
	// the binary writes a blank, not a "T", between date and time.
	isoLayout = "2006-01-02 15:04:05.000000000"
	isoLen    = len(isoLayout) + 2
)

// appendTAI64N appends t's TAI64N label as s6-log's t directive writes it:
// "@400000006b0246ad1e723ec3 ".
func appendTAI64N(b []byte, t time.Time) []byte {
	return append(servicedir.TAI64NFromTime(t).Append(b), ' ')
}

// appendISO appends s6-log's T stamp: "2026-11-22 04:43:20.061431945  ".
func appendISO(b []byte, t time.Time) []byte {
	return append(t.Local().AppendFormat(b, isoLayout), ' ', ' ')
}

// parseTAI64N decodes "@" + 24 hex digits at the start of b.
func parseTAI64N(b []byte) (time.Time, bool) {
	l, ok := servicedir.ParseTAI64N(b)
	if !ok {
		return time.Time{}, false
	}
	return l.Time(), true
}
