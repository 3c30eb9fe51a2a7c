package scan

import (
	"bytes"
	"cmp"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// Orphaned runs: the window between fork and the pid record.
//
// The pid record (supervise/gosv/pid) is written after fork+exec returns,
// so a scanner SIGKILLed in that instant leaves a run nobody recorded; a
// new scanner that trusted the records alone would start a second copy.
// Recording before the fork would cost every spawn a write and still not
// know the pid. Instead the new scanner looks for such runs once, when
// it starts, and only for the services that need it:
//
//   - the previous supervisor of the directory was a gosv process that is
//     not this one (its supervise/gosv/supervisor record, read before it
//     is overwritten) and
//   - the status file it left says down (pid 0, not finishing), or there
//     is none and no death tally either (a first status is held across
//     the first spawn: holdStatus): every spawn of run starts from that,
//     while a status naming a pid (up, or finishing) means the dead
//     scanner was not spawning run: a leftover finish or check is then
//     never taken for the run (s6 does not adopt finish either; run is
//     started beside it). A missing status with a tally (or with
//     max-death-tally 0) is not down: a scanner whose status writes all
//     failed (ENOSPC, EDQUOT) may have seen run die and left finish or
//     check running.
//
// Every run is started in a new session (setsid: sid == pid) with the
// service directory as its cwd, so one walk of /proc maps the (device,
// inode) of each session leader's cwd to the leaders. A service adopts the
// oldest leader in its directory that started no earlier than the dead
// supervisor (and than the stale pid record's run) and that the loop does
// not know already (another service's run, adopted from its record). The
// others, which cannot be attributed, are reported once and left alone.
//
// NOTE: the walk may happen as late as the first service taken: the run
// forked in the window holds a copy of every supervise/lock of the dead
// scanner until its execve (the locks are OFD locks on descriptors it
// inherited), and setsid and chdir precede the execve, so once this
// scanner holds a lock the orphan already shows its final sid and cwd.

// orphan is a session leader found by the walk of /proc.
type orphan struct {
	pid   int
	start uint64 // field 22 of /proc/PID/stat
}

// orphanCandidate says whether s, which has no live recorded run, may have
// an orphaned one, and from which start time.
func (l *loop) orphanCandidate(s *service) (uint64, bool) {
	if s.prev.Pid == 0 || s.prev == l.self {
		return 0, false
	}
	st, err := servicedir.ReadStatus(s.dir)
	switch {
	case err == nil:
		if st.Pid != 0 || st.Finishing {
			return 0, false
		}
	case errors.Is(err, fs.ErrNotExist) && !s.prevDeaths && l.talliesDeaths(s):
		// No status and no death: a supervisor that made supervise/
		// writes its first status after the first spawn (holdStatus).
		// A finish starts only once its death is in the tally or the
		// status (spawnFinish), so none of the dead scanner's is running.
	default:
		return 0, false
	}
	since := s.prev.StartTime
	if rec, err := servicedir.ReadPidRecord(s.dir); err == nil && rec.StartTime > since {
		since = rec.StartTime
	}
	return since, true
}

// talliesDeaths says whether a death of s's run leaves a death tally:
// with max-death-tally 0 none does, and a missing one tells nothing.
func (l *loop) talliesDeaths(s *service) bool {
	if !l.has(s, servicedir.MaxDeathTallyFile) {
		return true
	}
	max, _ := supervise.ReadMaxDeathTally(s.dir) // the value the writer used, error or not (deathTally)
	return max > 0
}

// deferStart puts s, which has no live recorded run, on the list of
// services whose start waits for the look for orphaned runs (see
// resolveOrphans), when it may have one. It says whether it did.
func (l *loop) deferStart(s *service) bool {
	since, ok := l.orphanCandidate(s)
	if !ok {
		return false
	}
	s.orphanSince = since
	l.orphanWait = append(l.orphanWait, s)
	return true
}

// resolveOrphans starts or adopts the services deferStart held back. It
// is called once every service of a batch (a scan, an inotify event) is
// taken, and no directory is still being prepared (prepare.go), so that
// the runs adopted from their records are known and never taken for
// another service's orphan.
func (l *loop) resolveOrphans() {
	if len(l.orphanWait) == 0 || l.preparing() {
		return // takePreparations calls again once none is out
	}
	if l.orphans == nil {
		l.orphans = sessionLeaders(l.byPid)
	}
	for i, s := range l.orphanWait {
		l.orphanWait[i] = nil
		if s.dirfd < 0 || s.m.State != supervise.Down || s.m.Pid != 0 {
			continue // gone meanwhile
		}
		if pid, start, ok := l.pickOrphan(s); ok {
			// What the dead scanner knew (only if adopted: a fresh
			// start writes wstat 0, as s6-supervise does).
			if st, err := servicedir.ReadStatus(s.dir); err == nil {
				s.m.WantUp, s.m.Wstat = st.WantUp, st.Wstat
			} else {
				// No status (holdStatus): the dead scanner was
				// starting it, so it wanted it up unless down says no.
				_, err := os.Stat(filepath.Join(s.dir, servicedir.DownFile))
				s.m.WantUp = err != nil
			}
			// NOTE: recorded before the status names it: a scanner
			// killed in between must find the record, since a status
			// naming a pid rules the look for orphans out.
			if err := servicedir.WritePidRecord(s.dir, servicedir.PidRecord{Pid: pid, StartTime: start}); err != nil {
				l.warn(s, "record", "unable to record the pid of %s: %v", s.dir, err)
			}
			if l.adopt(s, pid, start) {
				continue
			}
		}
		l.start(s) // removes the record
	}
	l.orphanWait = l.orphanWait[:0]
}

// pickOrphan chooses the run of s that a dead supervisor started without
// recording it: the oldest fitting session leader in its directory.
func (l *loop) pickOrphan(s *service) (int, uint64, bool) {
	var st unix.Stat_t
	if unix.Fstat(s.dirfd, &st) != nil {
		return 0, 0, false
	}
	id := devIno{st.Dev, st.Ino}
	var fit []orphan
	for _, o := range l.orphans[id] {
		if _, known := l.byPid[o.pid]; known || o.start < s.orphanSince {
			continue
		}
		if now, err := servicedir.ProcStartTime(o.pid); err != nil || now != o.start {
			continue // died since the walk
		}
		fit = append(fit, o)
	}
	if len(fit) == 0 {
		return 0, 0, false
	}
	slices.SortFunc(fit, func(a, b orphan) int {
		if c := cmp.Compare(a.start, b.start); c != 0 {
			return c
		}
		return cmp.Compare(a.pid, b.pid)
	})
	if len(fit) > 1 {
		others := make([]int, 0, len(fit)-1)
		for _, o := range fit[1:] {
			others = append(others, o.pid)
		}
		l.warn(s, "orphans", "%s: adopting pid %d as its run; other processes started in it by the previous supervisor are left alone: %v", s.dir, fit[0].pid, others)
	}
	delete(l.orphans, id) // taken once: a later take of the directory is ours
	return fit[0].pid, fit[0].start, true
}

// sessionLeaders walks /proc once and maps the cwd of every live session
// leader (sid == pid) to the leaders, except the runs the loop knows
// already (adopted from their records), so that what is kept for the
// scanner's lifetime is the few unattributed leaders. It never fails: what
// cannot be read is not a candidate. A non-nil map, possibly empty, marks
// the walk done.
func sessionLeaders(known map[int]*service) map[devIno][]orphan {
	out := map[devIno][]orphan{}
	d, err := os.ReadDir("/proc")
	if err != nil {
		return out
	}
	self := os.Getpid()
	for _, e := range d {
		pid, err := strconv.Atoi(e.Name())
		if _, ok := known[pid]; err != nil || pid == self || ok {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		sid, start, ok := leaderStat(b)
		if !ok || sid != pid {
			continue
		}
		var st unix.Stat_t
		if unix.Stat("/proc/"+e.Name()+"/cwd", &st) != nil {
			continue
		}
		id := devIno{st.Dev, st.Ino}
		out[id] = append(out[id], orphan{pid: pid, start: start})
	}
	return out
}

// leaderStat reads the session (field 6) and start time (field 22) of a
// live process from its /proc/PID/stat; zombies are not candidates.
func leaderStat(b []byte) (sid int, start uint64, ok bool) {
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, 0, false
	}
	f := bytes.Fields(b[i+1:]) // f[0] is field 3 (state)
	if len(f) < 20 || f[0][0] == 'Z' || f[0][0] == 'X' {
		return 0, 0, false
	}
	sid, err := strconv.Atoi(string(f[3]))
	if err != nil {
		return 0, 0, false
	}
	start, err = strconv.ParseUint(string(f[19]), 10, 64)
	return sid, start, err == nil
}
