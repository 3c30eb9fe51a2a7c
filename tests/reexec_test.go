//go:build integration

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gosv/gosv/internal/servicedir"
)

// TestOpenRCReexec (issue 15): 50 gosv services (foreground, forking,
// in-process loggers, sd_notify, health checks) under OpenRC, then 10
// in-place upgrades in a row between two builds of gosv (different
// -X main.version), each installed as a package manager does (rename
// over the binary) and taken with `rc-service gosv-svscan reexec`.
// Afterwards: the scanner's pid is the same and runs the last build, no
// daemon was restarted (pids and status stamps unchanged), restart
// counters are kept (the death tally of one killed before), every logger's
// numbered lines are there exactly once, and rc-status says started for
// every service. Then an upgrade to a binary that cannot start: refused
// with the reason, and the old scanner keeps running.
func TestOpenRCReexec(t *testing.T) { forEachRC(t, testOpenRCReexec) }

// reexecKinds are the 50 services' kinds, 10 of each: init-script lines
// after supervisor= and command= (NAME is the service's name).
var reexecKinds = []struct{ name, script string }{
	{"fg", "command_args=\"-ready-fd 3\"\nnotify=fd:3\n"},
	{"log", "command_args=\"-ready-fd 3 -tick 20\"\nnotify=fd:3\noutput_logger=auto\ngosv_log_arguments=\"n20\"\n"},
	{"fork", "command_args=\"-daemonize /run/NAME.pid\"\npidfile=/run/NAME.pid\n"},
	{"sd", "command_args=\"-sd-notify\"\nnotify=socket:ready\n"},
	{"hc", "command_args=\"-ready-fd 3\"\nnotify=fd:3\nhealthcheck_timer=1\nhealthcheck() { echo ok >> @DIR@/NAME.hc; }\n"},
}

func testOpenRCReexec(t *testing.T, version string) {
	e := newRCv(t, true, version)
	a, b := filepath.Join(e.Dir, "gosv-a"), filepath.Join(e.Dir, "gosv-b")
	e.MustRun(t, "cp", gosvInstallBin, a)
	build := exec.Command(suite.goTool, "build", "-ldflags", "-X main.version=reexec-b", "-o", b, "./cmd/gosv")
	build.Dir = suite.repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("second build: %v\n%s", err, out)
	}
	var names []string
	for _, k := range reexecKinds {
		for i := range 10 {
			name := fmt.Sprintf("gosv-rx-%s%d", k.name, i)
			script := "#!/sbin/openrc-run\nsupervisor=gosv\ncommand=" + e.helper + "\n" +
				strings.NewReplacer("NAME", name, "@DIR@", e.Dir).Replace(k.script)
			staged := e.WriteFile(t, filepath.Join("stage", name), script, 0o755)
			e.MustRun(t, "install", "-m", "755", staged, "/etc/init.d/"+name)
			names = append(names, name)
		}
	}
	// NOTE: OpenRC's deptree cache compares whole seconds: refresh it, or
	// the new scripts may lack the hook's need gosv-svscan.
	e.MustRun(t, "rc-update", "-u")
	if r := e.Sh(t, "for s in "+strings.Join(names, " ")+"; do rc-service $s start >/dev/null || { echo $s; exit 1; }; done"); r.Code != 0 {
		t.Fatalf("starting the services: %s", r)
	}
	// One death, so that a restart counter (the death tally) is there to keep.
	l := e.listen(t, rcServices+"/gosv-rx-fg0")
	e.MustRun(t, "kill", "-KILL", strconv.FormatUint(e.status(t, "gosv-rx-fg0").Pid, 10))
	l.Wait(t, "U") // up and ready again
	tally := func(n string) string {
		b, _ := os.ReadFile(e.host(filepath.Join(rcServices, n, servicedir.DeathTallyPath)))
		return string(b)
	}
	tallies := map[string]string{}
	before := map[string]Status{}
	for _, n := range names {
		tallies[n] = tally(n)
		before[n] = e.status(t, n)
		if before[n].Pid == 0 {
			t.Fatalf("%s: no pid: %+v", n, before[n])
		}
	}
	if tallies["gosv-rx-fg0"] == "" {
		t.Fatalf("gosv-rx-fg0: no death tally after its daemon was killed")
	}
	scanners := e.procs("gosv svscan")
	if len(scanners) != 1 {
		t.Fatalf("scanners: %+v", scanners)
	}
	scanner := scanners[0].NsPid

	for i := range 10 {
		bin := b
		if i%2 == 1 {
			bin = a
		}
		// As dpkg and apk do: a new file renamed over the old one.
		e.MustRun(t, "sh", "-c", "cp "+bin+" /usr/bin/gosv.new && mv -f /usr/bin/gosv.new /usr/bin/gosv")
		if r := e.svc(t, "gosv-svscan", "reexec"); r.Code != 0 {
			t.Fatalf("upgrade %d: rc-service gosv-svscan reexec: %s", i+1, r)
		}
		if r := e.Run(t, "cmp", fmt.Sprintf("/proc/%d/exe", scanner), bin); r.Code != 0 {
			t.Fatalf("upgrade %d: the scanner (pid %d) does not run %s: %s", i+1, scanner, bin, r)
		}
	}
	if ps := e.procs("gosv svscan"); len(ps) != 1 || ps[0].NsPid != scanner {
		t.Fatalf("scanners after the upgrades: %+v, want only pid %d", ps, scanner)
	}
	for _, n := range names {
		if got := tally(n); got != tallies[n] {
			t.Errorf("%s: death tally %q across the upgrades, was %q", n, got, tallies[n])
		}
		if after := e.status(t, n); after != before[n] {
			t.Errorf("%s: status changed across the upgrades: %+v, was %+v", n, after, before[n])
		}
		if got := e.rcStatus(t, n); !strings.HasPrefix(got, "[ started") {
			t.Errorf("rc-status %s: %q", n, got)
		}
	}
	if got := e.rcStatus(t, "gosv-svscan"); !strings.HasPrefix(got, "[ started") {
		t.Errorf("rc-status gosv-svscan: %q", got)
	}
	// Every logger: ticks 0..max, each exactly once (the last one may
	// still be on its way: only what is there is counted).
	tickRe := regexp.MustCompile(`^tick (\d+)$`)
	for i := range 10 {
		dir := fmt.Sprintf("/var/log/gosv-rx-log%d", i)
		r := e.Sh(t, "cat "+dir+"/@* "+dir+"/current 2>/dev/null")
		seen := map[int]int{}
		top := -1
		for _, l := range strings.Split(r.Stdout, "\n") {
			if m := tickRe.FindStringSubmatch(l); m != nil {
				n, _ := strconv.Atoi(m[1])
				seen[n]++
				top = max(top, n)
			}
		}
		if i == 0 {
			t.Logf("%s: ticks 0..%d, each once", dir, top)
		}
		if top < 10 {
			t.Errorf("%s: only %d lines", dir, top+1)
		}
		for n := 0; n <= top; n++ {
			if seen[n] != 1 {
				t.Errorf("%s: tick %d logged %d times", dir, n, seen[n])
				break
			}
		}
	}

	// A binary that cannot start: nothing changes.
	bad := e.WriteFile(t, "bad-gosv", "\x7fELF not really\n", 0o755)
	e.MustRun(t, "sh", "-c", "cp "+bad+" /usr/bin/gosv.new && mv -f /usr/bin/gosv.new /usr/bin/gosv")
	r := e.Run(t, a, "svscanctl", "-X", rcScanDir)
	if r.Code != 111 || !strings.Contains(r.Stderr, "exec format error") {
		t.Errorf("svscanctl -X to a broken binary: %s, want exit 111 with exec format error", r)
	}
	e.MustRun(t, "cp", a, "/usr/bin/gosv")
	if ps := e.procs("gosv svscan"); len(ps) != 1 || ps[0].NsPid != scanner {
		t.Fatalf("scanners after the refused upgrade: %+v", ps)
	}
	for _, n := range names[:5] {
		if after := e.status(t, n); after.Pid != before[n].Pid {
			t.Errorf("%s: pid %d after the refused upgrade, was %d", n, after.Pid, before[n].Pid)
		}
	}
	e.mustSvc(t, "gosv-svscan", "stop")
	e.noneLeft(t)
	_ = os.Remove(b)
}
