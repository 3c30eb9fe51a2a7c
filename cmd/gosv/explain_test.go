package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// TestSvstatExplains: a real s6-supervise keeps the status file; a
// hand-written supervise/gosv/policy (as gosv's supervisor writes it after
// a give-up) makes gosv svstat add why, while s6-svstat, reading the same
// status file, prints the line it always did, and gosv's line starts with
// exactly that line.
func TestSvstatExplains(t *testing.T) {
	needS6(t)
	dir, _ := s6Service(t)
	at := time.Date(2027, 3, 1, 12, 3, 4, 0, time.Local)
	policy := `{"failures":3,"delay_ns":0,"last_wstat":256,"last_known":true,"gave_up":true,"gave_up_at":"` +
		at.Format(time.RFC3339Nano) + `","respawns":11,"within_ns":12000000000}` + "\n"
	if err := os.MkdirAll(filepath.Join(dir, servicedir.GosvStateDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, servicedir.PolicyStatePath), []byte(policy), 0o644); err != nil {
		t.Fatal(err)
	}
	const why = "given up at 12:03:04: respawned 11 times within 12 s"
	s6 := runProg(t, "/usr/bin/s6-svstat", dir)
	ours := gosv(t, "svstat", dir)
	blur := func(s string) string { return secondsRE.ReplaceAllString(s, "N seconds") }
	if ours.code != 0 || blur(ours.stdout) != blur(strings.TrimSuffix(s6.stdout, "\n"))+"; "+why+"\n" {
		t.Errorf("gosv svstat %q (exit %d), want s6-svstat's %q then %q", ours.stdout, ours.code, s6.stdout, why)
	}
	js := gosv(t, "svstat", "--json", dir)
	if !strings.Contains(js.stdout, `"explain":"`+why+`"`) || !strings.Contains(js.stdout, `"policy":{"failures":3,`) {
		t.Errorf("gosv svstat --json: %s", js.stdout)
	}
	// Field mode is s6's, byte for byte.
	sameStatus(t, dir, "-o", allFields)
}
