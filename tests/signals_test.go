//go:build integration

package tests

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// scriptAbsence is how long a signal row waits for a .s6-svscan/SIGNAME
// script that the scanner may legitimately not run (SIGABRT and SIGALRM
// have none in s6): an absence, which no event can signal, so it is
// time-based. Every other wait of the matrix is on an event.
const scriptAbsence = 2 * time.Second

// signalOutcome is what a scanner did with one signal.
type signalOutcome struct {
	exited   bool
	code     int  // exit code when exited
	runAlive bool // the service's run process lives afterwards
	script   bool // .s6-svscan/SIGNAME ran
}

func (o signalOutcome) String() string {
	s := "runs on"
	if o.exited {
		s = fmt.Sprintf("exits %d", o.code)
	}
	if o.runAlive {
		s += ", service left up"
	} else {
		s += ", service stopped"
	}
	if o.script {
		s += ", script ran"
	}
	return s
}

// TestFaultSignalMatrix sends each signal s6-svscan 2.11 handles to the
// real s6-svscan and to gosv svscan, each supervising one service, with
// and without a .s6-svscan/SIGNAME script, and compares what happens: the
// scanner exits (and how) or goes on, the service is stopped or left, the
// script runs.
func TestFaultSignalMatrix(t *testing.T) {
	requireGosv(t)
	e := newEnv(t)
	sigs := []unix.Signal{unix.SIGHUP, unix.SIGINT, unix.SIGTERM, unix.SIGQUIT, unix.SIGABRT,
		unix.SIGALRM, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR, unix.SIGWINCH}
	var rows []string
	for _, sig := range sigs {
		for _, script := range []bool{false, true} {
			ref := signalRow(t, e, "s6", sig, script)
			got := signalRow(t, e, "gosv", sig, script)
			row := fmt.Sprintf("%-9s %-6v s6-svscan: %-40s gosv: %s", unix.SignalName(sig), script, ref, got)
			rows = append(rows, row)
			if got != ref {
				t.Errorf("%s (script %v): gosv %s; s6-svscan %s", unix.SignalName(sig), script, got, ref)
			}
		}
	}
	t.Logf("signal    script\n%s", strings.Join(rows, "\n"))
}

// signalRow runs one scanner of kind with one pause service, sends sig and
// reports the outcome.
func signalRow(t *testing.T, e *Env, kind string, sig unix.Signal, script bool) signalOutcome {
	t.Helper()
	name := fmt.Sprintf("%s-%s-%v", kind, strings.TrimPrefix(unix.SignalName(sig), "SIG"), script)
	scan := filepath.Join(e.Dir, "m", name)
	ctl := filepath.Join(scan, ".s6-svscan")
	if err := os.MkdirAll(ctl, 0o755); err != nil {
		t.Fatal(err)
	}
	// Markers: every script writes its signal's name to a fifo the test
	// holds open read-write (so that neither side blocks on open).
	fifo := filepath.Join(e.Dir, "m", name+".fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	ff, err := os.OpenFile(fifo, os.O_RDWR|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ff.Close()
	markers := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(ff)
		for sc.Scan() {
			markers <- sc.Text()
		}
	}()
	if script {
		body := "#!/bin/sh\necho " + unix.SignalName(sig) + " > " + fifo + "\n"
		if err := os.WriteFile(filepath.Join(ctl, unix.SignalName(sig)), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	svc := e.Service(t, "pause", name, nil)
	if err := os.Symlink(svc, filepath.Join(scan, "svc")); err != nil {
		t.Fatal(err)
	}
	up := Listen(t, svc) // s6-svscan reports readiness before its supervisors start
	args := []string{"s6-svscan", "-d", "3", scan}
	if kind == "gosv" {
		args = []string{gosvInstallBin, "svscan", "-d", "3", scan}
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	p := e.Start(t, []*os.File{pw}, args...)
	pw.Close()
	if _, err := readLine(pr, eventTimeout); err != nil {
		t.Fatalf("%s: no readiness: %v", name, err)
	}
	pr.Close()
	up.Wait(t, "u")
	run := e.hostPid(t, int(ReadStatus(t, svc).Pid))
	pidfd, err := unix.PidfdOpen(run, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(pidfd)

	// kill(1) inside the namespace: the scanner's pid there.
	e.Run(t, "kill", "-s", strings.TrimPrefix(unix.SignalName(sig), "SIG"), strconv.Itoa(p.NsPid))
	// Sync: a new service and s6-svscanctl -a; its supervisor's s event
	// says the scanner is alive and handled what came before. Twice: the
	// second is sent once the first was handled, so the signal, sent
	// before the first, was handled by then whatever the order in which
	// one wakeup of the scanner handles a signal and a control command.
	// (Signals cannot be the sync: one arriving while the scanner exits
	// kills s6-svscan.)
	syncStep := func(i int) <-chan struct{} {
		d := e.Service(t, "pause", fmt.Sprintf("%s-sync%d", name, i), nil)
		l := Listen(t, d)
		if err := os.Symlink(d, filepath.Join(scan, fmt.Sprintf("sync%d", i))); err != nil {
			t.Fatal(err)
		}
		e.Run(t, "s6-svscanctl", "-a", scan) // fails once the scanner is gone
		ch := make(chan struct{})
		go func() {
			l.r.SetReadDeadline(time.Now().Add(eventTimeout))
			buf := make([]byte, 64)
			for {
				n, err := l.r.Read(buf)
				if err != nil {
					return
				}
				if strings.IndexByte(string(buf[:n]), 's') >= 0 {
					close(ch)
					return
				}
			}
		}()
		return ch
	}
	var o signalOutcome
	synced := syncStep(1)
	phase := 1
	deadline := time.After(2 * eventTimeout)
wait:
	for {
		select {
		case <-p.done:
			o.exited, o.code = true, exitCode(p.state)
			break wait
		case m := <-markers:
			o.script = o.script || m == unix.SignalName(sig)
		case <-synced:
			if phase == 2 {
				break wait
			}
			phase++
			synced = syncStep(phase)
		case <-deadline:
			t.Fatalf("%s: neither an exit nor the sync (log: %s)", name, readFile(p.Log))
		}
	}
	if script && !o.script && !o.exited {
		select {
		case m := <-markers:
			o.script = m == unix.SignalName(sig)
		case <-time.After(scriptAbsence):
		}
	}
	if o.exited {
		// A scanner that stops its services exits after their death.
		o.runAlive = unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil
	} else {
		o.runAlive = unix.PidfdSendSignal(pidfd, 0, nil, 0) == nil && ReadStatus(t, svc).Up()
		// Done with this scanner: stop it and its services.
		e.Run(t, "s6-svscanctl", "-t", scan)
		p.Wait(t, eventTimeout)
	}
	return o
}
