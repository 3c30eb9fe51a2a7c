package servicedir

import (
	"encoding/binary"
	"encoding/hex"
	"time"
)

// taiOffset is what skalibs adds to Unix seconds to get an external TAI64
// label: 2^62 marks the label as a date after 1970, 10 s is the TAI-UTC
// offset of 1970 and 27 s the leap seconds inserted since (the last one on
// 2017-01-01, skalibs leapsecs_table.c). Debian's skalibs is built without
// --enable-tai-clock, so the system clock is read as UTC and the sum is +37
// for every current date; measured with s6-tai64n against date +%s.
const (
	taiEpoch  = uint64(1) << 62
	leapSecs  = 37
	taiOffset = taiEpoch + leapSecs
)

// TAI64N is a 12-byte external TAI64N label as skalibs packs it:
// 8 bytes big-endian 2^62 + unix seconds + 37 (10 + 27 leap seconds), 4 bytes nanoseconds.
type TAI64N [12]byte

// TAI64NFromTime converts a wall-clock time to its TAI64N label.
func TAI64NFromTime(t time.Time) TAI64N {
	var l TAI64N
	putTAI64N(l[:], t)
	return l
}

// putTAI64N packs t into b[0:12]. The uint64 conversion wraps for times
// before 2^62 s before 1970; Time wraps back the same way, so every label
// round-trips.
func putTAI64N(b []byte, t time.Time) {
	binary.BigEndian.PutUint64(b[0:8], uint64(t.Unix())+taiOffset)
	binary.BigEndian.PutUint32(b[8:12], uint32(t.Nanosecond()))
}

// Time converts the label back to wall-clock time (subtracting the 37 s offset).
// A nanosecond field of 10^9 or more, which skalibs never writes, is carried
// into the seconds.
func (l TAI64N) Time() time.Time {
	return tai64nTime(l[:])
}

func tai64nTime(b []byte) time.Time {
	sec := int64(binary.BigEndian.Uint64(b[0:8]) - taiOffset)
	nsec := int64(binary.BigEndian.Uint32(b[8:12]))
	return time.Unix(sec, nsec)
}

// TAI64NTextLen is the length of a printed label: "@" and 24 hex digits.
const TAI64NTextLen = 1 + 2*len(TAI64N{})

// String formats the label as s6-svstat does: "@" and 24 lower-case hex digits.
func (l TAI64N) String() string {
	var buf [TAI64NTextLen]byte
	return string(l.Append(buf[:0]))
}

// Append appends [TAI64N.String]'s text to b, without allocating when b
// has room (s6-log's t stamps are written this way).
func (l TAI64N) Append(b []byte) []byte {
	return hex.AppendEncode(append(b, '@'), l[:])
}

// ParseTAI64N decodes the "@" and 24 hex digits (either case, as skalibs
// reads them) at the start of b.
func ParseTAI64N(b []byte) (TAI64N, bool) {
	var l TAI64N
	if len(b) < TAI64NTextLen || b[0] != '@' {
		return l, false
	}
	if _, err := hex.Decode(l[:], b[1:TAI64NTextLen]); err != nil {
		return l, false
	}
	return l, true
}
