package scan

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
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

// TestNoTallyBeforeFirstDeath: taking a directory creates no
// death_tally (a file less to allocate per service), and removes the one
// an earlier supervisor left, as s6-supervise empties it; the first death
// makes it. The real s6-svdt reads no tally as an empty one.
func TestNoTallyBeforeFirstDeath(t *testing.T) {
	scan := t.TempDir()
	startScanner(t, scan)
	fresh := mksvc(t, scan, "fresh", pauseRun, nil)
	old := mksvc(t, scan, "old", pauseRun, nil)
	if err := os.MkdirAll(filepath.Join(old, servicedir.SuperviseDir), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := servicedir.AppendDeath(old, servicedir.DeathFromWstat(time.Now(), 0x0100), 10); err != nil {
		t.Fatal(err)
	}
	svdt, _ := exec.LookPath("s6-svdt")
	if svdt == "" && os.Getenv("REQUIRE_S6") != "" {
		t.Error("s6-svdt not installed (REQUIRE_S6 is set)")
	}
	for _, dir := range []string{fresh, old} {
		svc := link(t, scan, dir)
		waitFor(t, svc, svwait.Up)
		if _, err := os.Lstat(filepath.Join(dir, servicedir.DeathTallyPath)); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: death_tally before the first death: %v", dir, err)
		}
		if svdt != "" {
			if out, err := exec.Command(svdt, svc).CombinedOutput(); err != nil || len(out) != 0 {
				t.Errorf("%s: s6-svdt printed %q (%v), want nothing and exit 0", dir, out, err)
			}
		}
		ctlWait(t, svc, "k", svwait.Down) // a death
		waitFor(t, svc, svwait.Up)        // its restart: the death's feed, tally included, is over
		if ds, err := servicedir.ReadDeathTally(dir); err != nil || len(ds) != 1 || ds[0].Sig != 9 {
			t.Errorf("%s: death_tally after one SIGKILL: %+v, %v", dir, ds, err)
		}
	}
}

// TestRecordNotShared: each directory gets a supervisor record of its
// own (its own inode). Records shared as hard links to one file (a
// variant tried for fewer inodes, bench/README.md "Fewer inodes") let a
// chown -R or chmod -R over one service tree change the record that
// svwait and the look for orphaned runs trust in every other directory.
func TestRecordNotShared(t *testing.T) {
	scan := t.TempDir()
	var dirs []string
	for i := range 3 {
		dir := mksvc(t, scan, fmt.Sprintf("r%d", i), pauseRun, nil)
		// Linked before the scanner starts: taken in one batch.
		if err := os.Symlink(dir, filepath.Join(scan, filepath.Base(dir))); err != nil {
			t.Fatal(err)
		}
		dirs = append(dirs, dir)
	}
	startScanner(t, scan)
	var recs []os.FileInfo
	for _, dir := range dirs {
		waitFor(t, dir, svwait.Up)
		fi, err := os.Lstat(filepath.Join(dir, servicedir.SupervisorRecordPath))
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range recs {
			if os.SameFile(r, fi) {
				t.Errorf("%s and %s share one supervisor record file", dirs[i], dir)
			}
		}
		recs = append(recs, fi)
	}
}
