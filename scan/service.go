package scan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
	"github.com/gosv/gosv/internal/warnlimit"
)

// service is one supervised directory: its machine and the resources the
// loop holds for it. File descriptors held per service: the directory,
// the lock and the control FIFO always (3); with notification-socket, the
// socket and a pidfd per recent sender (at most 1+sdSendersMax); the
// readiness pipe while a run with notification-fd has not yet signalled
// (1); a pidfd while an adopted run lives (1); one pidfd per leftover
// group member while a dead run's process group drains. A logged pair
// adds the two ends of its log pipe, and its entry's directory fd. The
// loop adds a pidfd for each of the last Config.RunPidfds spawns that
// still lives, whatever their number of services (runfds.go).
type service struct {
	// dir reaches the service directory through dirfd ("/proc/self/fd/N"),
	// so that every path built from it names the directory the service
	// was taken from, even after it was moved or its symlink removed:
	// s6-supervise gets the same by working from inside it after chdir.
	dir    string
	dirfd  int    // O_PATH fd of the service directory
	path   string // its path when taken, for messages (see show)
	name   string // run's and finish's NAME argument: "foo", "foo/log" or DIR
	m      supervise.Machine
	lock   *os.File
	ctl    int // supervise/control, opened O_RDWR so it never reports EOF
	notify int // read end of the notification-fd pipe, or -1
	pidfd  int // pidfd of an adopted run, or -1
	rslot  int // 1 + its slot in the loop's ring of child pidfds (runfds.go); 0: none
	wd     int32
	group  []int // pidfds of leftover members of the dead run's group
	// draining: the dead run's group (m.Pgid, and a forking daemon's
	// m.OwnGroup) still has members (drain.go).
	draining bool
	stdin    int               // fd given to children as 0
	stdout   int               // fd given to children as 1
	tm       timer             // the machine's deadline in the loop's heap
	sdResume timer             // the end of an sd_notify pause (flood; see sdPause)
	entry    *entry            // scan-directory entry, nil in supervise mode
	limits   warnlimit.Limiter // this service's warnings
	badCtl   bool              // an unknown control byte was reported already

	notifyMode servicedir.NotifyMode // notification-socket, read at each spawn
	sdfd       int                   // sd_notify socket, or -1
	senders    []sdSender            // who sent datagrams there (at most sdSendersMax pidfds)
	sdpath     string
	checkFd    int    // output pipe of the running ./check, or -1
	checkOut   []byte // its output so far (bounded), nil when no check runs
	stateFiles bool   // per-run state files were written (cleared at spawn)
	cfgFresh   bool   // m.Cfg was read during the current feed
	left       bool   // exited leaving its processes running (b, SIGQUIT)
	tally      bool   // a death_tally record is due at the end of the feed
	tallyWstat uint16
	tallyAt    time.Time
	retried    bool        // a spawn failed with ./run executable: retried at once already
	launch     launchState // forking mode (pidfile): the current launch
	health     *healthRun  // health checks (health.go); nil until the first

	// The last status write, and the death tally write of the last
	// death, failed: the disk may say down (or nothing) while a finish
	// runs (spawnFinish).
	statusFailed, tallyFailed bool

	// held: a status write of the current feed not made yet, and the
	// events that announce it (see holdStatus).
	held    bool
	heldSt  servicedir.Status
	heldEv  [4]string
	heldEvN int
	// downOnDisk: supervise/status says down (pid 0, not finishing) or
	// does not exist, as the look for orphaned runs wants it before a
	// spawn of run (orphans.go); so a status write may be held across one.
	downOnDisk bool
	// diskWantUp: the want-up the status on disk says (a missing one:
	// unless down exists, as resolveOrphans reads it), which a run
	// adopted from a scanner killed at its spawn gets.
	diskWantUp bool
	// fresh: taken with a supervise/ this take made (prepared.fresh),
	// until the start.
	fresh bool

	hook        hookState            // the event hook (events.go)
	prev        servicedir.PidRecord // the previous supervisor's record, read when taken (orphans.go)
	prevDeaths  bool                 // a death tally was there when taken (prepared.prevDeaths; orphans.go)
	orphanSince uint64               // an orphaned run must have started no earlier (orphans.go)

	// sharedDir: dirfd is its scan-directory entry's, closed by the entry.
	sharedDir bool
	// present is the listing config made (valid while cfgFresh; see has).
	present servicedir.Present
}

// newService takes a service directory: an fd on it, supervise/ and
// event/, the lock (which proves nobody else supervises it), the control
// FIFO. Nothing is started yet (see startService). path names the
// directory in messages.
func (l *loop) newService(at, path, name string, stdin, stdout int) (*service, error) {
	dirfd, err := unix.Open(at, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	s, err := l.takeDir(dirfd, path, name, stdin, stdout)
	if err != nil {
		unix.Close(dirfd)
		// Name the directory, not the fd (whose number changes at each
		// retry, which would make each retry a new problem).
		return nil, &shownError{err, strings.ReplaceAll(err.Error(), fdPath(dirfd), path)}
	}
	return s, nil
}

// newServiceOn is newService through dirfd, which the caller keeps
// open as long as the service exists and closes itself.
func (l *loop) newServiceOn(dirfd int, path, name string, stdin, stdout int) (*service, error) {
	s, err := l.takeDir(dirfd, path, name, stdin, stdout)
	if err != nil {
		return nil, &shownError{err, strings.ReplaceAll(err.Error(), fdPath(dirfd), path)}
	}
	s.sharedDir = true
	return s, nil
}

// shownError is err with its message rewritten for humans.
type shownError struct {
	err error
	msg string
}

func (e *shownError) Error() string { return e.msg }
func (e *shownError) Unwrap() error { return e.err }

func (l *loop) takeDir(dirfd int, path, name string, stdin, stdout int) (*service, error) {
	dir := fdPath(dirfd)
	// After a re-exec, the lock and control fifo the previous image kept.
	var given *os.File
	ctl := -1
	if len(l.rx.given) > 0 {
		given, ctl, _ = l.givenFds(dirKey(dirfd), filepath.Join(dir, servicedir.LockPath), filepath.Join(dir, servicedir.ControlPath))
	}
	p, err := prepareDir(dir, given, ctl, l.self, l.rx.resumed)
	if err != nil {
		if given != nil {
			given.Close()
			unix.Close(ctl)
		}
		return nil, err
	}
	return l.takePrepared(dirfd, path, name, stdin, stdout, &p)
}

// prepared is what prepareDir made of a service directory: the lock and
// the control FIFO it holds, the previous supervisor's record, and the
// problems to report once the service exists.
type prepared struct {
	lock     *os.File
	ctl      int
	prev     servicedir.PidRecord
	recErr   error // writing the supervisor record failed
	tallyErr error // removing the death tally failed
	// fresh: supervise/ was made by this take, so nothing in it is an
	// earlier supervisor's (no record, status or tally to look for).
	fresh bool
	// prevDeaths: the directory had a death tally when taken (or it
	// could not be told): the previous supervisor saw run die.
	prevDeaths bool
}

// release gives back what p holds (a take abandoned after preparing).
func (p *prepared) release() {
	if p.lock != nil {
		p.lock.Close()
		unix.Close(p.ctl)
	}
	p.lock, p.ctl = nil, -1
}

// prepareDir does the file-system part of taking the service directory
// dir: supervise/ and event/, the lock (which proves nobody else
// supervises it) and the control FIFO (given, from a re-exec, or made
// here), the supervisor record, and a new death tally (none until the
// first death). It touches
// nothing but dir, so the loop may run it on a worker (prepare.go).
func prepareDir(dir string, lock *os.File, ctl int, self servicedir.PidRecord, resumed bool) (prepared, error) {
	p := prepared{ctl: -1}
	var err error
	if p.fresh, err = servicedir.MkdirPrivateNew(filepath.Join(dir, servicedir.SuperviseDir), 0o700); err != nil {
		return p, err
	}
	if err := servicedir.MakeEventDir(filepath.Join(dir, servicedir.EventDir), os.Getegid()); err != nil {
		return p, err
	}
	if lock == nil {
		if lock, err = servicedir.Lock(filepath.Join(dir, servicedir.LockPath), 0o644); err != nil {
			return p, err
		}
		if ctl, err = openControl(filepath.Join(dir, servicedir.ControlPath)); err != nil {
			lock.Close()
			return p, err
		}
	}
	p.lock, p.ctl = lock, ctl
	if !p.fresh {
		p.prev, _ = servicedir.ReadRecord(dir, servicedir.SupervisorRecordPath) // before it is overwritten
	}
	p.recErr = servicedir.WriteRecord(dir, servicedir.SupervisorRecordPath, self)
	// A new supervisor starts a new tally, as s6-supervise does; one
	// that continues a live run (a re-exec, or the adoption of a run
	// left by a dead scanner) continues its tally too: its restart
	// counters are the run's history (issue 15).
	if p.fresh {
		return p, nil
	}
	if !resumed && !liveRecord(dir) {
		var removed bool
		removed, p.tallyErr = servicedir.ResetDeathTally(dir)
		p.prevDeaths = removed || p.tallyErr != nil
	} else {
		p.prevDeaths = true // not looked at: main's reading of no status
	}
	return p, nil
}

// takePrepared makes the service of a prepared directory: the loop's
// part of a take, which registers the control FIFO and reads the
// configuration. p's lock and FIFO are the service's from here on, or
// released on error.
func (l *loop) takePrepared(dirfd int, path, name string, stdin, stdout int, p *prepared) (*service, error) {
	dir := fdPath(dirfd)
	s := &service{dir: dir, dirfd: dirfd, path: path, name: name, lock: p.lock, ctl: p.ctl, notify: -1, pidfd: -1, wd: -1,
		stdin: stdin, stdout: stdout, sdfd: -1, checkFd: -1, prev: p.prev, prevDeaths: p.prevDeaths, fresh: p.fresh, downOnDisk: p.fresh}
	s.launch.wd = -1
	if err := l.register(p.ctl, fdOwner{kind: fdControl, svc: s}); err != nil {
		p.release()
		return nil, err
	}
	// control-group (perms.go)
	l.grantGroup(s)
	if p.recErr != nil {
		l.warn(s, "record", "unable to record the supervisor pid: %v", p.recErr)
	}
	if p.tallyErr != nil {
		l.warn(s, "tally", "unable to reset the death tally: %v", p.tallyErr)
	}
	// Fresh for startService, which follows in the same loop turn: the
	// first spawn need not read (and list) the files a second time.
	s.m.Cfg, s.cfgFresh = l.config(s), true
	return s, nil
}

// openControl creates the control FIFO if needed and opens it read-write:
// on Linux a FIFO opened O_RDWR never reports EOF nor blocks, so one fd
// does what s6's reader plus kept writer do with two (fifo(7)).
func openControl(path string) (int, error) {
	if err := unix.Mkfifo(path, 0o600); err != nil && err != unix.EEXIST {
		return -1, &os.PathError{Op: "mkfifo", Path: path, Err: err}
	}
	// NOTE: O_NOFOLLOW, and the type is checked on the open fd: a symlink
	// or a file planted there is refused, never opened read-write.
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		unix.Close(fd)
		if err == nil {
			err = errors.New("not a named pipe")
		}
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	return fd, nil
}

// startService announces s and starts (or adopts) its run. A run recorded
// in supervise/gosv/pid that is still alive — same pid, same start time —
// was left by a scanner that died: it is adopted, never spawned twice. A
// service without one may have a run the dead scanner started without
// recording it: its start waits for resolveOrphans (orphans.go).
func (l *loop) startService(s *service) {
	// The read at take serves this turn's feed only (feed clears it too):
	// a start deferred to a later turn reads the files again.
	defer func() { s.cfgFresh = false }()
	defer func() { s.fresh = false }()
	if !s.fresh {
		if l.adoptLaunch(s) {
			return // before the pid record, which names the launcher then
		}
		if pid, ok := l.adoptable(s); ok && l.adopt(s, pid, 0) {
			return
		}
	}
	if l.deferStart(s) {
		return
	}
	l.start(s)
}

// adopt makes the live process pid s's run, up. A non-zero start is the
// start time pid must still have once its pidfd is open (pid recycled).
func (l *loop) adopt(s *service, pid int, start uint64) bool {
	st, ok := readProcStat(pid)
	if ok && st.Ppid == l.self.Pid && (start == 0 || st.StartTime == start) {
		// NOTE: our child (a re-exec keeps them; so does a subreaper
		// for orphans): reaped with its status like any run, by the
		// sweep or, while in the ring, its pidfd there (those that died
		// during a re-exec: see scanner.resumed). A pidfd of its own
		// per adopted run was a fourth descriptor per service after a
		// re-exec: past ~4990 services, EMFILE made adoptions fail and
		// their services start a second run.
		l.byPid[pid] = s
		l.trackChild(s, pid)
	} else if !l.adoptPidfd(s, pid, start) {
		return false
	}
	pgid := 0
	if ok {
		pgid = st.Pgrp // a forking daemon's own group
	}
	l.feed(s, supervise.Event{Kind: supervise.EvAdopt, Pid: pid, Pgid: pgid})
	if l.sc != nil {
		l.sc.takeNotify(s, true) // the readiness it may have written meanwhile
	}
	// The run's NOTIFY_SOCKET names a path made from the directory's
	// identity: bind it again, so that its READY=1, WATCHDOG=1 and
	// STATUS= reach this scanner (a re-exec, issue 15; a dead scanner's).
	l.runEnv(s)
	return true
}

// adoptPidfd watches pid, not our child, through a pidfd of its own,
// whose readiness is its death (fdAdopted).
func (l *loop) adoptPidfd(s *service, pid int, start uint64) bool {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false
	}
	if start != 0 {
		if st, err := servicedir.ProcStartTime(pid); err != nil || st != start {
			unix.Close(fd)
			return false
		}
	}
	s.pidfd = fd
	l.register(fd, fdOwner{kind: fdAdopted, svc: s, pid: pid})
	l.byPid[pid] = s // in case it becomes our child (reparented to the subreaper)
	return true
}

// start starts s afresh: no run of it lives.
func (l *loop) start(s *service) {
	if l.sc != nil {
		l.sc.takeNotify(s, false)
	}
	if !s.fresh { // else there is no record of an earlier run
		l.unseenDeath(s)
		servicedir.RemovePidRecord(s.dir)
	}
	_, err := os.Stat(filepath.Join(s.dir, servicedir.DownFile))
	s.m.WantUp = err != nil
	if s.fresh {
		s.diskWantUp = s.m.WantUp // no status: read so (resolveOrphans)
	}
	l.feed(s, supervise.Event{Kind: supervise.EvStart})
}

// adoptable checks the pid record and, if its process lives, restores what
// the old status file says about it.
func (l *loop) adoptable(s *service) (int, bool) {
	rec, err := servicedir.ReadPidRecord(s.dir)
	if err != nil {
		return 0, false
	}
	if st, err := servicedir.ProcStartTime(rec.Pid); err != nil || st != rec.StartTime {
		return 0, false
	}
	old, err := servicedir.ReadStatus(s.dir)
	if err == nil && old.Pid == rec.Pid {
		s.m.Stamp, s.m.ReadyStamp = old.Stamp, old.ReadyStamp
		s.m.Ready, s.m.WantUp, s.m.Wstat = old.Ready, old.WantUp, old.Wstat
	} else {
		_, err := os.Stat(filepath.Join(s.dir, servicedir.DownFile))
		s.m.WantUp = err != nil
	}
	return rec.Pid, true
}

// config re-reads the files the machine needs, reporting each problem
// once per version of its file (see configWarn).
func (l *loop) config(s *service) supervise.Config {
	s.present, _ = servicedir.ListPresent(s.dir) // on error: every file is read
	cfg, warns := supervise.ReadConfigIn(s.dir, &s.present, l.warns[:0])
	l.warns = warns[:0]
	for _, w := range warns {
		l.configWarn(s, w, configFallback(w))
	}
	return cfg
}

// needsConfig: the events before which s6-supervise re-reads its files.
func needsConfig(e supervise.Event) bool {
	switch e.Kind {
	case supervise.EvTerm, supervise.EvExit:
		return true
	case supervise.EvCtl:
		return e.Byte == 'd' || e.Byte == 'D' || e.Byte == 'r'
	}
	return false
}

// feed steps s's machine with e and performs the actions, then the events
// the actions produced (spawn results, an already empty group), in order.
func (l *loop) feed(s *service, e supervise.Event) {
	l.pending = append(l.pending[:0], e)
	for i := 0; i < len(l.pending); i++ {
		ev := l.pending[i]
		if needsConfig(ev) && !s.cfgFresh {
			s.m.Cfg, s.cfgFresh = l.config(s), true
		}
		l.stepNow = l.sys.now()
		s.m, l.acts = supervise.Step(s.m, ev, l.stepNow, l.acts[:0])
		for j := range l.acts {
			l.do(s, &l.acts[j])
		}
	}
	l.pending = l.pending[:0]
	l.flushStatus(s)
	l.flushTally(s) // with the feed's listing (max-death-tally)
	s.cfgFresh = false
	l.rearm(s)
}

// flushTally writes the death_tally record the feed has pending, and
// tells the metrics textfile (restarts_total counts the records).
func (l *loop) flushTally(s *service) {
	if s.tally {
		s.tally = false
		l.deathTally(s, s.tallyWstat, s.tallyAt)
		l.metricsChanged()
	}
}

// holdStatus says whether a status write held back (s.held) may stay
// held across a: a start writes the status of the supervisor's start
// ("s"), spawns, then writes the spawned run's ("u"). Written as they
// come, that was two files (two inodes: each rewrite is a new file
// renamed over the old) where the second replaces the first a
// millisecond later. Held, the status is written once, with the last
// content, and the events follow it in their order: a listener still
// gets "s" then "u", each after the status it announces is in place,
// and finds the same file it would have found after the "u". Only the
// spawn of run and the bookkeeping between the two writes go through;
// anything else that may look at the status (finish, check, the event
// hook, exit) sees it written first.
func (l *loop) holdStatus(s *service, a *supervise.Action) bool {
	switch a.Kind {
	case supervise.ActWriteStatus, supervise.ActDeathTally:
		return true
	case supervise.ActSpawnRun:
		// A scanner killed after the fork and before the write must
		// leave a status that lets the next one look for the orphan.
		return s.downOnDisk
	case supervise.ActNotify:
		return s.heldEvN < len(s.heldEv)
	case supervise.ActEvent:
		return !l.has(s, servicedir.OnEventFile) // the events log never reads the status
	}
	return false
}

// flushStatus writes the held status, then sends its events in order.
func (l *loop) flushStatus(s *service) {
	if !s.held {
		return
	}
	s.held = false
	if !s.m.WantUp {
		// As in announce, and before the status: a reader that finds
		// it down (svwait -D, then the metrics) finds the tally
		// complete too.
		l.flushTally(s)
	}
	l.writeStatus(s, &s.heldSt)
	for i := range s.heldEvN {
		l.announce(s, s.heldEv[i])
		s.heldEv[i] = ""
	}
	s.heldEvN = 0
}

// announce sends ev to s's event/ listeners.
func (l *loop) announce(s *service, ev string) {
	if s.stateFiles && (ev == "U" || ev == "D" || ev == "OD") {
		os.Remove(filepath.Join(s.dir, readyDeadlineFile)) // no deadline to extend any more
	}
	if !s.m.WantUp {
		// No restart to hurry: the tally is complete before a
		// waiter (s6-svwait -D, then s6-svdt) can look at it.
		l.flushTally(s)
	}
	if err := l.notify(s, ev); err != nil {
		l.warn(s, "event", "unable to notify event listeners: %v", err)
	}
}

// do carries out one action of s's machine.
func (l *loop) do(s *service, a *supervise.Action) {
	if s.held && !l.holdStatus(s, a) {
		l.flushStatus(s)
	}
	switch a.Kind {
	case supervise.ActWriteStatus:
		s.held, s.heldSt = true, a.Status // written by flushStatus
	case supervise.ActNotify:
		if s.held {
			s.heldEv[s.heldEvN] = a.Ev
			s.heldEvN++
			return
		}
		l.announce(s, a.Ev)
	case supervise.ActSpawnRun:
		if s.downOnDisk && s.diskWantUp != s.m.WantUp {
			// A scanner killed after the fork and before the write
			// leaves this status to the next, which adopts the run
			// with its want-up (resolveOrphans): u after d says so
			// before the fork.
			st := s.m.Status()
			l.writeStatus(s, &st)
		}
		l.spawnRun(s)
	case supervise.ActSpawnFinish:
		l.spawnFinish(s, a)
	case supervise.ActKill:
		l.kill(a)
	case supervise.ActWatchGroup:
		l.watchGroup(s)
	case supervise.ActDeathTally:
		// Written before a finish starts (spawnFinish), else at the end
		// of the feed: it is not needed before the restart, which it
		// would delay by a read and a rename.
		// NOTE: the step's time, not now: the respawn delay counts from
		// it, and the actions before this one (status, events) took time;
		// a later stamp made the gap between two deaths shorter than the
		// delay between them (TestPolicyBackoff under load).
		s.tally, s.tallyWstat, s.tallyAt = true, a.Wstat, l.stepNow
	case supervise.ActCreateDown, supervise.ActRemoveDown:
		l.downFile(s, a.Kind == supervise.ActCreateDown)
	case supervise.ActCloseNotify:
		l.dropNotify(s)
	case supervise.ActWaitRun:
		l.watchRun(s)
	case supervise.ActReport:
		l.warn(s, "fsm|"+a.Msg, "%s: %s", s.dir, a.Msg)
	case supervise.ActEarlyDeath:
		l.earlyDeath(s, a)
	default:
		l.doMore(s, a)
	}
}

// doMore carries out the actions of readiness checks, forking launches
// and the machine's end.
func (l *loop) doMore(s *service, a *supervise.Action) {
	switch a.Kind {
	case supervise.ActSpawnCheck:
		l.spawnCheck(s)
	case supervise.ActCheckFailed:
		l.checkFailed(s, a.Wstat)
	case supervise.ActWatchPidfile:
		l.watchPidfile(s)
	case supervise.ActUnwatchPidfile:
		l.unwatchPidfile(s)
	case supervise.ActFindDaemon:
		l.findDaemon(s)
	case supervise.ActLaunchFailed:
		l.launchFailed(s, a.Msg)
	case supervise.ActEvent:
		l.event(s, a) // events.go
	case supervise.ActWritePolicy:
		if err := servicedir.WritePolicyState(s.dir, &a.Policy); err != nil {
			l.warn(s, "policy", "unable to write the restart policy's state of %s: %v", s.dir, err)
		} else {
			l.metricsChanged()
		}
	case supervise.ActHealthCheck, supervise.ActHealthCancel, supervise.ActHealthState,
		supervise.ActUnhealthy, supervise.ActHookCancel:
		l.healthAction(s, a)
	case supervise.ActExit:
		l.exitService(s, a.Leave)
	}
}

func (l *loop) writeStatus(s *service, st *servicedir.Status) {
	err := servicedir.WriteStatus(s.dir, st)
	s.statusFailed = err != nil
	if err != nil {
		s.downOnDisk = false // unknown
		l.warn(s, "status", "unable to write status: %v", err)
	} else {
		s.downOnDisk, s.diskWantUp = st.Pid == 0 && !st.Finishing, st.WantUp
		s.limits.Clear("status")
		l.metricsChanged()
	}
}

// kill sends an ActKill's signal.
func (l *loop) kill(a *supervise.Action) {
	// NOTE: never kill(0) or kill(-0): that is our own process group.
	if a.Pid <= 0 {
		return
	}
	pid := a.Pid
	if a.Group {
		pid = -pid
	}
	l.sys.kill(pid, a.Sig)
}

// downFile creates or removes ./down (the D, U, Q letters).
func (l *loop) downFile(s *service, create bool) {
	if create {
		if err := servicedir.CreateDown(s.dir); err != nil {
			l.warn(s, "down", "unable to create %v", err)
		}
		return
	}
	if err := os.Remove(filepath.Join(s.dir, servicedir.DownFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
		l.warn(s, "down", "unable to remove %v", err)
	}
}

// earlyDeath reports the death of a start's first run within
// supervise.EarlyDeath.
func (l *loop) earlyDeath(s *service, a *supervise.Action) {
	// One line per start (the machine sees to that), in the scanner's
	// output: OpenRC's start may have returned [ ok ] already. The
	// signature differs per report, so the rate limit never hides one.
	msg := fmt.Sprintf("%s died %dms after its start: %s", s.name, a.After.Milliseconds(), deathText(a.Wstat))
	l.warnSig(s, "early-death", msg+"|"+time.Now().String(), msg)
}

func (l *loop) deathTally(s *service, wstat uint16, at time.Time) {
	max, err := servicedir.DefaultMaxDeathTally, error(nil)
	if l.has(s, servicedir.MaxDeathTallyFile) {
		max, err = supervise.ReadMaxDeathTally(s.dir)
	}
	if err != nil {
		l.configWarn(s, err, fmt.Sprintf("using %d", servicedir.DefaultMaxDeathTally))
	}
	err = servicedir.AppendDeath(s.dir, servicedir.DeathFromWstat(at, wstat), max)
	s.tallyFailed = err != nil
	if err != nil {
		l.warn(s, "tally", "unable to write the death tally: %v", err)
	} else {
		s.limits.Clear("tally")
	}
}

// readControl applies each byte of the control FIFO in order, as
// s6-supervise does (so "ud" starts then stops). Bytes it does not know
// are ignored by the machine.
func (l *loop) readControl(s *service, fd int) {
	n, err := unix.Read(fd, l.buf[:64])
	if err != nil || n <= 0 {
		return
	}
	var b [64]byte
	copy(b[:], l.buf[:n])
	for _, c := range b[:n] {
		if s.m.State == supervise.Exited || s.m.State == supervise.Fatal {
			return
		}
		if !supervise.IsControlLetter(c) && !s.badCtl {
			// s6 ignores such bytes silently; gosv ignores them too but
			// says so once per service, so garbage has a visible source.
			s.badCtl = true
			l.warn(s, "ctl", "%s: ignoring unknown control byte %q (reported once)", filepath.Join(s.dir, servicedir.ControlPath), c)
		}
		l.feed(s, supervise.Event{Kind: supervise.EvCtl, Byte: c})
	}
}

// dropNotify closes s's notification pipe, here and in the fd holder.
func (l *loop) dropNotify(s *service) {
	if s.notify < 0 {
		return
	}
	if l.sc != nil {
		l.sc.unholdNotify(s)
	}
	l.release(s.notify)
	s.notify = -1
}

// readNotify reads the notification-fd pipe: the first read containing a
// newline means ready; EOF without one means never (s6).
func (l *loop) readNotify(s *service, fd int) {
	n, err := unix.Read(fd, l.buf[:])
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if n > 0 && bytes.IndexByte(l.buf[:n], '\n') < 0 {
		return
	}
	l.dropNotify(s)
	if n > 0 {
		l.feed(s, supervise.Event{Kind: supervise.EvReady})
	}
}

// watchRun waits for ./run to be created or made executable.
func (l *loop) watchRun(s *service) {
	if s.wd >= 0 {
		return
	}
	// NOTE: IN_MASK_ADD: a pidfile waiter may watch the same directory.
	wd, err := unix.InotifyAddWatch(l.ino, s.dir, unix.IN_CREATE|unix.IN_MOVED_TO|unix.IN_ATTRIB|unix.IN_CLOSE_WRITE|unix.IN_ONLYDIR|unix.IN_MASK_ADD)
	if err != nil {
		l.warn(s, "watch", "unable to watch %s: %v - retrying every %d seconds", s.dir, err, supervise.RetryExec/time.Second)
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed, Delay: supervise.RetryExec})
		return
	}
	s.wd = int32(wd)
	l.wds[s.wd] = s
	// ./run may have appeared between the failed exec and the watch.
	if unix.Access(filepath.Join(s.dir, servicedir.RunFile), unix.X_OK) == nil {
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvRunChanged})
	}
}

// notify sends ev to the listeners of s's event directory through the
// loop's one Notifier, which reuses its buffers (no allocation per event).
func (l *loop) notify(s *service, ev string) error {
	_, err := l.notifier.Notify(filepath.Join(s.dir, servicedir.EventDir), ev)
	return err
}

// exitService releases everything s holds and tells the scanner.
func (l *loop) exitService(s *service, leave bool) {
	s.left = leave
	// A re-exec keeps the supervisor: no x, and the lock and control
	// fifo stay open for the new image (reexec.go).
	if leave && l.rx.to != "" && l.keepFds(dirKey(s.dirfd), s.lock, s.ctl) {
		s.lock, s.ctl = nil, -1
	} else if err := l.notify(s, "x"); err != nil {
		l.warn(s, "event", "unable to notify event listeners: %v", err)
	}
	if !leave {
		servicedir.RemovePidRecord(s.dir)
		endLaunch(s.dir)
	}
	for pid, o := range l.byPid {
		if o == s {
			delete(l.byPid, pid)
		}
	}
	l.untrackChild(s)
	l.release(s.ctl)
	if !leave {
		l.dropNotify(s)
	}
	l.release(s.notify)
	l.release(s.pidfd)
	l.release(s.checkFd)
	l.closeNotifySocket(s)
	l.stopDraining(s)
	l.unwatchPidfile(s)
	l.dropHealth(s)
	s.ctl, s.notify, s.pidfd, s.checkFd = -1, -1, -1, -1
	if s.wd >= 0 {
		delete(l.wds, s.wd)
		l.rmWatch(s.wd)
		s.wd = -1
	}
	if s.lock != nil {
		s.lock.Close()
	}
	// The directory fd goes last, with the batch: paths built on s.dir
	// may still be used until then.
	if !s.sharedDir {
		l.closing = append(l.closing, s.dirfd)
	}
	s.dirfd = -1
	if l.sc != nil {
		l.sc.serviceGone(s)
	} else {
		l.done = true
	}
}

// deathText says how a run died: "exit code N" or "signal SIGNAME".
func deathText(wstat uint16) string {
	ws := unix.WaitStatus(wstat)
	if ws.Signaled() {
		return "signal SIG" + servicedir.SignalName(ws.Signal())
	}
	return "exit code " + strconv.Itoa(ws.ExitStatus())
}

// has reports whether s's optional file name may exist: during a feed
// that re-read the configuration (the points where s6-supervise reads
// its files), the listing made then answers; at any other time every
// file is looked up, as before listings.
func (l *loop) has(s *service, name string) bool {
	return !s.cfgFresh || s.present.Has(name)
}

// liveRecord tells whether dir's pid record names a live process: a run
// (or a launch) the next startService adopts.
func liveRecord(dir string) bool {
	rec, err := servicedir.ReadPidRecord(dir)
	if err != nil {
		return false
	}
	st, err := servicedir.ProcStartTime(rec.Pid)
	return err == nil && st == rec.StartTime
}
