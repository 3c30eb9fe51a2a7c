package scan

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/events"
	"github.com/gosv/gosv/internal/metrics"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// allKindsRun: runs 1, 2 and 4 exit 1 at once; run 3 stays up (its
// health check fails, passes, then fails twice).
const allKindsRun = `#!/bin/sh
n=$(cat ../count 2>/dev/null || echo 0); n=$((n+1)); echo $n >../count
[ $n = 3 ] && GOSV_TEST_ROLE=pause exec "$GOSV_TEST_BIN"
exit 1
`

// allKindsCheck passes except for run 3, where it fails, passes (a
// recovery), then fails twice (unhealthy with retries 2).
const allKindsCheck = `[ "$(cat ../count)" = 3 ] || exit 0
n=$(cat hcount 2>/dev/null || echo 0); n=$((n+1)); echo $n >hcount
case $n in 1|3|4) exit 1 ;; esac
`

// TestEventsAllKinds: one service whose life has all eight kinds of
// event: start, ready, exit, restart, backoff (respawn-delay-max), a
// health check failing then recovering, unhealthy (the stop goes
// through the restart policy: a backoff that says so), and give-up
// (respawn-max). Each is in the log, in order, with its fields, and
// each reaches the hook (GOSV_EVENT).
func TestEventsAllKinds(t *testing.T) {
	scan := t.TempDir()
	prom := filepath.Join(t.TempDir(), "gosv.prom")
	t.Setenv("GOSV_TEST_METRICS_TEXTFILE", prom)
	ch := follow(t, scan)
	startScanner(t, scan)
	out := filepath.Join(t.TempDir(), "hook.out")
	dir := mksvc(t, scan, "all", allKindsRun, map[string]string{
		"check":                        "#!/bin/sh\nexit 0\n",
		servicedir.RespawnDelayFile:    "20\n",
		servicedir.RespawnDelayMaxFile: "160\n",
		servicedir.RespawnResetFile:    "60000\n",
		servicedir.RespawnMaxFile:      "3\n",
		servicedir.RespawnPeriodFile:   "60000\n",
		servicedir.HealthCheckFile:     "exec:/bin/sh hc.sh\n",
		"hc.sh":                        allKindsCheck,
		servicedir.HealthTimerFile:     "100\n",
		servicedir.HealthTimeoutFile:   "5000\n",
		servicedir.HealthRetriesFile:   "2\n",
		servicedir.OnEventFile:         fmt.Sprintf("#!/bin/sh\necho \"$GOSV_EVENT $GOSV_SERVICE\" >>%s\n", out),
	})
	// NOTE: executable before the link (TestEventHook).
	os.Chmod(filepath.Join(dir, servicedir.OnEventFile), 0o755)
	svc := link(t, scan, dir)
	got := expect(t, ch, "all start", "all exit", "all restart", "all start", "all exit", "all backoff", "all restart",
		"all start", "all ready", "all recovered", "all unhealthy", "all exit", "all backoff", "all restart",
		"all start", "all exit", "all give-up")

	// first returns the n-th (from 1) record of kind ev.
	first := func(ev string, n int) events.Record {
		for _, r := range got {
			if r.Event == ev {
				if n--; n == 0 {
					return r
				}
			}
		}
		t.Fatalf("no %s #%d", ev, n)
		return events.Record{}
	}
	var runs []int // the pids of the starts
	for _, r := range got {
		if r.Event == "start" {
			runs = append(runs, r.Pid)
		}
	}
	if len(runs) != 4 || runs[0] <= 0 {
		t.Fatalf("starts %v, want 4 with pids", runs)
	}
	if ex := first("exit", 1); ex.Pid != runs[0] || ex.ExitCode == nil || *ex.ExitCode != 1 {
		t.Errorf("exit %+v: want run 1 (pid %d) exit 1", ex, runs[0])
	}
	// restart's delay is what is left of it once the run's group is gone.
	if rs := first("restart", 1); rs.DelayMs < 0 || rs.DelayMs > 20 {
		t.Errorf("restart %+v: want at most the first delay, 20 ms", rs)
	}
	if bo := first("backoff", 1); bo.DelayMs != 40 || !strings.Contains(bo.Message, "2 failures in a row (last: exit 1)") {
		t.Errorf("backoff %+v: want 40 ms after 2 failures", bo)
	}
	if rd := first("ready", 1); rd.Pid != runs[2] {
		t.Errorf("ready %+v: want run 3 (pid %d)", rd, runs[2])
	}
	if rc := first("recovered", 1); rc.Pid != runs[2] {
		t.Errorf("recovered %+v: want run 3 (pid %d)", rc, runs[2])
	}
	if uh := first("unhealthy", 1); uh.Pid != runs[2] || !strings.Contains(uh.Message, "exit 1 (2/2)") {
		t.Errorf("unhealthy %+v: want run 3 (pid %d), exit 1 (2/2)", uh, runs[2])
	}
	if ex := first("exit", 3); ex.Pid != runs[2] || ex.Signal == "" {
		t.Errorf("exit %+v: want run 3 (pid %d) killed", ex, runs[2])
	}
	// The health check's stop is a death like any other for the policy.
	if bo := first("backoff", 2); bo.DelayMs != 80 || !strings.Contains(bo.Message, "3 failures in a row (last: unhealthy (signal SIG") {
		t.Errorf("backoff %+v: want 80 ms after 3 failures, the last unhealthy", bo)
	}
	if gu := first("give-up", 1); gu.Message != "respawned 4 times within 1 min" {
		t.Errorf("give-up %+v", gu)
	}
	// The metrics say what the files say: given up, down, not healthy
	// (the last check's result is of the last run, and it is down). The
	// files are written after the event: wait for the last one, D.
	waitFor(t, svc, svwait.DownReady)
	var b bytes.Buffer
	if err := metrics.RenderDir(&b, scan, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`gosv_service_given_up{name="all"} 1`, `gosv_service_up{name="all"} 0`,
		`gosv_service_healthy{name="all"} 0`, `gosv_service_backoff_seconds{name="all"} 0`, `gosv_service_restarts_total{name="all"} 4`} {
		if !strings.Contains(b.String(), want+"\n") {
			t.Errorf("metrics lack %s:\n%s", want, b.String())
		}
	}
	// The textfile too: it is rewritten once the tally has the last death.
	waitFileContains(t, prom, `gosv_service_restarts_total{name="all"} 4`)
	if p, err := exec.LookPath("promtool"); err == nil {
		cmd := exec.Command(p, "check", "metrics")
		cmd.Stdin = &b
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool: %v\n%s", err, out)
		}
	}
	for _, kind := range []string{"start", "ready", "exit", "restart", "backoff", "give-up", "unhealthy", "recovered"} {
		waitFileContains(t, out, kind+" all\n")
	}
}
