//go:build integration

package tests

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Issue 11 item 4 on both OpenRC versions: rc-service status, gosv openrc
// ls and gosv svstat --json say why a service is not healthy (backing
// off: TestPolicyStatusExplains; given up by gosv_respawn_on:
// TestPolicyRespawnOnFailure; by respawn_max: TestOpenRCCrashLoop).

// TestHealthStatusExplains: while healthcheck() fails, fewer than
// gosv_healthcheck_retries (3) times, status says "failing"; the third
// failure runs unhealthy() once, then the restart; after it, until the new
// run's first check, status says why it was restarted.
func TestHealthStatusExplains(t *testing.T) { forEachRC(t, testHealthStatusExplains) }

func testHealthStatusExplains(t *testing.T, version string) {
	e := newRCv(t, true, version)
	sick := filepath.Join(e.Dir, "explain.sick")
	script := e.WriteFile(t, "gosv-health-explain", `#!/sbin/openrc-run
supervisor=gosv
command=`+e.helper+`
healthcheck_timer=2
healthcheck_delay=6
gosv_healthcheck_retries=3
gosv_healthcheck_timeout=20

healthcheck() {
	[ ! -e `+sick+` ]
}

unhealthy() {
	echo "unhealthy $RC_SVCNAME" >>`+sick+`.log
}
`, 0o755)
	e.MustRun(t, "install", "-m", "755", script, "/etc/init.d/gosv-health-explain")
	e.MustRun(t, "rc-update", "-u") // its need of gosv-svscan
	e.mustSvc(t, "gosv-health-explain", "start")
	svc := rcServices + "/gosv-health-explain"
	state := filepath.Join(e.host(svc), healthState)
	waitFileHas(t, state, `"health":"healthy"`, 30*time.Second)
	os.WriteFile(sick, nil, 0o644)
	waitFileHas(t, state, `"fails":1`, 30*time.Second)
	// 2 s between failures: a window to look in (a slow look sees 2/3).
	const failing = "failing: healthcheck() → exit 1 ("
	explains(t, e, svc, failing)
	l := e.listen(t, svc)
	l.WaitTimeout(t, "u", 30*time.Second)
	os.Remove(sick)
	// The new run's first check comes 6 s after its start.
	explains(t, e, svc, "restarted after unhealthy: healthcheck() → exit 1 (3/3)")
	// 3 failures with retries 3: unhealthy() ran once, then the restart.
	if b, _ := os.ReadFile(sick + ".log"); string(b) != "unhealthy gosv-health-explain\n" {
		t.Errorf("unhealthy() calls: %q, want one", b)
	}
	waitFileHas(t, state, `"health":"healthy"`, 30*time.Second)
	if r := e.svc(t, "gosv-health-explain", "status"); r.Code != 0 || strings.Contains(r.Stdout, "unhealthy") {
		t.Errorf("status once healthy again: %s", r)
	}
	e.mustSvc(t, "gosv-health-explain", "stop")
}

// explains checks that rc-service status (started, 0), gosv openrc ls and
// gosv svstat --json of the gosv service svc all say want.
func explains(t *testing.T, e *RC, svc, want string) {
	t.Helper()
	name := filepath.Base(svc)
	if r := e.svc(t, name, "status"); r.Code != 0 || !strings.Contains(r.Stdout, want) {
		t.Errorf("status: %s, want 0 and %q", r, want)
	}
	if r := e.Run(t, gosvInstallBin, "openrc", "ls"); !strings.Contains(r.Stdout, want) {
		t.Errorf("ls: %s, want %q", r, want)
	}
	if r := e.Run(t, gosvInstallBin, "svstat", "--json", svc); !strings.Contains(r.Stdout, `"explain":"`) || !strings.Contains(r.Stdout, want) {
		t.Errorf("svstat --json: %s, want %q", r, want)
	}
}
