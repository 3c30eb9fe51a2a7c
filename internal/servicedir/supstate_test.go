package servicedir

import (
	"errors"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

func TestSupStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, GosvStateDir))
	if _, ok, err := ReadPolicyState(dir); ok || err != nil {
		t.Fatalf("missing policy: ok=%v err=%v, want false nil", ok, err)
	}
	at := time.Date(2026, 12, 4, 12, 3, 4, 0, time.UTC)
	p := PolicyState{Failures: 4, Delay: 8 * time.Second, Until: at, LastWstat: 1 << 8, LastKnown: true,
		GaveUp: true, GaveUpAt: at, Respawns: 11, Within: 12 * time.Second, Reason: "r"}
	if err := WritePolicyState(dir, &p); err != nil {
		t.Fatal(err)
	}
	got, ok, err := ReadPolicyState(dir)
	if !ok || err != nil || !reflect.DeepEqual(got, p) {
		t.Fatalf("policy: got %+v ok=%v err=%v, want %+v", got, ok, err, p)
	}
	h := HealthState{Health: HealthUnhealthy, Check: "GET http://127.0.0.1:8080/health", Fails: 3, Retries: 3, Last: "503", At: at}
	if err := WriteHealthState(dir, &h); err != nil {
		t.Fatal(err)
	}
	gh, ok, err := ReadHealthState(dir)
	if !ok || err != nil || !reflect.DeepEqual(gh, h) {
		t.Fatalf("health: got %+v ok=%v err=%v, want %+v", gh, ok, err, h)
	}
	if _, err := ParseHealthState([]byte(`{"health":"sick"}`)); !errors.Is(err, ErrBadValue) {
		t.Fatalf("bad health name: err=%v, want ErrBadValue", err)
	}
}

func FuzzSupState(f *testing.F) {
	f.Add([]byte(`{"health":"failing","check":"tcp:h:1","fails":1,"retries":3}`))
	f.Add([]byte(`{"failures":2,"delay_ns":1000}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := ParseHealthState(b); err == nil {
			if out, err := FormatHealthState(&h); err == nil {
				h2, err := ParseHealthState(out)
				if err != nil || !reflect.DeepEqual(h, h2) {
					t.Fatalf("health round trip: %+v → %q → %+v, %v", h, out, h2, err)
				}
			}
		}
		if p, err := ParsePolicyState(b); err == nil {
			if out, err := FormatPolicyState(&p); err == nil {
				p2, err := ParsePolicyState(out)
				if err != nil || !reflect.DeepEqual(p.Failures, p2.Failures) || p.Reason != p2.Reason || !p.Until.Equal(p2.Until) {
					t.Fatalf("policy round trip: %+v → %q → %+v, %v", p, out, p2, err)
				}
			}
		}
	})
}
