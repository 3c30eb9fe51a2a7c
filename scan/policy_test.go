package scan

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// policyRun is a run script that counts its runs in ../count, appends
// "NANOS POLICY-JSON" to ../stamps (the policy file as the spawn found
// it), then does what the case's line for this run says (the last line
// repeats): "exit N", "kill -SIG", or "live SECONDS" (then exit 1).
func policyRun(plan ...string) string {
	var b strings.Builder
	b.WriteString("#!/bin/sh\nn=$(cat ../count 2>/dev/null || echo 0); n=$((n+1)); echo $n >../count\n")
	b.WriteString("echo \"$(date +%s%N) $(cat supervise/gosv/policy 2>/dev/null)\" >>../stamps\n")
	b.WriteString("case $n in\n")
	for i, p := range plan {
		pat := strconv.Itoa(i + 1)
		if i == len(plan)-1 {
			pat = "*"
		}
		cmd := p
		switch {
		case strings.HasPrefix(p, "kill "):
			cmd = p + " $$"
		case strings.HasPrefix(p, "live "):
			// The behaviour under test is a run that stays up this long.
			cmd = "sleep " + strings.TrimPrefix(p, "live ") + "; exit 1"
		}
		b.WriteString(pat + ") " + cmd + " ;;\n")
	}
	b.WriteString("esac\n")
	return b.String()
}

type stamp struct {
	at  time.Time
	pol servicedir.PolicyState
}

func readStamps(t *testing.T, path string) []stamp {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []stamp
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		ns, js, _ := strings.Cut(l, " ")
		n, err := strconv.ParseInt(ns, 10, 64)
		if err != nil {
			t.Fatalf("stamp %q: %v", l, err)
		}
		s := stamp{at: time.Unix(0, n)}
		if js != "" {
			if err := json.Unmarshal([]byte(js), &s.pol); err != nil {
				t.Fatalf("policy %q: %v", js, err)
			}
		}
		out = append(out, s)
	}
	return out
}

// TestPolicyBackoffSequence: a crash loop with respawn-delay 20 ms and
// respawn-delay-max 160 ms respawns after 20, 40, 80, 160, 160 ms; a run
// that stayed up respawn-reset starts the sequence over. The delays are
// asserted as the policy file recorded them and, as lower bounds, on the
// spawn timestamps (a loaded machine only makes the gaps longer).
func TestPolicyBackoffSequence(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	dir := mksvc(t, scan, "crashy", policyRun("exit 1", "exit 1", "exit 1", "exit 1", "exit 1", "live 3.5", "exit 1", "exit 1"), map[string]string{
		servicedir.RespawnDelayFile: "20\n", servicedir.RespawnDelayMaxFile: "160\n", servicedir.RespawnResetFile: "3000\n",
	})
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	countEvents(t, sub, 'd', 8) // 8 deaths: 8 stamps written
	if err := servicedir.WriteControl(svc, []byte("d")); err != nil {
		t.Fatal(err)
	}
	st := readStamps(t, filepath.Join(filepath.Dir(dir), "stamps"))
	if len(st) < 8 {
		t.Fatalf("%d spawns, want at least 8", len(st))
	}
	ms := time.Millisecond
	want := []time.Duration{20 * ms, 40 * ms, 80 * ms, 160 * ms, 160 * ms, 20 * ms, 40 * ms}
	for i, d := range want {
		s := st[i+1]
		if s.pol.Delay != d {
			t.Errorf("spawn %d: the policy recorded delay %v, want %v (%+v)", i+2, s.pol.Delay, d, s.pol)
		}
		if gap := s.at.Sub(st[i].at); gap < d {
			t.Errorf("spawn %d came %v after the previous one, before its delay %v", i+2, gap, d)
		}
	}
	if f := st[6].pol.Failures; f != 1 {
		t.Errorf("after the stable run: %d failures, want 1 (reset)", f)
	}
}

// TestPolicyExitCodes: respawn-on with success-exit, codes and signals.
func TestPolicyExitCodes(t *testing.T) {
	for _, c := range []struct {
		name   string
		files  map[string]string
		plan   []string
		spawns int    // runs before it stays down
		reason string // in the policy file
	}{
		{"failure-exit0", map[string]string{servicedir.RespawnOnFile: "failure\n"},
			[]string{"exit 3", "exit 0"}, 2, "exit 0 is a success exit and respawn-on is failure"},
		{"failure-signal", map[string]string{servicedir.RespawnOnFile: "failure\n", servicedir.SuccessExitFile: "0 SIGTERM\n"},
			[]string{"exit 1", "kill -KILL", "kill -TERM"}, 3, "signal SIGTERM is a success exit and respawn-on is failure"},
		{"failure-code", map[string]string{servicedir.RespawnOnFile: "failure\n", servicedir.SuccessExitFile: "2\n"},
			[]string{"exit 0", "exit 2"}, 2, "exit 2 is a success exit and respawn-on is failure"},
		{"never", map[string]string{servicedir.RespawnOnFile: "never\n"},
			[]string{"exit 1"}, 1, "exit 1 and respawn-on is never"},
	} {
		t.Run(c.name, func(t *testing.T) {
			scan := t.TempDir()
			startScanner(t, scan)
			dir := mksvc(t, scan, c.name, policyRun(c.plan...), c.files)
			sub, err := servicedir.Subscribe(dir)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			link(t, scan, dir)
			waitEvent(t, sub, "O") // "OD", written once the status says down
			if n := len(readStamps(t, filepath.Join(filepath.Dir(dir), "stamps"))); n != c.spawns {
				t.Errorf("%d runs, want %d", n, c.spawns)
			}
			if st := status(t, dir); st.WantUp || st.Up() {
				t.Errorf("status %+v: want down and not wanted up", st)
			}
			p, ok, err := servicedir.ReadPolicyState(dir)
			if !ok || err != nil || !p.GaveUp || p.Reason != c.reason {
				t.Errorf("policy state %+v %v %v, want given up: %q", p, ok, err, c.reason)
			}
		})
	}
}

// TestPolicyAlwaysRespawnsSuccess: the default respawns an exit 0 (s6),
// and writes no policy file.
func TestPolicyAlwaysRespawnsSuccess(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	dir := mksvc(t, scan, "ok", policyRun("exit 0"), nil)
	sub, err := servicedir.Subscribe(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	svc := link(t, scan, dir)
	countEvents(t, sub, 'd', 2)
	servicedir.WriteControl(svc, []byte("d"))
	if _, ok, err := servicedir.ReadPolicyState(dir); ok || err != nil {
		t.Errorf("a policy file without a policy: %v %v", ok, err)
	}
}
