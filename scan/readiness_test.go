package scan

import (
	"os"
	"path/filepath"
	"testing"
)

// TestNotifyDirNoFollow: the sd_notify directory's mode is set on the
// directory itself, never through a symlink planted at its name (in
// /tmp anyone can plant one), nor on a directory another user made.
func TestNotifyDirNoFollow(t *testing.T) {
	base := t.TempDir()
	target := filepath.Join(base, "target")
	if err := os.Mkdir(target, 0o700); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(base, "planted")
	if err := os.Symlink(target, link); err != nil {
		t.Fatal(err)
	}
	if err := makeNotifyDir(link); err == nil {
		t.Error("makeNotifyDir accepted a symlink")
	}
	if fi, err := os.Stat(target); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the symlink's target changed: %v %v", fi.Mode(), err)
	}

	own := filepath.Join(base, "own")
	if err := os.Mkdir(own, 0o700); err != nil {
		t.Fatal(err)
	}
	fresh := filepath.Join(base, "fresh")
	for _, dir := range []string{own, fresh} {
		if err := makeNotifyDir(dir); err != nil {
			t.Fatal(err)
		}
		if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s: %v %v, want a directory 0755", dir, fi.Mode(), err)
		}
	}

	if os.Geteuid() != 0 {
		return // a directory of another user needs root to make
	}
	foreign := filepath.Join(base, "foreign")
	if err := os.Mkdir(foreign, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(foreign, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if err := makeNotifyDir(foreign); err == nil {
		t.Error("makeNotifyDir took another user's directory")
	}
	if fi, err := os.Stat(foreign); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("another user's directory changed: %v %v", fi.Mode(), err)
	}
}
