// Command forklat measures the restart latency of a supervised service
// after a SIGKILL of its process: from the kill to the new process being
// up and ready (for a forking daemon: launcher spawned, exited, pidfile
// written and its daemon found), as a client subscribed to the service's
// events sees it. It runs where the service directory is (bench/openrc.sh
// runs it inside its namespace).
//
// Usage:
//
//	forklat -n 20 -min-up 1100ms DIR [LABEL]
//
// Before each kill it waits until the process has been up for -min-up, so
// that the supervisor's crash-loop throttle (one spawn per second) is not
// what is measured. Output: one line "LABEL n=N median=MS p90=MS min=MS".
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

func main() {
	n := flag.Int("n", 20, "samples")
	minUp := flag.Duration("min-up", 1100*time.Millisecond, "kill only after the process has been up this long")
	timeout := flag.Duration("timeout", 10*time.Second, "deadline of each restart")
	flag.Parse()
	if flag.NArg() < 1 {
		fmt.Fprintln(os.Stderr, "usage: forklat [-n N] [-min-up D] DIR [LABEL]")
		os.Exit(100)
	}
	dir, label := flag.Arg(0), flag.Arg(0)
	if flag.NArg() > 1 {
		label = flag.Arg(1)
	}
	var ms []float64
	for i := 0; i < *n; i++ {
		d, err := sample(dir, *minUp, *timeout)
		if err != nil {
			fmt.Fprintf(os.Stderr, "forklat: sample %d: %v\n", i, err)
			os.Exit(1)
		}
		ms = append(ms, float64(d.Microseconds())/1000)
	}
	slices.Sort(ms)
	p90 := ms[min(len(ms)-1, (len(ms)*9+9)/10-1)]
	fmt.Printf("%s n=%d median=%.1f p90=%.1f min=%.1f\n", label, len(ms), median(ms), p90, ms[0])
}

// sample kills the service's process once it has been up for minUp and
// returns the time until it is up and ready again with another pid.
func sample(dir string, minUp, timeout time.Duration) (time.Duration, error) {
	st, err := servicedir.ReadStatus(dir)
	if err != nil {
		return 0, err
	}
	if !st.Up() || !st.Ready {
		return 0, fmt.Errorf("%s is not up and ready: %+v", dir, st)
	}
	// NOTE: a timer, not a poll: the throttle is a fixed interval.
	if left := minUp - time.Since(st.Stamp); left > 0 {
		<-time.After(left)
	}
	w, err := svwait.Listen([]string{dir}, svwait.RestartReady, svwait.All)
	if err != nil {
		return 0, err
	}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	t0 := time.Now()
	if err := unix.Kill(int(st.Pid), unix.SIGKILL); err != nil {
		return 0, err
	}
	if err := w.Wait(ctx); err != nil {
		return 0, err
	}
	d := time.Since(t0)
	after, err := servicedir.ReadStatus(dir)
	if err != nil {
		return 0, err
	}
	if after.Pid == st.Pid {
		return 0, errors.New("ready again with the same pid")
	}
	return d, nil
}

func median(s []float64) float64 {
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
