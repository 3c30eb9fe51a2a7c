package main

import (
	"math"
	"os"
	"path/filepath"
	"testing"
)

func TestParseStamp(t *testing.T) {
	tests := []struct {
		line    string
		want    stamp
		wantErr bool
	}{
		{"12 1700000000.123456", stamp{12, 1700000000123456000}, false},
		{"7 1700000000", stamp{7, 1700000000000000000}, false},
		{"7 1700000000.5", stamp{7, 1700000000500000000}, false},
		{"7 1700000000,5", stamp{}, true}, // a non-C locale's decimal comma
		{"1700000000.5", stamp{}, true},
		{"x 1.0", stamp{}, true},
	}
	for _, tt := range tests {
		got, err := parseStamp(tt.line)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("parseStamp(%q) = %v, %v; want %v, err %v", tt.line, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestQuantiles(t *testing.T) {
	tests := []struct {
		xs       []float64
		med, p90 float64
	}{
		{[]float64{5}, 5, 5},
		{[]float64{4, 1, 3, 2}, 2.5, 4},
		{[]float64{10, 9, 8, 7, 6, 5, 4, 3, 2, 1}, 5.5, 9},
	}
	for _, tt := range tests {
		med, p90 := quantiles(tt.xs)
		if med != tt.med || p90 != tt.p90 {
			t.Errorf("quantiles(%v) = %v, %v; want %v, %v", tt.xs, med, p90, tt.med, tt.p90)
		}
	}
}

func TestReadLastIgnoresPartialLine(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	if err := os.WriteFile(p, []byte("1 10.0\n2 20.0\n3 3"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := readLast(p)
	if err != nil || got != (stamp{2, 20e9}) {
		t.Fatalf("readLast = %v, %v; want {2 20e9}", got, err)
	}
}

func TestGosvShare(t *testing.T) {
	p := filepath.Join(t.TempDir(), "trace")
	trace := "svc=a ev=reap pid=10 t=1000000\nsvc=a ev=exec pid=11 t=3500000\n"
	if err := os.WriteFile(p, []byte(trace), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := gosvShare(p, 10, 11); got != 2.5 {
		t.Errorf("gosvShare = %v; want 2.5", got)
	}
	if got := gosvShare(p, 10, 12); !math.IsNaN(got) {
		t.Errorf("gosvShare with no exec line = %v; want NaN", got)
	}
	if got := gosvShare("", 10, 11); !math.IsNaN(got) {
		t.Errorf("gosvShare without trace = %v; want NaN", got)
	}
	if got := gosvExec(p, 11); !math.IsNaN(got) {
		t.Errorf("gosvExec with no fork line = %v; want NaN", got)
	}
	q := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(q, []byte("ev=reap pid=10 t=1000000\nev=fork pid=11 t=2000000\nev=exec pid=11 t=6000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := gosvShare(q, 10, 11); got != 1 {
		t.Errorf("gosvShare = %v; want 1", got)
	}
	if got := gosvExec(q, 11); got != 4 {
		t.Errorf("gosvExec = %v; want 4", got)
	}
	r := filepath.Join(t.TempDir(), "trace")
	if err := os.WriteFile(r, []byte("ev=reap pid=10 t=1500000 via=pidfd\nev=fork pid=11 t=2000000\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := gosvReap(r, 10, 1000000); got != 0.5 {
		t.Errorf("gosvReap = %v; want 0.5", got)
	}
	if got := gosvReap(r, 12, 1000000); !math.IsNaN(got) {
		t.Errorf("gosvReap with no reap line = %v; want NaN", got)
	}
}
