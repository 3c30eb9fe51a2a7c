// Command svhelper is the service program of the integration tests: every
// run script in tests/testdata execs it in one of a few modes. It exists so
// that the tests depend on no system daemon (not even /bin/sleep) and so
// that each behaviour a supervisor must cope with is one small, named mode.
//
// Usage:
//
//	svhelper [-record FILE] MODE [ARGS]
//
// -record appends "PID\n" to FILE (relative to the service directory, the
// run script's cwd) before anything else, so that tests can count starts
// and find the process without scanning for names.
//
// Modes:
//
//	pause            block until killed; default signal dispositions
//	ready FD         write "\n" to FD (notification-fd readiness), then pause
//	ready-on-file FD FILE
//	                 pause; once FILE exists write "\n" to FD (the test makes
//	                 the service ready by creating FILE; a signal would be lost
//	                 if it came before the Go runtime subscribed to it)
//	forker N FD      ignore SIGTERM, start N children that ignore SIGTERM too
//	                 (same process group), write "\n" to FD once they are
//	                 started, then pause; only SIGKILL ends it
//	exit N           exit with status N at once
//	orphans N        start N children (/bin/true) in a burst, never wait
//	                 for them, print how many were started, and exit: they
//	                 become orphans (or orphaned zombies) of the reaper
//	talk N FD GATE   with -record FILE: write N lines "run K line J" (K: the
//	                 number of starts recorded in FILE, J: 1..N) to stdout,
//	                 one write each, notify readiness on FD, then wait for
//	                 a line on the fifo GATE (exit 1: a crash) or SIGTERM
//	                 (exit 0), writing "run K bye" first either way; the
//	                 fault-injection tests count every line in the logs
package main

import (
	"bufio"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintf(os.Stderr, "svhelper: fatal: %v\n", err)
		os.Exit(100)
	}
}

func run(args []string) error {
	recordFile := ""
	if len(args) >= 2 && args[0] == "-record" {
		if err := record(args[1]); err != nil {
			return err
		}
		recordFile, args = args[1], args[2:]
	}
	if len(args) == 0 {
		return fmt.Errorf("usage: svhelper [-record FILE] pause|ready FD|ready-on-file FD FILE|forker N FD|exit N")
	}
	mode, rest := args[0], args[1:]
	switch {
	case mode == "pause" && len(rest) == 0:
		pause()
	case mode == "ready" && len(rest) == 1:
		n, err := strconv.Atoi(rest[0])
		if err != nil {
			return err
		}
		if err := notify(n); err != nil {
			return err
		}
		pause()
	case mode == "ready-on-file" && len(rest) == 2:
		n, err := strconv.Atoi(rest[0])
		if err != nil {
			return err
		}
		return readyOnFile(n, rest[1])
	case mode == "forker" && len(rest) == 2:
		n, err := strconv.Atoi(rest[0])
		if err != nil {
			return err
		}
		fd, err := strconv.Atoi(rest[1])
		if err != nil {
			return err
		}
		return forker(n, fd)
	case mode == "orphans" && len(rest) == 1:
		n, err := strconv.Atoi(rest[0])
		if err != nil {
			return err
		}
		return orphans(n)
	case mode == "forker-child" && len(rest) == 0:
		ignoreTerm()
		pause()
	case mode == "talk" && len(rest) == 3 && recordFile != "":
		n, err := strconv.Atoi(rest[0])
		if err != nil {
			return err
		}
		fd, err := strconv.Atoi(rest[1])
		if err != nil {
			return err
		}
		return talk(recordFile, n, fd, rest[2])
	case mode == "exit" && len(rest) == 1:
		n, err := strconv.Atoi(rest[0])
		if err != nil {
			return err
		}
		os.Exit(n)
	}
	return fmt.Errorf("bad mode or arguments: %q", args)
}

func record(file string) error {
	f, err := os.OpenFile(file, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(f, "%d\n", os.Getpid()); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// pause blocks the process until a signal with a default "terminate"
// disposition ends it. NOTE: a raw pause(2) instead of select{}: the Go
// runtime reports a goroutine-less select{} as a deadlock and exits.
func pause() {
	for {
		unix.Pause()
	}
}

func notify(fd int) error {
	f := os.NewFile(uintptr(fd), "notification-fd")
	if _, err := f.Write([]byte("\n")); err != nil {
		return fmt.Errorf("write notification fd %d: %w", fd, err)
	}
	return f.Close()
}

// readyOnFile notifies readiness on fd once file exists. It watches the
// file's directory before looking for the file, so a file created at any
// time is seen.
func readyOnFile(fd int, file string) error {
	in, err := unix.InotifyInit1(unix.IN_CLOEXEC)
	if err != nil {
		return err
	}
	if _, err := unix.InotifyAddWatch(in, filepath.Dir(file), unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return fmt.Errorf("inotify %s: %w", filepath.Dir(file), err)
	}
	buf := make([]byte, 4096)
	for {
		if _, err := os.Stat(file); err == nil {
			break
		}
		// Blocking read: any creation in the directory wakes us up to look again.
		if _, err := unix.Read(in, buf); err != nil && err != unix.EINTR {
			return fmt.Errorf("read inotify: %w", err)
		}
	}
	unix.Close(in)
	if err := notify(fd); err != nil {
		return err
	}
	pause()
	return nil
}

// ignoreTerm makes SIGTERM have no effect, as a badly written daemon does.
// NOTE: signal.Ignore sets SIG_IGN, which survives exec; that is wanted here.
func ignoreTerm() { signal.Ignore(unix.SIGTERM) }

func forker(n, fd int) error {
	ignoreTerm()
	self, err := os.Executable()
	if err != nil {
		return err
	}
	// The children must not hold the notification pipe.
	unix.CloseOnExec(fd)
	for i := 0; i < n; i++ {
		// Children stay in the caller's process group (no Setpgid): a
		// supervisor that kills the group must catch them all.
		p, err := os.StartProcess(self, []string{"svhelper", "forker-child"}, &os.ProcAttr{
			Files: []*os.File{nil, os.Stdout, os.Stderr},
		})
		if err != nil {
			return err
		}
		// NOTE: never waited for. They outlive this process on purpose and
		// are reaped by whoever inherits them.
		p.Release()
	}
	if err := notify(fd); err != nil {
		return err
	}
	pause()
	return nil
}

// orphans is the orphans mode: see the package comment.
func orphans(n int) error {
	attr := &syscall.ProcAttr{}
	for i := 0; i < n; i++ {
		// NOTE: never waited for: whoever inherits them must reap them.
		if _, err := syscall.ForkExec("/bin/true", []string{"true"}, attr); err != nil {
			return fmt.Errorf("after %d children: %w", i, err)
		}
	}
	fmt.Println(n)
	return nil
}

// talk is the talk mode: see the package comment.
func talk(recordFile string, n, fd int, gate string) error {
	b, err := os.ReadFile(recordFile)
	if err != nil {
		return err
	}
	k := strings.Count(string(b), "\n")
	// Subscribed before readiness: a SIGTERM after it is never lost.
	term := make(chan os.Signal, 1)
	signal.Notify(term, unix.SIGTERM)
	for j := 1; j <= n; j++ {
		if _, err := fmt.Fprintf(os.Stdout, "run %d line %d\n", k, j); err != nil {
			return err
		}
	}
	if err := notify(fd); err != nil {
		return err
	}
	opened := make(chan error, 1)
	go func() {
		// The test holds the fifo open read-write, so this open never
		// blocks and a line written before it waits in the fifo.
		f, err := os.Open(gate)
		if err == nil {
			_, err = bufio.NewReader(f).ReadString('\n')
		}
		opened <- err
	}()
	code := 0
	select {
	case <-term:
	case err := <-opened:
		if err != nil {
			return err
		}
		code = 1
	}
	fmt.Fprintf(os.Stdout, "run %d bye\n", k)
	os.Exit(code)
	return nil
}
