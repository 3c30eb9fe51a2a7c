// Command rchelper is the daemon of the OpenRC integration tests: the init
// scripts of tests/testdata/openrc run it (by absolute path: openrc-run
// resets PATH). Each behaviour a backend must cope with is one flag.
//
// Usage:
//
//	rchelper [flags]
//
//	-record FILE     append "PID\n" to FILE at start (counts starts)
//	-fail-times N    with -record: exit 1 at once while FILE has at most N
//	                 pids (a daemon that fails its first N starts)
//	-say TEXT        print TEXT on stdout and stderr at start (log tests)
//	-exit N          exit with status N at once (after -record and -say)
//	-exit-after MS   with -exit: exit MS milliseconds after start instead
//	-ready-fd N      write "\n" to fd N once ready (notify=fd:N)
//	-sd-notify       send READY=1 to $NOTIFY_SOCKET once ready
//	-ready-after MS  become ready MS milliseconds after start
//	-ignore-term     ignore SIGTERM
//	-fork N          start N children that ignore SIGTERM, in our group
//	-hup-fifo PATH   on SIGHUP, write "HUP\n" to the fifo PATH
//	-daemonize FILE  fork away as distributions' daemons do: start a copy of
//	                 ourselves in a new session (the other flags apply to
//	                 it), which writes its pid to FILE, and exit 0 at once
//	-pidfile-delay MS  the copy writes FILE MS milliseconds after its start
//	-tick MS         print "tick N" (N = 0, 1, ...) on stdout every MS
//	                 milliseconds: a talking daemon, for lost or doubled lines
//	-report FILE     write what the process was started with to FILE (uid,
//	                 gid, groups, cwd, umask, nice, oom_score_adj, limits,
//	                 capabilities, no_new_privs, stdin, environment), one
//	                 KEY=VALUE per line, before readiness
//
// Without -exit it runs until a signal ends it: SIGTERM (unless ignored),
// SIGINT, or anything with a default fatal action.
package main

import (
	"bytes"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "-child" {
		signal.Ignore(unix.SIGTERM)
		select {}
	}
	record := flag.String("record", "", "append our pid to this file")
	say := flag.String("say", "", "print this at start")
	exit := flag.Int("exit", -1, "exit with this status at once")
	exitAfter := flag.Int("exit-after", 0, "with -exit: milliseconds before the exit")
	readyFd := flag.Int("ready-fd", -1, "readiness fd")
	sdNotify := flag.Bool("sd-notify", false, "sd_notify READY=1")
	readyAfter := flag.Int("ready-after", 0, "milliseconds before readiness")
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM")
	fork := flag.Int("fork", 0, "children that ignore SIGTERM")
	hupFifo := flag.String("hup-fifo", "", "fifo told about SIGHUP")
	reportTo := flag.String("report", "", "write the process's attributes here")
	daemonize := flag.String("daemonize", "", "fork away; the daemon writes its pid here")
	pidfileDelay := flag.Int("pidfile-delay", 0, "milliseconds before the daemon writes its pidfile")
	writePidfile := flag.String("write-pidfile", "", "(internal) write our pid here")
	failTimes := flag.Int("fail-times", 0, "with -record: exit 1 while the record has at most this many pids")
	tickMs := flag.Int("tick", 0, "print a numbered line every this many milliseconds")
	flag.Parse()

	if *daemonize != "" {
		args := []string{"-write-pidfile", *daemonize}
		flag.Visit(func(f *flag.Flag) {
			if f.Name != "daemonize" {
				args = append(args, "-"+f.Name+"="+f.Value.String())
			}
		})
		c := exec.Command(os.Args[0], args...)
		c.Stdout, c.Stderr = os.Stdout, os.Stderr
		c.SysProcAttr = &unix.SysProcAttr{Setsid: true}
		if err := c.Start(); err != nil {
			fatal(err)
		}
		os.Exit(0) // the launcher: the daemon lives on, reparented
	}
	if *writePidfile != "" {
		// NOTE: the daemon's own start-up time, which the test controls.
		time.AfterFunc(time.Duration(*pidfileDelay)*time.Millisecond, func() {
			if err := os.WriteFile(*writePidfile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
				fatal(err)
			}
		})
	}

	if *record != "" {
		f, err := os.OpenFile(*record, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
		if err != nil {
			fatal(err)
		}
		fmt.Fprintln(f, os.Getpid())
		f.Close()
		if b, err := os.ReadFile(*record); err == nil && bytes.Count(b, []byte("\n")) <= *failTimes {
			os.Exit(1)
		}
	}
	if *say != "" {
		fmt.Println(*say)
		fmt.Fprintln(os.Stderr, *say)
	}
	if *exit >= 0 && *exitAfter <= 0 {
		os.Exit(*exit)
	}
	if *reportTo != "" {
		if err := os.WriteFile(*reportTo, []byte(report()), 0o644); err != nil {
			fatal(err)
		}
	}
	// Handlers first, readiness after: a test that waits for readiness can
	// signal at once.
	sigc := make(chan os.Signal, 4)
	signal.Notify(sigc, unix.SIGTERM, unix.SIGHUP, unix.SIGINT)
	for range *fork {
		c := exec.Command(os.Args[0], "-child")
		if err := c.Start(); err != nil {
			fatal(err)
		}
	}
	var die <-chan time.Time
	if *exit >= 0 {
		// NOTE: the daemon's own life time, which the test controls.
		die = time.After(time.Duration(*exitAfter) * time.Millisecond)
	}
	var ready <-chan time.Time
	if *readyFd >= 0 || *sdNotify {
		// NOTE: the daemon's own start-up time, which the test controls.
		ready = time.After(time.Duration(*readyAfter) * time.Millisecond)
	}
	var tick <-chan time.Time
	if *tickMs > 0 {
		// NOTE: the daemon's own output rate, not a synchronisation.
		tick = time.NewTicker(time.Duration(*tickMs) * time.Millisecond).C
	}
	ticks := 0
	for {
		select {
		case <-tick:
			fmt.Printf("tick %d\n", ticks)
			ticks++
		case <-die:
			os.Exit(*exit)
		case <-ready:
			ready = nil
			if *readyFd >= 0 {
				f := os.NewFile(uintptr(*readyFd), "ready")
				f.Write([]byte("\n"))
				f.Close()
			}
			if *sdNotify {
				notify()
			}
		case sig := <-sigc:
			switch sig {
			case unix.SIGHUP:
				if *hupFifo != "" {
					if f, err := os.OpenFile(*hupFifo, os.O_WRONLY, 0); err == nil {
						f.Write([]byte("HUP\n"))
						f.Close()
					}
				}
			case unix.SIGTERM:
				if !*ignoreTerm {
					os.Exit(0)
				}
			default:
				os.Exit(0)
			}
		}
	}
}

// report describes the process as the exec helper left it.
func report() string {
	var b strings.Builder
	groups, _ := os.Getgroups()
	cwd, _ := os.Getwd()
	old := unix.Umask(0)
	unix.Umask(old)
	nice, _ := unix.Getpriority(unix.PRIO_PROCESS, 0)
	oom, _ := os.ReadFile("/proc/self/oom_score_adj")
	var lim unix.Rlimit
	unix.Getrlimit(unix.RLIMIT_NOFILE, &lim)
	stdin, _ := os.Readlink("/proc/self/fd/0")
	fmt.Fprintf(&b, "uid=%d\ngid=%d\ngroups=%v\ncwd=%s\numask=%03o\n", os.Getuid(), os.Getgid(), groups, cwd, old)
	// getpriority(2) returns 20 - nice.
	fmt.Fprintf(&b, "nice=%d\noom_score_adj=%s\nnofile=%d\nstdin=%s\n", 20-nice, strings.TrimSpace(string(oom)), lim.Cur, stdin)
	st, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(st), "\n") {
		k, v, _ := strings.Cut(l, ":")
		switch k {
		case "CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb", "NoNewPrivs":
			fmt.Fprintf(&b, "%s=%s\n", k, strings.TrimSpace(v))
		}
	}
	for _, kv := range os.Environ() {
		fmt.Fprintf(&b, "env %s\n", kv)
	}
	return b.String()
}

func notify() {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		fatal(fmt.Errorf("NOTIFY_SOCKET is not set"))
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: addr, Net: "unixgram"})
	if err != nil {
		fatal(err)
	}
	c.Write([]byte("READY=1\nMAINPID=" + strconv.Itoa(os.Getpid())))
	c.Close()
}

func fatal(err error) {
	fmt.Fprintf(os.Stderr, "rchelper: fatal: %v\n", err)
	os.Exit(111)
}
