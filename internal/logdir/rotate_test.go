package logdir

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// crash is what the step hook panics with to kill the logger mid-step.
type crash struct{ step rotStep }

// abandon drops a logger the way a SIGKILL does: descriptors closed,
// nothing fsynced, no mode changed.
func abandon(l *Logger) {
	for _, d := range l.dirs {
		d.close()
	}
}

// consumeUntilCrash runs Consume until the hook panics with crash.
func consumeUntilCrash(t *testing.T, l *Logger, fd int, sc *Scratch) (crashed bool) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			if _, ok := r.(crash); !ok {
				panic(r)
			}
			crashed = true
		}
	}()
	consumeAll(t, l, fd, sc)
	return false
}

// TestCrashBetweenSteps kills the logger before each rotation step (the
// hook panics out of Consume, as a SIGKILL would stop it there), then
// opens a new one on the same directory and pipe: every line is there
// exactly once, in order.
func TestCrashBetweenSteps(t *testing.T) {
	for step := stepSync; step <= stepTrim; step++ {
		t.Run(step.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			p := testPipe(t)
			script := mustScript(t, "s4096", "n100", dir)
			l := mustOpen(t, script, Options{})
			rotations := 0
			l.hook = func(_ string, s rotStep) error {
				if s == stepSync {
					rotations++
				}
				if rotations == 2 && s == step {
					panic(crash{s})
				}
				return nil
			}
			input := seqLines(0, 400, 60)
			writeAllT(t, p[1], input)
			if !consumeUntilCrash(t, l, p[0], testScratch(t)) {
				t.Fatal("the hook never ran")
			}
			abandon(l)
			l = mustOpen(t, script, Options{})
			closeW(p)
			if _, eof, err := consumeAll(t, l, p[0], testScratch(t)); !eof || err != nil {
				t.Fatalf("eof %v, err %v", eof, err)
			}
			if err := l.Close(); err != nil {
				t.Fatal(err)
			}
			if got := logText(t, dir); got != string(input) {
				t.Errorf("after a crash before %q: lines lost or repeated:\n%s", step, diffLines(got, string(input)))
			}
			for _, f := range []string{previousName, processedName} {
				if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
					t.Errorf("%s left behind", f)
				}
			}
		})
	}
}

// TestFailedStepRetried: a step that fails (rather than crashes) is
// reported once and retried after the r delay; nothing is lost.
func TestFailedStepRetried(t *testing.T) {
	for step := stepSync; step <= stepTrim; step++ {
		t.Run(step.String(), func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			clock := newClock()
			p := testPipe(t)
			sc := testScratch(t)
			l := mustOpen(t, mustScript(t, "s4096", "n100", "r1000", dir), Options{Now: clock.Now})
			failures := 0
			l.hook = func(_ string, s rotStep) error {
				if s == step && failures < 2 {
					failures++
					return errInjected
				}
				return nil
			}
			input := seqLines(0, 200, 60)
			writeAllT(t, p[1], input)
			at, _, err := consumeAll(t, l, p[0], sc)
			var we *WriteError
			if !errors.As(err, &we) || !errors.Is(err, errInjected) || !at.Equal(clock.t.Add(time.Second)) {
				t.Fatalf("first failure: at %v, err %v", at, err)
			}
			if _, _, err := consumeAll(t, l, p[0], sc); err != nil {
				t.Errorf("early call: %v", err)
			}
			clock.Add(time.Second)
			if _, _, err := consumeAll(t, l, p[0], sc); err != nil {
				t.Errorf("second failure reported again: %v", err)
			}
			clock.Add(time.Second)
			closeW(p)
			if _, eof, err := consumeAll(t, l, p[0], sc); !eof || err != nil {
				t.Fatalf("eof %v, err %v", eof, err)
			}
			l.Close()
			if got := logText(t, dir); got != string(input) {
				t.Errorf("lines lost or repeated:\n%s", diffLines(got, string(input)))
			}
		})
	}
}

// TestRecoverLeftovers: each state a dead logger (gosv's or s6-log's) may
// leave is recovered into archives, in order, without loss.
func TestRecoverLeftovers(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]string // name → content; a trailing "*" in the name sets the x bit
		want  string            // the log text after recovery
		names string            // suffixes of the archives, in order
	}{
		{"clean current", map[string]string{"current*": "a\n"}, "a\n", ""},
		{"unclean current", map[string]string{"current": "a\n"}, "a\n", ""}, // continued: whole lines
		{"unclean current, cut line", map[string]string{"current": "a\nb"}, "a\nb", "u"},
		{"empty unclean current", map[string]string{"current": ""}, "", ""},
		{"previous only", map[string]string{"previous": "a\n"}, "a\n", "u"},
		{"previous done", map[string]string{"previous*": "a\n", "current": "b\n"}, "a\nb\n", "s"},
		{"processed done", map[string]string{"previous": "raw\n", "processed*": "p\n"}, "p\n", "s"},
		{"processed partial", map[string]string{"previous": "a\n", "processed": "p"}, "a\n", "u"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "log")
			os.Mkdir(dir, 0o700)
			for name, content := range tt.files {
				perm := os.FileMode(writingPerm)
				if n, ok := strings.CutSuffix(name, "*"); ok {
					name, perm = n, donePerm
				}
				if err := os.WriteFile(filepath.Join(dir, name), []byte(content), perm); err != nil {
					t.Fatal(err)
				}
			}
			l := mustOpen(t, mustScript(t, dir), Options{})
			defer l.Close()
			if got := logText(t, dir); got != tt.want {
				t.Errorf("text %q, want %q", got, tt.want)
			}
			suffixes := ""
			for _, f := range logFiles(t, dir) {
				if f != currentName {
					suffixes += f[len(f)-1:]
				}
			}
			if suffixes != tt.names {
				t.Errorf("archives %v, want suffixes %q", logFiles(t, dir), tt.names)
			}
		})
	}
}

// diffLines describes how got differs from want, line by line.
func diffLines(got, want string) string {
	g, w := strings.Split(got, "\n"), strings.Split(want, "\n")
	seen := map[string]int{}
	for _, ln := range g {
		seen[ln]++
	}
	var b strings.Builder
	for _, ln := range w {
		switch seen[ln] {
		case 0:
			b.WriteString("lost: " + ln + "\n")
		case 1:
		default:
			b.WriteString("repeated: " + ln + "\n")
		}
		delete(seen, ln)
	}
	for ln := range seen {
		b.WriteString("extra: " + ln + "\n")
	}
	if b.Len() == 0 {
		return "same lines, different order"
	}
	return b.String()
}
