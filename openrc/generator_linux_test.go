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
	gosv := "/bin/sh" // an old file: mtime and ctime long past
	var st syscall.Stat_t
	if err := syscall.Stat(gosv, &st); err != nil {
		t.Skip(err)
	}
	generated := time.Now().Add(-10 * time.Second)
	if time.Unix(st.Ctim.Unix()).After(generated.Add(-time.Second)) {
		t.Skipf("%s changed in the last seconds", gosv)
	}
	dir := t.TempDir()
	script := filepath.Join(dir, "web")
	if err := os.WriteFile(script, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	old := generated.Add(-time.Hour)
	if err := os.Chtimes(script, old, old); err != nil {
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
	exe = filepath.Join(dir, "gosv-openrc")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(exe, old, old); err != nil {
		t.Fatal(err)
	}
	newest, err = newestInput(s, gosv)
	if err != nil || !Stale(svc, newest) {
		t.Errorf("a new client: newest %v, %v; want the directory stale", newest, err)
	}
}
