// Command sdflood measures what an sd_notify flood costs the scanner
// (issue 9, defect 8): it sends datagrams to an sd_notify socket as fast
// as it can for a while, as another user, and reports how many it sent
// and how much CPU the scanner used meanwhile.
//
//	sdflood -socket PATH -pid SCANNERPID [-uid 65534] [-for 1.5s] [-msg 'READY=1']
//
// Output, one line: "sent=N seconds=S scanner_cpu_pct=P". The CPU figure
// is the scanner's utime+stime delta (/proc/PID/stat fields 14 and 15)
// over the wall time of the flood.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// clockTicks is sysconf(_SC_CLK_TCK), 100 on every Linux Go supports.
const clockTicks = 100

func main() {
	sock := flag.String("socket", "", "sd_notify socket path")
	pid := flag.Int("pid", 0, "scanner pid whose CPU time is measured")
	uid := flag.Int("uid", 65534, "send as this uid and gid (when root); -1: as is")
	dur := flag.Duration("for", 1500*time.Millisecond, "flood duration")
	msg := flag.String("msg", "READY=1\nSTATUS=flood", "datagram content")
	flag.Parse()
	if *sock == "" || *pid <= 0 {
		flag.Usage()
		os.Exit(100)
	}
	if err := run(*sock, *pid, *uid, *dur, []byte(*msg)); err != nil {
		fmt.Fprintln(os.Stderr, "sdflood:", err)
		os.Exit(111)
	}
}

func run(sock string, pid, uid int, dur time.Duration, msg []byte) error {
	if uid >= 0 && os.Getuid() == 0 {
		// NOTE: setgid first, while still root.
		if err := unix.Setgid(uid); err != nil {
			return err
		}
		if err := unix.Setuid(uid); err != nil {
			return err
		}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	to := &unix.SockaddrUnix{Name: sock}
	before, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	start := time.Now()
	end := start.Add(dur)
	sent := 0
	for time.Now().Before(end) {
		for range 64 {
			if err := unix.Sendto(fd, msg, 0, to); err != nil {
				return fmt.Errorf("sendto %s: %w", sock, err)
			}
			sent++
		}
	}
	wall := time.Since(start)
	after, err := cpuTicks(pid)
	if err != nil {
		return err
	}
	pct := float64(after-before) / clockTicks / wall.Seconds() * 100
	fmt.Printf("sent=%d seconds=%.2f scanner_cpu_pct=%.0f\n", sent, wall.Seconds(), pct)
	return nil
}

// cpuTicks returns utime+stime of pid in clock ticks.
func cpuTicks(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(b, ')')
	f := bytes.Fields(b[i+1:])
	// fields after ')' start at field 3: utime is 14, stime 15.
	if len(f) < 13 {
		return 0, fmt.Errorf("short /proc/%d/stat", pid)
	}
	u, err1 := strconv.ParseUint(string(f[11]), 10, 64)
	s, err2 := strconv.ParseUint(string(f[12]), 10, 64)
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("bad /proc/%d/stat", pid)
	}
	return u + s, nil
}
