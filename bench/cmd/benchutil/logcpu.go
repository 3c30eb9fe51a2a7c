package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/bench/internal/inwait"
)

// logCPU measures the scanner's CPU time per line of an in-process logged
// service, one line per wakeup: it writes a line into the service's log
// pipe (opened through /proc/PID/fd/1 of the service, the same pipe), waits
// on inotify until the line is in the log's current, and only then writes
// the next. The CPU time is the sum of every thread's time on CPU
// (/proc/PID/task/*/schedstat, nanoseconds) across the lines.
func logCPU(args []string) error {
	fs := flag.NewFlagSet("logcpu", flag.ExitOnError)
	pidFile := fs.String("pidfile", "", "file the service writes its pid to (a line) when it starts")
	current := fs.String("current", "", "the service's log file (DIR/current)")
	scanner := fs.Int("scanner", 0, "pid of gosv svscan")
	n := fs.Int("n", 2000, "lines")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline for each step")
	fs.Parse(args)
	if *pidFile == "" || *current == "" || *scanner <= 0 {
		return fmt.Errorf("-pidfile, -current and -scanner are required")
	}
	if _, err := inwait.WaitSize(*pidFile, 2, time.Now().Add(*timeout)); err != nil {
		return err
	}
	b, err := os.ReadFile(*pidFile)
	if err != nil {
		return err
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil {
		return fmt.Errorf("%s: %v", *pidFile, err)
	}
	w, err := os.OpenFile(fmt.Sprintf("/proc/%d/fd/1", pid), os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer w.Close()
	// The service's first line ("started") makes current exist.
	if _, err := w.WriteString("started\n"); err != nil {
		return err
	}
	if err := waitExists(*current, time.Now().Add(*timeout)); err != nil {
		return err
	}
	iw, err := inwait.New()
	if err != nil {
		return err
	}
	defer iw.Close()
	if err := iw.Add(filepath.Dir(*current), unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return err
	}
	line := []byte(fmt.Sprintf("%-59s\n", "service message: something happened, details follow"))
	size := func() int64 {
		st, err := os.Stat(*current)
		if err != nil {
			return -1
		}
		return st.Size()
	}
	// Wait for "started", so that no earlier write is counted.
	if err := waitGrow(iw, size, 1, *timeout); err != nil {
		return err
	}
	cpu0, err := taskCPU(*scanner)
	if err != nil {
		return err
	}
	t0 := time.Now()
	for i := 0; i < *n; i++ {
		want := size() + int64(len(line)) // the stamp only adds
		if _, err := w.Write(line); err != nil {
			return err
		}
		if err := waitGrow(iw, size, want, *timeout); err != nil {
			return fmt.Errorf("line %d: %w", i, err)
		}
	}
	wall := time.Since(t0)
	cpu1, err := taskCPU(*scanner)
	if err != nil {
		return err
	}
	fmt.Printf("lines=%d cpu_us_per_line=%.2f rtt_us_per_line=%.1f\n", *n,
		float64(cpu1-cpu0)/1e3/float64(*n), float64(wall.Microseconds())/float64(*n))
	return nil
}

// waitGrow blocks on the directory watch until size() reaches want.
func waitGrow(iw *inwait.Watcher, size func() int64, want int64, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for size() < want {
		if _, err := iw.Wait(deadline); err != nil {
			return fmt.Errorf("log has %d bytes, want %d: %w", size(), want, err)
		}
	}
	return nil
}

// waitExists blocks until path exists (inotify on its directory).
func waitExists(path string, deadline time.Time) error {
	iw, err := inwait.New()
	if err != nil {
		return err
	}
	defer iw.Close()
	if err := iw.Add(filepath.Dir(path), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return err
	}
	for {
		if _, err := os.Stat(path); err == nil {
			return nil
		}
		if _, err := iw.Wait(deadline); err != nil {
			return fmt.Errorf("%s never appeared: %w", path, err)
		}
	}
}

// taskCPU sums the time on CPU (ns) of every thread of pid.
func taskCPU(pid int) (int64, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var sum int64
	for _, t := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, t.Name(), "schedstat"))
		if err != nil {
			continue // the thread exited: its time went with it
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			continue
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, err
		}
		sum += ns
	}
	return sum, nil
}
