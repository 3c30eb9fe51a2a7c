package logdir

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestCurrentSymlinkNotFollowed (issue 9, defect 4): a symlink planted as
// current in a log directory (log-script ./log lives in the user's
// service directory; the logger runs as root) is refused: its target is
// neither appended to nor chmodded.
func TestCurrentSymlinkNotFollowed(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// With the owner's x bit, current counts as cleanly closed and is
	// appended to at open: root's executables qualify.
	victim := filepath.Join(t.TempDir(), "tool")
	if err := os.WriteFile(victim, []byte("secret\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, filepath.Join(dir, currentName)); err != nil {
		t.Fatal(err)
	}
	l, err := Open(mustScript(t, dir), Options{})
	if err == nil {
		p := testPipe(t)
		writeAllT(t, p[1], []byte("a line\n"))
		consumeAll(t, l, p[0], testScratch(t))
		l.Close()
	}
	fi, serr := os.Stat(victim)
	b, _ := os.ReadFile(victim)
	if serr != nil || fi.Mode().Perm() != 0o700 || string(b) != "secret\n" {
		t.Errorf("victim changed: mode %v, content %q (Open error: %v)", fi.Mode(), b, err)
	}
}

// TestDirSwapNotFollowed: the log directory swapped for a symlink after
// the logger opened it (its parent is a user's service directory) does
// not move root's writes: lines and rotations stay in the directory that
// was opened.
func TestDirSwapNotFollowed(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "log")
	victim := t.TempDir()
	l, err := Open(mustScript(t, "s100", "n5", dir), Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(victim, dir); err != nil {
		t.Fatal(err)
	}
	p := testPipe(t)
	for i := 0; i < 400; i++ { // several rotations (s is at least MinMaxSize)
		writeAllT(t, p[1], []byte("a line of the service, twenty of them\n"))
	}
	consumeAll(t, l, p[0], testScratch(t))
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Errorf("the symlink's target got %d entries", len(ents))
	}
	if ents, _ := os.ReadDir(dir + ".old"); len(ents) < 3 {
		t.Errorf("the opened directory has %d entries, want current, lock and archives", len(ents))
	}
}

// TestForeignDirSymlinkRefused: a log directory that is a symlink owned
// by another user is not followed at all.
func TestForeignDirSymlinkRefused(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a symlink to another user")
	}
	parent := t.TempDir()
	victim := t.TempDir()
	dir := filepath.Join(parent, "log")
	if err := os.Symlink(victim, dir); err != nil {
		t.Fatal(err)
	}
	if err := os.Lchown(dir, 65534, 65534); err != nil {
		t.Fatal(err)
	}
	if l, err := Open(mustScript(t, dir), Options{}); err == nil {
		l.Close()
		t.Fatal("opened through another user's symlink")
	} else if !strings.Contains(err.Error(), "refusing to follow a symlink owned by uid 65534") {
		t.Fatalf("error %v", err)
	}
	if ents, _ := os.ReadDir(victim); len(ents) != 0 {
		t.Errorf("the symlink's target got %d entries", len(ents))
	}
}
