package servicedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestRecordLinker: the supervisor records of several directories are
// one file (no inode each), read as ordinary records; a record already
// there, or a symlink planted at the temporary name, is replaced without
// being followed; nothing is left at the temporary name.
func TestRecordLinker(t *testing.T) {
	want := PidRecord{Pid: 4242, StartTime: 77}
	k := NewRecordLinker(want)
	defer k.Close()
	base := t.TempDir()
	victim := filepath.Join(t.TempDir(), "victim")
	writeFile(t, victim, []byte("precious\n"))
	var dirs []string
	for i, setup := range []func(dir string){
		func(string) {}, // a new directory: supervise/gosv is made
		func(dir string) { // an older record
			mkdir(t, filepath.Join(dir, GosvStateDir))
			writeFile(t, filepath.Join(dir, SupervisorRecordPath), []byte("1 2\n"))
		},
		func(dir string) { // a record and a planted symlink at its .new
			mkdir(t, filepath.Join(dir, GosvStateDir))
			writeFile(t, filepath.Join(dir, SupervisorRecordPath), []byte("1 2\n"))
			if err := os.Symlink(victim, filepath.Join(dir, SupervisorRecordPath)+tmpSuffix); err != nil {
				t.Fatal(err)
			}
		},
	} {
		dir := filepath.Join(base, string(rune('a'+i)))
		mkdir(t, filepath.Join(dir, SuperviseDir))
		setup(dir)
		dirs = append(dirs, dir)
		if err := k.Write(dir, SupervisorRecordPath); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
	}
	dirs = append(dirs, dirs[0]) // the same directory again: a link of the same file there
	if err := k.Write(dirs[0], SupervisorRecordPath); err != nil {
		t.Fatal(err)
	}
	var first os.FileInfo
	for _, dir := range dirs {
		if got, err := ReadRecord(dir, SupervisorRecordPath); got != want || err != nil {
			t.Errorf("%s: ReadRecord = %+v, %v; want %+v", dir, got, err, want)
		}
		fi, err := os.Lstat(filepath.Join(dir, SupervisorRecordPath))
		if err != nil {
			t.Fatal(err)
		}
		if first == nil {
			first = fi
		} else if !os.SameFile(first, fi) {
			t.Errorf("%s: a record file of its own, want a link to the linker's", dir)
		}
		if fi.Mode().Perm() != 0o644&^umask() {
			t.Errorf("%s: mode %v", dir, fi.Mode())
		}
		if _, err := os.Lstat(filepath.Join(dir, SupervisorRecordPath) + tmpSuffix); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: %s left: %v", dir, tmpSuffix, err)
		}
	}
	if n := first.Sys().(*syscall.Stat_t).Nlink; n != 3 {
		t.Errorf("%d links, want 3 (one per directory)", n)
	}
	if b, _ := os.ReadFile(victim); string(b) != "precious\n" {
		t.Errorf("symlink target written: %q", b)
	}
	// A directory's rewrite (WriteRecord renames a new file over its
	// record) leaves the others' alone.
	if err := WriteRecord(dirs[1], SupervisorRecordPath, PidRecord{Pid: 9, StartTime: 9}); err != nil {
		t.Fatal(err)
	}
	if got, _ := ReadRecord(dirs[0], SupervisorRecordPath); got != want {
		t.Errorf("after another directory's rewrite: %+v", got)
	}
	err := k.Write(filepath.Join(base, "nope"), SupervisorRecordPath)
	assertPathError(t, err, filepath.Join(base, "nope", GosvStateDir), fs.ErrNotExist)
}

func umask() os.FileMode {
	m := syscall.Umask(0)
	syscall.Umask(m)
	return os.FileMode(m)
}
