package servicedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

func TestPidRecord(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, SuperviseDir))
	if _, err := ReadPidRecord(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ReadPidRecord without file = %v, want ErrNotExist", err)
	}
	if err := RemovePidRecord(dir); err != nil {
		t.Errorf("RemovePidRecord without file = %v", err)
	}
	want := PidRecord{Pid: 4194304, StartTime: 18446744073709551615}
	if err := WritePidRecord(dir, want); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, PidRecordPath)
	if b, _ := os.ReadFile(p); string(b) != "4194304 18446744073709551615\n" {
		t.Errorf("file = %q", b)
	}
	if fi, err := os.Stat(filepath.Join(dir, GosvStateDir)); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("supervise/gosv: %v, %v; want 0700", fi.Mode(), err)
	}
	if got, err := ReadPidRecord(dir); got != want || err != nil {
		t.Errorf("ReadPidRecord = %+v, %v", got, err)
	}
	want.Pid = 12 // rewrite over an existing record and directory
	if err := WritePidRecord(dir, want); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadPidRecord(dir); got != want || err != nil {
		t.Errorf("ReadPidRecord = %+v, %v", got, err)
	}
	if err := RemovePidRecord(dir); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(p); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("record still there: %v", err)
	}
	// supervise/ must exist: WritePidRecord does not create it.
	err := WritePidRecord(filepath.Join(dir, "nope"), want)
	assertPathError(t, err, filepath.Join(dir, "nope", GosvStateDir), fs.ErrNotExist)
}

func TestReadPidRecordInvalid(t *testing.T) {
	for _, content := range []string{
		"", "\n", "12\n", "12 34", "12 34\n\n", " 12 34\n", "12  34\n", "12 34 \n",
		"0 34\n", "-1 34\n", "+1 34\n", "2147483648 1\n", "1 18446744073709551616\n",
		"12 0x10\n", string(make([]byte, 100)),
	} {
		dir := t.TempDir()
		mkdir(t, filepath.Join(dir, GosvStateDir))
		writeFile(t, filepath.Join(dir, PidRecordPath), []byte(content))
		_, err := ReadPidRecord(dir)
		if !errors.Is(err, ErrBadValue) {
			t.Errorf("%q: error %v, want ErrBadValue", content, err)
		}
	}
}

func TestParseProcStat(t *testing.T) {
	tail := " S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 50"
	for _, tt := range []struct {
		stat string
		want uint64
		ok   bool
	}{
		{"1234 (sleep)" + tail, 98765, true},
		{"1234 (sleep) SS 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 50", 0, false},
		{"1234 (a b c)" + tail, 98765, true},
		{"1234 (x) 1 2 3 4)" + tail, 98765, true}, // ')' and numbers in comm
		{"1234 ())" + tail, 98765, true},
		{"1234 ((sd-pam))" + tail, 98765, true},
		{"1234 (\n)" + tail, 98765, true},
		{"1234 (sleep) S 1 2 3", 0, false},
		{"1234 sleep" + tail, 0, false},
		{"1234 (x)" + " S 1 1234 1234 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 -5 1000", 0, false},
	} {
		st, ok := parseProcStat([]byte(tt.stat))
		if got := st.StartTime; got != tt.want || ok != tt.ok {
			t.Errorf("parseProcStat(%q) = %d, %v; want %d, %v", tt.stat, got, ok, tt.want, tt.ok)
		}
	}
}

func TestProcStartTime(t *testing.T) {
	st, err := ProcStartTime(os.Getpid())
	if err != nil || st == 0 {
		t.Fatalf("ProcStartTime(self) = %d, %v", st, err)
	}
	self, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := parseProcStat(self); st != want.StartTime {
		t.Errorf("ProcStartTime(self) = %d, /proc/self/stat says %d", st, want.StartTime)
	}
	// ReadProcStat agrees with the kernel's own ids of this process.
	if ps, err := ReadProcStat(os.Getpid()); err != nil || ps.Pgrp != unix.Getpgrp() || ps.State != 'R' && ps.State != 'S' {
		t.Errorf("ReadProcStat(self) = %+v, %v; pgrp %d", ps, err, unix.Getpgrp())
	} else if sid, _ := unix.Getsid(0); ps.Sid != sid {
		t.Errorf("ReadProcStat(self).Sid = %d, getsid says %d", ps.Sid, sid)
	}
	// Above the kernel's PID_MAX_LIMIT (4194304): never a live process.
	if _, err := ProcStartTime(1 << 23); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("ProcStartTime(no such pid) = %v, want ErrNotExist", err)
	}
}
