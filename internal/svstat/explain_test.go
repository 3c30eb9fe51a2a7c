package svstat

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// writeState writes hand-written state files into a fresh service
// directory, as another supervisor (or an older gosv) would have.
func writeState(t *testing.T, policy, health string) string {
	t.Helper()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, servicedir.GosvStateDir), 0o755)
	if policy != "" {
		os.WriteFile(filepath.Join(dir, servicedir.PolicyStatePath), []byte(policy), 0o644)
	}
	if health != "" {
		os.WriteFile(filepath.Join(dir, servicedir.HealthStatePath), []byte(health), 0o644)
	}
	return dir
}

func TestExplain(t *testing.T) {
	down := servicedir.Status{Wstat: 1 << 8, WantUp: true}
	gaveUp := servicedir.Status{Wstat: 1 << 8}
	up := servicedir.Status{Pid: 42, WantUp: true}
	upSince := servicedir.Status{Pid: 42, WantUp: true, Stamp: time.Date(2027, 3, 1, 12, 0, 0, 0, time.UTC)}
	for _, c := range []struct {
		st             servicedir.Status
		policy, health string
		want           string
	}{
		{down, `{"failures":4,"delay_ns":8000000000,"until":"2027-03-01T12:00:05Z","last_wstat":256,"last_known":true}`, "",
			"backing off 8 s after 4 failures (last: exit 1)"},
		{down, `{"failures":1,"delay_ns":20000000,"until":"2027-03-01T12:00:05Z","last_wstat":9,"last_known":true}`, "",
			"backing off 20 ms after 1 failure (last: signal SIGKILL)"},
		{down, `{"failures":2,"delay_ns":1500000000,"until":"2027-03-01T12:00:05Z","last_known":false}`, "",
			"backing off 1.5 s after 2 failures (last: unknown exit)"},
		{gaveUp, `{"failures":3,"delay_ns":0,"last_wstat":256,"last_known":true,"gave_up":true,"gave_up_at":"2027-03-01T12:03:04Z","respawns":11,"within_ns":12000000000}`, "",
			"given up at 12:03:04: respawned 11 times within 12 s"},
		{gaveUp, `{"failures":0,"delay_ns":0,"last_wstat":0,"last_known":true,"gave_up":true,"gave_up_at":"2027-03-01T12:03:04Z","reason":"exit 0 is a success exit and respawn-on is failure"}`, "",
			"given up at 12:03:04: exit 0 is a success exit and respawn-on is failure"},
		// Stale state says nothing: up again, or stopped by hand.
		{up, `{"failures":4,"delay_ns":8000000000,"until":"2027-03-01T12:00:05Z","last_wstat":256,"last_known":true}`, "", ""},
		{gaveUp, `{"failures":4,"delay_ns":8000000000,"last_wstat":256,"last_known":true}`, "", ""},
		{up, "", `{"health":"unhealthy","check":"GET http://127.0.0.1:8080/health","fails":3,"retries":3,"last":"503","at":"2027-03-01T12:00:00Z"}`,
			"unhealthy: GET http://127.0.0.1:8080/health → 503 (3/3)"},
		{up, "", `{"health":"failing","check":"tcp:127.0.0.1:6379","fails":1,"retries":3,"last":"connection refused"}`,
			"failing: tcp:127.0.0.1:6379 → connection refused (1/3)"},
		{up, "", `{"health":"healthy","check":"tcp:127.0.0.1:6379","fails":0,"retries":3,"last":"connected"}`, ""},
		{down, "", `{"health":"unhealthy","check":"healthcheck()","fails":3,"retries":3,"last":"exit 1"}`, ""},
		// Backing off after a health-check stop: both say why (issue 11 items 3 and 4 together).
		{down, `{"failures":2,"delay_ns":2000000000,"until":"2027-03-01T12:00:05Z","last_wstat":15,"last_known":true,"last_unhealthy":true}`,
			`{"health":"unhealthy","check":"GET http://127.0.0.1:8080/health","fails":3,"retries":3,"last":"503","at":"2027-03-01T12:00:00Z"}`,
			"backing off 2 s after 2 failures (last: unhealthy, signal SIGTERM); unhealthy: GET http://127.0.0.1:8080/health → 503 (3/3)"},
		{gaveUp, `{"failures":1,"delay_ns":0,"last_wstat":15,"last_known":true,"last_unhealthy":true,"gave_up":true,"gave_up_at":"2027-03-01T12:03:04Z","reason":"unhealthy (signal SIGTERM) and respawn-on is never"}`,
			`{"health":"unhealthy","check":"healthcheck()","fails":1,"retries":1,"last":"exit 1","at":"2027-03-01T12:03:03Z"}`,
			"given up at 12:03:04: unhealthy (signal SIGTERM) and respawn-on is never; unhealthy: healthcheck() → exit 1 (1/1)"},
		// Up again after a health-check stop, before this run's first result.
		{upSince, "", `{"health":"unhealthy","check":"healthcheck()","fails":3,"retries":3,"last":"exit 1","at":"2027-03-01T11:59:00Z"}`,
			"restarted after unhealthy: healthcheck() → exit 1 (3/3)"},
		{upSince, "", `{"health":"failing","check":"healthcheck()","fails":1,"retries":3,"last":"exit 1","at":"2027-03-01T11:59:00Z"}`, ""},
		// A malformed file is left out, never an error.
		{down, `{"failures":`, "garbage", ""},
	} {
		dir := writeState(t, c.policy, c.health)
		if got := Explain(c.st, ReadState(dir), now, time.UTC); got != c.want {
			t.Errorf("%s %s:\n got %q\nwant %q", c.policy, c.health, got, c.want)
		}
	}
}

func TestJSONExplains(t *testing.T) {
	dir := writeState(t, `{"failures":4,"delay_ns":8000000000,"until":"2027-03-01T12:00:05Z","last_wstat":256,"last_known":true}`, "")
	st := servicedir.Status{Wstat: 1 << 8, WantUp: true}
	got := string(JSONWith(dir, st, now, true, ReadExtras(dir)))
	for _, want := range []string{`"explain":"backing off 8 s after 4 failures (last: exit 1)"`, `"policy":{"failures":4,"delay_ns":8000000000,`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON %s lacks %s", got, want)
		}
	}
	if got := string(JSON(dir, st, now, true)); strings.Contains(got, "explain") || strings.Contains(got, "policy") {
		t.Errorf("JSON without extras: %s", got)
	}
}
