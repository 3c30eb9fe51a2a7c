package metrics

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

var now = time.Date(2026, 12, 4, 21, 0, 0, 0, time.UTC)

// scanDir builds a scan directory by hand: web up and ready for 90 s
// with 2 deaths, one unhealthy check; job down, killed by SIGKILL, in a
// 8 s backoff; weird "na\"me" down and given up; a logger web/log.
func scanDir(t *testing.T) string {
	t.Helper()
	scan := t.TempDir()
	mk := func(name string, st servicedir.Status) string {
		d := filepath.Join(scan, name)
		if err := os.MkdirAll(filepath.Join(d, servicedir.GosvStateDir), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := servicedir.WriteStatus(d, &st); err != nil {
			t.Fatal(err)
		}
		return d
	}
	web := mk("web", servicedir.Status{Pid: 42, Stamp: now.Add(-90 * time.Second), Ready: true, WantUp: true, Wstat: 1 << 8})
	for i := 0; i < 2; i++ {
		servicedir.AppendDeath(web, servicedir.DeathFromWstat(now, 1<<8), 100)
	}
	if err := servicedir.WriteHealthState(web, &servicedir.HealthState{Health: servicedir.HealthUnhealthy, Check: "tcp:127.0.0.1:80", Fails: 3, Retries: 3, At: now.Add(-time.Second)}); err != nil {
		t.Fatal(err)
	}
	// Restarted 5 s ago for failing its check; no result of this run yet.
	again := mk("again", servicedir.Status{Pid: 44, Stamp: now.Add(-5 * time.Second), WantUp: true})
	servicedir.WriteHealthState(again, &servicedir.HealthState{Health: servicedir.HealthUnhealthy, Check: "tcp:127.0.0.1:81", Fails: 3, Retries: 3, At: now.Add(-6 * time.Second)})
	mk("web/log", servicedir.Status{Pid: 43, Stamp: now.Add(-time.Hour), WantUp: true})
	job := mk("job", servicedir.Status{Stamp: now, WantUp: true, Wstat: 9})
	servicedir.WritePolicyState(job, &servicedir.PolicyState{Failures: 4, Delay: 8 * time.Second, Until: now.Add(8 * time.Second)})
	odd := mk("na\"me", servicedir.Status{Stamp: now, WantUp: true})
	servicedir.WritePolicyState(odd, &servicedir.PolicyState{GaveUp: true, GaveUpAt: now, Reason: "respawned 11 times"})
	os.MkdirAll(filepath.Join(scan, servicedir.ScanCtlDir), 0o755) // not a service
	os.MkdirAll(filepath.Join(scan, "nostatus"), 0o755)            // not supervised yet
	return scan
}

func TestRender(t *testing.T) {
	var b bytes.Buffer
	if err := RenderDir(&b, scanDir(t), now); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		`gosv_service_up{name="web"} 1`,
		`gosv_service_ready{name="web"} 1`,
		`gosv_service_healthy{name="web"} 0`,
		`gosv_service_health_failures{name="web"} 3`,
		`gosv_service_restarts_total{name="web"} 2`,
		`gosv_service_last_exit_code{name="web"} 1`,
		`gosv_service_uptime_seconds{name="web"} 90`,
		`gosv_service_healthy{name="again"} 1`,
		`gosv_service_health_failures{name="again"} 0`,
		`gosv_service_up{name="web/log"} 1`,
		`gosv_service_ready{name="web/log"} 0`,
		`gosv_service_up{name="job"} 0`,
		`gosv_service_last_exit_signal{name="job"} 9`,
		`gosv_service_backoff_seconds{name="job"} 8`,
		`gosv_service_uptime_seconds{name="job"} 0`,
		`gosv_service_given_up{name="na\"me"} 1`,
		"# TYPE gosv_service_restarts_total counter",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, "nostatus") || strings.Contains(out, ".s6-svscan") {
		t.Errorf("a non-service is listed:\n%s", out)
	}
	promtool(t, b.Bytes())
}

// promtool validates the exposition with Prometheus's own linter (Debian
// package prometheus, installed by make test-deps); skipped without it,
// except in CI or with REQUIRE_PROMTOOL=1.
func promtool(t *testing.T, text []byte) {
	t.Helper()
	p, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("REQUIRE_PROMTOOL") == "1" || os.Getenv("CI") != "" {
			t.Fatal("promtool not found")
		}
		t.Skip("promtool not installed (apt-get install prometheus)")
	}
	cmd := exec.Command(p, "check", "metrics")
	cmd.Stdin = bytes.NewReader(text)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s\n--- input:\n%s", err, out, text)
	}
}

func TestTextfileAtomic(t *testing.T) {
	scan := scanDir(t)
	out := filepath.Join(t.TempDir(), "gosv.prom")
	os.Symlink("/etc/passwd", out+".tmp") // never followed: replaced
	if err := WriteTextfile(out, scan, now); err != nil {
		t.Fatal(err)
	}
	b, _ := os.ReadFile(out)
	if !strings.Contains(string(b), `gosv_service_up{name="web"} 1`) {
		t.Fatalf("textfile:\n%s", b)
	}
	if _, err := os.Lstat(out + ".tmp"); !os.IsNotExist(err) {
		t.Errorf("temporary file left: %v", err)
	}
	promtool(t, b)
}

func TestOneServiceDir(t *testing.T) {
	scan := scanDir(t)
	var b bytes.Buffer
	if err := RenderDir(&b, filepath.Join(scan, "job"), now); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(b.String(), `gosv_service_backoff_seconds{name="job"} 8`) || strings.Contains(b.String(), "web") {
		t.Fatalf("one service:\n%s", b.String())
	}
}
