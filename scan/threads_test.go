package scan

import (
	"os"
	"strings"
	"testing"
)

// TestReserveThreads: the threads are made at once and stay (the pids
// test in tests/ shows why they must).
func TestReserveThreads(t *testing.T) {
	before := threads(t)
	reserveThreads(reservedThreads)
	after := threads(t)
	if after < before+reservedThreads-2 && after < reservedThreads {
		t.Fatalf("%d threads before, %d after reserving %d", before, after, reservedThreads)
	}
}

func threads(t *testing.T) int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "Threads:"); ok {
			n := 0
			for _, c := range strings.TrimSpace(v) {
				n = n*10 + int(c-'0')
			}
			return n
		}
	}
	t.Fatal("no Threads: line")
	return 0
}
