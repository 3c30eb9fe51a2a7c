// Command healthbench is the helper of bench/health.sh (issue 11): the
// HTTP server the checks probe, the scanner's CPU and memory, and the
// time from a failing check to the restart.
//
//	healthbench serve ADDR [-fail-after D]   serve 200 on ADDR (503 after D); print the port
//	healthbench usage PID SECONDS            CPU % of one core over SECONDS, and PSS (KiB)
//	healthbench latency DIR COUNT            COUNT restarts: ms from the failing check to the new run
//
// latency reads supervise/gosv/health (the failing result's time, "at")
// and supervise/status (the new run's up stamp), waking on inotify.
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// clockTicks is sysconf(_SC_CLK_TCK), 100 on every Linux Go supports.
const clockTicks = 100

func main() {
	if len(os.Args) < 3 {
		fail("usage: healthbench serve ADDR [-fail-after D] | usage PID SECONDS | latency DIR COUNT")
	}
	switch os.Args[1] {
	case "serve":
		serve(os.Args[2], os.Args[3:])
	case "usage":
		pid, _ := strconv.Atoi(os.Args[2])
		secs, _ := strconv.ParseFloat(os.Args[3], 64)
		usage(pid, time.Duration(secs*float64(time.Second)))
	case "latency":
		n, _ := strconv.Atoi(os.Args[3])
		latency(os.Args[2], n)
	default:
		fail("unknown mode " + os.Args[1])
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "healthbench:", msg)
	os.Exit(1)
}

func serve(addr string, args []string) {
	var failAfter time.Duration
	if len(args) == 2 && args[0] == "-fail-after" {
		failAfter, _ = time.ParseDuration(args[1])
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fail(err.Error())
	}
	fmt.Println(ln.Addr().(*net.TCPAddr).Port)
	start := time.Now()
	http.Serve(ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if failAfter > 0 && time.Since(start) > failAfter {
			w.WriteHeader(503)
		}
	}))
}

// usage prints "cpu_pct=P pss_kib=K" for pid over d.
func usage(pid int, d time.Duration) {
	t0, w0 := ticks(pid), time.Now()
	time.Sleep(d) // NOTE: a benchmark window: CPU is measured over wall time
	t1, w1 := ticks(pid), time.Now()
	cpu := float64(t1-t0) / clockTicks / w1.Sub(w0).Seconds() * 100
	fmt.Printf("cpu_pct=%.3f pss_kib=%d\n", cpu, pss(pid))
}

func ticks(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		fail(err.Error())
	}
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+2:]))
	u, _ := strconv.ParseInt(f[11], 10, 64) // field 14: utime
	s, _ := strconv.ParseInt(f[12], 10, 64) // field 15: stime
	return u + s
}

func pss(pid int) int64 {
	f, err := os.Open(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		fail(err.Error())
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Pss:"); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return -1
}

// latency waits for n restarts of dir that follow an unhealthy result and
// prints each delay and the median and maximum.
func latency(dir string, n int) {
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		fail(err.Error())
	}
	for _, d := range []string{filepath.Join(dir, servicedir.SuperviseDir), filepath.Join(dir, servicedir.GosvStateDir)} {
		if _, err := unix.InotifyAddWatch(ino, d, unix.IN_MOVED_TO|unix.IN_CLOSE_WRITE); err != nil {
			fail(err.Error())
		}
	}
	var got []time.Duration
	var failedAt time.Time
	lastPid := 0
	buf := make([]byte, 4096)
	deadline := time.Now().Add(time.Duration(n) * 30 * time.Second)
	for len(got) < n {
		if time.Now().After(deadline) {
			fail(fmt.Sprintf("only %d restarts before the deadline", len(got)))
		}
		if h, ok, _ := servicedir.ReadHealthState(dir); ok && h.Health == servicedir.HealthUnhealthy && h.At.After(failedAt) {
			failedAt = h.At
		}
		st, err := servicedir.ReadStatus(dir)
		if err == nil && st.Pid != 0 && !st.Finishing && int(st.Pid) != lastPid {
			if !failedAt.IsZero() && st.Stamp.After(failedAt) && lastPid != 0 {
				got = append(got, st.Stamp.Sub(failedAt))
				failedAt = time.Time{}
			}
			lastPid = int(st.Pid)
		}
		fds := []unix.PollFd{{Fd: int32(ino), Events: unix.POLLIN}}
		if k, _ := unix.Poll(fds, 1000); k > 0 {
			unix.Read(ino, buf)
		}
	}
	slices.Sort(got)
	ms := func(d time.Duration) string { return strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 1, 64) }
	fmt.Printf("restarts=%d median_ms=%s max_ms=%s min_ms=%s\n", len(got), ms(got[len(got)/2]), ms(got[len(got)-1]), ms(got[0]))
}
