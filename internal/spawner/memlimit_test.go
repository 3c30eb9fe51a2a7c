package spawner

import (
	"runtime/debug"
	"runtime/metrics"
	"testing"
)

// TestMemoryLimitAboveRuntime: the helper's memory limit counts every
// byte the Go runtime maps, not only the heap. Set below what a Go
// process of this size keeps mapped after FreeOSMemory, the runtime
// returned pages to the kernel at every request and faulted them back
// in (bench/README.md, "The restart path at 5000 services"). The test
// binary stands in for the helper (the same runtime; gosv's binary adds
// its packages' initialisers, which FreeOSMemory mostly returns): the
// limit must leave it at least half free.
func TestMemoryLimitAboveRuntime(t *testing.T) {
	debug.FreeOSMemory()
	s := []metrics.Sample{
		{Name: "/memory/classes/total:bytes"},
		{Name: "/memory/classes/heap/released:bytes"},
	}
	metrics.Read(s)
	used := s[0].Value.Uint64() - s[1].Value.Uint64()
	t.Logf("runtime memory in use after FreeOSMemory: %d KiB", used>>10)
	if used > helperMemoryLimit/2 {
		t.Errorf("the runtime keeps %d KiB mapped: helperMemoryLimit (%d KiB) leaves less than half free", used>>10, helperMemoryLimit>>10)
	}
}
