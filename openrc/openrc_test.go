package openrc

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

func TestParseDuration(t *testing.T) {
	ms, s := time.Millisecond, time.Second
	for _, c := range []struct {
		in   string
		bare time.Duration
		want time.Duration
		ok   bool
	}{
		{"500ms", s, 500 * ms, true},
		{"5sec", ms, 5 * s, true},
		{"2min", ms, 2 * time.Minute, true},
		{"1h", s, time.Hour, true},
		{"3000", ms, 3 * s, true},
		{"3", s, 3 * s, true},
		{"0", ms, 0, true},
		{" 7s ", ms, 7 * s, true},
		{"10miliseconds", s, 10 * ms, true},
		{"10x", ms, 0, false},
		{"", ms, 0, false},
		{"-1", ms, 0, false},
		{"1.5s", ms, 0, false},
		{"s", ms, 0, false},
		{"99999999999999999999", ms, 0, false},
		{"9223372036854775807h", ms, 0, false},
	} {
		got, err := ParseDuration(c.in, c.bare)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseDuration(%q, %v) = %v, %v; want %v, ok %v", c.in, c.bare, got, err, c.want, c.ok)
		}
	}
}

func TestParseIAB(t *testing.T) {
	bit := func(n ...int) (b uint64) {
		for _, i := range n {
			b |= 1 << i
		}
		return
	}
	for _, c := range []struct {
		in   string
		want IAB
		ok   bool
	}{
		{"cap_net_bind_service", IAB{Inh: bit(10)}, true},
		{"^cap_net_bind_service", IAB{Inh: bit(10), Amb: bit(10)}, true},
		{"!cap_sys_admin", IAB{Drop: bit(21)}, true},
		{"%net_raw,^CAP_CHOWN,!21", IAB{Inh: bit(13, 0), Amb: bit(0), Drop: bit(21)}, true},
		{"cap_nope", IAB{}, false},
		{"cap_chown,,", IAB{}, false},
		{"64", IAB{}, false},
	} {
		got, err := ParseIAB(c.in)
		if (err == nil) != c.ok || got != c.want {
			t.Errorf("ParseIAB(%q) = %+v, %v; want %+v ok %v", c.in, got, err, c.want, c.ok)
		}
	}
}

func TestParseRetry(t *testing.T) {
	for _, c := range []struct {
		in      string
		sig     unix.Signal
		timeout time.Duration
		dropped int
		ok      bool
	}{
		{"5", unix.SIGTERM, 5 * time.Second, 0, true},
		{"TERM/5", unix.SIGTERM, 5 * time.Second, 0, true},
		{"SIGINT/3/KILL/5", unix.SIGINT, 3 * time.Second, 0, true},
		{"HUP/2/TERM/5/KILL/5", unix.SIGHUP, 2 * time.Second, 4, true},
		{"BOGUS/5", 0, 0, 0, false},
		{"TERM/x", 0, 0, 0, false},
		{"-1", 0, 0, 0, false},
	} {
		r, err := ParseRetry(c.in)
		if (err == nil) != c.ok || (c.ok && (r.Signal != c.sig || r.Timeout != c.timeout || len(r.Dropped) != c.dropped)) {
			t.Errorf("ParseRetry(%q) = %+v, %v", c.in, r, err)
		}
	}
}

func TestVersion(t *testing.T) {
	for _, c := range []struct {
		in     string
		want   Version
		reload bool
	}{
		{"0.45.2\n", Version{0, 45, 2}, false},
		{"0.63.3", Version{0, 63, 3}, true},
		{"0.63.1", Version{0, 63, 1}, true},
		{"0.63", Version{0, 63, 0}, false},
		{"1.0.0-rc1", Version{1, 0, 0}, true},
	} {
		v, _ := ParseVersion(c.in)
		if v != c.want || v.HasDefaultReload() != c.reload {
			t.Errorf("ParseVersion(%q) = %v (reload %v)", c.in, v, v.HasDefaultReload())
		}
	}
}

// TestDetectLibexecDir: RC_LIBEXECDIR without openrc-run's environment,
// on each layout and on a machine that has both.
func TestDetectLibexecDir(t *testing.T) {
	install := func(root, dir, version string) {
		t.Helper()
		if err := os.MkdirAll(filepath.Join(root, dir, "sh"), 0o755); err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(root, dir, "sh", "openrc-run.sh"), nil, 0o644)
		os.WriteFile(filepath.Join(root, dir, "version"), []byte(version+"\n"), 0o644)
	}
	debian, upstream, both, none := t.TempDir(), t.TempDir(), t.TempDir(), t.TempDir()
	install(debian, "lib/rc", "0.45.2")
	install(upstream, "usr/libexec/rc", "0.63.3")
	install(both, "lib/rc", "0.45.2")
	install(both, "usr/libexec/rc", "0.63.3")
	os.MkdirAll(filepath.Join(none, "usr/libexec/rc"), 0o755) // no openrc-run.sh: not OpenRC's
	for root, want := range map[string]string{debian: "/lib/rc", upstream: "/usr/libexec/rc", both: "/usr/libexec/rc", none: "/lib/rc"} {
		if got := DetectLibexecDir(root); got != want {
			t.Errorf("%s: DetectLibexecDir = %q, want %q", root, got, want)
		}
	}
	// openrc-run's RC_LIBEXECDIR wins.
	getenv := func(k string) string {
		if k == "RC_LIBEXECDIR" {
			return "/opt/rc"
		}
		return ""
	}
	if got := LibexecDir(getenv); got != "/opt/rc" {
		t.Errorf("LibexecDir with RC_LIBEXECDIR: %q", got)
	}
}

// TestHookPassesVars checks that the hook passes exactly [Vars], and
// keeps the rules of an rc.conf.d hook: it ends with return 0, never changes
// shell options, and no line starts an rc_* assignment librc would read.
func TestHookPassesVars(t *testing.T) {
	h := Hook("/usr/bin")
	m := regexp.MustCompile(`(?s)for _gosv_v in (.*?); do`).FindStringSubmatch(h)
	if m == nil {
		t.Fatal("no variable list in the hook")
	}
	got := strings.Fields(strings.ReplaceAll(m[1], "\\\n", " "))
	if !slices.Equal(got, Vars) {
		t.Errorf("hook passes %v\nwant %v", got, Vars)
	}
	if !strings.HasSuffix(h, "\nreturn 0\n") {
		t.Error("the hook must end with return 0")
	}
	for i, line := range strings.Split(h, "\n") {
		code, _, _ := strings.Cut(line, "#")
		code = strings.TrimSpace(code)
		if regexp.MustCompile(`^set\s+[-+]`).MatchString(code) {
			t.Errorf("line %d changes shell options: %q", i+1, line)
		}
		if key, _, ok := strings.Cut(code, "="); ok && (strings.HasPrefix(key, "rc_") || strings.HasPrefix(key, "export ")) {
			t.Errorf("line %d reads as librc setting %q", i+1, key)
		}
		if regexp.MustCompile(`^return\s+[^0]`).MatchString(line) { // column 0: top level
			t.Errorf("line %d: a top-level return must be return 0: %q", i+1, line)
		}
	}
	if strings.Contains(h, hookBinDir) {
		t.Error("placeholder left in the hook")
	}
}

func TestCheckHook(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, HookName)
	if st, _ := CheckHook(p, "/usr/bin"); st != HookMissing {
		t.Errorf("missing: %v", st)
	}
	os.WriteFile(p, []byte(Hook("/usr/bin")), 0o644)
	if st, _ := CheckHook(p, "/usr/bin"); st != HookCurrent {
		t.Errorf("current: %v", st)
	}
	if st, _ := CheckHook(p, "/usr/local/bin"); st != HookOutdated {
		t.Errorf("other bindir: %v", st)
	}
}

// TestGenerateFileByFile checks the rewrite rules: nothing is written
// while the directory is newer than its sources, files are replaced by
// rename, unneeded ones removed, supervise/ and event/ untouched.
func TestGenerateFileByFile(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "svc")
	sp := &Spec{Name: "svc", Script: "/etc/init.d/svc", Declarative: true, Argv: []string{"/bin/true"},
		DownSignal: unix.SIGTERM, TimeoutKill: time.Second, Notify: NotifyFd, NotifyFd: 3}
	gc := GenConfig{Gosv: "/usr/bin/gosv", RCSvcDir: "/run/openrc", Newest: time.Unix(1, 0)}
	if changed, err := Generate(sp, dir, gc); err != nil || !changed {
		t.Fatalf("first generate: %v %v", changed, err)
	}
	os.MkdirAll(filepath.Join(dir, "supervise"), 0o700)
	os.WriteFile(filepath.Join(dir, "supervise", "status"), []byte("keep"), 0o644)
	if changed, err := Generate(sp, dir, gc); err != nil || changed {
		t.Fatalf("current directory rewritten: %v %v", changed, err)
	}
	sp.Notify = NotifyNone
	gc.Newest = time.Now().Add(time.Hour)
	if changed, err := Generate(sp, dir, gc); err != nil || !changed {
		t.Fatalf("stale directory not rewritten: %v %v", changed, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "notification-fd")); !os.IsNotExist(err) {
		t.Errorf("notification-fd left behind: %v", err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "supervise", "status")); string(b) != "keep" {
		t.Error("supervise/ touched")
	}
	if fi, err := os.Stat(filepath.Join(dir, "run")); err != nil || fi.Mode().Perm() != 0o755 {
		t.Errorf("run: %v %v", fi, err)
	}
	left, _ := filepath.Glob(filepath.Join(dir, "*.new"))
	if len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}

// FuzzParseInitScript: parsing never panics, printing a parsed script and
// parsing it again gives the same printout, and resolution (depend()
// included) is deterministic.
func FuzzParseInitScript(f *testing.F) {
	for _, p := range []string{"testdata/*.txtar"} {
		paths, _ := filepath.Glob(p)
		for _, path := range paths {
			b, _ := os.ReadFile(path)
			for _, af := range parseArchive(string(b)).files {
				if strings.HasPrefix(af.name, "etc/") {
					f.Add(af.data)
				}
			}
		}
	}
	f.Add("#!/sbin/openrc-run\nsupervisor=gosv\ncommand=/bin/x\ndepend() { need net; use $(x); }\n")
	f.Fuzz(func(t *testing.T, src string) {
		if strings.ContainsAny(src, "\f\v\r") {
			// NOTE: mvdan.cc/sh v3.14.1's printer turns these blanks into
			// newlines, which changes the meaning ("!\f" prints as "!\n",
			// which does not parse). Not ours to fix; init scripts have none.
			return
		}
		file, err := Parse("fuzz", []byte(src))
		if err != nil {
			return
		}
		// NOTE: the printer normalises blank space once ("\f" prints as
		// "\n\n", which prints as "\n"), so stability is required from the
		// second printout on.
		out := Print(file)
		for range 2 {
			again, err := Parse("fuzz", []byte(out))
			if err != nil {
				// NOTE: an mvdan.cc/sh printer bug, not ours: "$````" prints
				// as "$$()$()" (committed crashers keep the cases).
				t.Skipf("printed script does not parse: %v\n%s", err, out)
			}
			if out2 := Print(again); out2 != out && strings.Trim(out2, "\n") != strings.Trim(out, "\n") {
				t.Fatalf("print is not stable:\n%q\n---\n%q", out, out2)
			}
			out = Print(again)
		}
		dir := t.TempDir()
		script := filepath.Join(dir, "init.d", "fz")
		os.MkdirAll(filepath.Dir(script), 0o755)
		os.WriteFile(script, []byte(src), 0o755)
		l := Layout{RCConf: dir + "/none", RCConfD: dir + "/none", LibexecDir: dir, SvcDir: dir, Runlevel: "default"}
		s1, err1 := Resolve(context.Background(), l, script)
		s2, err2 := Resolve(context.Background(), l, script)
		if (err1 == nil) != (err2 == nil) {
			t.Fatalf("resolution not deterministic: %v / %v", err1, err2)
		}
		if err1 == nil && !depEqual(s1.Depend, s2.Depend) {
			t.Fatalf("depend() not deterministic: %v / %v", s1.Depend, s2.Depend)
		}
	})
}

func depEqual(a, b map[string][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

func TestHandWrittenWait(t *testing.T) {
	dir := t.TempDir()
	base := backends.StartOptions{Goal: svwait.Up, Timeout: 30 * time.Second}
	for _, c := range []struct {
		opts    string
		files   []string
		want    svwait.Goal
		timeout time.Duration
	}{
		{"", nil, svwait.Up, 30 * time.Second},
		{"", []string{"notification-fd"}, svwait.UpReady, 30 * time.Second},
		{"", []string{"check"}, svwait.UpReady, 30 * time.Second},
		{"-U -t 5000", nil, svwait.UpReady, 5 * time.Second},
		{"-u", []string{"notification-socket"}, svwait.Up, 30 * time.Second},
		{"-D", nil, svwait.DownReady, 30 * time.Second},
	} {
		d := filepath.Join(dir, strings.ReplaceAll(c.opts+strings.Join(c.files, "-"), " ", "_")+"x")
		os.MkdirAll(d, 0o755)
		for _, f := range c.files {
			os.WriteFile(filepath.Join(d, f), []byte("3\n"), 0o644)
		}
		got := handWrittenWait(&Spec{ServiceDir: d, SvwaitOptionsStart: strings.Fields(c.opts)}, base)
		if got.Goal != c.want || got.Timeout != c.timeout {
			t.Errorf("%q %v: %v %v, want %v %v", c.opts, c.files, got.Goal, got.Timeout, c.want, c.timeout)
		}
	}
}

func TestTailAndStamps(t *testing.T) {
	p := filepath.Join(t.TempDir(), "current")
	var b strings.Builder
	for i := range 15 {
		fmt.Fprintf(&b, "@400000006b026c883739ca41 line %d\n", i)
	}
	os.WriteFile(p, []byte(b.String()), 0o644)
	lines, err := tail(p, 10)
	if err != nil || len(lines) != 10 || stripStamp(lines[0]) != "line 5" || stripStamp(lines[9]) != "line 14" {
		t.Errorf("tail: %q %v", lines, err)
	}
	for in, want := range map[string]string{"plain": "plain", "@4000 short": "@4000 short", "@400000006b026c883739ca41 x": "x"} {
		if got := stripStamp(in); got != want {
			t.Errorf("stripStamp(%q) = %q", in, got)
		}
	}
}

// TestLiveServiceFiltersEnv: the daemon's environment is the caller's
// without OpenRC's own variables and directories.
func TestLiveServiceFiltersEnv(t *testing.T) {
	req := &Request{Name: "web", Script: "/etc/init.d/web", Layout: Layout{LibexecDir: "/lib/rc"},
		Env: []string{"PATH=/lib/rc/bin:/lib/rc/sbin:/bin:/usr/bin", "RC_SVCNAME=web", "SVCNAME=web", "EINFO_LASTCMD=ebegin",
			"SSD_NICELEVEL=3", "WEB_ENV=prod", "LANG=C.UTF-8"},
		Vars: map[string]string{"command": "/bin/x"}}
	s := LiveService(req)
	want := []string{"PATH=/bin:/usr/bin", "WEB_ENV=prod", "LANG=C.UTF-8"}
	if !slices.Equal(s.Env, want) {
		t.Errorf("env %q, want %q", s.Env, want)
	}
	if !s.Live || s.Get("command") != "/bin/x" || s.IsSet("notify") {
		t.Errorf("vars %+v", s.Vars)
	}
}

// TestShQuote runs each quoted word through the real /bin/sh and gets the
// same bytes back: the plain words, the ones syntax.Quote quotes, and the
// ones it refuses in POSIX mode (control characters, invalid UTF-8).
func TestShQuote(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	words := []string{"", "plain", "/usr/bin/x", "A=B", "it's", `a"b`, "$HOME", "`id`", "a b", "if",
		"{x}", "~root", "*", "#c", "tab\there", "new\nline", "bell\a", "\xff\xfe", "é", "'", `\`, "!x"}
	for _, w := range words {
		out, err := exec.Command(sh, "-c", "printf '%s|' "+shQuote(w)).Output()
		if err != nil || string(out) != w+"|" {
			t.Errorf("shQuote(%q) = %s: sh printed %q, %v", w, shQuote(w), out, err)
		}
	}
}

// TestLiveServiceDefaults: the hook's live values win over the gosv-wide
// defaults of conf.d/gosv-svscan; unset or empty ones take the default,
// with its position; start waits for up with start_wait only without a
// readiness source.
func TestLiveServiceDefaults(t *testing.T) {
	confd := t.TempDir()
	os.WriteFile(filepath.Join(confd, SvscanName), []byte("command=/not/for/services\nstart_wait=750ms\n"), 0o644)
	l := Layout{LibexecDir: "/lib/rc", ConfD: confd}
	for _, c := range []struct {
		vars map[string]string
		want time.Duration
		from string
		wait backends.StartOptions
	}{
		{map[string]string{"command": "/bin/x"}, 750 * time.Millisecond, "gosv-svscan:2:1",
			backends.StartOptions{Goal: svwait.Up, Timeout: DefaultTimeoutReady, StartWait: 750 * time.Millisecond}},
		{map[string]string{"command": "/bin/x", "start_wait": ""}, 750 * time.Millisecond, "gosv-svscan:2:1",
			backends.StartOptions{Goal: svwait.Up, Timeout: DefaultTimeoutReady, StartWait: 750 * time.Millisecond}},
		{map[string]string{"command": "/bin/x", "start_wait": "2"}, 2 * time.Second, "",
			backends.StartOptions{Goal: svwait.Up, Timeout: DefaultTimeoutReady, StartWait: 2 * time.Second}},
		{map[string]string{"command": "/bin/x", "start_wait": "0"}, 0, "",
			backends.StartOptions{Goal: svwait.Up, Timeout: DefaultTimeoutReady}},
		{map[string]string{"command": "/bin/x", "notify": "fd:3"}, 750 * time.Millisecond, "gosv-svscan:2:1",
			backends.StartOptions{Goal: svwait.UpReady, Timeout: DefaultTimeoutReady}},
	} {
		s := LiveService(&Request{Name: "web", Script: "/etc/init.d/web", Layout: l, Vars: c.vars, Argv: []string{"/bin/x"}})
		if s.Get("command") != "/bin/x" {
			t.Errorf("%v: command %q leaked from the defaults", c.vars, s.Get("command"))
		}
		sp, probs := s.Spec()
		if len(probs) != 0 || len(s.Problems) != 0 {
			t.Errorf("%v: problems %v %v", c.vars, probs, s.Problems)
		}
		if sp.StartWait != c.want {
			t.Errorf("%v: start_wait %v, want %v", c.vars, sp.StartWait, c.want)
		}
		if from := s.Vars["start_wait"].Pos.String(); !strings.HasSuffix(from, c.from) || (c.from == "") != (from == "") {
			t.Errorf("%v: start_wait from %q, want %q", c.vars, from, c.from)
		}
		opts := withStartWait(sp, backends.StartOptions{Goal: svwait.Up, Timeout: sp.TimeoutReady})
		if sp.HasReadiness() {
			opts = withStartWait(sp, backends.StartOptions{Goal: svwait.UpReady, Timeout: sp.TimeoutReady})
		}
		if opts != c.wait {
			t.Errorf("%v: start options %+v, want %+v", c.vars, opts, c.wait)
		}
	}
}

// TestDefaultsProblems: a defaults file that does not parse is one error
// naming the file and the place; a missing one means no defaults.
func TestDefaultsProblems(t *testing.T) {
	confd := t.TempDir()
	l := Layout{ConfD: confd}
	if d := ResolveDefaults(l); len(d.Vars) != 0 || len(d.Problems) != 0 {
		t.Errorf("missing file: %+v", d)
	}
	p := filepath.Join(confd, SvscanName)
	os.WriteFile(p, []byte("# comment\nstart_wait=\"1\n"), 0o644)
	d := ResolveDefaults(l)
	if len(d.Problems) != 1 || d.Problems[0].Severity != Error || !strings.HasPrefix(d.Problems[0].String(), p+":2:12: error: ") {
		t.Errorf("syntax error: %v", d.Problems)
	}
	os.WriteFile(p, []byte("start_wait=$(cat /etc/wait)\n"), 0o644)
	d = ResolveDefaults(l)
	if len(d.Vars) != 0 || len(d.Problems) != 1 || !strings.Contains(d.Problems[0].Msg, `external command "cat"`) {
		t.Errorf("unresolved: %+v", d)
	}
	if d := ResolveDefaults(Layout{}); len(d.Vars) != 0 || len(d.Problems) != 0 {
		t.Errorf("no conf.d: %+v", d)
	}
	// The shipped file: defaults in comments only, nothing set.
	shipped, err := os.ReadFile("../conf.d/" + SvscanName)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(shipped), "#start_wait=") || mentionsDefault(shipped) {
		t.Errorf("the shipped conf.d should document start_wait in a comment only")
	}
	if !mentionsDefault([]byte("# x\n  : ${start_wait:=1}\n")) {
		t.Errorf("an assignment is not seen")
	}
}

// TestDescribeStartWait: ls shows start_wait for a service without
// readiness, and says when it is the gosv-wide default.
func TestDescribeStartWait(t *testing.T) {
	confd := t.TempDir()
	os.WriteFile(filepath.Join(confd, SvscanName), []byte("start_wait=2\n"), 0o644)
	for vars, want := range map[string]string{
		"":             "readiness none, start_wait 2s (gosv-wide default), timeout_ready",
		"start_wait=1": "readiness none, start_wait 1s, timeout_ready",
		"notify=fd:3":  "readiness fd:3, timeout_ready",
	} {
		req := &Request{Name: "web", Script: "/etc/init.d/web", Layout: Layout{ConfD: confd}, Vars: map[string]string{"command": "/bin/x"}}
		if k, v, ok := strings.Cut(vars, "="); ok {
			req.Vars[k] = v
		}
		s := LiveService(req)
		sp, _ := s.Spec()
		var b strings.Builder
		describe(&b, s, sp, "/nonexistent", "/nonexistent")
		if !strings.Contains(b.String(), want) {
			t.Errorf("%q: %q, want %q", vars, b.String(), want)
		}
	}
}

// TestLsOwnStart: ls describes a declarative gosv service with its
// generated directory, but a script whose own start() never calls
// default_start is listed as bypassed, without a directory gosv would
// never use.
func TestLsOwnStart(t *testing.T) {
	root := t.TempDir()
	files := map[string]string{
		"lib/rc/version":      "0.45.2\n",
		"etc/init.d/plain":    "#!/sbin/openrc-run\nsupervisor=gosv\ncommand=/usr/bin/plaind\n",
		"etc/init.d/ownstart": "#!/sbin/openrc-run\nsupervisor=gosv\ncommand=/usr/bin/ownd\n\nstart() {\n\tstart-stop-daemon --start --exec /usr/bin/ownd\n}\n",
	}
	for name, content := range files {
		p := filepath.Join(root, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	l := Layout{RCConf: root + "/etc/rc.conf", RCConfD: root + "/etc/rc.conf.d", LibexecDir: root + "/lib/rc",
		SvcDir: root + "/run/openrc", InitDirs: []string{root + "/etc/init.d"}, Runlevel: "default"}
	var b strings.Builder
	if err := Ls(context.Background(), l, "/nonexistent/gosv", &b); err != nil {
		t.Fatal(err)
	}
	got := strings.ReplaceAll(b.String(), root, "")
	want := "ownstart: stopped\n" +
		"  start() at /etc/init.d/ownstart:5:1 does not call default_start: gosv never starts it\n" +
		"plain: stopped; not supervised\n" +
		"  directory /run/openrc/gosv-services/plain (generated, stale: the next start rewrites it)\n"
	if !strings.HasPrefix(got, want) {
		t.Errorf("ls:\n%s\nwant it to start with:\n%s", got, want)
	}
}

// TestStopLeftoversOnlyGosvEntries: s6-svscan's and runsvdir's scan
// directories are shared with OpenRC's own supervisor=s6/runit services;
// their stop_post leaves those entries alone (before: runit's stop failed
// on /etc/sv/NAME, s6's unlinked it).
func TestStopLeftoversOnlyGosvEntries(t *testing.T) {
	for _, backend := range []string{"s6", "runit"} {
		t.Run(backend, func(t *testing.T) {
			svcdir := t.TempDir()
			scan := BackendScanDir(backend, svcdir)
			foreign := filepath.Join(t.TempDir(), "sv", "foo")
			if err := os.MkdirAll(foreign, 0o755); err != nil {
				t.Fatal(err)
			}
			os.WriteFile(filepath.Join(foreign, "run"), []byte("#!/bin/sh\nexec sleep 100\n"), 0o755)
			if err := os.MkdirAll(scan, 0o755); err != nil {
				t.Fatal(err)
			}
			link := filepath.Join(scan, "foo")
			if err := os.Symlink(foreign, link); err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := StopLeftovers(ctx, backend, scan); err != nil {
				t.Errorf("StopLeftovers: %v, want nothing done", err)
			}
			if _, err := os.Lstat(link); err != nil {
				t.Errorf("OpenRC's own service's link: %v, want it kept", err)
			}
			if _, err := os.Stat(filepath.Join(foreign, "runit")); err == nil {
				t.Errorf("a runit directory was made in OpenRC's own service directory")
			}
		})
	}
}

// TestStopLeftoversRefusesLiveScanner: stop_post must never stop the
// services of a scanner that is running (its control fifo has a reader).
func TestStopLeftoversRefusesLiveScanner(t *testing.T) {
	scan := t.TempDir()
	os.MkdirAll(filepath.Join(scan, servicedir.ScanCtlDir), 0o755)
	fifo := filepath.Join(scan, servicedir.ScanCtlPath)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDONLY|unix.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := StopLeftovers(context.Background(), "gosv", scan); err == nil || !strings.Contains(err.Error(), "a scanner is running") {
		t.Errorf("with a scanner: %v", err)
	}
	r.Close()
	if err := StopLeftovers(context.Background(), "gosv", scan); err != nil {
		t.Errorf("without a scanner, nothing left: %v", err)
	}
}

// TestWriteIfChangedNoFollow: generated files are written as root, so a
// symlink planted at a file's name or at its temporary name is replaced,
// never followed, and the mode is exact whatever the umask.
func TestWriteIfChangedNoFollow(t *testing.T) {
	dir, outside := t.TempDir(), t.TempDir()
	victim, victimTmp := filepath.Join(outside, "victim"), filepath.Join(outside, "victim-tmp")
	for _, v := range []string{victim, victimTmp} {
		if err := os.WriteFile(v, []byte("precious\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, servicedir.RunFile)
	if err := os.Symlink(victim, p); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victimTmp, p+".new"); err != nil {
		t.Fatal(err)
	}
	old := unix.Umask(0o077)
	changed, err := writeIfChanged(p, "precious\n", 0o755)
	unix.Umask(old)
	if err != nil || !changed {
		t.Fatalf("writeIfChanged = %v, %v; want true, nil (a symlink is rewritten even with the same content)", changed, err)
	}
	for _, v := range []string{victim, victimTmp} {
		if b, err := os.ReadFile(v); err != nil || string(b) != "precious\n" {
			t.Errorf("%s: %q, %v: the symlink was followed", v, b, err)
		}
		if fi, err := os.Stat(v); err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode changed through the symlink: %v %v", v, fi.Mode(), err)
		}
	}
	fi, err := os.Lstat(p)
	if err != nil || fi.Mode() != 0o755 {
		t.Fatalf("%s: %v, %v; want a regular file, mode 0755", p, fi.Mode(), err)
	}
	if _, err := os.Lstat(p + ".new"); !os.IsNotExist(err) {
		t.Errorf("%s.new left behind: %v", p, err)
	}
}

// TestStartFailureWaitsForTheCatchAllLog: a failed start shows the lines
// the daemon wrote before it died even when the catch-all logger (another
// process, reading a fifo) has not written them yet when the death is
// seen. The fake logger here keeps what it read until a failed start's
// own line arrives behind it; without that barrier the start printed no
// line at all (nginx's error was missing in the real-daemon tier).
func TestStartFailureWaitsForTheCatchAllLog(t *testing.T) {
	rcSvcDir, logDir := t.TempDir(), t.TempDir()
	scan := ScanDir(rcSvcDir)
	if err := os.MkdirAll(scan, 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(scan, catchAllRecord), []byte(logDir+"\n"), 0o644)
	fifo := filepath.Join(scan, catchAllFifo)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenFile(fifo, os.O_RDWR, 0) // the logger's end (RDWR: no EOF)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The daemon's last words, then its death: in the fifo, not yet in current.
	w, err := os.OpenFile(fifo, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	w.WriteString("webd: unknown directive \"bogus\"\n")
	w.Close()
	done := make(chan struct{})
	go func() { // the slow logger
		defer close(done)
		var got []byte
		buf := make([]byte, 4096)
		for !strings.Contains(string(got), "gosv openrc start[") {
			r.SetReadDeadline(time.Now().Add(10 * time.Second))
			n, err := r.Read(buf)
			if err != nil {
				return
			}
			got = append(got, buf[:n]...)
		}
		os.WriteFile(filepath.Join(logDir, "current"), got, 0o644)
	}()
	var out strings.Builder
	printStartFailure(&out, &Spec{}, rcSvcDir, "web", errors.New("web: died 2ms after it was up (start_wait 1s): exit code 1"))
	<-done
	want := "web: died 2ms after it was up (start_wait 1s): exit code 1\nlast lines of " + filepath.Join(logDir, "current") +
		":\n  webd: unknown directive \"bogus\"\n"
	if out.String() != want {
		t.Errorf("printed:\n%s\nwant:\n%s", out.String(), want)
	}
	if b, _ := os.ReadFile(filepath.Join(logDir, "current")); !strings.Contains(string(b), "gosv openrc start[") ||
		!strings.Contains(string(b), "]: web failed to start: web: died 2ms after it was up") {
		t.Errorf("the failed start's line is not in the log: %q", b)
	}
}

// TestHookGOMAXPROCS runs the hook's _gosv_call with stand-ins for gosv
// and its lean client: the client gets GOMAXPROCS=1 unless the environment
// sets it (marked _gosv_gomaxprocs, which the service's environment drops:
// TestFilterEnvHookGOMAXPROCS), the shell that calls it keeps its own, and
// GOSV-openrc runs instead of `GOSV openrc` when it is there.
func TestHookGOMAXPROCS(t *testing.T) {
	fn := regexp.MustCompile(`(?s)\n_gosv_call\(\) \{\n.*?\n\}\n`).FindString(Hook("/usr/bin"))
	if fn == "" {
		t.Fatal("no _gosv_call in the hook")
	}
	fake := "#!/bin/sh\necho \"${0##*/} GOMAXPROCS=${GOMAXPROCS-unset} mark=${_gosv_gomaxprocs-unset} $*\"\n"
	for _, tt := range []struct {
		env    string
		client bool // gosv-openrc beside gosv
		want   string
		shell  string // the script's own lines (conf.d) before the call
	}{
		{"", false, "gosv GOMAXPROCS=1 mark=1 openrc status --var supervisor=gosv; caller unset", ""},
		{"GOMAXPROCS=4", false, "gosv GOMAXPROCS=4 mark=unset openrc status --var supervisor=gosv; caller 4", ""},
		{"", true, "gosv-openrc GOMAXPROCS=1 mark=1 status --var supervisor=gosv; caller unset", ""},
		{"GOMAXPROCS=4", true, "gosv-openrc GOMAXPROCS=4 mark=unset status --var supervisor=gosv; caller 4", ""},
		// conf.d: a plain GOMAXPROCS=4 is the script's shell variable,
		// which (as every unexported variable) reaches neither gosv nor
		// the service; an exported one reaches both.
		{"", true, "gosv-openrc GOMAXPROCS=unset mark=unset status --var supervisor=gosv; caller 4", "GOMAXPROCS=4\n"},
		{"", true, "gosv-openrc GOMAXPROCS=4 mark=unset status --var supervisor=gosv; caller 4", "export GOMAXPROCS=4\n"},
	} {
		script := fn + tt.shell + `out=$(_gosv_call status); echo "$out; caller ${GOMAXPROCS-unset}"`
		dir := t.TempDir()
		gosv := filepath.Join(dir, "gosv")
		names := []string{gosv}
		if tt.client {
			names = append(names, gosv+"-openrc")
		}
		for _, n := range names {
			if err := os.WriteFile(n, []byte(fake), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		cmd := exec.Command("sh", "-c", script)
		cmd.Env = []string{"PATH=/usr/bin:/bin", "gosv_bin=" + gosv, "supervisor=gosv"}
		if tt.env != "" {
			cmd.Env = append(cmd.Env, tt.env)
		}
		out, err := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != tt.want {
			t.Errorf("environment %q, client %v: %q (%v), want %q", tt.env, tt.client, got, err, tt.want)
		}
	}
}

// TestFilterEnvHookGOMAXPROCS: the GOMAXPROCS=1 the hook sets for its
// client (marked) stays out of the service's environment; one the caller
// set is kept.
func TestFilterEnvHookGOMAXPROCS(t *testing.T) {
	for _, tt := range []struct{ in, want []string }{
		{[]string{"A=1", "GOMAXPROCS=1", "_gosv_gomaxprocs=1"}, []string{"A=1"}},
		{[]string{"A=1", "GOMAXPROCS=4"}, []string{"A=1", "GOMAXPROCS=4"}},
		// GOMAXPROCS=1 without the marker: the caller's, kept.
		{[]string{"A=1", "GOMAXPROCS=1"}, []string{"A=1", "GOMAXPROCS=1"}},
	} {
		if got := filterEnv(tt.in, "/lib/rc"); !slices.Equal(got, tt.want) {
			t.Errorf("filterEnv(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
