package warnlimit

import (
	"strconv"
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type step struct {
		clear      bool
		key, sig   string
		at         time.Duration // since t0
		ok         bool
		suppressed int
	}
	tests := []struct {
		name  string
		every time.Duration
		steps []step
	}{
		{"first report, then silence within the hour", 0, []step{
			{key: "a", sig: "1", at: 0, ok: true},
			{key: "a", sig: "1", at: time.Second, ok: false},
			{key: "a", sig: "1", at: 59 * time.Minute, ok: false},
		}},
		{"hourly reminder with the count", 0, []step{
			{key: "a", sig: "1", at: 0, ok: true},
			{key: "a", sig: "1", at: time.Second},
			{key: "a", sig: "1", at: 2 * time.Second},
			{key: "a", sig: "1", at: time.Hour, ok: true, suppressed: 2},
			{key: "a", sig: "1", at: time.Hour + time.Second},
			{key: "a", sig: "1", at: 2 * time.Hour, ok: true, suppressed: 1},
		}},
		{"a change is reported at once", 0, []step{
			{key: "a", sig: "1", at: 0, ok: true},
			{key: "a", sig: "2", at: time.Second, ok: true},
			{key: "a", sig: "2", at: 2 * time.Second},
			{key: "a", sig: "1", at: 3 * time.Second, ok: true},
		}},
		{"keys are independent", 0, []step{
			{key: "a", sig: "1", at: 0, ok: true},
			{key: "b", sig: "1", at: time.Second, ok: true},
			{key: "a", sig: "1", at: 2 * time.Second},
			{key: "b", sig: "1", at: 3 * time.Second},
		}},
		{"cleared problems are reported again when they return", 0, []step{
			{key: "a", sig: "1", at: 0, ok: true},
			{clear: true, key: "a"},
			{key: "a", sig: "1", at: time.Second, ok: true},
		}},
		{"clearing an unknown key is harmless", 0, []step{
			{clear: true, key: "x"},
			{key: "x", sig: "", at: 0, ok: true},
		}},
		{"custom interval", 10 * time.Second, []step{
			{key: "a", sig: "1", at: 0, ok: true},
			{key: "a", sig: "1", at: 9 * time.Second},
			{key: "a", sig: "1", at: 10 * time.Second, ok: true, suppressed: 1},
		}},
		{"clock going backwards reports", 0, []step{
			{key: "a", sig: "1", at: time.Hour, ok: true},
			{key: "a", sig: "1", at: 0, ok: true},
			{key: "a", sig: "1", at: time.Second},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := Limiter{Interval: tt.every}
			for i, s := range tt.steps {
				if s.clear {
					l.Clear(s.key)
					continue
				}
				ok, n := l.Allow(s.key, s.sig, t0.Add(s.at))
				if ok != s.ok || n != s.suppressed {
					t.Errorf("step %d %+v: Allow = %v, %d; want %v, %d", i, s, ok, n, s.ok, s.suppressed)
				}
			}
		})
	}
}

// TestLimiterFloodCount: a problem occurring 27 times a second for 30
// seconds (the fd-limit case of issue 9) prints once.
func TestLimiterFloodCount(t *testing.T) {
	var l Limiter
	t0 := time.Now()
	printed := 0
	for i := range 30 * 27 {
		if ok, _ := l.Allow("emfile", "too many open files", t0.Add(time.Duration(i)*time.Second/27)); ok {
			printed++
		}
	}
	if printed != 1 {
		t.Errorf("printed %d times, want 1", printed)
	}
}

// TestLimiterBounded: memory stays bounded however many keys come.
func TestLimiterBounded(t *testing.T) {
	var l Limiter
	t0 := time.Now()
	for i := range 10 * MaxKeys {
		l.Allow(strconv.Itoa(i), "", t0.Add(time.Duration(i)))
	}
	if l.Len() > MaxKeys {
		t.Errorf("Len = %d > %d", l.Len(), MaxKeys)
	}
	// The newest key survived eviction.
	if ok, _ := l.Allow(strconv.Itoa(10*MaxKeys-1), "", t0.Add(time.Hour/2)); ok {
		t.Errorf("newest key was evicted")
	}
}
