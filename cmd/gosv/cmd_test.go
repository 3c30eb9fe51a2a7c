package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/svctl"
	"github.com/gosv/gosv/internal/svstat"
	"github.com/gosv/gosv/svwait"
)

func testEnv() (*env, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	return &env{Stdout: &out, Stderr: &errb, Getenv: func(string) string { return "" }, Now: time.Now}, &out, &errb
}

// execCmd runs a constructed command on argv and returns its error.
func execCmd(c *cobra.Command, argv []string) error {
	if argv == nil {
		argv = []string{} // cobra reads os.Args when given nil
	}
	c.SetArgs(argv)
	c.SetOut(&bytes.Buffer{})
	c.SetErr(&bytes.Buffer{})
	_, err := c.ExecuteC()
	return err
}

// usageMsg renders an error for the tables: "usage: MSG" for usage errors
// (MSG empty for a bare usage error), "error: MSG" otherwise.
func usageMsg(err error) string {
	var ue *usageError
	switch {
	case err == nil:
		return ""
	case errors.As(err, &ue) && ue.err == nil:
		return "usage"
	case errors.As(err, &ue):
		return "usage: " + ue.err.Error()
	default:
		return "error: " + err.Error()
	}
}

func TestNewSvcCmd(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		argv  []string
		want  svcOptions
		extra bool
		err   string
	}{
		{argv: []string{"dir"}, want: svcOptions{Dir: "dir"}},
		{argv: []string{"-u", "dir"}, want: svcOptions{Dir: "dir", Letters: []byte("u")}},
		{argv: []string{"-p", "-c", "-O", "-Q", "dir"}, want: svcOptions{Dir: "dir", Letters: []byte("pcOQ")}},
		{argv: []string{"-ud", "-u", "d"}, want: svcOptions{Dir: "d", Letters: []byte("udu")}},
		{argv: []string{"-wU", "-T", "500", "-u", "d"}, want: svcOptions{Dir: "d", Letters: []byte("u"), Wait: 'U', Timeout: 500 * ms}},
		{argv: []string{"-wu", "-T700", "-u", "-d", "svcB"}, want: svcOptions{Dir: "svcB", Letters: []byte("ud"), Wait: 'u', Timeout: 700 * ms}},
		{argv: []string{"-wD", "-wr", "d"}, want: svcOptions{Dir: "d", Wait: 'r'}},
		{argv: []string{"-wUx", "d"}, want: svcOptions{Dir: "d", Wait: 'U'}}, // only the first letter counts
		{argv: []string{"-T", "0", "d"}, want: svcOptions{Dir: "d"}},
		{argv: []string{"-abqhkti12pcyroduDUxOQ", "d"}, want: svcOptions{Dir: "d", Letters: []byte(svctl.SvcLetters)}},
		{argv: []string{"-u", "d", "extra"}, want: svcOptions{Dir: "d", Letters: []byte("u")}, extra: true},
		{argv: []string{"--", "-u"}, want: svcOptions{Dir: "-u"}},
		{argv: []string{"-" + strings.Repeat("u", 62), "d"}, want: svcOptions{Dir: "d", Letters: bytes.Repeat([]byte("u"), 62)}},
		{argv: []string{"-" + strings.Repeat("u", 63), "d"}, err: "usage: too many commands"},
		{argv: nil, err: "usage"},
		{argv: []string{"-u"}, err: "usage"},
		{argv: []string{"-X", "d"}, err: "usage: unknown option -X"},
		{argv: []string{"-s", "TERM", "d"}, err: "usage: unknown option -s"}, // not in 2.11.3.2
		{argv: []string{"-T"}, err: "usage: option -T requires an argument"},
		{argv: []string{"-Tabc", "d"}, err: `usage: invalid timeout "abc"`},
		{argv: []string{"-T", "-5", "d"}, err: `usage: invalid timeout "-5"`},
		{argv: []string{"-T", "99999999999", "d"}, err: `usage: invalid timeout "99999999999"`},
		{argv: []string{"-wx", "d"}, err: `usage: invalid wait state "x"`},
		{argv: []string{"-w", "", "d"}, err: `usage: invalid wait state ""`},
		{argv: []string{"-u", ""}, err: "usage: invalid service path"},
	}
	for _, tt := range tests {
		e, _, stderr := testEnv()
		var got *svcOptions
		err := execCmd(newSvcCmd(e, func(o *svcOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("svc %q: error %q, want %q", tt.argv, msg, tt.err)
			continue
		}
		if tt.err != "" {
			continue
		}
		if got.Dir != tt.want.Dir || !bytes.Equal(got.Letters, tt.want.Letters) ||
			got.Wait != tt.want.Wait || got.Timeout != tt.want.Timeout || got.Warn == nil {
			t.Errorf("svc %q: options %+v, want %+v", tt.argv, *got, tt.want)
		}
		if warned := strings.HasSuffix(stderr.String(), ": warning: ignoring extra arguments\n"); warned != tt.extra {
			t.Errorf("svc %q: stderr %q, want the extra-arguments warning: %v", tt.argv, stderr, tt.extra)
		}
	}
}

func TestNewSvstatCmd(t *testing.T) {
	all := []svstat.Field{svstat.Up, svstat.WantedUp, svstat.NormallyUp, svstat.Ready, svstat.Paused, svstat.Pid,
		svstat.ExitCode, svstat.Signal, svstat.Signum, svstat.UpdownSince, svstat.ReadySince, svstat.UpdownFor, svstat.ReadyFor}
	tests := []struct {
		argv []string
		want svstat.Format
		dir  string
		err  string
	}{
		{argv: []string{"d"}, dir: "d"},
		{argv: []string{"-n", "d"}, dir: "d", want: svstat.Format{Numeric: true}},
		{argv: []string{"-uwNrpest", "d"}, dir: "d", want: svstat.Format{Fields: []svstat.Field{
			svstat.Up, svstat.WantedUp, svstat.NormallyUp, svstat.Ready, svstat.Pid, svstat.ExitCode, svstat.Signal, svstat.UpdownFor}}},
		{argv: []string{"-o", "up,wantedup,normallyup,ready,paused,pid,exitcode,signal,signum,updownsince,readysince,updownfor,readyfor", "d"}, dir: "d", want: svstat.Format{Fields: all}},
		{argv: []string{"-p", "-o", "sig,n", "-u", "d"}, dir: "d", want: svstat.Format{Fields: []svstat.Field{svstat.Pid, svstat.Signal, svstat.NormallyUp, svstat.Up}}},
		{argv: []string{"-o", "", "d"}, dir: "d"}, // no field: legacy line, as s6
		{argv: []string{"-o", "up,", "-n", "d"}, dir: "d", want: svstat.Format{Fields: []svstat.Field{svstat.Up}, Numeric: true}},
		{argv: []string{"--json", "d"}, dir: "d", want: svstat.Format{JSON: true}},
		{argv: []string{"--json", "-n", "d"}, dir: "d", want: svstat.Format{JSON: true, Numeric: true}},
		{argv: []string{"d", "extra"}, dir: "d"},
		{argv: []string{"--", "-x"}, dir: "-x"},
		{argv: []string{"-" + strings.Repeat("u", 16), "d"}, dir: "d", want: svstat.Format{Fields: make([]svstat.Field, 16)}},
		{argv: []string{"-" + strings.Repeat("u", 17), "d"}, err: "usage: too many option fields"},
		{argv: []string{"-o", "foo", "d"}, err: "usage: invalid option field: foo"},
		{argv: []string{"-o", "foo", "-X", "d"}, err: "usage: invalid option field: foo"}, // left to right
		{argv: []string{"-o", "up,,pid", "d"}, err: "usage: invalid null option field"},
		{argv: []string{"-g", "d"}, err: "usage: unknown option -g"},
		{argv: []string{"-o"}, err: "usage: option -o requires an argument"},
		{argv: []string{"-n"}, err: "usage"},
		{argv: []string{"d", "--json"}, dir: "d"}, // not first: an ignored operand
		{argv: []string{"-n", "--json", "d"}, err: "usage: unknown option --"},
		{argv: []string{"--json", "-u", "d"}, err: "usage: --json excludes field options"},
		{argv: []string{"--json"}, err: "usage"},
	}
	for _, tt := range tests {
		e, _, _ := testEnv()
		var got *svstatOptions
		err := execCmd(newSvstatCmd(e, func(o *svstatOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("svstat %q: error %q, want %q", tt.argv, msg, tt.err)
			continue
		}
		if tt.err != "" {
			continue
		}
		if got.Dir != tt.dir || !reflect.DeepEqual(got.Format, tt.want) || got.Stdout != e.Stdout || got.Now == nil {
			t.Errorf("svstat %q: options %+v, want dir %q format %+v", tt.argv, *got, tt.dir, tt.want)
		}
	}
}

func TestNewSvokCmd(t *testing.T) {
	tests := []struct {
		argv []string
		dir  string
		err  string
	}{
		{[]string{"d"}, "d", ""},
		{[]string{"-x"}, "-x", ""}, // no option parsing, as s6-svok
		{[]string{"--"}, "--", ""},
		{[]string{"a", "b"}, "a", ""},
		{nil, "", "usage"},
	}
	for _, tt := range tests {
		e, _, _ := testEnv()
		var got *svokOptions
		err := execCmd(newSvokCmd(e, func(o *svokOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("svok %q: error %q, want %q", tt.argv, msg, tt.err)
		} else if tt.err == "" && got.Dir != tt.dir {
			t.Errorf("svok %q: dir %q, want %q", tt.argv, got.Dir, tt.dir)
		}
	}
}

func TestNewSvscanctlCmd(t *testing.T) {
	tests := []struct {
		argv    []string
		letters string
		err     string
	}{
		{[]string{"scan"}, "", ""},
		{[]string{"-an", "scan"}, "an", ""},
		{[]string{"-zabhitqnN", "scan"}, "zabhitqnN", ""},
		{[]string{"-h", "-a", "scan"}, "ha", ""},
		{[]string{"-" + strings.Repeat("z", 64), "scan"}, strings.Repeat("z", 64), ""},
		{[]string{"-" + strings.Repeat("z", 65), "scan"}, "", "usage: too many commands"},
		{[]string{"-p", "scan"}, "", "usage: unknown option -p"},
		{[]string{"-s", "scan"}, "", "usage: unknown option -s"},
		{[]string{"-a"}, "", "usage"},
		{nil, "", "usage"},
	}
	for _, tt := range tests {
		e, _, _ := testEnv()
		var got *svscanctlOptions
		err := execCmd(newSvscanctlCmd(e, func(o *svscanctlOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("svscanctl %q: error %q, want %q", tt.argv, msg, tt.err)
		} else if tt.err == "" && (got.Dir != "scan" || string(got.Letters) != tt.letters) {
			t.Errorf("svscanctl %q: %+v, want letters %q", tt.argv, *got, tt.letters)
		}
	}
}

func TestDispatch(t *testing.T) {
	tests := []struct {
		argv []string
		want []string
	}{
		{[]string{"gosv", "svc", "-u", "d"}, []string{"svc", "-u", "d"}},
		{[]string{"/usr/bin/gosv-svc", "-u", "d"}, []string{"svc", "-u", "d"}},
		{[]string{"gosv-svstat"}, []string{"svstat"}},
		{[]string{"/x/gosv-", "svc"}, []string{"svc"}},
		{[]string{"/usr/bin/gosv-bin", "svc", "-u", "d"}, []string{"svc", "-u", "d"}},
		{[]string{"gosv-nosuch", "svstat"}, []string{"svstat"}},
		{[]string{"s6-svc", "-u", "d"}, []string{"-u", "d"}},
		{[]string{"gosv"}, []string{}},
		{nil, nil},
	}
	for _, tt := range tests {
		if got := dispatch(tt.argv, isCommand(newRootCmd(&env{}))); fmt.Sprint(got) != fmt.Sprint(tt.want) {
			t.Errorf("dispatch(%q) = %q, want %q", tt.argv, got, tt.want)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		err  error
		want int
	}{
		{nil, 0},
		{silentExit(1), 1},
		{&usageError{}, 100},
		{usageErrorf("x"), 100},
		{svwait.ErrTimeout, 99},
		{&svwait.FailedError{N: 1, Services: []svwait.Service{{Dir: "a"}}}, 1},
		{&svwait.TimeoutError{}, 99},
		{&svwait.FailedError{N: 3}, 3},
		{&svwait.FailedError{N: 300}, 98},
		{&os.PathError{Op: "read status for", Path: "d", Err: svstat.ErrNotRunning}, 1},
		{&os.PathError{Op: "control", Path: "d", Err: servicedir.ErrNotListening}, 100},
		{&svctl.CtlDirError{Path: "d/supervise", Err: os.ErrNotExist}, 100},
		{&os.PathError{Op: "control", Path: "d", Err: os.ErrNotExist}, 111},
		{context.Canceled, 111},
		{errors.New("anything else"), 111},
	}
	for _, tt := range tests {
		if got := exitCode(tt.err); got != tt.want {
			t.Errorf("exitCode(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}

// TestExecuteMessages checks the one-line messages and usage lines.
func TestExecuteMessages(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		argv   []string
		code   int
		stderr string
	}{
		{[]string{"svc"}, 100, "gosv svc: usage: gosv svc [-wu|-wU|-wd|-wD|-wr|-wR] [-T timeout] [-abqhkti12pcyroduDUxOQ] servicedir\n"},
		{[]string{"svc", "-X", "d"}, 100, "gosv svc: fatal: unknown option -X\ngosv svc: usage: gosv svc [-wu|-wU|-wd|-wD|-wr|-wR] [-T timeout] [-abqhkti12pcyroduDUxOQ] servicedir\n"},
		{[]string{"svc", "-u", dir}, 100, "gosv svc: fatal: unable to control " + dir + ": supervisor not listening\n"},
		{[]string{"svc", "-u", dir + "/nonexistent"}, 111, "gosv svc: fatal: unable to control " + dir + "/nonexistent: no such file or directory\n"},
		{[]string{"svscanctl", "-a", dir}, 100, "gosv svscanctl: fatal: unable to control " + dir + ": supervisor not listening\n"},
		{[]string{"svok"}, 100, "gosv svok: usage: gosv svok servicedir\n"},
		{[]string{"svok", dir}, 1, ""},
		{[]string{"svstat", dir}, 1, "gosv svstat: fatal: unable to read status for " + dir + ": s6-supervise not running\n"},
		{[]string{"bogus"}, 100, "gosv: fatal: unknown command \"bogus\"\ngosv: usage: gosv command [argument...]\n"},
		{nil, 100, "gosv: usage: gosv command [argument...]\n"},
	}
	for _, tt := range tests {
		e, stdout, stderr := testEnv()
		code := e.execute(t.Context(), tt.argv)
		if code != tt.code || stderr.String() != tt.stderr || stdout.Len() != 0 {
			t.Errorf("gosv %q: exit %d, stderr %q, stdout %q; want exit %d, stderr %q", tt.argv, code, stderr, stdout, tt.code, tt.stderr)
		}
	}
}

func TestHelp(t *testing.T) {
	for _, name := range []string{"svc", "svstat", "svok", "svscanctl"} {
		e, stdout, _ := testEnv()
		if code := e.execute(t.Context(), []string{name, "--help"}); code != 0 {
			t.Errorf("%s --help: exit %d", name, code)
		}
		out := stdout.String()
		if !strings.Contains(out, "\nEXIT STATUS\n") || strings.Contains(out, "-h, --help") {
			t.Errorf("%s --help: no EXIT STATUS section, or a -h flag:\n%s", name, out)
		}
	}
}
