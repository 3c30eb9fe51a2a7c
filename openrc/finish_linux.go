package openrc

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/svstat"
)

// ExitGiveUp is finish's exit code for "permanent failure": the supervisor
// clears want-up and announces O then D (s6's finish 125).
const ExitGiveUp = 125

// Finish is the generated finish: it tells OpenRC what the supervisor's
// restart policy decided (the supervisor applies supervise-daemon
// 0.63.3's respawn_delay, respawn_max and respawn_period, and gosv's
// backoff and respawn-on, from the policy files Generate writes). dir is
// the service directory (the current directory when the supervisor runs
// it) and args are finish's arguments: the exit code (or 256 when killed,
// -1 for an adopted run), the signal and the name.
//
// When the policy gave up at this death (supervise/gosv/policy, written
// before finish is spawned), it records the reason in openrc.reason, marks
// the OpenRC service stopped then failed, unlinks the service from the
// scan directory and asks its supervisor to exit once down, and returns
// [ExitGiveUp]. Otherwise it records the respawn for rc-status and
// returns 0 at once: the respawn delay is the supervisor's deadline, not
// a sleep here. Its output goes to w (the service's log).
func Finish(dir string, args []string, w io.Writer) int {
	ec, err := ReadExecConfig(dir)
	if err != nil {
		fmt.Fprintf(w, "gosv openrc finish: warning: unable to read the configuration: %v\n", err)
		return 0
	}
	if underSupervisor("runsv") {
		return ec.runitFinish(dir, args, w)
	}
	st, err := servicedir.ReadStatus(dir)
	if err != nil {
		return 0
	}
	p, ok, _ := servicedir.ReadPolicyState(dir)
	if ok && p.GaveUp && !st.WantUp && !p.GaveUpAt.Before(startedAt(dir)) {
		reason := ec.Respawn.reason(&p)
		if !p.Completed {
			reason += "; last death: " + deathText(args)
		}
		ec.giveUp(dir, reason, p.Completed, w)
		return ExitGiveUp
	}
	if !st.WantUp {
		return 0 // stopping: nothing to tell
	}
	if !ok && underSupervisor("s6-supervise") {
		// gosv_backend=s6: s6-supervise restarts forever and writes no
		// policy state; finish applies respawn_max itself, and its exit
		// 125 makes s6-supervise keep the service down (still
		// supervised: the next start brings it up again).
		if reason, give := ec.Respawn.exceeded(deathsSinceStart(dir), time.Now(), "s6-supervise"); give {
			ec.giveUp(dir, reason+"; last death: "+deathText(args), false, w)
			return ExitGiveUp
		}
	}
	// As supervise-daemon at a respawn: rc-status shows the uptime and the
	// respawns from these (the exec helper rewrites them at its spawn).
	next := time.Now()
	if ok && p.Until.After(next) {
		next = p.Until
	}
	rc := RC{SvcDir: ec.RCSvcDir}
	rc.SetValue(ec.Service, "start_count", strconv.Itoa(len(deathsSinceStart(dir))))
	rc.SetValue(ec.Service, "start_time", next.Format("2006-01-02 15:04:05"))
	return 0
}

// underSupervisor reports whether finish's parent is the program name
// (s6-supervise, runsv).
func underSupervisor(name string) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(os.Getppid()) + "/comm")
	return err == nil && strings.TrimSpace(string(b)) == name
}

// runitFinish is finish under runsv (gosv_backend=runit), which keeps no
// death tally and has no give-up exit code: finish records the death in
// the service directory's death tally (runsv's arguments: the exit code,
// or -1 and the signal), and when respawn_max is exceeded it tells runsv
// d (the service stays down, still supervised) and OpenRC stopped then
// failed. finish runs in the source directory; runsv's is its runit/.
func (ec *ExecConfig) runitFinish(dir string, args []string, w io.Writer) int {
	now := time.Now()
	var wstat uint16
	if len(args) >= 2 {
		code, _ := strconv.Atoi(args[0])
		sig, _ := strconv.Atoi(args[1])
		if code < 0 {
			wstat = uint16(sig & 0x7f)
		} else {
			wstat = uint16(code&0xff) << 8
		}
	}
	keep := minDeathTally
	if n, ok, err := servicedir.ReadUintFile(dir, servicedir.MaxDeathTallyFile); err == nil && ok {
		keep = int(n)
	}
	if err := servicedir.AppendDeath(dir, servicedir.DeathFromWstat(now, wstat), keep); err != nil {
		fmt.Fprintf(w, "gosv openrc finish: warning: unable to record the death: %v\n", err)
	}
	rdir := filepath.Join(dir, servicedir.RunitDir)
	if st, err := servicedir.ReadRunitStatus(rdir); err != nil || !st.WantUp {
		return 0 // stopping: nothing to tell
	}
	if reason, give := ec.Respawn.exceeded(deathsSinceStart(dir), now, "runsv"); give {
		servicedir.WriteControl(rdir, []byte{'d'})
		ec.giveUp(dir, reason+"; last death: "+runitDeathText(wstat), false, w)
		return 0
	}
	rc := RC{SvcDir: ec.RCSvcDir}
	rc.SetValue(ec.Service, "start_count", strconv.Itoa(len(deathsSinceStart(dir))))
	rc.SetValue(ec.Service, "start_time", now.Format("2006-01-02 15:04:05"))
	return 0
}

func runitDeathText(wstat uint16) string {
	return servicedir.DeathFromWstat(time.Time{}, wstat).String()
}

// exceeded reports whether deaths (since OpenRC's start) go beyond
// respawn_max within respawn_period (0: since the start), and says so.
func (r *Respawn) exceeded(deaths []time.Time, now time.Time, supervisor string) (string, bool) {
	if r.Max <= 0 {
		return "", false
	}
	n := 0
	for _, d := range deaths {
		if r.Period <= 0 || now.Sub(d) <= r.Period {
			n++
		}
	}
	if n <= r.Max {
		return "", false
	}
	return fmt.Sprintf("respawned %d times within %v (respawn_max=%d, respawn_period=%d; under %s)",
		n, r.Period, r.Max, int(r.Period.Seconds()), supervisor), true
}

// deathText describes finish's arguments: "exit code 3", "signal SIGKILL".
func deathText(args []string) string {
	if len(args) < 2 {
		return "unknown"
	}
	if args[0] == "256" {
		n, _ := strconv.Atoi(args[1])
		return servicedir.Death{Sig: uint8(n)}.String()
	}
	return "exit code " + args[0]
}

// giveUp tells OpenRC that the supervisor stopped respawning the service:
// stopped then failed (as supervise-daemon), or only stopped when the
// service completed (a success exit with gosv_respawn_on=failure).
func (ec *ExecConfig) giveUp(dir, reason string, completed bool, w io.Writer) {
	marks := []string{"stopped", "failed"}
	if completed {
		marks = marks[:1]
		fmt.Fprintf(w, "gosv openrc %s: not respawned: %s\n", ec.Service, reason)
	} else {
		fmt.Fprintf(w, "gosv openrc %s: giving up: %s\n", ec.Service, reason)
	}
	if err := servicedir.WriteFileMode(dir, ReasonFile, []byte(reason+"\n"), 0o644); err != nil {
		fmt.Fprintf(w, "gosv openrc %s: warning: unable to record the reason: %v\n", ec.Service, err)
	}
	rc := RC{SvcDir: ec.RCSvcDir, LibexecDir: ec.libexec()}
	for _, state := range marks {
		if err := rc.Mark(ec.Service, state); err != nil {
			fmt.Fprintf(w, "gosv openrc %s: warning: unable to mark the service %s: %v\n", ec.Service, state, err)
		}
	}
	// Leave nothing supervised behind OpenRC's back: the supervisor exits
	// once finish is done, and the scanner forgets the unlinked entry.
	link := filepath.Join(ScanDir(ec.RCSvcDir), ec.Service)
	if target, err := filepath.EvalSymlinks(link); err == nil && sameDir(target, dir) {
		os.Remove(link)
		servicedir.WriteControl(dir, []byte{'x'})
	}
}

// libexec is the RC_LIBEXECDIR recorded at generation; a directory
// generated without one gets the installed OpenRC's.
func (ec *ExecConfig) libexec() string {
	if ec.LibexecDir != "" {
		return ec.LibexecDir
	}
	return DetectLibexecDir("/")
}

func sameDir(a, b string) bool {
	fa, err1 := os.Stat(a)
	fb, err2 := os.Stat(b)
	return err1 == nil && err2 == nil && os.SameFile(fa, fb)
}

// Reason returns why gosv last gave the service in dir up, or "".
func Reason(dir string) string {
	b, _ := os.ReadFile(filepath.Join(dir, ReasonFile))
	return strings.TrimSpace(string(b))
}

// givenUp is how a reason is introduced: "given up at 12:03:04: " with
// the time the supervisor's policy recorded, or "gave up: ".
func givenUp(dir string) string {
	p, ok, _ := servicedir.ReadPolicyState(dir)
	switch {
	case !ok || !p.GaveUp:
		return "gave up: "
	case p.Completed:
		return "not respawned since " + p.GaveUpAt.Local().Format(time.TimeOnly) + ": "
	}
	return "given up at " + p.GaveUpAt.Local().Format(time.TimeOnly) + ": "
}

// statusLine is the s6-svstat line for the service directory dir.
func statusLine(dir string, now time.Time) (string, error) {
	st, normallyUp, err := svstat.Read(dir)
	if err != nil {
		return "", err
	}
	return svstat.Legacy(st, now, normallyUp, false), nil
}
