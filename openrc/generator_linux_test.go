package openrc

import (
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// TestNewestInputClient: a generated directory is stale once the running
// executable (the hook's client) is newer than it, even when gosv and the
// sources are not, and a binary's status change time counts (an install
// that keeps the old mtime).
func TestNewestInputClient(t *testing.T) {
	const old = "/bin/sh" // an old file: mtime and ctime long past
	var st syscall.Stat_t
	if err := syscall.Stat(old, &st); err != nil {
		t.Skip(err)
	}
	generated := time.Now().Add(-10 * time.Second)
	if time.Unix(st.Ctim.Unix()).After(generated.Add(-time.Second)) {
		t.Skipf("%s changed in the last seconds", old)
	}
	dir := t.TempDir()
	gosv := filepath.Join(dir, "gosv") // with old's times
	if err := os.Symlink(old, gosv); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "web")
	if err := os.WriteFile(script, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	past := generated.Add(-time.Hour)
	if err := os.Chtimes(script, past, past); err != nil {
		t.Fatal(err)
	}
	svc := filepath.Join(dir, "svc")
	if err := os.Mkdir(svc, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(svc, ExecFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(filepath.Join(svc, ExecFile), generated, generated); err != nil {
		t.Fatal(err)
	}
	s := &Service{Files: []string{script}}

	exe := gosv
	executable = func() (string, error) { return exe, nil }
	t.Cleanup(func() { executable = os.Executable })
	newest, err := newestInput(s, gosv)
	if err != nil || Stale(svc, newest) {
		t.Fatalf("old gosv, old sources: newest %v, %v; want the directory current", newest, err)
	}
	// A new client, installed with an old mtime kept: its ctime is now.
	// Running, or beside gosv when gosv runs.
	for _, tt := range []struct{ client, exe string }{
		{filepath.Join(dir, "bin", "gosv-openrc"), filepath.Join(dir, "bin", "gosv-openrc")},
		{gosv + "-openrc", gosv},
	} {
		os.MkdirAll(filepath.Dir(tt.client), 0o755)
		if err := os.WriteFile(tt.client, nil, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chtimes(tt.client, past, past); err != nil {
			t.Fatal(err)
		}
		exe = tt.exe
		newest, err = newestInput(s, gosv)
		if err != nil || !Stale(svc, newest) {
			t.Errorf("a new client %s, running %s: newest %v, %v; want the directory stale", tt.client, exe, newest, err)
		}
		os.Remove(tt.client)
	}
}
