package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/bench/internal/inwait"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// warmup samples per system are taken and dropped: the first spawns pay
// for cold page caches.
const warmup = 3

// system is one supervision suite under test.
type system struct {
	name    string
	scanner []string // argv before the scan directory
	svc     string   // s6-svc or "gosv svc"
	waiter  []string // argv before the service directory; nil: package svwait in readylat

	base, scandir, dir, trigger, stamp string
	proc                               *exec.Cmd
	samples                            []float64 // milliseconds
	// With -diag: a listener of readylat's own, and per sample the time
	// from the stamp to its 'U' (the supervisor's part) and from there to
	// the waiter's exit (the waiter's part).
	diag          *servicedir.Subscription
	notify, after []float64
}

func main() {
	dir := flag.String("dir", "", "work directory (on the file system under test)")
	gosv := flag.String("gosv", "gosv", "the gosv binary (named gosv)")
	n := flag.Int("n", 40, "samples per system")
	timeout := flag.Duration("timeout", 30*time.Second, "deadline of each step")
	fs := flag.String("fs", "", "label of the file system, for the output")
	diag := flag.Bool("diag", false, "also listen to event/ and split each sample at the 'U' (adds a listener)")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "readylat: -dir is required")
		os.Exit(2)
	}
	systems := []*system{
		{name: "gosv", scanner: []string{*gosv, "svscan"}, svc: *gosv + " svc", waiter: []string{*gosv, "svwait", "-U", "-t", "20000"}},
		{name: "s6", scanner: []string{"s6-svscan"}, svc: "s6-svc", waiter: []string{"s6-svwait", "-U", "-t", "20000"}},
		// The library row: gosv svscan, and svwait.Wait in this process.
		{name: "gosv-lib", scanner: []string{*gosv, "svscan"}, svc: *gosv + " svc"},
	}
	if err := run(*dir, systems, *n, *timeout, *diag); err != nil {
		fmt.Fprintln(os.Stderr, "readylat:", err)
		os.Exit(1)
	}
	report(*fs, systems)
}

func run(dir string, systems []*system, n int, timeout time.Duration, diag bool) error {
	for _, s := range systems {
		if err := s.start(dir, timeout); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
		defer s.stop(timeout)
		if diag {
			sub, err := servicedir.Subscribe(s.dir)
			if err != nil {
				return err
			}
			defer sub.Close()
			s.diag = sub
		}
	}
	// Interleaved, so that both systems see the same machine state.
	for i := range warmup + n {
		for _, s := range systems {
			ms, err := s.sample(timeout)
			if err != nil {
				return fmt.Errorf("%s sample %d: %w", s.name, i, err)
			}
			if i >= warmup {
				s.samples = append(s.samples, ms)
			}
		}
	}
	return nil
}

// runScript is the service: bash, so that the stamp costs no fork.
const runScript = `#!/bin/bash
read -r _ < %[1]s
t=$EPOCHREALTIME
echo >&3
echo "$t" > %[2]s
exec sleep 1000000
`

// start builds the scan directory and starts the scanner; it returns once
// the service's supervisor has announced itself ('s').
func (s *system) start(dir string, timeout time.Duration) error {
	s.base = filepath.Join(dir, s.name)
	s.scandir = filepath.Join(s.base, "scan")
	s.dir = filepath.Join(s.scandir, "svc")
	s.trigger, s.stamp = filepath.Join(s.base, "trigger"), filepath.Join(s.base, "stamp")
	if err := os.MkdirAll(s.dir, 0o755); err != nil {
		return err
	}
	for _, f := range []string{s.trigger, s.stamp} {
		if err := unix.Mkfifo(f, 0o600); err != nil {
			return &os.PathError{Op: "mkfifo", Path: f, Err: err}
		}
	}
	files := map[string]string{
		"run":             fmt.Sprintf(runScript, s.trigger, s.stamp),
		"notification-fd": "3\n",
		"down":            "",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(content), 0o755); err != nil {
			return err
		}
	}
	sub, err := servicedir.Subscribe(s.dir)
	if err != nil {
		return err
	}
	defer sub.Close()
	s.proc = exec.Command(s.scanner[0], append(s.scanner[1:], s.scandir)...)
	s.proc.Stdout, s.proc.Stderr = os.Stderr, os.Stderr
	if err := s.proc.Start(); err != nil {
		return err
	}
	sub.File.SetReadDeadline(time.Now().Add(timeout))
	var b [1]byte
	for b[0] != 's' {
		if _, err := sub.File.Read(b[:]); err != nil {
			return fmt.Errorf("waiting for the supervisor to start: %w", err)
		}
	}
	return nil
}

// stop ends the scanner (svscanctl -t) and reaps it.
func (s *system) stop(timeout time.Duration) {
	ctl := "s6-svscanctl"
	if strings.HasPrefix(s.name, "gosv") {
		ctl = strings.TrimSuffix(s.svc, " svc") + " svscanctl"
	}
	if err := sh(ctl + " -t " + s.scandir); err != nil {
		s.proc.Process.Kill()
	}
	done := make(chan struct{})
	go func() { s.proc.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		s.proc.Process.Kill()
		<-done
	}
}

// sample takes one measurement, in milliseconds.
func (s *system) sample(timeout time.Duration) (float64, error) {
	deadline := time.Now().Add(timeout)
	if err := sh(s.svc + " -u " + s.dir); err != nil {
		return 0, err
	}
	wait := s.startProcess
	if s.waiter == nil {
		wait = s.startLibrary
	}
	done, err := wait(deadline)
	if err != nil {
		return 0, err
	}
	ready := make(chan time.Time, 1)
	if s.diag != nil {
		go func() { ready <- readU(s.diag, deadline) }()
	}
	if err := bounded(deadline, func() error { return os.WriteFile(s.trigger, []byte("go\n"), 0o600) }); err != nil {
		return 0, fmt.Errorf("trigger: %w", err)
	}
	r := <-done
	if r.err != nil {
		return 0, r.err
	}
	var line string
	if err := bounded(deadline, func() (err error) { line, err = readLine(s.stamp); return err }); err != nil {
		return 0, fmt.Errorf("stamp: %w", err)
	}
	t0, err := parseEpoch(line)
	if err != nil {
		return 0, fmt.Errorf("stamp %q: %w", line, err)
	}
	if s.diag != nil {
		tu := <-ready
		s.notify = append(s.notify, float64(tu.UnixNano()-t0)/1e6)
		s.after = append(s.after, float64(r.t1.Sub(tu))/1e6)
	}
	if err := sh(s.svc + " -wD -T " + strconv.FormatInt(timeout.Milliseconds(), 10) + " -d " + s.dir); err != nil {
		return 0, err
	}
	return float64(r.t1.UnixNano()-t0) / 1e6, nil
}

// waited is the end of a wait: when it returned, and how.
type waited struct {
	t1  time.Time
	err error
}

// startProcess starts the waiter program and returns once it has
// subscribed (its listener fifo is in event/); done gets the time it
// exited (after waitid).
func (s *system) startProcess(deadline time.Time) (<-chan waited, error) {
	w, err := inwait.New()
	if err != nil {
		return nil, err
	}
	defer w.Close()
	if err := w.Add(filepath.Join(s.dir, servicedir.EventDir), unix.IN_MOVED_TO); err != nil {
		return nil, err
	}
	waiter := exec.Command(s.waiter[0], append(s.waiter[1:], s.dir)...)
	waiter.Stderr = os.Stderr
	if err := waiter.Start(); err != nil {
		return nil, err
	}
	if err := subscribed(w, deadline); err != nil {
		waiter.Process.Kill()
		waiter.Wait()
		return nil, err
	}
	done := make(chan waited, 1)
	go func() {
		err := waiter.Wait()
		t1 := time.Now()
		if err != nil {
			err = fmt.Errorf("%s: %w", strings.Join(waiter.Args, " "), err)
		}
		done <- waited{t1, err}
	}()
	return done, nil
}

// startLibrary waits in this process with package svwait, as the OpenRC
// backend does: no process start or exit in the measured path.
func (s *system) startLibrary(deadline time.Time) (<-chan waited, error) {
	w, err := svwait.Listen([]string{s.dir}, svwait.UpReady, svwait.All)
	if err != nil {
		return nil, err
	}
	w.Deadline = deadline
	done := make(chan waited, 1)
	go func() {
		err := w.Wait(context.Background())
		t1 := time.Now()
		w.Close()
		done <- waited{t1, err}
	}()
	return done, nil
}

// readU reads sub until a 'U' and returns when it arrived (zero on error).
func readU(sub *servicedir.Subscription, deadline time.Time) time.Time {
	sub.File.SetReadDeadline(deadline)
	var buf [64]byte
	for {
		n, err := sub.File.Read(buf[:])
		if err != nil {
			return time.Time{}
		}
		if slices.Contains(buf[:n], 'U') {
			return time.Now()
		}
	}
}

// subscribed waits until a listener fifo is renamed into event/.
func subscribed(w *inwait.Watcher, deadline time.Time) error {
	for {
		evs, err := w.Wait(deadline)
		if err != nil {
			return fmt.Errorf("waiting for the waiter to subscribe: %w", err)
		}
		for _, ev := range evs {
			if strings.HasPrefix(ev.Name, "ftrig1:@") {
				return nil
			}
		}
	}
}

// bounded runs a blocking fifo operation with a deadline. On timeout the
// goroutine is left blocked: readylat then exits with an error anyway.
func bounded(deadline time.Time, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-time.After(time.Until(deadline)):
		return errors.New("deadline exceeded")
	}
}

func readLine(fifo string) (string, error) {
	f, err := os.Open(fifo)
	if err != nil {
		return "", err
	}
	defer f.Close()
	line, err := bufio.NewReader(f).ReadString('\n')
	return strings.TrimSpace(line), err
}

func sh(cmdline string) error {
	f := strings.Fields(cmdline)
	c := exec.Command(f[0], f[1:]...)
	c.Stdout, c.Stderr = os.Stderr, os.Stderr
	if err := c.Run(); err != nil {
		return fmt.Errorf("%s: %w", cmdline, err)
	}
	return nil
}

// parseEpoch parses bash's $EPOCHREALTIME ("SECONDS.MICROS") exactly, in
// nanoseconds.
func parseEpoch(s string) (int64, error) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return 0, err
	}
	frac = (frac + "000000000")[:9]
	ns, err := strconv.ParseInt(frac, 10, 64)
	if err != nil {
		return 0, err
	}
	return secs*1e9 + ns, nil
}

// quantile is the nearest-rank quantile of sorted xs; q 0.5 is the median
// (the mean of the middle two for an even count).
func quantile(sorted []float64, q float64) float64 {
	if q == 0.5 && len(sorted)%2 == 0 {
		m := len(sorted) / 2
		return (sorted[m-1] + sorted[m]) / 2
	}
	return sorted[max(0, int(math.Ceil(q*float64(len(sorted))))-1)]
}

// report prints one tab-separated line per system:
// fs system n median p10 p90 min max (milliseconds), then the ratio.
func report(fs string, systems []*system) {
	med := map[string]float64{}
	for _, s := range systems {
		x := slices.Sorted(slices.Values(s.samples))
		med[s.name] = quantile(x, 0.5)
		fmt.Printf("%s\t%s\t%d\t%.3f\t%.3f\t%.3f\t%.3f\t%.3f", fs, s.name, len(x),
			quantile(x, 0.5), quantile(x, 0.1), quantile(x, 0.9), x[0], x[len(x)-1])
		if len(s.notify) > 0 {
			fmt.Printf("\tnotify_median_ms=%.3f\twaiter_median_ms=%.3f",
				quantile(slices.Sorted(slices.Values(s.notify)), 0.5), quantile(slices.Sorted(slices.Values(s.after)), 0.5))
		}
		fmt.Println()
	}
	for _, s := range systems {
		if s.name != "s6" {
			fmt.Printf("%s\t%s/s6\tratio\t%.2f\n", fs, s.name, med[s.name]/med["s6"])
		}
	}
}
