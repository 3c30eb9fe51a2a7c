package events

import (
	"path/filepath"
	"testing"

	"github.com/gosv/gosv/internal/supervise"
)

// BenchmarkAppend: the loop's cost of one event (record, JSON, write(2),
// rotation amortised).
func BenchmarkAppend(b *testing.B) {
	l, err := Open(filepath.Join(b.TempDir(), "ev"))
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	a := supervise.Action{Kind: supervise.ActEvent, Hap: supervise.HapExit, Pid: 4242, Wstat: 9}
	b.ReportAllocs()
	for b.Loop() {
		r := New(t0, "service-name", &a)
		if err := l.Append(r.Line()); err != nil {
			b.Fatal(err)
		}
	}
}
