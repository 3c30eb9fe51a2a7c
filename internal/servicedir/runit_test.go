package servicedir

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// A status runsv 2.1.2 wrote (runsv on a sleep: pid 21918, want up, run),
// captured with od on this machine.
var runsvStatus = []byte{0x40, 0, 0, 0, 0x6b, 0x13, 0x5d, 0x5e, 0x18, 0xce, 0xed, 0xe4,
	0x9e, 0x55, 0, 0, 0, 'u', 0, 1}

func TestUnpackRunitStatus(t *testing.T) {
	s, err := UnpackRunitStatus(runsvStatus)
	if err != nil {
		t.Fatal(err)
	}
	want := RunitStatus{Stamp: time.Unix(0x6b135d5e-10, 0x18ceede4), Pid: 21918, WantUp: true, State: RunitRun}
	if !s.Stamp.Equal(want.Stamp) || s.Pid != want.Pid || !s.WantUp || s.Paused || s.GotTerm || !s.Up() {
		t.Errorf("got %+v, want %+v", s, want)
	}
	if b := s.Pack(); string(b[:]) != string(runsvStatus) {
		t.Errorf("Pack = % x, want % x", b, runsvStatus)
	}
	for _, bad := range [][]byte{runsvStatus[:19], append(append([]byte{}, runsvStatus...), 0), append(append([]byte{}, runsvStatus[:19]...), 3)} {
		if _, err := UnpackRunitStatus(bad); err == nil {
			t.Errorf("UnpackRunitStatus(% x) succeeded", bad)
		}
	}
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, SuperviseDir), 0o755)
	os.WriteFile(filepath.Join(dir, StatusPath), runsvStatus, 0o644)
	if r, err := ReadRunitStatus(dir); err != nil || r.Pid != 21918 {
		t.Errorf("ReadRunitStatus = %+v, %v", r, err)
	}
}

// FuzzRunitStatus: whatever unpacks packs back to the same bytes, but for
// the flag bytes runsv writes as 0/1 and 'u'/'d'.
func FuzzRunitStatus(f *testing.F) {
	f.Add(runsvStatus)
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := UnpackRunitStatus(b)
		if err != nil {
			return
		}
		p := s.Pack()
		s2, err := UnpackRunitStatus(p[:])
		if err != nil || s2 != s {
			t.Fatalf("round trip: %+v → % x → %+v, %v", s, p, s2, err)
		}
	})
}
