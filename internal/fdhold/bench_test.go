package fdhold

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// The holder's cost (HOLDER.md, docs/reliability.md), on demand:
//
//	go test -run '^$' -bench . -benchtime 1000x ./internal/fdhold
//	GOSV_BIN=$PWD/bin/gosv go test -run '^$' -bench . -benchtime 1000x ./internal/fdhold
//
// GOSV_BIN runs the real gosv binary as the holder (as the scanner does)
// instead of this test binary.

func holderExe() string {
	if p := os.Getenv("GOSV_BIN"); p != "" {
		return p
	}
	return "/proc/self/exe"
}

// BenchmarkStore: handing one pipe to the holder (once per in-process log,
// when its pipe is created). Reports the holder's PSS and fds once it
// holds b.N pipes.
func BenchmarkStore(b *testing.B) {
	path := filepath.Join(b.TempDir(), "fdholder")
	c, err := Start(path, holderExe(), "gosv-fdholder")
	if err != nil {
		b.Fatal(err)
	}
	defer func() { c.DropAll(); c.Close(); waitHolder(c.Pid) }()
	pipes := make([]int, 0, b.N)
	defer func() {
		for _, fd := range pipes {
			unix.Close(fd)
		}
	}()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		var p [2]int
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			b.Fatal(err)
		}
		unix.Close(p[1])
		pipes = append(pipes, p[0])
		b.StartTimer()
		if err := c.Store(strconv.Itoa(i), p[0]); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// A List round trip: every Store before it has been applied.
	c.Close()
	c2, held, err := Connect(path, 10*time.Second)
	if err != nil || len(held) != b.N {
		b.Fatalf("connect: %d held, %v", len(held), err)
	}
	closeHeld(held)
	pss, fds := usage(c.Pid)
	b.ReportMetric(float64(pss), "holder-PSS-KiB")
	b.ReportMetric(float64(fds), "holder-fds")
	c = c2
}

// BenchmarkTakeBack: what a restarted scanner pays per in-process log to
// take its pipe back (part of one Connect with b.N pipes held).
func BenchmarkTakeBack(b *testing.B) {
	path := filepath.Join(b.TempDir(), "fdholder")
	c, err := Start(path, holderExe(), "gosv-fdholder")
	if err != nil {
		b.Fatal(err)
	}
	pid := c.Pid
	for i := 0; i < b.N; i++ {
		var p [2]int
		unix.Pipe2(p[:], unix.O_CLOEXEC)
		c.Store(strconv.Itoa(i), p[0])
		unix.Close(p[0])
		unix.Close(p[1])
	}
	c.Close()
	b.ResetTimer()
	c, held, err := Connect(path, 10*time.Second)
	b.StopTimer()
	if err != nil || len(held) != b.N {
		b.Fatalf("connect: %d held, %v", len(held), err)
	}
	closeHeld(held)
	c.DropAll()
	c.Close()
	waitHolder(pid)
}

func usage(pid int) (pssKiB, fds int) {
	sm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	for _, line := range strings.Split(string(sm), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && k == "Pss" {
			pssKiB, _ = strconv.Atoi(strings.Fields(v)[0])
		}
	}
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return pssKiB, len(ents)
}

func waitHolder(pid int) {
	if p, err := os.FindProcess(pid); err == nil {
		p.Wait()
	}
}
