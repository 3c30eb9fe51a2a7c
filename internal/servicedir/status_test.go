package servicedir

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Real status files dumped from s6-supervise 2.11.3.2 (s6-protocol.md §3.4).
var statusDumps = []struct {
	name string
	hex  string
	want Status
}{
	{"up not ready",
		"400000006b0246ad1e723ec3 400000006b0246ad1e6bf3d5 0000000000003573 0000 04",
		Status{Stamp: tai("400000006b0246ad1e723ec3"), ReadyStamp: tai("400000006b0246ad1e6bf3d5"),
			Pid: 0x3573, WantUp: true}},
	{"finishing after -d",
		"400000006b0246b73b49c084 400000006b0246af1f3251e8 0000000000003772 000f 02",
		Status{Stamp: tai("400000006b0246b73b49c084"), ReadyStamp: tai("400000006b0246af1f3251e8"),
			Pid: 0x3772, Wstat: 15, Finishing: true}},
	{"normally down, never started",
		"400000006b0246e50abb0eb2 400000006b0246e50abb0eb2 0000000000000000 0000 08",
		Status{Stamp: tai("400000006b0246e50abb0eb2"), ReadyStamp: tai("400000006b0246e50abb0eb2"),
			Ready: true}},
	{"exited 3, want up, throttled",
		"400000006b0246b73b49c084 400000006b0246b73b49c084 0000000000000000 0300 0c",
		Status{Stamp: tai("400000006b0246b73b49c084"), ReadyStamp: tai("400000006b0246b73b49c084"),
			Wstat: 0x300, WantUp: true, Ready: true}},
	{"paused",
		"400000006b0246ad1e723ec3 400000006b0246af1f3251e8 0000000000003573 0000 0d",
		Status{Stamp: tai("400000006b0246ad1e723ec3"), ReadyStamp: tai("400000006b0246af1f3251e8"),
			Pid: 0x3573, Paused: true, WantUp: true, Ready: true}},
}

func tai(h string) time.Time { return TAI64N(mustHex(h)).Time() }

func TestStatusCodec(t *testing.T) {
	for _, tt := range statusDumps {
		raw := mustHex(tt.hex)
		got, err := UnpackStatus(raw)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if !statusEqual(got, tt.want) {
			t.Errorf("%s: UnpackStatus = %+v, want %+v", tt.name, got, tt.want)
		}
		if p := tt.want.Pack(); !bytes.Equal(p[:], raw) {
			t.Errorf("%s: Pack = % x, want % x", tt.name, p, raw)
		}
	}
}

func TestStatusUp(t *testing.T) {
	for _, tt := range []struct {
		s    Status
		want bool
	}{
		{Status{}, false},
		{Status{Pid: 7}, true},
		{Status{Pid: 7, Finishing: true}, false},
		{Status{Finishing: true}, false},
	} {
		if got := tt.s.Up(); got != tt.want {
			t.Errorf("%+v.Up() = %v", tt.s, got)
		}
	}
}

func TestUnpackStatusLength(t *testing.T) {
	full := mustHex(statusDumps[0].hex)
	for _, n := range []int{0, 1, 34} {
		if _, err := UnpackStatus(full[:n]); !errors.Is(err, ErrShortStatus) {
			t.Errorf("UnpackStatus(%d bytes) error = %v, want ErrShortStatus", n, err)
		}
	}
	long := append(append([]byte(nil), full...), "trailing junk"...)
	got, err := UnpackStatus(long)
	if err != nil || !statusEqual(got, statusDumps[0].want) {
		t.Errorf("UnpackStatus(35+13 bytes) = %+v, %v", got, err)
	}
}

func TestPackDoesNotAllocate(t *testing.T) {
	s := statusDumps[0].want
	var sink [StatusSize]byte
	if n := testing.AllocsPerRun(100, func() { sink = s.Pack() }); n != 0 {
		t.Errorf("Pack allocates %v times", n)
	}
	_ = sink
}

func TestWriteReadStatus(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, SuperviseDir))
	want := statusDumps[1].want
	if err := WriteStatus(dir, &want); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, StatusPath)
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(raw, mustHex(statusDumps[1].hex)) {
		t.Errorf("file = % x", raw)
	}
	if fi, _ := os.Stat(p); fi.Mode().Perm()&^0o644 != 0 {
		t.Errorf("mode = %v, want at most 0644", fi.Mode())
	}
	if _, err := os.Lstat(p + ".new"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("status.new left behind: %v", err)
	}
	got, err := ReadStatus(dir)
	if err != nil || !statusEqual(got, want) {
		t.Errorf("ReadStatus = %+v, %v", got, err)
	}
	// Extra bytes after the 35 are ignored, as by s6_svstatus_read.
	if err := os.WriteFile(p, append(raw, 0xff, 0xff), 0o644); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadStatus(dir); err != nil || !statusEqual(got, want) {
		t.Errorf("ReadStatus(37 bytes) = %+v, %v", got, err)
	}
}

func TestReadStatusErrors(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, StatusPath)
	_, err := ReadStatus(dir)
	assertPathError(t, err, p, fs.ErrNotExist)

	mkdir(t, filepath.Join(dir, SuperviseDir))
	if err := os.WriteFile(p, make([]byte, 34), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = ReadStatus(dir)
	assertPathError(t, err, p, ErrShortStatus)
}

func TestWriteStatusErrors(t *testing.T) {
	dir := t.TempDir()
	var s Status
	// No supervise/: the open of the temporary file fails.
	err := WriteStatus(dir, &s)
	assertPathError(t, err, filepath.Join(dir, StatusPath+".new"), fs.ErrNotExist)

	// status is a non-empty directory: rename fails and the temp is removed.
	mkdir(t, filepath.Join(dir, StatusPath, "x"))
	err = WriteStatus(dir, &s)
	var le *os.LinkError
	if !errors.As(err, &le) || le.Op != "rename" {
		t.Errorf("WriteStatus onto a directory = %v, want a rename LinkError", err)
	}
	if _, err := os.Lstat(filepath.Join(dir, StatusPath+".new")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("status.new left behind: %v", err)
	}
}

// FuzzStatusUnpack: any input of 35 bytes or more decodes without panic and
// re-packs to the same 35 bytes, except (a) flag bits 4-7, which s6 always
// writes as 0 and never reads, and (b) a nanosecond field >= 10^9, which
// time.Unix carries into the seconds (skalibs never writes one). A second
// round trip is exact. Shorter inputs fail with ErrShortStatus.
func FuzzStatusUnpack(f *testing.F) {
	for _, d := range statusDumps {
		f.Add(mustHex(d.hex))
	}
	f.Add(bytes.Repeat([]byte{0xff}, StatusSize))
	f.Add(make([]byte, 10))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnpackStatus(b)
		if len(b) < StatusSize {
			if !errors.Is(err, ErrShortStatus) {
				t.Fatalf("UnpackStatus(%d bytes) error = %v", len(b), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want := normalStatus(b)
		got := s.Pack()
		if got != want {
			t.Fatalf("re-pack of\n% x =\n% x, want\n% x", b[:StatusSize], got, want)
		}
		s2, err := UnpackStatus(got[:])
		if err != nil || !statusEqual(s, s2) {
			t.Fatalf("second round trip: %+v != %+v (%v)", s2, s, err)
		}
	})
}

func normalStatus(b []byte) [StatusSize]byte {
	var w [StatusSize]byte
	copy(w[:], b)
	st := normalTAI64N(b[statusStampOff:])
	rs := normalTAI64N(b[statusReadyStampOff:])
	copy(w[statusStampOff:], st[:])
	copy(w[statusReadyStampOff:], rs[:])
	w[statusFlagsOff] &= 0x0f
	return w
}

func statusEqual(a, b Status) bool {
	return a.Stamp.Equal(b.Stamp) && a.ReadyStamp.Equal(b.ReadyStamp) &&
		a.Pid == b.Pid && a.Wstat == b.Wstat && a.Paused == b.Paused &&
		a.Finishing == b.Finishing && a.WantUp == b.WantUp && a.Ready == b.Ready
}

func mkdir(t *testing.T, p string) {
	t.Helper()
	if err := os.MkdirAll(p, 0o755); err != nil {
		t.Fatal(err)
	}
}

// assertPathError checks that err is an *os.PathError about path wrapping target.
func assertPathError(t *testing.T, err error, path string, target error) {
	t.Helper()
	var pe *os.PathError
	if !errors.As(err, &pe) || pe.Path != path || !errors.Is(err, target) {
		t.Errorf("error = %v (%T), want *os.PathError on %s wrapping %v", err, err, path, target)
	}
}
