package logdir

import (
	"os"
	"path/filepath"
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
