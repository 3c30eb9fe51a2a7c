package scan

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// testGroup is a gid the scanner may chown to: any as root, else our own.
func testGroup() int {
	if os.Geteuid() == 0 {
		return 4242
	}
	return os.Getegid()
}

// TestControlGroupFile: a service directory with a control-group file gets
// supervise/, supervise/control, supervise/gosv/ and event/ of that group
// with s6-svperms -G/-E's modes when the scanner takes it; nothing is
// world-writable, and a directory without the file keeps s6's modes.
func TestControlGroupFile(t *testing.T) {
	scan := t.TempDir()
	gid := testGroup()
	var stderr bytes.Buffer
	errf := captureStderr(t, &stderr)
	startScannerTo(t, scan, errf)
	svc := link(t, scan, mksvc(t, scan, "g", pauseRun, map[string]string{
		servicedir.ControlGroupFile: strconv.Itoa(gid) + "\n"}))
	plain := link(t, scan, mksvc(t, scan, "p", pauseRun, nil))
	waitFor(t, svc, svwait.Up)
	waitFor(t, plain, svwait.Up)
	for rel, mode := range map[string]os.FileMode{
		servicedir.SuperviseDir: 0o710,
		servicedir.ControlPath:  0o620 | fs.ModeNamedPipe,
		servicedir.GosvStateDir: 0o710,
		servicedir.EventDir:     0o730 | fs.ModeSetgid | fs.ModeSticky,
	} {
		checkPerm(t, filepath.Join(svc, rel), mode&^fs.ModeDir, gid)
	}
	// Readable by all as in s6: the group reaches them through supervise/.
	checkPerm(t, filepath.Join(svc, servicedir.StatusPath), 0o644, os.Getegid())
	checkPerm(t, filepath.Join(svc, servicedir.LockPath), 0o644, os.Getegid())
	checkPerm(t, filepath.Join(plain, servicedir.SuperviseDir), 0o700, os.Getegid())
	checkPerm(t, filepath.Join(plain, servicedir.ControlPath), 0o600|fs.ModeNamedPipe, os.Getegid())
	noWorldWritable(t, svc)
	if stderr.Len() > 0 {
		t.Errorf("scanner warned: %s", stderr.String())
	}
}

// TestControlGroupBad: an unknown group is one warning naming the file;
// the service runs anyway, its files keep their private modes.
func TestControlGroupBad(t *testing.T) {
	scan := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	startScannerTo(t, scan, w)
	w.Close()
	svc := link(t, scan, mksvc(t, scan, "b", pauseRun, map[string]string{
		servicedir.ControlGroupFile: "no-such-group-gosv\n"}))
	waitFor(t, svc, svwait.Up)
	checkPerm(t, filepath.Join(svc, servicedir.ControlPath), 0o600|fs.ModeNamedPipe, os.Getegid())
	buf := make([]byte, 4096)
	n, _ := r.Read(buf) // the warning is written before the service's start
	line := string(buf[:n])
	if !strings.Contains(line, servicedir.ControlGroupFile+`: unknown group "no-such-group-gosv"`) ||
		strings.Contains(line, "/proc/self/fd") || strings.Count(line, "\n") != 1 {
		t.Errorf("warning: %q, want one line naming the file and the group", line)
	}
}

// TestControlGroupRefusesSymlinkedEvent: event/ as a symlink is not
// chowned through (it could point anywhere).
func TestControlGroupRefusesSymlinkedEvent(t *testing.T) {
	scan := t.TempDir()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	startScannerTo(t, scan, w)
	w.Close()
	target := t.TempDir()
	dir := mksvc(t, scan, "s", pauseRun, map[string]string{servicedir.ControlGroupFile: strconv.Itoa(testGroup())})
	if err := os.Symlink(target, filepath.Join(dir, servicedir.EventDir)); err != nil {
		t.Fatal(err)
	}
	svc := link(t, scan, dir)
	waitFor(t, svc, svwait.Up)
	buf := make([]byte, 4096)
	n, _ := r.Read(buf)
	if !strings.Contains(string(buf[:n]), "event") || !strings.Contains(string(buf[:n]), "a symlink: group control is not granted") {
		t.Errorf("warning: %q", buf[:n])
	}
	checkPerm(t, target, 0o755, os.Getegid()) // untouched (t.TempDir makes 0755)
}

func checkPerm(t *testing.T, p string, mode os.FileMode, gid int) {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Lstat(p)
	if got := fi.Mode() &^ fs.ModeDir; got != mode || int(st.Gid) != gid {
		t.Errorf("%s: mode %v gid %d, want %v gid %d", p, got, st.Gid, mode, gid)
	}
}

// noWorldWritable fails for any file under dir others may write.
func noWorldWritable(t *testing.T, dir string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if fi, err := d.Info(); err == nil && fi.Mode().Type() != fs.ModeSymlink && fi.Mode().Perm()&0o002 != 0 {
			t.Errorf("%s is world-writable: %v", p, fi.Mode())
		}
		return nil
	})
}

// captureStderr returns a file whose content ends up in buf at cleanup.
func captureStderr(t *testing.T, buf *bytes.Buffer) *os.File {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		b, _ := os.ReadFile(f.Name())
		buf.Write(b)
	})
	return f
}
