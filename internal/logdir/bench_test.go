package logdir

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"
)

// maxIdleLoggerBytes is the supervision tree's budget per service (issue
// #4): an idle in-process logger must fit in it.
const maxIdleLoggerBytes = 10 << 10

// TestIdleLoggerMemory measures the Go heap that 100 open, idle Loggers
// (script parsed, directory locked and current open) keep alive.
func TestIdleLoggerMemory(t *testing.T) {
	tmp := t.TempDir()
	const n = 100
	loggers := make([]*Logger, 0, n)
	before := heapInUse()
	for i := range n {
		s := mustScript(t, "t", "s1048576", "n10", filepath.Join(tmp, fmt.Sprint("service-", i), "log"))
		loggers = append(loggers, mustOpen(t, s, Options{}))
	}
	after := heapInUse()
	per := (after - before) / n
	t.Logf("%d idle loggers: %d bytes of Go heap each (plus 2 fds: lock and current)", n, per)
	if per > maxIdleLoggerBytes {
		t.Errorf("an idle logger keeps %d bytes, budget %d", per, maxIdleLoggerBytes)
	}
	for _, l := range loggers {
		l.Close()
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapInuse)
}

// BenchmarkConsume measures Consume with t stamps on 60-byte lines: the
// cost of the in-process logger per byte (tee, read, format, write to
// current on the test's file system, splice to /dev/null; staged: splice
// into the stage, pread, format, write, the record's stores, the punch),
// with the writes into the pipe included.
func BenchmarkConsume(b *testing.B) {
	for _, script := range [][]string{{"t"}, {"t", "-^debug"}, {}} {
		for _, staged := range []bool{false, true} {
			benchConsume(b, script, staged)
		}
	}
}

func benchConsume(b *testing.B, script []string, staged bool) {
	name := fmt.Sprint(script)
	if staged {
		name += "/staged"
	}
	b.Run(name, func(b *testing.B) {
		dir := filepath.Join(b.TempDir(), "log")
		var p [2]int
		if err := pipe(p[:]); err != nil {
			b.Fatal(err)
		}
		sc, err := NewScratch()
		if err != nil {
			b.Fatal(err)
		}
		defer sc.Close()
		var opts Options
		if staged {
			st, err := NewStage()
			if err != nil {
				b.Fatal(err)
			}
			defer st.Close()
			opts.Stage = st
		}
		l := mustOpen(b, mustScript(b, append(script, "s16777215", "n2", dir)...), opts)
		defer l.Close()
		chunk := seqLines(0, 1000, 60) // 60 000 bytes: fits the pipe
		b.SetBytes(int64(len(chunk)))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := writeFull(p[1], chunk); err != nil {
				b.Fatal(err)
			}
			if _, _, err := l.Consume(p[0], sc); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)*1000/b.Elapsed().Seconds(), "lines/s")
	})
}
