package servicedir

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"
)

// supervise/gosv/pid is gosv-only state (PROTOCOL.md, "gosv-only files"):
// the pid of the run process and its start time in clock ticks since boot,
// field 22 of /proc/PID/stat. A scanner that restarts finds the record,
// checks that /proc/PID/stat still shows the same start time (so that a
// recycled pid is not mistaken for the service) and adopts the process
// instead of starting a duplicate.
const (
	gosvDirPerm   = 0o700
	pidRecordPerm = 0o644
	// pidRecordMaxBytes bounds the read: 10 digits of pid, space, 20 digits
	// of start time and a newline fit in 32; anything longer is corrupt.
	pidRecordMaxBytes = 64
	// procStatStartTimeField is the 1-based field number of starttime in
	// /proc/PID/stat (proc(5)).
	procStatStartTimeField = 22
)

// PidRecord is the gosv-only record of the running run process.
type PidRecord struct {
	Pid       int
	StartTime uint64 // field 22 of /proc/PID/stat (clock ticks since boot)
}

// WritePidRecord writes dir/supervise/gosv/pid atomically (creating supervise/gosv).
// The format is "PID STARTTIME\n" in decimal. supervise/ must exist.
func WritePidRecord(dir string, r PidRecord) error { return WriteRecord(dir, PidRecordPath, r) }

// WriteRecord writes a "PID STARTTIME\n" record at dir/rel (a path under
// supervise/gosv/) atomically, creating supervise/gosv.
func WriteRecord(dir, rel string, r PidRecord) error {
	// supervise/gosv exists nearly always (it is made at the first
	// record): make it only when the write finds it missing, rather than
	// a failing mkdir before each record (one per spawn).
	err := writeAtomic(dir, rel, formatPidRecord(r), pidRecordPerm)
	if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	if err := mkdirGosv(dir); err != nil {
		return err
	}
	return writeAtomic(dir, rel, formatPidRecord(r), pidRecordPerm)
}

// formatPidRecord is the content of a record: "PID STARTTIME\n".
func formatPidRecord(r PidRecord) []byte {
	b := make([]byte, 0, 32)
	b = strconv.AppendInt(b, int64(r.Pid), 10)
	b = append(b, ' ')
	b = strconv.AppendUint(b, r.StartTime, 10)
	return append(b, '\n')
}

// ReadPidRecord reads dir/supervise/gosv/pid; os.ErrNotExist when absent.
// Content other than "PID STARTTIME\n" with a positive pid is an
// *os.PathError wrapping [ErrBadValue].
func ReadPidRecord(dir string) (PidRecord, error) { return ReadRecord(dir, PidRecordPath) }

// ReadRecord reads a record written by [WriteRecord].
func ReadRecord(dir, rel string) (PidRecord, error) {
	p := filepath.Join(dir, rel)
	var buf [pidRecordMaxBytes]byte
	n, err := readAtMost(p, buf[:])
	if err != nil {
		return PidRecord{}, err
	}
	r, ok := parsePidRecord(buf[:n])
	if !ok {
		return PidRecord{}, badValue(p, string(buf[:n]))
	}
	return r, nil
}

func parsePidRecord(b []byte) (PidRecord, bool) {
	line, ok := bytes.CutSuffix(b, []byte{'\n'})
	if !ok {
		return PidRecord{}, false
	}
	pidText, stText, ok := bytes.Cut(line, []byte{' '})
	if !ok {
		return PidRecord{}, false
	}
	pid, ok1 := parseDecimal(pidText, 31)
	st, ok2 := parseDecimal(stText, 64)
	if !ok1 || !ok2 || pid == 0 {
		return PidRecord{}, false
	}
	return PidRecord{Pid: int(pid), StartTime: st}, true
}

// parseDecimal accepts only ASCII digits (no sign, no blanks) that fit in
// bits bits.
func parseDecimal(b []byte, bits int) (uint64, bool) {
	if len(b) == 0 || bytes.IndexFunc(b, func(r rune) bool { return r < '0' || r > '9' }) >= 0 {
		return 0, false
	}
	v, err := strconv.ParseUint(string(b), 10, bits)
	return v, err == nil
}

// RemovePidRecord removes dir/supervise/gosv/pid; absence is not an error.
func RemovePidRecord(dir string) error {
	// unlink, not os.Remove: that tries rmdir after a failed unlink,
	// one more failing call for the usual absent record.
	err := unix.Unlink(filepath.Join(dir, PidRecordPath))
	if err == nil || err == unix.ENOENT {
		return nil
	}
	return &os.PathError{Op: "unlink", Path: filepath.Join(dir, PidRecordPath), Err: err}
}

// ProcStartTime returns field 22 of /proc/PID/stat.
// A process that does not exist gives an error wrapping fs.ErrNotExist.
func ProcStartTime(pid int) (uint64, error) {
	st, err := ReadProcStat(pid)
	return st.StartTime, err
}

// ProcStat holds the fields of /proc/PID/stat (proc(5)) that gosv needs.
type ProcStat struct {
	State     byte   // field 3: R, S, D, Z, T…
	Ppid      int    // field 4: parent
	Pgrp, Sid int    // fields 5 and 6: process group and session
	StartTime uint64 // field 22: clock ticks since boot
}

// ReadProcStat reads /proc/PID/stat. A process that does not exist gives
// an error wrapping fs.ErrNotExist; content it cannot parse, an
// *os.PathError wrapping [ErrBadValue].
func ReadProcStat(pid int) (ProcStat, error) {
	p := "/proc/" + strconv.Itoa(pid) + "/stat"
	b, err := os.ReadFile(p)
	if err != nil {
		return ProcStat{}, err
	}
	st, ok := parseProcStat(b)
	if !ok {
		return ProcStat{}, badValue(p, string(b))
	}
	return st, nil
}

// parseProcStat parses the content of /proc/PID/stat. Field 2 is the
// command name in parentheses and may itself contain blanks and ')' (any
// byte but NUL, up to 15 of them), so the fields are counted from the
// LAST ')', after which field 3 (state) starts.
func parseProcStat(b []byte) (ProcStat, bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return ProcStat{}, false
	}
	fields := bytes.Fields(b[i+1:])
	const idx = procStatStartTimeField - 3
	if len(fields) <= idx || len(fields[0]) != 1 {
		return ProcStat{}, false
	}
	ppid, err0 := strconv.Atoi(string(fields[4-3]))
	pgrp, err1 := strconv.Atoi(string(fields[5-3]))
	sid, err2 := strconv.Atoi(string(fields[6-3]))
	start, ok := parseDecimal(fields[idx], 64)
	if err0 != nil || err1 != nil || err2 != nil || !ok {
		return ProcStat{}, false
	}
	return ProcStat{State: fields[0][0], Ppid: ppid, Pgrp: pgrp, Sid: sid, StartTime: start}, true
}
