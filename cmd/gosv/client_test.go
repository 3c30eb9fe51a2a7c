package main

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

// TestClientProblem: `gosv openrc check` warns, in one line naming both
// files, when the client beside gosv is another build (or no Go binary);
// the same build or no client is no problem.
func TestClientProblem(t *testing.T) {
	self, ok := debug.ReadBuildInfo()
	if !ok {
		t.Fatal("no build information in the test binary")
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gosv := filepath.Join(dir, "gosv")
	if p := clientProblem(gosv, self); p != nil {
		t.Errorf("no client: %v", p)
	}
	// The client: this test binary, the same build as self.
	if err := os.WriteFile(gosv+clientSuffix, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if p := clientProblem(gosv, self); p != nil {
		t.Errorf("the same build: %v", p)
	}
	other := *self
	other.Settings = append(other.Settings[:len(other.Settings):len(other.Settings)], debug.BuildSetting{Key: "vcs.revision", Value: "0123abcd"})
	p := clientProblem(gosv, &other)
	if p == nil {
		t.Fatal("another build: no problem")
	}
	line := p.String()
	if strings.Contains(line, "\n") || !strings.Contains(line, gosv+clientSuffix) || !strings.Contains(line, gosv+" ") || !strings.Contains(line, "0123abcd") {
		t.Errorf("another build: %q, want one line naming %s, %s and the revision", line, gosv+clientSuffix, gosv)
	}
	other = *self
	other.Main.Version = "v9.9.9"
	if p := clientProblem(gosv, &other); p == nil {
		t.Error("another version: no problem")
	}
	if err := os.WriteFile(gosv+clientSuffix, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if p := clientProblem(gosv, self); p == nil || !strings.Contains(p.String(), gosv+clientSuffix) {
		t.Errorf("a client that is no Go binary: %v", p)
	}
}
