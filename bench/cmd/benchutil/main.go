package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/bench/internal/inwait"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: benchutil waitsize|bringup|procs|report|logcpu [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "waitsize":
		err = waitSize(os.Args[2:])
	case "bringup":
		err = bringup(os.Args[2:])
	case "procs":
		err = procs(os.Args[2:])
	case "report":
		err = report(os.Args[2:])
	case "logcpu":
		err = logCPU(os.Args[2:])
	default:
		err = fmt.Errorf("unknown subcommand %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "benchutil %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

func waitSize(args []string) error {
	fs := flag.NewFlagSet("waitsize", flag.ExitOnError)
	file := fs.String("file", "", "file to watch")
	size := fs.Int64("bytes", 1, "size to wait for")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline")
	fs.Parse(args)
	start := time.Now()
	at, err := inwait.WaitSize(*file, *size, start.Add(*timeout))
	if err != nil {
		return err
	}
	fmt.Printf("ms=%.1f\n", ms(at.Sub(start)))
	return nil
}

func bringup(args []string) error {
	fs := flag.NewFlagSet("bringup", flag.ExitOnError)
	marker := fs.String("marker", "", "file every service appends to when it starts (must exist, empty)")
	n := fs.Int("n", 100, "number of services")
	per := fs.Int64("bytes-per", 2, "bytes each service appends")
	from := fs.String("from", "", "directory whose entries are symlinked into -to (optional)")
	to := fs.String("to", "", "scan directory")
	spawn := fs.String("spawn", "", "no supervisor: start DIR/*/run directly (the baseline)")
	timeout := fs.Duration("timeout", 60*time.Second, "deadline")
	fs.Parse(args)
	trigger := fs.Args()
	var spawnNames []string
	if *spawn != "" {
		ents, err := os.ReadDir(*spawn)
		if err != nil {
			return err
		}
		for _, e := range ents {
			spawnNames = append(spawnNames, filepath.Join(*spawn, e.Name(), "run"))
		}
		sort.Strings(spawnNames)
	}
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()

	var names []string
	if *from != "" {
		ents, err := os.ReadDir(*from)
		if err != nil {
			return err
		}
		for _, e := range ents {
			names = append(names, e.Name())
		}
		sort.Strings(names)
	}
	w, err := inwait.New()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(*marker, unix.IN_MODIFY); err != nil {
		return err
	}
	if st, err := os.Stat(*marker); err != nil || st.Size() != 0 {
		return fmt.Errorf("marker %s must exist and be empty (%v)", *marker, err)
	}

	start := time.Now()
	for _, name := range names {
		if err := os.Symlink(filepath.Join(*from, name), filepath.Join(*to, name)); err != nil {
			return err
		}
	}
	for _, run := range spawnNames {
		p, err := os.StartProcess(run, []string{run}, &os.ProcAttr{Files: []*os.File{null, null, null}})
		if err != nil {
			return err
		}
		// Left running: the trial's PID namespace ends them all.
		p.Release()
	}
	linked := time.Now()
	var cmd *exec.Cmd
	if len(trigger) > 0 {
		cmd = exec.Command(trigger[0], trigger[1:]...)
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			return err
		}
	}
	deadline := start.Add(*timeout)
	want := int64(*n) * *per
	var first, last time.Time
	for {
		st, err := os.Stat(*marker)
		if err != nil {
			return err
		}
		now := time.Now()
		if st.Size() > 0 && first.IsZero() {
			first = now
		}
		if st.Size() >= want {
			last = now
			break
		}
		if _, err := w.Wait(deadline); err != nil {
			return fmt.Errorf("%d of %d services started: %w", st.Size() / *per, *n, err)
		}
	}
	fmt.Printf("ms=%.1f first_ms=%.1f link_ms=%.2f\n", ms(last.Sub(start)), ms(first.Sub(start)), ms(linked.Sub(start)))
	if cmd != nil {
		// The trigger (s6-svscanctl, supervisorctl) has done its job; reap it.
		if err := cmd.Wait(); err != nil {
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				return err
			}
			fmt.Fprintf(os.Stderr, "benchutil bringup: trigger %v: %v\n", trigger, err)
		}
	}
	return nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// procs sums memory and context switches over the processes named by comm.
func procs(args []string) error {
	fs := flag.NewFlagSet("procs", flag.ExitOnError)
	comms := fs.String("comm", "", "comma-separated process names (/proc/PID/comm, 15 chars)")
	fs.Parse(args)
	want := map[string]bool{}
	for _, c := range strings.Split(*comms, ",") {
		if len(c) > 15 {
			c = c[:15] // the kernel truncates comm to TASK_COMM_LEN-1
		}
		want[c] = true
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	var n, threads, pss, vol, nonvol int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		dir := filepath.Join("/proc", e.Name())
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || !want[strings.TrimSuffix(string(comm), "\n")] {
			continue // gone, or not one of the supervisor's own processes
		}
		kib, err := field(filepath.Join(dir, "smaps_rollup"), "Pss:")
		if err != nil {
			return err
		}
		tasks, err := os.ReadDir(filepath.Join(dir, "task"))
		if err != nil {
			return err
		}
		for _, t := range tasks {
			status := filepath.Join(dir, "task", t.Name(), "status")
			v, err := field(status, "voluntary_ctxt_switches:")
			if err != nil {
				return err
			}
			nv, err := field(status, "nonvoluntary_ctxt_switches:")
			if err != nil {
				return err
			}
			vol += v
			nonvol += nv
			threads++
		}
		n++
		pss += kib
	}
	fmt.Printf("procs=%d threads=%d pss_kib=%d vol=%d nonvol=%d\n", n, threads, pss, vol, nonvol)
	return nil
}

// field returns the first number after the line prefix key in a /proc file.
func field(path, key string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, key); ok {
			f := strings.Fields(rest)
			if len(f) == 0 {
				break
			}
			return strconv.ParseInt(f[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %q line", path, key)
}
