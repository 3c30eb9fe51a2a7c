package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/bench/internal/inwait"
)

// stamp is the last line a service wrote: its PID and the time its run
// script got control, in nanoseconds since the epoch.
type stamp struct {
	pid int
	t   int64
}

func main() {
	dir := flag.String("dir", "", "stamp directory: one file per service")
	services := flag.Int("services", 1, "number of services writing stamps")
	n := flag.Int("n", 30, "number of samples")
	minUp := flag.Duration("min-up", 2100*time.Millisecond, "kill a service only after it has been up this long")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline for each restart")
	startTimeout := flag.Duration("start-timeout", 60*time.Second, "deadline for all services to start")
	trace := flag.String("trace", "", "gosv trace file (GOSV_TRACE); empty or absent: n/a")
	verbose := flag.Bool("v", false, "print every sample on stderr")
	baseline := flag.String("baseline", "", "no supervisor: spawn this run script directly, n times, and time clock → its stamp")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "latency: -dir is required")
		os.Exit(2)
	}
	if *baseline != "" {
		if err := runBaseline(*dir, *baseline, *n, *timeout, *verbose); err != nil {
			fmt.Fprintln(os.Stderr, "latency:", err)
			os.Exit(1)
		}
		return
	}
	if err := run(*dir, *services, *n, *minUp, *timeout, *startTimeout, *trace, *verbose); err != nil {
		fmt.Fprintln(os.Stderr, "latency:", err)
		os.Exit(1)
	}
}

func run(dir string, services, n int, minUp, timeout, startTimeout time.Duration, trace string, verbose bool) error {
	w, err := inwait.New()
	if err != nil {
		return err
	}
	defer w.Close()
	// Watch the directory before reading it: files are created and appended
	// to by the services while we start.
	if err := w.Add(dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_CLOSE_WRITE); err != nil {
		return err
	}
	last := map[string]stamp{}
	refresh := func(name string) error {
		if name == "" {
			return nil // an event on the directory itself
		}
		s, err := readLast(filepath.Join(dir, name))
		if err != nil || s.pid == 0 {
			return err // a half-written line: wait for the next event
		}
		last[name] = s
		return nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if err := refresh(e.Name()); err != nil {
			return err
		}
	}
	// absorb applies inotify events until done or deadline (which ends it
	// with inwait.ErrDeadline).
	absorb := func(deadline time.Time, done func() bool) error {
		for !done() {
			evs, err := w.Wait(deadline)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if err := refresh(ev.Name); err != nil {
					return err
				}
			}
		}
		return nil
	}
	err = absorb(time.Now().Add(startTimeout), func() bool { return len(last) >= services })
	if err != nil {
		return fmt.Errorf("wait for %d services to start (have %d): %w", services, len(last), err)
	}

	var samples, shares, execs, reaps []float64
	timeouts := 0
	for len(samples) < n {
		// Oldest service first: it is the first one to pass min-up.
		name := oldest(last)
		old := last[name]
		upAt := time.Unix(0, old.t).Add(minUp)
		// Waiting for the service to age is the benchmark's precondition,
		// not its measurement: block on inotify until then, absorbing events.
		err := absorb(upAt, func() bool { return !time.Now().Before(upAt) })
		if err != nil && !errors.Is(err, inwait.ErrDeadline) {
			return err
		}
		if cur := last[name]; cur.pid != old.pid {
			continue // restarted on its own (or by someone else): start over
		}

		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
			return os.NewSyscallError("clock_gettime", err)
		}
		killAt := ts.Nano()
		if err := unix.Kill(old.pid, unix.SIGKILL); err != nil {
			return fmt.Errorf("kill %d (%s): %w", old.pid, name, err)
		}
		err = absorb(time.Now().Add(timeout), func() bool { return last[name].pid != old.pid })
		if err != nil && !errors.Is(err, inwait.ErrDeadline) {
			return err
		}
		cur := last[name]
		if cur.pid == old.pid {
			timeouts++
			fmt.Fprintf(os.Stderr, "latency: %s (pid %d) not restarted within %s\n", name, old.pid, timeout)
			if timeouts >= 3 {
				return fmt.Errorf("%d restarts timed out", timeouts)
			}
			continue
		}
		ms := float64(cur.t-killAt) / 1e6
		samples = append(samples, ms)
		share := gosvShare(trace, old.pid, cur.pid)
		if !math.IsNaN(share) {
			shares = append(shares, share)
		}
		if x := gosvExec(trace, cur.pid); !math.IsNaN(x) {
			execs = append(execs, x)
		}
		if x := gosvReap(trace, old.pid, killAt); !math.IsNaN(x) {
			reaps = append(reaps, x)
		}
		if verbose {
			fmt.Fprintf(os.Stderr, "%s pid %d -> %d: %.3f ms\n", name, old.pid, cur.pid, ms)
		}
	}
	printSummary(samples, timeouts)
	if len(shares) > 0 {
		smed, sp90 := quantiles(shares)
		fmt.Printf(" gosv_share_median_ms=%.3f gosv_share_p90_ms=%.3f\n", smed, sp90)
	} else {
		fmt.Printf(" gosv_share_median_ms=n/a gosv_share_p90_ms=n/a\n")
	}
	if len(execs) > 0 {
		emed, ep90 := quantiles(execs)
		fmt.Printf(" gosv_exec_median_ms=%.3f gosv_exec_p90_ms=%.3f\n", emed, ep90)
	}
	if len(reaps) > 0 {
		rmed, rp90 := quantiles(reaps)
		fmt.Printf(" gosv_reap_median_ms=%.3f gosv_reap_p90_ms=%.3f\n", rmed, rp90)
	}
	return nil
}

func printSummary(samples []float64, timeouts int) {
	med, p90 := quantiles(samples)
	sort.Float64s(samples)
	fmt.Printf("n=%d median_ms=%.3f p90_ms=%.3f min_ms=%.3f max_ms=%.3f timeouts=%d",
		len(samples), med, p90, samples[0], samples[len(samples)-1], timeouts)
}

// runBaseline measures the floor every supervisor pays: the same clock read,
// then fork+exec of the run script by this process (no supervisor), up to the
// script's stamp. The difference between a system's figure and this one is
// the supervisor's own reaction time.
func runBaseline(dir, script string, n int, timeout time.Duration, verbose bool) error {
	w, err := inwait.New()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_CLOSE_WRITE); err != nil {
		return err
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	attr := &os.ProcAttr{Files: []*os.File{null, null, null}}
	var samples []float64
	for len(samples) < n {
		var ts unix.Timespec
		if err := unix.ClockGettime(unix.CLOCK_REALTIME, &ts); err != nil {
			return os.NewSyscallError("clock_gettime", err)
		}
		t0 := ts.Nano()
		p, err := os.StartProcess(script, []string{script}, attr)
		if err != nil {
			return err
		}
		deadline := time.Now().Add(timeout)
		var got stamp
		for got.pid != p.Pid {
			if _, err := w.Wait(deadline); err != nil {
				p.Kill()
				p.Wait()
				return fmt.Errorf("baseline: wait for stamp of pid %d: %w", p.Pid, err)
			}
			ents, err := os.ReadDir(dir)
			if err != nil {
				return err
			}
			for _, e := range ents {
				if s, err := readLast(filepath.Join(dir, e.Name())); err == nil && s.pid == p.Pid {
					got = s
				}
			}
		}
		// This helper is the parent here: kill and reap its own child.
		p.Kill()
		p.Wait()
		ms := float64(got.t-t0) / 1e6
		samples = append(samples, ms)
		if verbose {
			fmt.Fprintf(os.Stderr, "baseline pid %d: %.3f ms\n", p.Pid, ms)
		}
	}
	printSummary(samples, 0)
	fmt.Printf(" gosv_share_median_ms=n/a gosv_share_p90_ms=n/a\n")
	return nil
}

func oldest(last map[string]stamp) string {
	best := ""
	for name, s := range last {
		if best == "" || s.t < last[best].t {
			best = name
		}
	}
	return best
}

// readLast returns the last complete line of a stamp file.
func readLast(path string) (stamp, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return stamp{}, err
	}
	if !bytes.HasSuffix(b, []byte("\n")) {
		b = b[:bytes.LastIndexByte(b, '\n')+1] // drop a partial line
	}
	b = bytes.TrimSuffix(b, []byte("\n"))
	if len(b) == 0 {
		return stamp{}, nil
	}
	line := string(b[bytes.LastIndexByte(b, '\n')+1:])
	return parseStamp(line)
}

// parseStamp parses "PID SECONDS.MICROSECONDS" ($$ and $EPOCHREALTIME).
func parseStamp(line string) (stamp, error) {
	f := strings.Fields(line)
	if len(f) != 2 {
		return stamp{}, fmt.Errorf("bad stamp line %q", line)
	}
	pid, err := strconv.Atoi(f[0])
	if err != nil {
		return stamp{}, fmt.Errorf("bad stamp line %q: %w", line, err)
	}
	t, err := parseEpoch(f[1])
	if err != nil {
		return stamp{}, fmt.Errorf("bad stamp line %q: %w", line, err)
	}
	return stamp{pid: pid, t: t}, nil
}

// parseEpoch parses a decimal number of seconds exactly, without going
// through float64 (which would lose the microseconds).
func parseEpoch(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, err
	}
	if len(frac) > 9 {
		frac = frac[:9]
	}
	frac += strings.Repeat("0", 9-len(frac))
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	return secs*1e9 + ns, nil
}

// quantiles returns the median and the nearest-rank 90th percentile.
func quantiles(xs []float64) (median, p90 float64) {
	s := append([]float64(nil), xs...)
	sort.Float64s(s)
	m := len(s) / 2
	median = s[m]
	if len(s)%2 == 0 {
		median = (s[m-1] + s[m]) / 2
	}
	p90 = s[int(math.Ceil(0.9*float64(len(s))))-1]
	return median, p90
}

// gosvShare returns gosv's own part of one restart in milliseconds: from
// wait4 returning the dead pid to gosv starting the new child (clone,
// after which the child calls execve at once).
//
// gosv writes, with GOSV_TRACE=FILE, one event per line:
//
//	ev=reap pid=OLDPID t=UNIXNANOS [via=pidfd]   wait4 (or waitid on its pidfd) returned the dead run
//	ev=fork pid=NEWPID t=UNIXNANOS   just before clone of the new run
//	ev=exec pid=NEWPID t=UNIXNANOS   the new run's execve had succeeded
//
// fork − reap is gosv's share; exec − fork is the kernel's clone + execve of
// the run script, which every supervisor pays (see the baseline row), and
// gosv more with many services (see gosvExec). Older
// traces without fork fall back to exec. It returns NaN when the file or an
// event is missing, which the report prints as "n/a".
func gosvShare(trace string, oldPID, newPID int) float64 {
	reap, fork, exec := traceTimes(trace, oldPID, newPID)
	if fork == 0 {
		fork = exec
	}
	if reap == 0 || fork == 0 {
		return math.NaN()
	}
	return float64(fork-reap) / 1e6
}

// gosvReap returns the time from the kill (killAt, CLOCK_REALTIME
// nanoseconds, the trace's clock) to gosv's reap of oldPID in
// milliseconds: the kernel's exit, the scanner's wakeup and its wait.
// NaN without the reap event.
func gosvReap(trace string, oldPID int, killAt int64) float64 {
	reap, _, _ := traceTimes(trace, oldPID, -1)
	if reap == 0 {
		return math.NaN()
	}
	return float64(reap-killAt) / 1e6
}

// gosvExec returns exec − fork of the new run in milliseconds: clone and
// execve. It grows with the number of file descriptors the scanner holds
// (the child's copy of the table is closed at execve), which a
// supervisor with one process per service does not pay. NaN without both
// events.
func gosvExec(trace string, newPID int) float64 {
	_, fork, exec := traceTimes(trace, -1, newPID)
	if fork == 0 || exec == 0 {
		return math.NaN()
	}
	return float64(exec-fork) / 1e6
}

// traceTimes reads the reap of oldPID and the fork and exec of newPID
// from a GOSV_TRACE file; missing events are 0.
func traceTimes(trace string, oldPID, newPID int) (reap, fork, exec int64) {
	if trace == "" {
		return
	}
	f, err := os.Open(trace)
	if err != nil {
		return
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		kv := map[string]string{}
		for _, field := range strings.Fields(sc.Text()) {
			if k, v, ok := strings.Cut(field, "="); ok {
				kv[k] = v
			}
		}
		t, err := strconv.ParseInt(kv["t"], 10, 64)
		if err != nil {
			continue
		}
		switch {
		case kv["ev"] == "reap" && kv["pid"] == strconv.Itoa(oldPID):
			reap = t
		case kv["ev"] == "fork" && kv["pid"] == strconv.Itoa(newPID):
			fork = t
		case kv["ev"] == "exec" && kv["pid"] == strconv.Itoa(newPID):
			exec = t
		}
	}
	return
}
