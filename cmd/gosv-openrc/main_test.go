package main

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/gosv/gosv/openrc"
)

// TestMain: this test binary is also the client, for the resolver's
// child that ResolveAll runs as `/proc/self/exe openrc resolve`.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "openrc" {
		os.Exit(run(os.Args))
	}
	os.Exit(m.Run())
}

// TestResolveAllInClient: check and ls resolve in a child that re-runs
// the running binary as gosv (`gosv openrc resolve`); inside the client
// that is `gosv-openrc openrc resolve`, which it serves.
func TestResolveAllInClient(t *testing.T) {
	dir := t.TempDir()
	l := openrc.Layout{RCConf: dir + "/none", RCConfD: dir + "/none", LibexecDir: dir, SvcDir: dir, Runlevel: "default"}
	script := filepath.Join(dir, "web")
	if err := os.WriteFile(script, []byte("#!/sbin/openrc-run\nsupervisor=gosv\ncommand=/bin/one\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	svcs, errs := openrc.ResolveAll(context.Background(), l, []string{script})
	if errs[0] != nil || svcs[0].Get("command") != "/bin/one" {
		t.Errorf("ResolveAll in the client: %v, want command=/bin/one", errs[0])
	}
}

// TestParse: the hook's command lines are the client's; everything else
// goes to gosv (ok false).
func TestParse(t *testing.T) {
	for _, tt := range []struct {
		args       string // split on blanks
		ok         bool
		sub        string
		vars, argv []string
	}{
		{"start --var supervisor=gosv --var command=/bin/d -- /bin/d -f", true, "start", []string{"supervisor=gosv", "command=/bin/d"}, []string{"/bin/d", "-f"}},
		{"start --var=a=b --", true, "start", []string{"a=b"}, []string{}},
		{"start", true, "start", nil, nil},
		{"stop --var supervisor=gosv", true, "stop", []string{"supervisor=gosv"}, nil},
		{"status --var supervisor=gosv", true, "status", []string{"supervisor=gosv"}, nil},
		{"reload", true, "reload", nil, nil},
		{"", false, "", nil, nil},
		{"ls", false, "", nil, nil},
		{"check web", false, "", nil, nil},
		{"svscan --wait", false, "", nil, nil},
		{"start --help", false, "", nil, nil},
		{"status -h", false, "", nil, nil},
		{"stop extra", false, "", nil, nil},
		{"stop -- x", false, "", nil, nil},
		{"start /bin/d", false, "", nil, nil},
		{"status --var", false, "", nil, nil},
		{"--help", false, "", nil, nil},
		{"resolve", true, "resolve", nil, nil},
		{"resolve x", false, "", nil, nil},
	} {
		c, ok := parse(strings.Fields(tt.args))
		if ok != tt.ok {
			t.Errorf("parse(%q): ok %v, want %v", tt.args, ok, tt.ok)
			continue
		}
		if !ok {
			continue
		}
		if c.Sub != tt.sub || !slices.Equal(c.Vars, tt.vars) || !slices.Equal(c.Args, tt.argv) || (c.Args == nil) != (tt.argv == nil) {
			t.Errorf("parse(%q) = %q %q %q, want %q %q %q", tt.args, c.Sub, c.Vars, c.Args, tt.sub, tt.vars, tt.argv)
		}
	}
}

// TestGosvBinary: GOSV-openrc belongs to GOSV, symbolic links resolved as
// gosv's own os.Executable resolves them; another name is an error.
func TestGosvBinary(t *testing.T) {
	dir := t.TempDir()
	real := filepath.Join(dir, "real-gosv")
	if err := os.WriteFile(real, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(real, filepath.Join(dir, "gosv")); err != nil {
		t.Fatal(err)
	}
	if got, err := gosvBinary(filepath.Join(dir, "gosv-openrc")); err != nil || got != real {
		t.Errorf("gosvBinary = %q, %v; want %q", got, err, real)
	}
	// A relative path (./bin/gosv-openrc, a relative gosv_bin): absolute,
	// since the generated finish runs in the service directory.
	// Both for a symbolic link and for a plain file.
	t.Chdir(filepath.Dir(dir))
	for _, name := range []string{"gosv-openrc", "real-gosv-openrc"} {
		rel := filepath.Join(".", filepath.Base(dir), name)
		if got, err := gosvBinary(rel); err != nil || got != real {
			t.Errorf("gosvBinary(%q) = %q, %v; want %q", rel, got, err, real)
		}
	}
	if _, err := gosvBinary(filepath.Join(dir, "client")); err == nil {
		t.Error("gosvBinary of a client not named GOSV-openrc: no error")
	}
	if _, err := gosvBinary(filepath.Join(dir, "none-openrc")); err == nil {
		t.Error("gosvBinary without its gosv: no error")
	}
}
