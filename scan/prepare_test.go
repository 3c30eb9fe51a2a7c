package scan

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gosv/gosv/internal/servicedir"
)

// TestReadyAfterFirstScan: workers prepare the directories (prepare.go),
// yet the scanner's readiness (-d) still means what it meant when the
// loop took them itself: every service present at start has its lock
// held, its control FIFO and its status, and a logged service its
// logger, so that s6-svok, s6-svc and s6-svstat work at once.
func TestReadyAfterFirstScan(t *testing.T) {
	scan := t.TempDir()
	var dirs []string
	for i := range 40 {
		files := map[string]string(nil)
		if i%4 == 0 {
			files = map[string]string{"log/run": "#!/bin/sh\nexec cat >/dev/null\n"}
		}
		dir := mksvc(t, scan, fmt.Sprintf("s%02d", i), pauseRun, files)
		if err := os.Symlink(dir, filepath.Join(scan, filepath.Base(dir))); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
		if files != nil {
			dirs = append(dirs, filepath.Join(dir, "log"))
		}
	}
	startScanner(t, scan)
	for _, dir := range dirs {
		if ok, err := servicedir.IsLocked(filepath.Join(dir, servicedir.LockPath)); !ok || err != nil {
			t.Errorf("%s: lock not held at readiness (%v)", dir, err)
		}
		if fi, err := os.Lstat(filepath.Join(dir, servicedir.ControlPath)); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
			t.Errorf("%s: no control FIFO at readiness (%v)", dir, err)
		}
		if _, err := servicedir.ReadStatus(dir); err != nil {
			t.Errorf("%s: no status at readiness: %v", dir, err)
		}
	}
}
