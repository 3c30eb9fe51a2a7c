package servicedir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestDeathFromWstat(t *testing.T) {
	now := time.Unix(1700000000, 5)
	for _, tt := range []struct {
		wstat     uint16
		code, sig uint8
	}{
		{0x0000, 0, 0},     // exit 0
		{0x0300, 3, 0},     // exit 3
		{0xff00, 255, 0},   // exit 255
		{0x000f, 143, 15},  // SIGTERM
		{0x0009, 137, 9},   // SIGKILL
		{0x008b, 139, 11},  // SIGSEGV + core dump flag
		{0x007e, 254, 126}, // largest WTERMSIG that counts as signaled
		{0x137f, 0x13, 0},  // stopped by SIGSTOP: not WIFSIGNALED
	} {
		d := DeathFromWstat(now, tt.wstat)
		if d.Code != tt.code || d.Sig != tt.sig || !d.Stamp.Equal(now) {
			t.Errorf("DeathFromWstat(%#04x) = %+v, want code %d sig %d", tt.wstat, d, tt.code, tt.sig)
		}
	}
}

// The two records dumped in s6-protocol.md §3.3 after two SIGTERMs.
const specTally = "400000006b0246b73b49c084 8f0f 400000006b0246c23aaca304 8f0f"

func TestReadDeathTally(t *testing.T) {
	dir := t.TempDir()
	if ds, err := ReadDeathTally(dir); ds != nil || err != nil {
		t.Errorf("missing file: %v, %v", ds, err)
	}
	p := filepath.Join(dir, DeathTallyPath)
	mkdir(t, filepath.Dir(p))
	writeFile(t, p, mustHex(specTally))
	ds, err := ReadDeathTally(dir)
	want := []Death{
		{tai("400000006b0246b73b49c084"), 143, 15},
		{tai("400000006b0246c23aaca304"), 143, 15},
	}
	if err != nil || !deathsEqual(ds, want) {
		t.Errorf("ReadDeathTally = %+v, %v", ds, err)
	}
	writeFile(t, p, mustHex(specTally)[:27])
	_, err = ReadDeathTally(dir)
	assertPathError(t, err, p, ErrBadDeathTally)
}

func TestAppendDeath(t *testing.T) {
	stamp := func(i int) time.Time { return time.Unix(int64(1700000000+i), 0) }
	rec := func(i int) Death { return Death{stamp(i), uint8(i), 0} }
	for _, tt := range []struct {
		name     string
		initial  []byte // nil: no file
		appends  int
		max      int
		wantRecs []int // indexes of the records left, oldest first; nil: no file
	}{
		{"max 0 writes nothing", nil, 3, 0, nil},
		{"negative max writes nothing", nil, 1, -1, nil},
		{"creates the file", nil, 1, 100, []int{0}},
		{"keeps max records", nil, 5, 2, []int{3, 4}},
		{"max 1 keeps the newest", nil, 3, 1, []int{2}},
		{"corrupt size starts over", []byte("xyz"), 2, 10, []int{0, 1}},
		{"empty file", []byte{}, 1, 10, []int{0}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, DeathTallyPath)
			mkdir(t, filepath.Dir(p))
			if tt.initial != nil {
				writeFile(t, p, tt.initial)
			}
			for i := range tt.appends {
				if err := AppendDeath(dir, rec(i), tt.max); err != nil {
					t.Fatal(err)
				}
			}
			raw, err := os.ReadFile(p)
			if tt.wantRecs == nil {
				if tt.initial == nil && !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("file written: % x, %v", raw, err)
				}
				return
			}
			var want []byte
			for _, i := range tt.wantRecs {
				var b [DeathTallySize]byte
				rec(i).pack(b[:])
				want = append(want, b[:]...)
			}
			if !bytes.Equal(raw, want) {
				t.Errorf("file =\n% x, want\n% x", raw, want)
			}
			if _, err := os.Lstat(p + ".new"); !errors.Is(err, fs.ErrNotExist) {
				t.Errorf("death_tally.new left behind: %v", err)
			}
		})
	}
}

func TestAppendDeathCap(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, DeathTallyPath)
	mkdir(t, filepath.Dir(p))
	writeFile(t, p, make([]byte, (MaxDeathTally+10)*DeathTallySize))
	if err := AppendDeath(dir, Death{Code: 1}, 1<<20); err != nil {
		t.Fatal(err)
	}
	ds, err := ReadDeathTally(dir)
	if err != nil || len(ds) != MaxDeathTally || ds[len(ds)-1].Code != 1 {
		t.Errorf("after append with a huge max: %d records, %v", len(ds), err)
	}
}

// TestResetDeathTally: a supervisor start leaves no death_tally (the
// first death makes it), whatever was there, and creates nothing.
func TestResetDeathTally(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, DeathTallyPath)
	mkdir(t, filepath.Dir(p))
	for _, initial := range [][]byte{nil, mustHex(specTally)} {
		if initial != nil {
			writeFile(t, p, initial)
		}
		removed, err := ResetDeathTally(dir)
		if err != nil {
			t.Fatal(err)
		}
		if removed != (initial != nil) {
			t.Errorf("ResetDeathTally says removed %v, with a tally there %v", removed, initial != nil)
		}
		if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("after reset: %v, want no death_tally", err)
		}
		if ds, err := ReadDeathTally(dir); err != nil || len(ds) != 0 {
			t.Errorf("ReadDeathTally after reset: %v, %v; want no records", ds, err)
		}
	}
	if err := AppendDeath(dir, Death{Stamp: time.Now(), Code: 1}, 10); err != nil {
		t.Fatal(err)
	}
	if ds, err := ReadDeathTally(dir); err != nil || len(ds) != 1 {
		t.Errorf("first death after reset: %v, %v; want one record", ds, err)
	}
	_, err := ResetDeathTally(filepath.Join(dir, "nope"))
	assertPathError(t, err, filepath.Join(dir, "nope", DeathTallyPath), fs.ErrNotExist)
}

// TestDeathTallyS6svdt has the real s6-svdt read a tally we wrote.
func TestDeathTallyS6svdt(t *testing.T) {
	bin := requireS6(t, "s6-svdt")
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, SuperviseDir))
	var want strings.Builder
	for i, wstat := range []uint16{0x000f, 0x0300, 0x0009, 0x0000} {
		d := DeathFromWstat(time.Unix(1700000000+int64(i), int64(i)*1000), wstat)
		if err := AppendDeath(dir, d, 3); err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			continue // dropped by max 3
		}
		fmt.Fprintf(&want, "%s ", TAI64NFromTime(d.Stamp))
		if d.Sig != 0 {
			fmt.Fprintf(&want, "signal SIG%s\n", SignalName(unix.Signal(d.Sig)))
		} else {
			fmt.Fprintf(&want, "exitcode %d\n", d.Code)
		}
	}
	out, err := exec.Command(bin, dir).CombinedOutput()
	if err != nil || string(out) != want.String() {
		t.Errorf("s6-svdt printed\n%s(%v), want\n%s", out, err, want.String())
	}
	// A supervisor start removes the tally (ResetDeathTally): s6-svdt
	// reads no file as it reads an empty one.
	if _, err := ResetDeathTally(dir); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(bin, dir).CombinedOutput()
	if err != nil || len(out) != 0 {
		t.Errorf("s6-svdt on a reset tally printed %q (%v), want nothing and exit 0", out, err)
	}
}

func deathsEqual(a, b []Death) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if !a[i].Stamp.Equal(b[i].Stamp) || a[i].Code != b[i].Code || a[i].Sig != b[i].Sig {
			return false
		}
	}
	return true
}

func writeFile(t *testing.T, p string, b []byte) {
	t.Helper()
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestDeathString(t *testing.T) {
	for _, tt := range []struct {
		wstat uint16
		want  string
	}{
		{0, "exit code 0"},
		{3 << 8, "exit code 3"},
		{9, "signal SIGKILL"},
		{15 | 0x80, "signal SIGTERM"}, // core dumped
	} {
		if got := DeathFromWstat(time.Time{}, tt.wstat).String(); got != tt.want {
			t.Errorf("wstat %#x: %q, want %q", tt.wstat, got, tt.want)
		}
	}
}
