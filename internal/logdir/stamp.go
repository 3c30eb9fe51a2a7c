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
	const hexdigits = "0123456789abcdef"
	l := servicedir.TAI64NFromTime(t)
	b = append(b, '@')
	for _, c := range l {
		b = append(b, hexdigits[c>>4], hexdigits[c&0xf])
	}
	return append(b, ' ')
}

// appendISO appends s6-log's T stamp: "2026-11-22 04:43:20.061431945  ".
func appendISO(b []byte, t time.Time) []byte {
	return append(t.Local().AppendFormat(b, isoLayout), ' ', ' ')
}

// parseTAI64N decodes "@" + 24 hex digits at the start of b.
func parseTAI64N(b []byte) (time.Time, bool) {
	if len(b) < 25 || b[0] != '@' {
		return time.Time{}, false
	}
	var l servicedir.TAI64N
	for i := range l {
		hi, ok1 := unhex(b[1+2*i])
		lo, ok2 := unhex(b[2+2*i])
		if !ok1 || !ok2 {
			return time.Time{}, false
		}
		l[i] = hi<<4 | lo
	}
	return l.Time(), true
}

func unhex(c byte) (byte, bool) {
	switch {
	case c >= '0' && c <= '9':
		return c - '0', true
	case c >= 'a' && c <= 'f':
		return c - 'a' + 10, true
	case c >= 'A' && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
