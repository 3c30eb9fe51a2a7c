package servicedir

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestHasReadiness(t *testing.T) {
	dir := t.TempDir()
	if ok, err := HasReadiness(dir); ok || err != nil {
		t.Errorf("without readiness files: %v, %v", ok, err)
	}
	for _, name := range readinessFiles {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, name), nil)
		if ok, err := HasReadiness(dir); !ok || err != nil {
			t.Errorf("with %s: %v, %v", name, ok, err)
		}
		if _, err := HasReadiness(filepath.Join(dir, name)); err == nil {
			t.Errorf("below the file %s: no error", name)
		}
	}
}

// TestCheckOutputReadWhole: the bound of a state-file read leaves room for
// the exit-status line the supervisor adds after MaxCheckOutput bytes.
func TestCheckOutputReadWhole(t *testing.T) {
	dir := t.TempDir()
	want := strings.Repeat("x", MaxCheckOutput) + "\n(./check killed by signal 64)\n"
	if err := os.MkdirAll(filepath.Join(dir, GosvStateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, CheckOutputPath), []byte(want))
	if got := ReadCheckOutput(dir); got != want {
		t.Errorf("read %d bytes, want %d", len(got), len(want))
	}
	if got := ReadStatusText(dir); got != "" {
		t.Errorf("missing status-text read as %q", got)
	}
}

// FuzzReadyDeadline: every instant round-trips through the file format,
// and whatever the parser accepts is a label it formats back the same
// (but for hex case and a nanosecond field of 10^9 or more).
func FuzzReadyDeadline(f *testing.F) {
	f.Add(int64(0), uint32(0), []byte("@400000006b0246ad1e723ec3\n"))
	f.Add(int64(1<<40), uint32(999999999), []byte("@400000006B0246AD1E723EC3"))
	f.Add(int64(-1), uint32(1), []byte("@40000000000000253b9aca00\n"))
	f.Add(int64(5), uint32(7), []byte("@4000\n"))
	f.Fuzz(func(t *testing.T, sec int64, nsec uint32, b []byte) {
		tm := time.Unix(sec, int64(nsec%1e9))
		text := FormatReadyDeadline(tm)
		if len(text) != TAI64NTextLen+1 || text[len(text)-1] != '\n' {
			t.Fatalf("FormatReadyDeadline(%v) = %q", tm, text)
		}
		if got, ok := ParseReadyDeadline(text); !ok || !got.Equal(tm) {
			t.Fatalf("round trip of %v: %v, %v", tm, got, ok)
		}
		got, ok := ParseReadyDeadline(b)
		if !ok {
			return
		}
		line, _ := bytes.CutSuffix(b, []byte{'\n'})
		l, _ := ParseTAI64N(line)
		want := normalTAI64N(l[:]).String() + "\n"
		if again := FormatReadyDeadline(got); string(again) != want {
			t.Fatalf("%q parsed as %v, formats as %q, want %q", b, got, again, want)
		}
	})
}

// FuzzPidRecord: every record round-trips, and whatever the parser
// accepts formats back to a record it parses the same.
func FuzzPidRecord(f *testing.F) {
	f.Add(int32(1), uint64(0), []byte("123 4567\n"))
	f.Add(int32(1<<31-1), uint64(1<<64-1), []byte("0007 0\n"))
	f.Add(int32(42), uint64(9), []byte("-1 5\n"))
	f.Fuzz(func(t *testing.T, pid int32, st uint64, b []byte) {
		if pid > 0 {
			r := PidRecord{Pid: int(pid), StartTime: st}
			if got, ok := parsePidRecord(formatPidRecord(r)); !ok || got != r {
				t.Fatalf("round trip of %+v: %+v, %v", r, got, ok)
			}
		}
		r, ok := parsePidRecord(b)
		if !ok {
			return
		}
		if r.Pid <= 0 {
			t.Fatalf("%q parsed with pid %d", b, r.Pid)
		}
		if again, ok := parsePidRecord(formatPidRecord(r)); !ok || again != r {
			t.Fatalf("%q: %+v formats to a record read as %+v, %v", b, r, again, ok)
		}
	})
}

// FuzzNotifyMode: a mode's word reads back as that mode; anything the
// parser rejects falls back to NotifyMain.
func FuzzNotifyMode(f *testing.F) {
	for _, s := range []string{"main", "all\n", " all ", "", "ALL", "mainx"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, ok := ParseNotifyMode(b)
		if !ok {
			if m != NotifyMain {
				t.Fatalf("%q rejected with mode %v", b, m)
			}
			return
		}
		if m != NotifyMain && m != NotifyAll {
			t.Fatalf("%q parsed as %d", b, m)
		}
		if again, ok := ParseNotifyMode([]byte(m.String() + "\n")); !ok || again != m {
			t.Fatalf("%v formats as %q, read as %v, %v", m, m.String(), again, ok)
		}
	})
}

// FuzzStatusText: any STATUS= value (one datagram line: no newline) is
// written as at most MaxStatusText bytes and one newline, a prefix of it.
func FuzzStatusText(f *testing.F) {
	f.Add([]byte("Listening on :80"))
	f.Add([]byte(strings.Repeat("é", 200)))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, val []byte) {
		if bytes.IndexByte(val, '\n') >= 0 {
			return
		}
		orig := bytes.Clone(val)
		got := FormatStatusText(val)
		text, ok := bytes.CutSuffix(got, []byte{'\n'})
		if !ok || len(text) > MaxStatusText || !bytes.HasPrefix(orig, text) ||
			len(text) < min(len(orig), MaxStatusText) {
			t.Fatalf("FormatStatusText(%q) = %q", orig, got)
		}
	})
}
