package scan

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// Forking daemons (the pidfile file, PROTOCOL.md §9.1): the executor's
// half of the machine's Launching and AwaitPid states. The machine decides
// when to look; this file watches the pidfile with inotify and decides
// whether the process it names is this launch's daemon.

// pidfileSlack: file timestamps come from the kernel's coarse clock, up
// to a jiffy behind time.Now; a pidfile written just after the spawn must
// still count as written by this launch.
const pidfileSlack = 20 * time.Millisecond

// maxAncestry bounds the walk up the parent chain of a candidate daemon.
const maxAncestry = 64

// maxPidWatchRetries bounds the walks down a pidfile's path that a daemon
// making it meanwhile can cause (addPidWatch).
const maxPidWatchRetries = 8

// launchState is what the loop knows about a forking service's launch.
type launchState struct {
	pidfile  string    // absolute path of the daemon's pidfile, read at the spawn
	launcher int       // the launcher's pid
	start    uint64    // the launcher's start time (clock ticks since boot)
	at       time.Time // the launcher's spawn (wall clock)
	wd       int32     // inotify watch on the pidfile's directory (or its nearest existing ancestor), or -1
	watched  string    // the directory wd watches
	note     string    // the last reason the pidfile was not accepted
	// before is the pidfile as it was just before the launcher's spawn
	// (beforeOK: it existed then): while it still says the same, it is
	// stale whatever its timestamp. The timestamp rule alone took a pidfile
	// written within pidfileSlack before the spawn (a daemon killed right
	// after it named itself, and respawned at once) for this launch's.
	before   servicedir.DaemonPidfile
	beforeOK bool
	// readopted: this supervisor took the launch over from one that was
	// killed; the daemon was reparented elsewhere, so its ancestry cannot
	// be checked and only a trusted pidfile names it.
	readopted bool
}

// beginLaunch records the launcher just spawned.
func (l *loop) beginLaunch(s *service, pid int, start uint64, at time.Time) {
	path, ok, err := servicedir.ReadPidfileFile(s.dir)
	if err != nil || !ok {
		path = ""
	}
	s.launch.pidfile, s.launch.launcher, s.launch.start, s.launch.at, s.launch.note, s.launch.readopted = path, pid, start, at, "", false
	if err := servicedir.WriteRecord(s.dir, servicedir.LaunchRecordPath, servicedir.PidRecord{Pid: pid, StartTime: start}); err != nil {
		l.warn(s, "record", "unable to record the launch of %s: %v", s.dir, err)
	}
}

// notePidfileBefore records the pidfile as it is just before a launcher's
// spawn (see launchState.before). A launch taken over from a killed
// scanner has no such record: the pidfile may be its daemon's already.
func (l *loop) notePidfileBefore(s *service) {
	s.launch.beforeOK = false
	path, ok, err := servicedir.ReadPidfileFile(s.dir)
	if err != nil || !ok {
		return
	}
	if d, err := servicedir.ReadDaemonPidfile(path); err == nil && d.Pid != 0 {
		s.launch.before, s.launch.beforeOK = d, true
	}
}

// endLaunch forgets the launch record: the daemon was found, or the
// launch is over.
func endLaunch(dir string) {
	unix.Unlink(filepath.Join(dir, servicedir.LaunchRecordPath)) // a file: no rmdir as os.Remove would try
}

// adoptLaunch takes over the launch a killed scanner left in progress
// (supervise/gosv/launch): the launcher, if it still lives, is watched by
// pidfd, and the pidfile is awaited as usual. It reports whether there
// was such a launch.
func (l *loop) adoptLaunch(s *service) bool {
	if !s.m.Cfg.Forking {
		return false
	}
	rec, err := servicedir.ReadRecord(s.dir, servicedir.LaunchRecordPath)
	if err != nil {
		return false
	}
	fi, err := os.Stat(filepath.Join(s.dir, servicedir.LaunchRecordPath))
	if err != nil {
		return false
	}
	path, ok, err := servicedir.ReadPidfileFile(s.dir)
	if err != nil || !ok {
		path = ""
	}
	s.launch.pidfile, s.launch.launcher, s.launch.start, s.launch.at, s.launch.note, s.launch.readopted = path, rec.Pid, rec.StartTime, fi.ModTime(), "", true
	s.launch.beforeOK = false
	if old, err := servicedir.ReadStatus(s.dir); err == nil {
		s.m.Stamp, s.m.ReadyStamp, s.m.WantUp = old.Stamp, old.ReadyStamp, old.WantUp
	} else {
		_, err := os.Stat(filepath.Join(s.dir, servicedir.DownFile))
		s.m.WantUp = err != nil
	}
	pid := 0
	if st, err := servicedir.ProcStartTime(rec.Pid); err == nil && st == rec.StartTime {
		if fd, err := unix.PidfdOpen(rec.Pid, 0); err == nil {
			s.pidfd = fd
			l.register(fd, fdOwner{kind: fdAdopted, svc: s, pid: rec.Pid})
			l.byPid[rec.Pid] = s
			pid = rec.Pid
		}
	}
	l.feed(s, supervise.Event{Kind: supervise.EvAdoptLaunch, Pid: pid, Pgid: rec.Pid})
	return true
}

// watchPidfile watches the pidfile's directory and looks at the pidfile
// at once: the daemon may have written it before the launcher exited.
func (l *loop) watchPidfile(s *service) {
	if s.launch.pidfile == "" {
		s.launch.note = "no pidfile path (" + filepath.Join(s.dir, servicedir.PidfileFile) + " unreadable)"
		return
	}
	if !l.addPidWatch(s) {
		return
	}
	if e, ok := l.pidfileVerdict(s); ok {
		l.pending = append(l.pending, e)
	}
}

// addPidWatch watches the pidfile's directory or, while it does not exist
// (a daemon may make its own /run/NAME after its launcher exited), its
// nearest existing ancestor, for the next component to appear. It reports
// whether the pidfile's own directory is watched.
func (l *loop) addPidWatch(s *service) bool {
	want := filepath.Dir(s.launch.pidfile)
	if s.launch.wd >= 0 {
		return s.launch.watched == want
	}
	dir, wd, err := l.watchNearest(want)
	// NOTE: the directory below dir may have been made between its
	// failed watch and dir's: no event would ever tell. Then walk again
	// (a few times: a daemon making the path meanwhile is done in a few
	// steps).
	for retries := 0; err == nil && dir != want && retries < maxPidWatchRetries && childExists(dir, want); retries++ {
		l.rmWatch(int32(wd))
		dir, wd, err = l.watchNearest(want)
	}
	if err != nil {
		// The deadline still ends the launch, with this reason.
		s.launch.note = "unable to watch " + dir + ": " + err.Error()
		return false
	}
	s.launch.wd, s.launch.watched = int32(wd), dir
	l.pidWatch[s.launch.wd] = append(l.pidWatch[s.launch.wd], s)
	if dir != want {
		s.launch.note = s.launch.pidfile + " does not exist (nor does " + want + ")"
	}
	return dir == want
}

// watchNearest watches want or, while it does not exist, its nearest
// existing ancestor, and says which.
func (l *loop) watchNearest(want string) (string, int, error) {
	for dir := want; ; dir = filepath.Dir(dir) {
		// NOTE: IN_MODIFY too: a daemon that rewrites the pidfile through
		// a descriptor it keeps open (as a lock, like Debian's cron) never
		// closes it.
		wd, err := unix.InotifyAddWatch(l.ino, dir, unix.IN_CLOSE_WRITE|unix.IN_MODIFY|unix.IN_MOVED_TO|unix.IN_CREATE|unix.IN_ONLYDIR|unix.IN_MASK_ADD)
		if (err == unix.ENOENT || err == unix.ENOTDIR) && dir != "/" {
			continue
		}
		return dir, wd, err
	}
}

// childExists says whether the directory below dir on the way to want
// exists.
func childExists(dir, want string) bool {
	rel, err := filepath.Rel(dir, want)
	if err != nil {
		return false
	}
	first, _, _ := strings.Cut(rel, string(filepath.Separator))
	_, err = os.Stat(filepath.Join(dir, first))
	return err == nil
}

// unwatchPidfile drops s's watch; the inotify watch itself goes when no
// one else uses it (inotify gives one watch per directory).
func (l *loop) unwatchPidfile(s *service) {
	wd := s.launch.wd
	if wd < 0 {
		return
	}
	s.launch.wd = -1
	list := l.pidWatch[wd]
	for i, x := range list {
		if x == s {
			list = append(list[:i], list[i+1:]...)
			break
		}
	}
	if len(list) > 0 {
		l.pidWatch[wd] = list
		return
	}
	delete(l.pidWatch, wd)
	l.rmWatch(wd)
}

// rmWatch removes an inotify watch unless a ./run waiter, a pidfile
// waiter or the scanner still uses it.
func (l *loop) rmWatch(wd int32) {
	if _, ok := l.wds[wd]; ok {
		return
	}
	if _, ok := l.pidWatch[wd]; ok {
		return
	}
	if l.sc != nil && l.sc.wd == wd {
		return
	}
	unix.InotifyRmWatch(l.ino, uint32(wd))
}

// pidfileChanged handles an inotify event on a watched pidfile directory.
func (l *loop) pidfileChanged(wd int32, name string) {
	for _, s := range append([]*service(nil), l.pidWatch[wd]...) {
		if s.launch.watched == filepath.Dir(s.launch.pidfile) && filepath.Base(s.launch.pidfile) != name {
			continue
		}
		l.lookAgain(s)
	}
}

// lookAgain re-examines an awaited pidfile, first moving a watch on an
// ancestor down as far as the path now exists.
func (l *loop) lookAgain(s *service) {
	if s.m.State != supervise.AwaitPid {
		return
	}
	if s.launch.watched != filepath.Dir(s.launch.pidfile) {
		l.unwatchPidfile(s)
		if !l.addPidWatch(s) {
			return
		}
	}
	if e, ok := l.pidfileVerdict(s); ok {
		l.feed(s, e)
	}
}

// recheckPidfiles looks at every awaited pidfile again, after inotify
// lost events (queue overflow).
func (l *loop) recheckPidfiles() {
	var all []*service
	for _, list := range l.pidWatch {
		all = append(all, list...)
	}
	for _, s := range all {
		l.lookAgain(s)
	}
}

// pidfileVerdict reads the pidfile. It returns EvDaemon once it names
// this launch's daemon (then watched by pidfd, recorded in the pid
// record), EvPidfileBad when a pidfile this launch wrote names another
// process, and nothing while it is missing, empty, or older than the
// launch (a stale one that the daemon has yet to rewrite): the launch
// deadline ends those, with the last reason in s.launch.note.
func (l *loop) pidfileVerdict(s *service) (supervise.Event, bool) {
	p := s.launch.pidfile
	for _, o := range l.pidWatch[s.launch.wd] {
		if o != s && o.launch.pidfile == p {
			// Two launches awaiting one pidfile: whichever read it first
			// would take the other's daemon. Neither does; the deadline
			// ends both, saying why.
			s.launch.note = p + " is also the pidfile of " + o.show(o.dir) + ", launching at the same time"
			return supervise.Event{}, false
		}
	}
	d, err := servicedir.ReadDaemonPidfile(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		s.launch.note = p + " does not exist"
		return supervise.Event{}, false
	case err != nil:
		s.launch.note = err.Error()
		return supervise.Event{}, false
	case d.Pid == 0:
		s.launch.note = p + " holds no pid"
		return supervise.Event{}, false
	}
	if d.Pid == s.launch.launcher {
		// Some launchers write their own pid before they fork (Debian's
		// cron takes the pidfile's lock first, to refuse a second
		// instance); the daemon rewrites it after the fork.
		s.launch.note = p + " names the launcher (pid " + strconv.Itoa(d.Pid) + "), not its daemon"
		return supervise.Event{}, false
	}
	why, pgid, child := l.daemonOf(s, d.Pid, trustedPidfile(p, d))
	if why == "" {
		// NOTE: our child (reparented to the scanner): its exit comes by
		// wait4, with its status; a pidfd too could report it first, as an
		// unknown status. Not our child yet (an intermediate parent lives,
		// or the launch was taken over): only a pidfd tells.
		fd, err := -1, error(nil)
		if !child {
			fd, err = unix.PidfdOpen(d.Pid, 0)
		}
		if err == nil {
			l.adoptDaemon(s, d.Pid, fd) // the machine learns its group(s) from EvDaemon
			return supervise.Event{Kind: supervise.EvDaemon, Pid: d.Pid, Pgid: pgid, Unknown: !child}, true
		}
		why = "which is not running"
	}
	s.launch.note = p + " names pid " + strconv.Itoa(d.Pid) + ", " + why
	if s.launch.beforeOK && d.Pid == s.launch.before.Pid && d.ModTime.Equal(s.launch.before.ModTime) {
		return supervise.Event{}, false // the pidfile from before the spawn: stale
	}
	if d.ModTime.Before(s.launch.at.Add(-pidfileSlack)) {
		return supervise.Event{}, false // stale: wait for this launch's daemon to rewrite it
	}
	return supervise.Event{Kind: supervise.EvPidfileBad}, true
}

// findDaemon answers ActFindDaemon, for a launch being cancelled: it
// feeds EvDaemon when the pidfile already names this launch's daemon (by
// the checks of pidfileVerdict: the machine stops it, and the drain
// watches its groups), else EvNoDaemon. The daemon is not adopted: no pid
// record, no pidfd; as the scanner is the subreaper, wait4 reaps it.
// A pidfile that names anything else, or that another launch awaits too,
// names nothing to signal.
func (l *loop) findDaemon(s *service) {
	e := supervise.Event{Kind: supervise.EvNoDaemon}
	if pid, pgid, ok := l.cancelledDaemon(s); ok {
		e = supervise.Event{Kind: supervise.EvDaemon, Pid: pid, Pgid: pgid}
	}
	l.pending = append(l.pending, e)
}

// cancelledDaemon is the daemon the pidfile names, if it passes daemonOf.
func (l *loop) cancelledDaemon(s *service) (pid, pgid int, ok bool) {
	p := s.launch.pidfile
	if p == "" {
		return 0, 0, false
	}
	for _, list := range l.pidWatch {
		for _, o := range list {
			if o != s && o.launch.pidfile == p {
				return 0, 0, false // as in pidfileVerdict: whose daemon it is cannot be told
			}
		}
	}
	d, err := servicedir.ReadDaemonPidfile(p)
	if err != nil || d.Pid <= 0 || d.Pid == s.launch.launcher {
		return 0, 0, false
	}
	// NOTE: only a pidfile this launch wrote: a d early in the launch
	// mostly finds the previous run's, whose pid may since name another
	// process that daemonOf would accept (an orphan reparented to the
	// scanner, younger than the launcher). pidfileVerdict waits such a
	// file out; here there is nothing to wait for.
	if s.launch.beforeOK && d.Pid == s.launch.before.Pid && d.ModTime.Equal(s.launch.before.ModTime) ||
		d.ModTime.Before(s.launch.at.Add(-pidfileSlack)) {
		return 0, 0, false
	}
	why, pgid, _ := l.daemonOf(s, d.Pid, trustedPidfile(p, d))
	if why != "" {
		return 0, 0, false
	}
	return d.Pid, pgid, true
}

// daemonOf says why pid cannot be s's daemon ("" if it can), and its
// process group and whether it is already our child. The daemon must be
// alive, no older than the launcher, and descend from it: as the scanner
// is the child subreaper, a daemon whose launcher exited is reparented to
// the scanner, so its parent chain reaches the scanner through processes
// no older than the launcher and belonging to no other service.
//
// A launch taken over from a killed scanner cannot check ancestry (the
// daemon was reparented to another subreaper or init): there, a trusted
// pidfile (see trustedPidfile) and the start time must do, as for
// systemd's PIDFile= outside the service's cgroup.
func (l *loop) daemonOf(s *service, pid int, trusted bool) (why string, pgid int, child bool) {
	if pid == l.self.Pid || pid == 1 {
		return "which is the supervisor or init", 0, false
	}
	if o := l.owner(pid); o != nil && o != s {
		return "which is a process of " + o.show(o.dir), 0, false
	}
	st, ok := readProcStat(pid)
	if !ok || st.State == 'Z' {
		return "which is not running", 0, false
	}
	if why := l.notOlder(s, pid); why != "" {
		return why, 0, false
	}
	why, child = l.ancestry(s, pid, st.Ppid)
	if why != "" && s.launch.readopted {
		if !trusted {
			return why + "; the launch was taken over from a killed scanner, and only a pidfile owned by root or by gosv's user, in a directory nobody else may write, is trusted then", 0, false
		}
		return "", st.Pgrp, false
	}
	return why, st.Pgrp, child
}

// ancestry checks that pid's parent chain reaches the scanner through
// processes of this launch, and says whether pid is our child.
func (l *loop) ancestry(s *service, pid, ppid int) (why string, child bool) {
	p := pid
	for range maxAncestry {
		if ppid == l.self.Pid {
			return "", p == pid
		}
		if ppid <= 1 {
			return "which does not descend from the launcher (its parent chain ends at pid " + strconv.Itoa(ppid) + ")", false
		}
		if o := l.owner(ppid); o != nil && o != s {
			return "which is below a process of " + o.show(o.dir), false
		}
		if why := l.notOlder(s, ppid); why != "" {
			return "whose ancestor " + strconv.Itoa(ppid) + " " + why[len("which "):], false
		}
		pst, ok := readProcStat(ppid)
		if !ok {
			return "whose ancestor " + strconv.Itoa(ppid) + " vanished", false
		}
		p, ppid = ppid, pst.Ppid
	}
	return "which is too deep below the supervisor", false
}

// trustedPidfile: a pidfile only root or gosv's own user could have
// written: owned by one of them, in a directory owned by one of them that
// no group or other may write. A daemon that dropped privileges cannot
// then name another process.
func trustedPidfile(path string, d servicedir.DaemonPidfile) bool {
	mine := func(uid int) bool { return uid == 0 || uid == os.Geteuid() }
	var st unix.Stat_t
	if !mine(d.Uid) || unix.Stat(filepath.Dir(path), &st) != nil {
		return false
	}
	return mine(int(st.Uid)) && st.Mode&0o022 == 0
}

// owner is the service whose run, finish, check or daemon pid is, or nil.
func (l *loop) owner(pid int) *service {
	if o := l.byPid[pid]; o != nil {
		return o
	}
	return l.checks[pid]
}

// notOlder says why pid cannot belong to this launch ("" if it can).
func (l *loop) notOlder(s *service, pid int) string {
	start, err := servicedir.ProcStartTime(pid)
	if err != nil {
		return "which is not running"
	}
	if start < s.launch.start {
		return "which started before the launcher (not this launch's daemon)"
	}
	return ""
}

// adoptDaemon makes pid the service's process: found by its exit (wait4,
// and the pidfd fd when it is not our child; -1 otherwise), recorded for
// a scanner that restarts after a SIGKILL.
func (l *loop) adoptDaemon(s *service, pid, fd int) {
	if s.pidfd >= 0 {
		l.release(s.pidfd)
		s.pidfd = -1
	}
	if fd >= 0 {
		s.pidfd = fd
		l.register(fd, fdOwner{kind: fdAdopted, svc: s, pid: pid})
	} else {
		l.trackChild(s, pid) // our child: a recent one, as if spawned (runfds.go)
	}
	l.byPid[pid] = s
	st, err := servicedir.ProcStartTime(pid)
	if err == nil {
		err = servicedir.WritePidRecord(s.dir, servicedir.PidRecord{Pid: pid, StartTime: st})
	}
	if err != nil {
		l.warn(s, "record", "unable to record pid %d for %s: %v", pid, s.dir, err)
	}
	os.Remove(filepath.Join(s.dir, servicedir.LaunchErrorPath))
	endLaunch(s.dir)
	s.launch.note = ""
}

// launchFailed records why a launch failed, for gosv openrc start and
// svstat readers, and logs it once per failed launch.
func (l *loop) launchFailed(s *service, msg string) {
	if s.launch.note != "" {
		msg += ": " + s.launch.note
	}
	msg = s.show(msg) // a relative pidfile was reached through the directory's fd
	if err := servicedir.WriteFile(s.dir, servicedir.LaunchErrorPath, []byte(msg+"\n")); err != nil {
		l.warn(s, "state|"+servicedir.LaunchErrorPath, "unable to write %v", err)
	}
	// The same failure again (pids aside) is reported as warnlimit says:
	// once, then with a count, not at every relaunch.
	sig := strings.Map(func(r rune) rune {
		if r >= '0' && r <= '9' {
			return 'N'
		}
		return r
	}, msg)
	l.warnSig(s, "launch", sig, s.dir+": launch failed: "+msg)
}
