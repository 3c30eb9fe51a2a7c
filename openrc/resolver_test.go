package openrc

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestOpenSource: the resolver reads regular files up to MaxSourceSize
// and /dev/null, refuses anything else without blocking, and stops a
// file that grows past the cap while it is read.
func TestOpenSource(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, size int) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(strings.Repeat("x", size)), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	fifo := filepath.Join(dir, "fifo")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		path    string
		want    int    // bytes read
		refused string // the ResolveError's message, "" when readable
		errno   error  // a plain open error
	}{
		{write("small", 100), 100, "", nil},
		{write("cap", MaxSourceSize), MaxSourceSize, "", nil},
		{"/dev/null", 0, "", nil},
		{write("big", MaxSourceSize+1), 0, "refusing to read " + dir + "/big: larger than 1 MiB", nil},
		{"/dev/zero", 0, "refusing to read /dev/zero: not a regular file", nil},
		{"/dev/urandom", 0, "refusing to read /dev/urandom: not a regular file", nil},
		{fifo, 0, "refusing to read " + fifo + ": not a regular file", nil},
		{dir, 0, "refusing to read " + dir + ": not a regular file", nil},
		{filepath.Join(dir, "missing"), 0, "", unix.ENOENT},
	}
	for _, tt := range tests {
		done := make(chan struct{})
		var n int
		var err error
		go func() {
			defer close(done)
			var f io.ReadWriteCloser
			if f, err = openSource(tt.path); err == nil {
				var b []byte
				b, err = io.ReadAll(f)
				n = len(b)
				f.Close()
			}
		}()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatalf("openSource(%s) blocks", tt.path)
		}
		var re *ResolveError
		switch {
		case tt.refused != "":
			if !errors.As(err, &re) || re.Msg != tt.refused {
				t.Errorf("%s: %v, want refused: %s", tt.path, err, tt.refused)
			}
		case tt.errno != nil:
			if !errors.Is(err, tt.errno) || errors.As(err, &re) {
				t.Errorf("%s: %v, want a plain %v", tt.path, err, tt.errno)
			}
		case err != nil || n != tt.want:
			t.Errorf("%s: read %d bytes, %v; want %d", tt.path, n, err, tt.want)
		}
	}

	// A file that grows past the cap after fstat.
	p := write("grows", 10)
	f, err := openSource(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.WriteFile(p, []byte(strings.Repeat("y", MaxSourceSize+10)), 0o644); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(f)
	var re *ResolveError
	if !errors.As(err, &re) || len(b) != MaxSourceSize {
		t.Errorf("growing file: read %d bytes, %v; want %d and refused", len(b), err, MaxSourceSize)
	}
}

// TestResolveRefusal: a refused file stops the resolution with one error
// naming the file that read it; /dev/null and missing files do not.
func TestResolveRefusal(t *testing.T) {
	dir := t.TempDir()
	l := Layout{RCConf: dir + "/none", RCConfD: dir + "/none", LibexecDir: dir, SvcDir: dir, Runlevel: "default"}
	for _, d := range []string{"init.d", "conf.d"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	script := filepath.Join(dir, "init.d", "svc")
	os.WriteFile(script, []byte("#!/sbin/openrc-run\nsupervisor=gosv\n. /dev/null\nread x < /dev/null\n[ -r /nonexistent ] && . /nonexistent\ncommand=/bin/true\n"), 0o755)
	os.WriteFile(filepath.Join(dir, "conf.d", "svc"), []byte("x=$(< /dev/zero)\n"), 0o644)
	_, err := Resolve(context.Background(), l, script)
	var re *ResolveError
	if !errors.As(err, &re) || re.Error() != dir+"/conf.d/svc: refusing to read /dev/zero: not a regular file (resolving "+script+")" {
		t.Fatalf("Resolve: %v, want the conf.d named and /dev/zero refused", err)
	}
	// In depend(), run after every file: the script is named.
	os.WriteFile(filepath.Join(dir, "conf.d", "svc"), []byte("depend() { need $(< /dev/zero); }\n"), 0o644)
	_, err = Resolve(context.Background(), l, script)
	if !errors.As(err, &re) || re.Error() != script+": refusing to read /dev/zero: not a regular file" {
		t.Fatalf("Resolve with depend(): %v, want the script named and /dev/zero refused", err)
	}
	os.WriteFile(filepath.Join(dir, "conf.d", "svc"), []byte("command_args=-v\n"), 0o644)
	s, err := Resolve(context.Background(), l, script)
	if err != nil || s.Get("command") != "/bin/true" || s.Get("command_args") != "-v" {
		t.Fatalf("Resolve: %v, %+v", err, s)
	}
}

// TestResolveKillsBlockedChild: a resolver blocked in open(2), where no
// context reaches, is killed at the time limit and reported as such.
func TestResolveKillsBlockedChild(t *testing.T) {
	dir := t.TempDir()
	l := Layout{RCConf: dir + "/none", RCConfD: dir + "/none", LibexecDir: dir, SvcDir: dir, Runlevel: "default"}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, blockedOpen)
	os.WriteFile(script, []byte("command=/bin/true\n"), 0o755)
	start := time.Now()
	_, err := Resolve(context.Background(), l, script)
	took := time.Since(start)
	var re *ResolveError
	if !errors.As(err, &re) || re.Error() != script+": resolution exceeded 2s" {
		t.Errorf("Resolve: %v, want the time limit", err)
	}
	if lo, hi := ResolveTimeout+resolveGrace, ResolveTimeout+resolveGrace+2*time.Second; took < lo || took > hi {
		t.Errorf("took %v, want between %v and %v", took, lo, hi)
	}
}

// BenchmarkResolve measures what the child process costs one resolution
// of a distribution-style script and conf.d: "child" is [Resolve],
// "in-process" the same work without the child (resolveHere).
//
//	go test -run '^$' -bench Resolve -benchmem ./openrc
func BenchmarkResolve(b *testing.B) {
	dir := b.TempDir()
	l := Layout{RCConf: dir + "/none", RCConfD: dir + "/none", LibexecDir: dir, SvcDir: dir, Runlevel: "default"}
	for _, d := range []string{"init.d", "conf.d"} {
		os.MkdirAll(filepath.Join(dir, d), 0o755)
	}
	script := filepath.Join(dir, "init.d", "nginx")
	os.WriteFile(script, []byte(benchScript), 0o755)
	os.WriteFile(filepath.Join(dir, "conf.d", "nginx"), []byte(benchConf), 0o644)
	for _, bm := range []struct {
		name    string
		resolve func(context.Context, Layout, string) (*Service, error)
	}{{"child", Resolve}, {"in-process", resolveHere}} {
		b.Run(bm.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := bm.resolve(context.Background(), l, script); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// benchScript is Alpine's nginx init script, switched to gosv.
const benchScript = `#!/sbin/openrc-run
supervisor=gosv
description="Nginx http and reverse proxy server"
extra_commands="checkconfig"
extra_started_commands="reload reopen upgrade"

cfgfile=${cfgfile:-/etc/nginx/nginx.conf}
pidfile=/run/nginx/nginx.pid
command=${command:-/usr/sbin/nginx}
command_args="-c $cfgfile -g 'daemon off;'"
required_files="$cfgfile"

depend() {
	need net
	use dns logger netmount
}

start_pre() {
	checkpath --directory --owner nginx:nginx ${pidfile%/*}
	$command $command_args -t -q
}

checkconfig() {
	ebegin "Checking $RC_SVCNAME configuration"
	start_pre
	eend $?
}

reload() {
	ebegin "Reloading $RC_SVCNAME configuration"
	start_pre && start-stop-daemon --signal HUP --pidfile $pidfile
	eend $?
}
`

const benchConf = `# Configuration for /etc/init.d/nginx
cfgfile=/etc/nginx/nginx.conf
rc_ulimit="-n 4096"
notify=fd:3
`

// TestCheckHookFIFO: check reads the installed hook as the resolver reads
// scripts: a FIFO in its place is an error, at once.
func TestCheckHookFIFO(t *testing.T) {
	p := filepath.Join(t.TempDir(), "gosv.conf")
	if err := unix.Mkfifo(p, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { _, err := CheckHook(p, "/usr/bin"); done <- err }()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "not a regular file") {
			t.Errorf("CheckHook(FIFO): %v, want not a regular file", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("CheckHook blocks on a FIFO")
	}
}

// TestResolveAll: scripts share a child until one kills it; each bomb
// gets its own error and the scripts after it resolve in a new child.
func TestResolveAll(t *testing.T) {
	dir := t.TempDir()
	l := Layout{RCConf: dir + "/none", RCConfD: dir + "/none", LibexecDir: dir, SvcDir: dir, Runlevel: "default"}
	os.MkdirAll(filepath.Join(dir, "init.d"), 0o755)
	var scripts []string
	for _, sc := range []struct{ name, body string }{
		{"ok1", "command=/bin/one"},
		{"zero", "x=$(< /dev/zero)"},
		{"ok2", "command=/bin/two"},
		{"doubling", "x=a; while :; do x=$x$x; done"},
		{"ok3", "command=/bin/three"},
		{"loop", "while :; do :; done"},
		{"ok4", "command=/bin/four"},
	} {
		p := filepath.Join(dir, "init.d", sc.name)
		os.WriteFile(p, []byte("#!/sbin/openrc-run\nsupervisor=gosv\n"+sc.body+"\n"), 0o755)
		scripts = append(scripts, p)
	}
	svcs, errs := ResolveAll(context.Background(), l, scripts)
	want := []string{"/bin/one", "refusing to read /dev/zero: not a regular file", "/bin/two",
		// " (a loop that never ends?)" follows unless gosv's kill, 0.5 s
		// later, came first (a loaded machine).
		"memory limit 256 MiB", "/bin/three", "resolution exceeded 2s", "/bin/four"}
	for i, w := range want {
		var re *ResolveError
		switch {
		case strings.HasPrefix(w, "/"):
			if errs[i] != nil || svcs[i].Get("command") != w {
				t.Errorf("%s: %v, want command=%s", scripts[i], errs[i], w)
			}
		case i == 3 && errors.As(errs[i], &re) && strings.HasPrefix(re.Msg, "resolution exceeded") && raceEnabled:
			// NOTE: with -race, copying big strings is slow enough that a
			// loaded machine reaches the time limit first. The memory
			// limit itself is tested on the real gosv (cmd/gosv).
		case !errors.As(errs[i], &re) || !strings.HasPrefix(re.Msg, w) || re.Pos.File != scripts[i]:
			t.Errorf("%s: %v, want %q", scripts[i], errs[i], w)
		}
	}
}
