package servicedir

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestTAI64N(t *testing.T) {
	tests := []struct {
		unix int64
		nsec int64
		want string
	}{
		{0, 0, "@400000000000002500000000"},
		{-1, 0, "@400000000000002400000000"},
		{1, 999999999, "@40000000000000263b9ac9ff"},
		// From a real s6 status file (s6-protocol.md §3.4): 0x6b0246ad - 37.
		{0x6b0246ad - 37, 0x1e723ec3, "@400000006b0246ad1e723ec3"},
		{-62135596800, 0, "@3ffffff1886e0925" + "00000000"}, // year 1, time.Time{}
	}
	for _, tt := range tests {
		tm := time.Unix(tt.unix, tt.nsec)
		l := TAI64NFromTime(tm)
		if got := l.String(); got != tt.want {
			t.Errorf("TAI64NFromTime(%d.%09d) = %s, want %s", tt.unix, tt.nsec, got, tt.want)
		}
		if back := l.Time(); !back.Equal(tm) {
			t.Errorf("%s.Time() = %v, want %v", tt.want, back, tm)
		}
	}
	if got := TAI64NFromTime(time.Time{}).Time(); !got.Equal(time.Time{}) {
		t.Errorf("zero time round trip = %v", got)
	}
}

// TestTAI64NMatchesS6 brackets the stamp that s6-tai64n prints between two
// of ours: it catches a wrong leap-second offset.
func TestTAI64NMatchesS6(t *testing.T) {
	bin := requireS6(t, "s6-tai64n")
	before := TAI64NFromTime(time.Now()).String()
	cmd := exec.Command(bin)
	cmd.Stdin = strings.NewReader("x\n")
	out, err := cmd.Output()
	after := TAI64NFromTime(time.Now()).String()
	if err != nil {
		t.Fatalf("s6-tai64n: %v", err)
	}
	stamp, _, _ := strings.Cut(string(out), " ")
	// Fixed-width lower-case hex compares like the numbers it encodes.
	if len(stamp) != 25 || stamp < before || stamp > after {
		t.Errorf("s6-tai64n printed %q, want between %s and %s", stamp, before, after)
	}
}

// FuzzTAI64N checks that any 12 bytes format as s6 does and round-trip
// through time.Time. The only bytes that change are a nanosecond field of
// 10^9 or more (never written by skalibs), which time.Unix carries into
// the seconds.
func FuzzTAI64N(f *testing.F) {
	f.Add(mustHex("400000006b0246ad1e723ec3"))
	f.Add(mustHex("ffffffffffffffffffffffff"))
	f.Add(mustHex("000000000000000000000000"))
	f.Add(mustHex("40000000000000253b9aca00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if len(b) < 12 {
			return
		}
		l := TAI64N(b[:12])
		s := l.String()
		if raw, err := hex.DecodeString(s[1:]); s[0] != '@' || len(s) != 25 || err != nil ||
			!bytes.Equal(raw, b[:12]) || s != strings.ToLower(s) {
			t.Fatalf("String() = %q for % x", s, b[:12])
		}
		got := TAI64NFromTime(l.Time())
		if want := normalTAI64N(b[:12]); got != want {
			t.Fatalf("round trip of % x = % x, want % x", b[:12], got, want)
		}
	})
}

// normalTAI64N is b with nanoseconds >= 10^9 carried into the seconds.
func normalTAI64N(b []byte) TAI64N {
	sec := binary.BigEndian.Uint64(b[0:8])
	ns := binary.BigEndian.Uint32(b[8:12])
	var l TAI64N
	binary.BigEndian.PutUint64(l[0:8], sec+uint64(ns/1e9))
	binary.BigEndian.PutUint32(l[8:12], ns%1e9)
	return l
}

func mustHex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}
