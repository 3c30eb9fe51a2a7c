// Command logbench measures logging throughput and the memory of idle
// in-process loggers, for bench/logging.sh (see bench/README.md,
// "logging").
//
//	logbench spew BYTES          write BYTES of 60-byte lines to stdout, then "END", then pause
//	logbench pipe -bytes N -dir D -- LOGGER ARGS...
//	                             time `spew N | LOGGER ARGS... D` until the logger exits
//	logbench svscan -gosv BIN -bytes N -dir D
//	                             time a gosv svscan service with a log-script until "END" is logged
//	logbench idle -gosv BIN -n 100 -dir D
//	                             PSS of gosv svscan with n idle services, with and without log-script
package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdwait"
)

// lineLen is the benchmark's line: 59 bytes and a newline, as the issue's
// "60-byte lines".
const lineLen = 60

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	var err error
	switch os.Args[1] {
	case "spew":
		err = spew(os.Args[2:])
	case "pause":
		unix.Pause()
	case "pipe":
		err = pipeBench(os.Args[2:])
	case "svscan":
		err = svscanBench(os.Args[2:])
	case "idle":
		err = idleBench(os.Args[2:])
	default:
		usage()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "logbench:", err)
		os.Exit(1)
	}
}

func usage() {
	fmt.Fprintln(os.Stderr, "usage: logbench spew BYTES | pipe ... | svscan ... | idle ...")
	os.Exit(100)
}

// lines is 1024 lines of lineLen bytes: one write.
func lines() []byte {
	var b bytes.Buffer
	for i := range 1024 {
		fmt.Fprintf(&b, "%-*s\n", lineLen-1, fmt.Sprintf("service message %06d: something happened, details follow", i))
	}
	return b.Bytes()
}

// spew writes at least BYTES of lines, "END", then waits for a signal (a
// supervised service that ended would be restarted and log again).
func spew(args []string) error {
	if len(args) != 1 {
		usage()
	}
	total, err := strconv.ParseInt(args[0], 10, 64)
	if err != nil {
		return err
	}
	buf := lines()
	for done := int64(0); done < total; done += int64(len(buf)) {
		if _, err := os.Stdout.Write(buf); err != nil {
			return err
		}
	}
	os.Stdout.Write([]byte("END\n"))
	if os.Getenv("LOGBENCH_PAUSE") != "" {
		unix.Pause()
	}
	return nil
}

// rounded is the byte count spew really writes for a request.
func rounded(total int64) int64 {
	per := int64(len(lines()))
	return (total + per - 1) / per * per
}

type flags struct {
	bytes int64
	dir   string
	gosv  string
	n     int
	rest  []string
}

func parseFlags(args []string) (flags, error) {
	f := flags{bytes: 500 << 20, n: 100, gosv: "gosv"}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			f.rest = args[i+1:]
			break
		}
		if i+1 >= len(args) {
			return f, fmt.Errorf("%s needs a value", a)
		}
		v := args[i+1]
		i++
		var err error
		switch a {
		case "-bytes":
			f.bytes, err = strconv.ParseInt(v, 10, 64)
		case "-dir":
			f.dir = v
		case "-gosv":
			f.gosv = v
		case "-n":
			f.n, err = strconv.Atoi(v)
		default:
			return f, fmt.Errorf("unknown flag %s", a)
		}
		if err != nil {
			return f, err
		}
	}
	return f, nil
}

// result prints one tab-separated row: bytes, seconds, lines/s, MB/s, and
// the logger's CPU seconds (user+system) when known.
func result(name string, n int64, d time.Duration, cpu time.Duration) {
	s := d.Seconds()
	fmt.Printf("%s\t%d\t%.3f\t%.0f\t%.1f\t%.2f\n", name, n, s, float64(n/lineLen)/s, float64(n)/s/1e6, cpu.Seconds())
}

// pipeBench runs spew | LOGGER and times it until the logger exits.
func pipeBench(args []string) error {
	f, err := parseFlags(args)
	if err != nil || len(f.rest) == 0 || f.dir == "" {
		return fmt.Errorf("pipe -bytes N -dir D -- LOGGER ARGS...: %v", err)
	}
	if err := os.MkdirAll(f.dir, 0o700); err != nil { // svlogd wants it to exist
		return err
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	logger := exec.Command(f.rest[0], append(f.rest[1:], f.dir)...)
	logger.Stdin, logger.Stderr = r, os.Stderr
	self, _ := os.Executable()
	writer := exec.Command(self, "spew", strconv.FormatInt(f.bytes, 10))
	writer.Stdout, writer.Stderr = w, os.Stderr
	start := time.Now()
	if err := logger.Start(); err != nil {
		return err
	}
	if err := writer.Start(); err != nil {
		return err
	}
	r.Close()
	w.Close()
	werr := writer.Wait()
	lerr := logger.Wait()
	d := time.Since(start)
	if werr != nil || lerr != nil {
		return fmt.Errorf("writer %v, logger %v", werr, lerr)
	}
	if err := checkEnd(f.dir); err != nil {
		return err
	}
	ru := logger.ProcessState.SysUsage().(*syscall.Rusage)
	result(filepath.Base(f.rest[0]), rounded(f.bytes), d, cpuOf(ru))
	return nil
}

func cpuOf(ru *syscall.Rusage) time.Duration {
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// checkEnd makes sure the logger really wrote everything: current ends
// with the END line.
func checkEnd(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, "current"))
	if err != nil {
		return err
	}
	if !bytes.HasSuffix(b, []byte("END\n")) {
		return fmt.Errorf("%s/current does not end with END", dir)
	}
	return nil
}

// svscanBench runs gosv svscan with one service that spews into an
// in-process logger, and times it until END is in the log.
func svscanBench(args []string) error {
	f, err := parseFlags(args)
	if err != nil || f.dir == "" {
		return fmt.Errorf("svscan -gosv BIN -bytes N -dir D: %v", err)
	}
	scan, logDir := filepath.Join(f.dir, "scan"), filepath.Join(f.dir, "log")
	self, _ := os.Executable()
	if err := writeService(filepath.Join(scan, "spew"),
		fmt.Sprintf("#!/bin/sh\nLOGBENCH_PAUSE=1 exec %s spew %d\n", self, f.bytes),
		fmt.Sprintf("t s16777215 n1000 %s\n", logDir)); err != nil {
		return err
	}
	if err := os.MkdirAll(logDir, 0o700); err != nil {
		return err
	}
	ino, err := watch(logDir)
	if err != nil {
		return err
	}
	defer unix.Close(ino)
	sv := exec.Command(f.gosv, "svscan", scan)
	sv.Stderr = os.Stderr
	start := time.Now()
	if err := sv.Start(); err != nil {
		return err
	}
	defer stopScanner(f.gosv, scan, sv)
	if err := waitEnd(ino, logDir, 10*time.Minute); err != nil {
		return err
	}
	d := time.Since(start)
	result("gosv-in-process", rounded(f.bytes), d, 0)
	return nil
}

func writeService(dir, run, logScript string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dir, "run"), []byte(run), 0o755); err != nil {
		return err
	}
	if logScript == "" {
		return nil
	}
	return os.WriteFile(filepath.Join(dir, "log-script"), []byte(logScript), 0o644)
}

func stopScanner(gosv, scan string, sv *exec.Cmd) {
	exec.Command(gosv, "svscanctl", "-t", scan).Run()
	sv.Wait()
}

func watch(dir string) (int, error) {
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return -1, err
	}
	if _, err := unix.InotifyAddWatch(ino, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		unix.Close(ino)
		return -1, err
	}
	return ino, nil
}

// waitEnd waits on inotify until current ends with END.
func waitEnd(ino int, dir string, limit time.Duration) error {
	if waitFor(ino, limit, func() bool { return endsWithEnd(filepath.Join(dir, "current")) }) != nil {
		return fmt.Errorf("END never logged in %s", dir)
	}
	return nil
}

func endsWithEnd(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil || fi.Size() < 4 {
		return false
	}
	b := make([]byte, 4)
	f.ReadAt(b, fi.Size()-4)
	return string(b) == "END\n"
}

// idleBench measures the PSS of gosv svscan with n idle services, each
// with an in-process logger, and without, and prints the difference per
// service.
func idleBench(args []string) error {
	f, err := parseFlags(args)
	if err != nil || f.dir == "" {
		return fmt.Errorf("idle -gosv BIN -n N -dir D: %v", err)
	}
	var pss [2]int64
	for i, logged := range []bool{false, true} {
		if pss[i], err = idlePSS(f, logged); err != nil {
			return err
		}
	}
	per := float64(pss[1]-pss[0]) / float64(f.n)
	fmt.Printf("idle\t%d\t%d\t%d\t%.1f\n", f.n, pss[0], pss[1], per)
	return nil
}

// idlePSS starts gosv svscan with n services that print one line and
// pause, waits until every log (or every service) is up, and returns the
// scanner's PSS in KiB.
func idlePSS(f flags, logged bool) (int64, error) {
	base := filepath.Join(f.dir, fmt.Sprintf("idle-%v", logged))
	scan := filepath.Join(base, "scan")
	self, _ := os.Executable()
	if err := os.MkdirAll(base, 0o755); err != nil {
		return 0, err
	}
	var dirs []string
	for i := range f.n {
		name := fmt.Sprintf("svc%03d", i)
		script := ""
		if logged {
			script = fmt.Sprintf("t s1048576 n10 %s\n", filepath.Join(base, "log", name))
			if err := os.MkdirAll(filepath.Join(base, "log", name), 0o700); err != nil {
				return 0, err
			}
		}
		run := fmt.Sprintf("#!/bin/sh\necho started\necho x >> %s\nexec %s pause\n", filepath.Join(base, "marker"), self)
		if err := writeService(filepath.Join(scan, name), run, script); err != nil {
			return 0, err
		}
		dirs = append(dirs, filepath.Join(scan, name))
	}
	ino, err := watch(base)
	if err != nil {
		return 0, err
	}
	sv := exec.Command(f.gosv, "svscan", scan)
	sv.Stderr = os.Stderr
	if err := sv.Start(); err != nil {
		unix.Close(ino)
		return 0, err
	}
	defer stopScanner(f.gosv, scan, sv)
	err = waitFor(ino, time.Minute, func() bool {
		b, _ := os.ReadFile(filepath.Join(base, "marker"))
		return bytes.Count(b, []byte("\n")) >= f.n
	})
	unix.Close(ino)
	if err != nil {
		return 0, fmt.Errorf("services not up: %w", err)
	}
	if logged {
		for _, d := range dirs {
			ino, err := watch(filepath.Join(base, "log", filepath.Base(d)))
			if err != nil {
				return 0, err
			}
			err = waitFor(ino, time.Minute, func() bool {
				b, err := os.ReadFile(filepath.Join(base, "log", filepath.Base(d), "current"))
				return err == nil && bytes.Contains(b, []byte("started"))
			})
			unix.Close(ino)
			if err != nil {
				return 0, err
			}
		}
	}
	return pssKiB(sv.Process.Pid)
}

// waitFor waits on inotify events until cond holds.
func waitFor(ino int, limit time.Duration, cond func() bool) error {
	deadline := time.Now().Add(limit)
	buf := make([]byte, 64<<10)
	for !cond() {
		if !time.Now().Before(deadline) {
			return fmt.Errorf("timed out after %v", limit)
		}
		if fdwait.Readable(ino, deadline) {
			unix.Read(ino, buf)
		}
	}
	return nil
}

func pssKiB(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/smaps_rollup", pid))
	if err != nil {
		return 0, err
	}
	for _, ln := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(ln, "Pss:"); ok {
			return strconv.ParseInt(strings.Fields(rest)[0], 10, 64)
		}
	}
	return 0, fmt.Errorf("no Pss in smaps_rollup of %d", pid)
}
