package scan

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/gosv/gosv/svwait"
)

// TestThreeFdsPerService: a service without a logger costs the scanner
// three descriptors: the directory fd it shares with its scan-directory
// entry, the lock and the control FIFO. At four, 5000 services did not
// fit in a hard RLIMIT_NOFILE of 20000. On top of those, the loop holds
// the pidfds of at most Config.RunPidfds recently spawned runs
// (runfds.go; DefaultRunPidfds): here a ring of 4 for 9 services, so
// that a pidfd per run (4 per service) fails.
func TestThreeFdsPerService(t *testing.T) {
	const ring = 4
	t.Setenv("GOSV_TEST_RUN_PIDFDS", strconv.Itoa(ring))
	scan := t.TempDir()
	tr := startScanner(t, scan)
	fds := func() int {
		d, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(tr.cmd.Process.Pid), "fd"))
		if err != nil {
			t.Fatal(err)
		}
		return len(d)
	}
	first := link(t, scan, mksvc(t, scan, "s0", pauseRun, nil))
	waitFor(t, first, svwait.Up)
	before := fds()
	const n = 8
	for i := 1; i <= n; i++ {
		svc := link(t, scan, mksvc(t, scan, "s"+strconv.Itoa(i), pauseRun, nil))
		waitFor(t, svc, svwait.Up)
	}
	// NOTE: a slack of 2 for descriptors the loop holds for a moment (a
	// listing, an atomic write) when /proc is read: 4 per service would
	// still be 6 over it, and a pidfd per run 2.
	if extra := fds() - before; extra > 3*n+ring+2 {
		t.Errorf("%d descriptors for %d services, want at most 3 each plus %d pidfds", extra, n, ring)
	}
}
