package servicedir

import (
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

func TestListPresent(t *testing.T) {
	var zero Present
	if !zero.Has(FinishFile) || !zero.Has("anything") {
		t.Fatal("the zero Present must have every name")
	}
	dir := t.TempDir()
	for _, n := range []string{RunFile, TimeoutKillFile, "unrelated"} {
		if err := os.WriteFile(filepath.Join(dir, n), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// A dangling symlink is listed: the read that follows decides.
	if err := os.Symlink("nowhere", filepath.Join(dir, DownSignalFile)); err != nil {
		t.Fatal(err)
	}
	// Enough other entries that getdents needs more than one call.
	for i := range 300 {
		if err := os.WriteFile(filepath.Join(dir, "padding-with-a-long-name-"+strconv.Itoa(i)), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, SuccessExitFile), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := ListPresent(dir)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]bool{RunFile: true, TimeoutKillFile: true, DownSignalFile: true, SuccessExitFile: true,
		FinishFile: false, NotificationFDFile: false, HealthCheckFile: false, "unrelated": true, "not-tracked": true} {
		if got := p.Has(name); got != want {
			t.Errorf("Has(%q) = %v, want %v", name, got, want)
		}
	}
	if _, err := ListPresent(filepath.Join(dir, "missing")); err == nil {
		t.Error("listing a missing directory: no error")
	}
	if n := testing.AllocsPerRun(10, func() { p.Has(FinishFile) }); n != 0 {
		t.Errorf("Has allocates %v times", n)
	}
}
