package metrics

import (
	"io"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// BenchmarkRender1000: one scrape (or textfile write) of 1000 services.
func BenchmarkRender1000(b *testing.B) {
	scan := b.TempDir()
	for i := 0; i < 1000; i++ {
		d := filepath.Join(scan, "s"+strconv.Itoa(i))
		os.MkdirAll(filepath.Join(d, servicedir.GosvStateDir), 0o755)
		servicedir.WriteStatus(d, &servicedir.Status{Pid: 100 + i, Stamp: now, WantUp: true, Ready: true})
		servicedir.AppendDeath(d, servicedir.DeathFromWstat(now, 9), 100)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := RenderDir(io.Discard, scan, time.Now()); err != nil {
			b.Fatal(err)
		}
	}
}
