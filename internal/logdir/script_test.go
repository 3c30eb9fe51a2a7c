package logdir

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestParseScript(t *testing.T) {
	tests := []struct {
		args []string
		err  string // "" = valid
	}{
		{[]string{"./d"}, ""},
		{[]string{"t", "s1048576", "n10", "/var/log/foo"}, ""},
		{[]string{"T", "S1000000", "l100", "r500", "E10", "^10", "!", "pfoo:", "p", "1", "2"}, ""},
		{[]string{"-.*", "+x", "1", "f", "2"}, ""},
		{[]string{"1", "t"}, ""}, // trailing non-actions are ignored
		{[]string{}, "no action directive specified"},
		{[]string{"t"}, "no action directive specified"},
		{[]string{""}, "unrecognized directive: "},
		{[]string{"x", "1"}, "unrecognized directive: x"},
		{[]string{"e", "1"}, "unrecognized directive: e"},
		{[]string{"s", "1"}, "unrecognized directive: s"},
		{[]string{"s-1", "1"}, "unrecognized directive: s-1"},
		{[]string{"nx", "1"}, "unrecognized directive: nx"},
		{[]string{"s99999999999", "1"}, "unrecognized directive: s99999999999"},
		{[]string{"tx", "1"}, "syntax error at directive: tx"},
		{[]string{"Tz", "1"}, "syntax error at directive: Tz"},
		{[]string{"fx", "1"}, "syntax error at directive: fx"},
		{[]string{"1x"}, "syntax error at directive: 1x"},
		{[]string{"="}, "syntax error at directive: ="},
		{[]string{"s4096", "l3000", "1"}, "conflicts with previous s directive: l3000"},
		{[]string{"+(", "1"}, "unrecognized directive (error parsing regexp: missing closing ): `(`): +("},
		{[]string{"!gzip", "./d"}, "processors are not supported: !gzip"},
		{[]string{"=status", "1"}, "status files are not supported: =status"},
	}
	for _, tt := range tests {
		_, err := ParseScript(tt.args)
		got := ""
		if err != nil {
			got = err.Error()
			if !errors.Is(err, ErrScript) {
				t.Errorf("ParseScript(%q) = %v, not ErrScript", tt.args, err)
			}
		}
		if got != tt.err {
			t.Errorf("ParseScript(%q) = %q, want %q", tt.args, got, tt.err)
		}
	}
}

func TestParseScriptDirConfig(t *testing.T) {
	s := mustScript(t, "s100", "./a", "n3", "S5000", "r60000", "s999999999", "/b")
	want := []DirConfig{
		{Path: "./a", MaxSize: MinMaxSize, Archives: 10, Tolerance: 2000, Retry: 2 * time.Second},
		{Path: "/b", MaxSize: MaxMaxSize, Archives: 3, MaxTotal: 5000, Tolerance: 2000, Retry: MaxRetry},
	}
	got := s.Dirs()
	if len(got) != len(want) {
		t.Fatalf("dirs %+v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("dir %d = %+v, want %+v", i, got[i], want[i])
		}
	}
}

func TestParseScriptAt(t *testing.T) {
	s, err := ParseScriptAt("/svc/web", []string{"t", "./main", "-x", "/var/log/x", "rel"})
	if err == nil {
		t.Fatalf("rel is not a directive: %+v", s.Dirs())
	}
	s, err = ParseScriptAt("/svc/web", []string{"t", "./main", "-x", "/var/log/x", "../shared"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range s.Dirs() {
		got = append(got, d.Path)
	}
	if want := []string{"/svc/web/main", "/var/log/x", "/svc/shared"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("dirs %q, want %q", got, want)
	}
}

// TestScriptErrorsMatchS6 checks that s6-log accepts and rejects the same
// directives (exit 0 or 100), except the two gosv refuses on purpose.
func TestScriptErrorsMatchS6(t *testing.T) {
	s6log := needS6Log(t)
	for _, args := range [][]string{
		{"1"}, {"x", "1"}, {"s", "1"}, {"s-1", "1"}, {"tx", "1"}, {"1x"}, {"fx", "1"},
		{"s4096", "l3000", "1"}, {"s4096", "l2048", "1"}, {"+(", "1"}, {"t"}, {"n0", "1"},
		{"p", "1"}, {"pa b", "1"}, {"S18446744073709551615", "1"}, {"^", "1"}, {"E", "1"},
	} {
		_, err := ParseScript(args)
		cmd := exec.Command(s6log, append([]string{"--"}, args...)...)
		cmd.Stdin = strings.NewReader("")
		cmd.Stdout, cmd.Stderr = nil, nil
		s6err := cmd.Run()
		if (err == nil) != (s6err == nil) {
			t.Errorf("%q: gosv %v, s6-log %v", args, err, s6err)
		}
	}
}

// TestSelectionMatchesS6 runs the same input through s6-log and a Logger,
// with actions told apart by their prefix, and compares the output.
func TestSelectionMatchesS6(t *testing.T) {
	s6log := needS6Log(t)
	input := "x\ny\nz\nxy\nfoo bar\n\n"
	for _, args := range [][]string{
		{"pA", "1"},
		{"-y", "pA", "1", "f", "pB", "1"},
		{"-y", "pA", "1", "+y", "pB", "1"},
		{"-.*", "+x", "pA", "1", "f", "pB", "1"},
		{"-x", "-z", "pA", "1", "pB", "1", "-.*", "+^$", "pC", "1"},
		{"+x", "pA", "1", "-y", "pB", "1", "f", "pC", "1"},
		{"-[[:alpha:]]+ [a-z]{3}$", "pA", "1", "p", "1"},
	} {
		cmd := exec.Command(s6log, append([]string{"--"}, args...)...)
		cmd.Stdin = strings.NewReader(input)
		want, err := cmd.Output()
		if err != nil {
			t.Fatalf("s6-log %q: %v", args, err)
		}
		var out bytes.Buffer
		got := runStdout(t, mustScript(t, args...), input, &out)
		if got != string(want) {
			t.Errorf("%q:\ngosv   %q\ns6-log %q", args, got, want)
		}
	}
}

// runStdout feeds input to a Logger whose 1 actions write to out.
func runStdout(t *testing.T, s *Script, input string, out *bytes.Buffer) string {
	t.Helper()
	p := testPipe(t)
	writeAllT(t, p[1], []byte(input))
	closeW(p)
	l := mustOpen(t, s, Options{Stdout: out})
	defer l.Close()
	if _, eof, err := consumeAll(t, l, p[0], testScratch(t)); !eof || err != nil {
		t.Fatalf("eof %v err %v", eof, err)
	}
	return out.String()
}

func needS6Log(t *testing.T) string {
	t.Helper()
	return needTool(t, "/usr/bin/s6-log")
}

// needTool skips when a tool of the s6 package is missing, unless
// REQUIRE_S6=1.
func needTool(t *testing.T, path string) string {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("REQUIRE_S6") == "1" {
			t.Fatalf("REQUIRE_S6=1 but %v", err)
		}
		t.Skipf("s6 not installed: %v", err)
	}
	return path
}

func FuzzParseScript(f *testing.F) {
	for _, s := range []string{"t s4096 n3 ./d", "-x +y 1 f 2", "T p:a 1", "l10 s4096 1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, script string) {
		args := strings.Fields(script)
		s, err := ParseScript(args)
		if err != nil {
			return
		}
		if s.nacts == 0 || s.nacts > maxActions {
			t.Fatalf("%q: %d actions", args, s.nacts)
		}
		for _, d := range s.dirs {
			if d.MaxSize < MinMaxSize || d.MaxSize > MaxMaxSize || d.Retry > MaxRetry {
				t.Fatalf("%q: %+v", args, d)
			}
		}
		s.selectLine([]byte("some line"))
	})
}
