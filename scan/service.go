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
	"unsafe"

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
// adds the two ends of its log pipe, and its entry's directory fd.
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
	wd     int32
	group  []int // pidfds of leftover members of the dead run's group
	// ownGroup is a forking daemon's pid when it is not its recorded
	// process group: a daemon may name itself in its pidfile just before
	// its setsid(2) takes effect in /proc (nginx was seen so), so the
	// group read then can still be the launcher's. Signals and the drain
	// of a forking service cover that group too; a group whose id is the
	// daemon's pid can only have been made by the daemon or its parent.
	// NOTE: cleared at the next spawn. Between the daemon's death and
	// the end of the drain a reused pid could in principle name another
	// process's new group; the kernel hands pids out in sequence, so that
	// needs pid_max spawns within the drain (10 s at most).
	ownGroup int
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

	prev        servicedir.PidRecord // the previous supervisor's record, read when taken (orphans.go)
	orphanSince uint64               // an orphaned run must have started no earlier (orphans.go)
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

// shownError is err with its message rewritten for humans.
type shownError struct {
	err error
	msg string
}

func (e *shownError) Error() string { return e.msg }
func (e *shownError) Unwrap() error { return e.err }

func (l *loop) takeDir(dirfd int, path, name string, stdin, stdout int) (*service, error) {
	dir := fdPath(dirfd)
	if err := servicedir.MkdirPrivate(filepath.Join(dir, servicedir.SuperviseDir), 0o700); err != nil {
		return nil, err
	}
	if err := servicedir.MakeEventDir(filepath.Join(dir, servicedir.EventDir), os.Getegid()); err != nil {
		return nil, err
	}
	lock, err := servicedir.Lock(filepath.Join(dir, servicedir.LockPath), 0o644)
	if err != nil {
		return nil, err
	}
	ctl, err := openControl(filepath.Join(dir, servicedir.ControlPath))
	if err != nil {
		lock.Close()
		return nil, err
	}
	s := &service{dir: dir, dirfd: dirfd, path: path, name: name, lock: lock, ctl: ctl, notify: -1, pidfd: -1, wd: -1,
		stdin: stdin, stdout: stdout, sdfd: -1, checkFd: -1}
	s.launch.wd = -1
	if err := l.register(ctl, fdOwner{kind: fdControl, svc: s}); err != nil {
		unix.Close(ctl)
		lock.Close()
		return nil, err
	}
	s.prev, _ = servicedir.ReadRecord(dir, servicedir.SupervisorRecordPath) // before it is overwritten
	if err := servicedir.WriteRecord(dir, servicedir.SupervisorRecordPath, l.self); err != nil {
		l.warn(s, "record", "unable to record the supervisor pid: %v", err)
	}
	if err := servicedir.TruncateDeathTally(dir); err != nil {
		l.warn(s, "tally", "unable to truncate the death tally: %v", err)
	}
	s.m.Cfg = l.config(s)
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
	if l.adoptLaunch(s) {
		return // before the pid record, which names the launcher then
	}
	if pid, ok := l.adoptable(s); ok && l.adopt(s, pid, 0) {
		return
	}
	if l.deferStart(s) {
		return
	}
	l.start(s)
}

// adopt makes the live process pid s's run, up. A non-zero start is the
// start time pid must still have once its pidfd is open (pid recycled).
func (l *loop) adopt(s *service, pid int, start uint64) bool {
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
	l.byPid[pid] = s // in case it is our child after all (re-exec)
	pgid := 0
	if st, ok := readProcStat(pid); ok {
		pgid = st.Pgrp // a forking daemon's own group
	}
	if s.m.Cfg.Forking && pgid != pid {
		s.ownGroup = pid
	}
	l.feed(s, supervise.Event{Kind: supervise.EvAdopt, Pid: pid, Pgid: pgid})
	if l.sc != nil {
		l.sc.takeNotify(s, true) // the readiness it may have written meanwhile
	}
	return true
}

// start starts s afresh: no run of it lives.
func (l *loop) start(s *service) {
	if l.sc != nil {
		l.sc.takeNotify(s, false)
	}
	servicedir.RemovePidRecord(s.dir)
	_, err := os.Stat(filepath.Join(s.dir, servicedir.DownFile))
	s.m.WantUp = err != nil
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
	cfg, warns := supervise.ReadConfig(s.dir, l.warns[:0])
	l.warns = warns[:0]
	for _, w := range warns {
		l.configWarn(s, w, "using the default")
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
		s.m, l.acts = supervise.Step(s.m, ev, time.Now(), l.acts[:0])
		for j := range l.acts {
			l.do(s, &l.acts[j])
		}
	}
	l.pending = l.pending[:0]
	s.cfgFresh = false
	l.flushTally(s)
	l.rearm(s)
}

// flushTally writes the death_tally record the feed has pending.
func (l *loop) flushTally(s *service) {
	if s.tally {
		s.tally = false
		l.deathTally(s, s.tallyWstat, s.tallyAt)
	}
}

func (l *loop) do(s *service, a *supervise.Action) {
	switch a.Kind {
	case supervise.ActWriteStatus:
		if err := servicedir.WriteStatus(s.dir, &a.Status); err != nil {
			l.warn(s, "status", "unable to write status: %v", err)
		} else {
			s.limits.Clear("status")
		}
	case supervise.ActNotify:
		if s.stateFiles && (a.Ev == "U" || a.Ev == "D" || a.Ev == "OD") {
			os.Remove(filepath.Join(s.dir, readyDeadlineFile)) // no deadline to extend any more
		}
		if err := l.notify(s, a.Ev); err != nil {
			l.warn(s, "event", "unable to notify event listeners: %v", err)
		}
	case supervise.ActSpawnRun:
		l.spawnRun(s)
	case supervise.ActSpawnFinish:
		l.spawnFinish(s, a)
	case supervise.ActKill:
		// NOTE: never kill(0) or kill(-0): that is our own process group.
		if a.Pid > 0 {
			pid := a.Pid
			if a.Group {
				pid = -pid
				if g := s.ownGroup; g > 0 && g != a.Pid {
					unix.Kill(-g, a.Sig) // ESRCH when the daemon made no group
				}
			}
			unix.Kill(pid, a.Sig)
		}
	case supervise.ActWatchGroup:
		l.watchGroup(s)
	case supervise.ActDeathTally:
		// Written before a finish starts (spawnFinish), else at the end
		// of the feed: it is not needed before the restart, which it
		// would delay by a read and a rename.
		s.tally, s.tallyWstat, s.tallyAt = true, a.Wstat, time.Now()
	case supervise.ActCreateDown:
		if err := servicedir.CreateDown(s.dir); err != nil {
			l.warn(s, "down", "unable to create %v", err)
		}
	case supervise.ActRemoveDown:
		if err := os.Remove(filepath.Join(s.dir, servicedir.DownFile)); err != nil && !errors.Is(err, os.ErrNotExist) {
			l.warn(s, "down", "unable to remove %v", err)
		}
	case supervise.ActCloseNotify:
		l.dropNotify(s)
	case supervise.ActWaitRun:
		l.watchRun(s)
	case supervise.ActReport:
		l.warn(s, "fsm|"+a.Msg, "%s: %s", s.dir, a.Msg)
	case supervise.ActEarlyDeath:
		// One line per start (the machine sees to that), in the scanner's
		// output: OpenRC's start may have returned [ ok ] already. The
		// signature differs per report, so the rate limit never hides one.
		msg := fmt.Sprintf("%s died %dms after its start: %s", s.name, a.After.Milliseconds(), deathText(a.Wstat))
		l.warnSig(s, "early-death", msg+"|"+time.Now().String(), msg)
	case supervise.ActSpawnCheck:
		l.spawnCheck(s)
	case supervise.ActCheckFailed:
		l.checkFailed(s, a.Wstat)
	case supervise.ActWatchPidfile:
		l.watchPidfile(s)
	case supervise.ActUnwatchPidfile:
		l.unwatchPidfile(s)
	case supervise.ActLaunchFailed:
		l.launchFailed(s, a.Msg)
	case supervise.ActEvent:
		// The events log and hooks (issue 11) record these; until then
		// nothing consumes them.
	case supervise.ActExit:
		l.exitService(s, a.Leave)
	}
}

func (l *loop) spawnRun(s *service) {
	s.ownGroup = 0   // a new run: the last daemon's pid may be reused
	if !s.cfgFresh { // s6 reads its files at each spawn; a death just did
		s.m.Cfg, s.cfgFresh = l.config(s), true
	}
	nfd, err := supervise.ReadNotificationFd(s.dir)
	if err != nil {
		l.configWarn(s, err, "no readiness")
	}
	env := l.env
	if s.notifyMode, err = servicedir.ReadNotifyMode(s.dir); err != nil {
		l.configWarn(s, err, "")
	}
	if s.notifyMode != servicedir.NotifyNone {
		extra, err := l.openNotifySocket(s)
		if err != nil {
			l.warn(s, "sdnotify", "unable to create the sd_notify socket of %s: %v (no sd_notify readiness)", s.dir, err)
		}
		env = append(env[:len(env):len(env)], extra...)
	} else {
		l.closeNotifySocket(s)
	}
	l.clearState(s)
	files := append(make([]int, 0, 8), s.stdin, s.stdout, 2)
	r := -1
	if nfd >= 0 {
		var p [2]int
		// NOTE: O_NONBLOCK only on our end: the flag belongs to the open
		// file description, and the service's end must block like s6's.
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err == nil {
			err = unix.SetNonblock(p[0], true)
		}
		if err != nil {
			l.warn(s, "spawn", "unable to create notification pipe for %s: %v", s.dir, err)
			l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed, Delay: supervise.RetryFork})
			return
		}
		r = p[0]
		for len(files) <= nfd {
			files = append(files, -1)
		}
		files[nfd] = p[1]
		defer unix.Close(p[1])
		if l.sc != nil && s.entry != nil {
			// NOTE: handed to the holder before the fork, not after: a
			// scanner killed in between left the run a pipe with no reader
			// at all, and its readiness line failed with EPIPE (a daemon
			// that does not ignore SIGPIPE dies of it). The same sendmsg,
			// moved ahead of the spawn: the next scanner takes the pipe
			// back whether the run was recorded or found orphaned.
			l.sc.holdFd(s.entry, notifyKey(s), r)
		}
	}
	if e := s.entry; e != nil && e.logger != nil && s.stdout == e.pipe[1] {
		// The service also holds a read end of its own output pipe, at the
		// first free fd: if the scanner (its only reader) is killed, the
		// service's writes block until a new scanner takes the pipe back,
		// instead of failing with EPIPE.
		files = append(files, e.pipe[0])
	}
	forkAt := time.Now()
	pid, err := supervise.Start(&supervise.Proc{Dir: s.dir, Path: "./" + servicedir.RunFile, Argv: []string{servicedir.RunFile, s.name}, Env: env, Files: files})
	if err != nil {
		if r >= 0 {
			if l.sc != nil {
				l.sc.unholdNotify(s)
			}
			unix.Close(r)
		}
		delay := supervise.RetryDelay(err)
		if delay == 0 && unix.Access(filepath.Join(s.dir, servicedir.RunFile), unix.X_OK) == nil {
			// ./run is there and executable, yet exec said ENOENT or
			// EACCES: either it just appeared (retry at once, once), or
			// its interpreter is missing or the mount is noexec, where
			// waiting for ./run to change would spin: retry on a timer.
			if s.retried {
				delay = supervise.RetryExec
			}
			s.retried = true
		}
		if delay == 0 {
			l.warn(s, "spawn", "unable to spawn %s: %v - waiting for it to appear", filepath.Join(s.dir, servicedir.RunFile), err)
		} else {
			l.warn(s, "spawn", "unable to spawn %s: %v - retrying every %d seconds", filepath.Join(s.dir, servicedir.RunFile), err, delay/time.Second)
		}
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed, Delay: delay})
		return
	}
	if l.trace >= 0 {
		// fork: when gosv called clone (the child calls execve at once);
		// exec: when the kernel's execve had succeeded (ForkExec returns).
		l.traceEvent("fork", pid, forkAt)
		l.traceEvent("exec", pid, time.Now())
	}
	l.byPid[pid] = s
	s.retried = false
	s.limits.Clear("spawn")
	if r >= 0 {
		s.notify = r
		l.register(r, fdOwner{kind: fdNotify, svc: s})
	}
	if s.wd >= 0 {
		delete(l.wds, s.wd)
		l.rmWatch(s.wd)
		s.wd = -1
	}
	st, err := servicedir.ProcStartTime(pid)
	if err == nil {
		err = servicedir.WritePidRecord(s.dir, servicedir.PidRecord{Pid: pid, StartTime: st})
	}
	if s.m.Cfg.Forking {
		l.beginLaunch(s, pid, st, forkAt)
	}
	if err != nil {
		l.warn(s, "record", "unable to record the pid of %s: %v", s.dir, err)
	}
	l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawned, Pid: pid})
}

func (l *loop) spawnFinish(s *service, a *supervise.Action) {
	servicedir.RemovePidRecord(s.dir)
	endLaunch(s.dir)
	// A missing finish is the common case: skip the fork s6 makes for it.
	// So is a stop of a service whose finish only acts after a death
	// while wanted up (finish-wanted-up: gosv openrc's respawn policy).
	if unix.Access(filepath.Join(s.dir, servicedir.FinishFile), unix.F_OK) != nil ||
		!s.m.WantUp && unix.Access(filepath.Join(s.dir, servicedir.FinishWantedUpFile), unix.F_OK) == nil {
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed})
		return
	}
	// NOTE: finish may read death_tally (gosv openrc finish counts the
	// respawns in it): it must already hold this death, as with
	// s6-supervise. Otherwise a finish that ran before the end of the
	// feed (a loaded machine) saw one death fewer and respawned once too
	// often.
	l.flushTally(s)
	argv := []string{servicedir.FinishFile, strconv.Itoa(a.Code), strconv.Itoa(a.FinSig), s.name}
	pid, err := supervise.Start(&supervise.Proc{Dir: s.dir, Path: "./" + servicedir.FinishFile, Argv: argv, Env: l.env,
		Files: []int{s.stdin, s.stdout, 2}})
	if err != nil {
		l.warn(s, "finish", "unable to spawn %s: %v", filepath.Join(s.dir, servicedir.FinishFile), err)
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed})
		return
	}
	l.byPid[pid] = s
	l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawned, Pid: pid})
}

func (l *loop) deathTally(s *service, wstat uint16, at time.Time) {
	max, err := supervise.ReadMaxDeathTally(s.dir)
	if err != nil {
		l.configWarn(s, err, fmt.Sprintf("using %d", servicedir.DefaultMaxDeathTally))
	}
	if err := servicedir.AppendDeath(s.dir, servicedir.DeathFromWstat(at, wstat), max); err != nil {
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

// watchGroup starts watching the process group of a dead run: one pidfd
// per live member, which works whether or not the members are our
// children (they are not when the run was adopted). An empty group is
// reported at once.
func (l *loop) watchGroup(s *service) {
	members, empty := s.groupState()
	if empty {
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvGroupEmpty})
		return
	}
	s.draining = true
	l.draining = append(l.draining, s)
	l.watchMembers(s, members)
}

// groupState is [groupState] of the run's group and, for a forking
// daemon, of its own group (see ownGroup).
func (s *service) groupState() (members []int, empty bool) {
	members, empty = groupState(s.m.Pgid)
	if g := s.ownGroup; g > 0 && g != s.m.Pgid {
		more, none := groupState(g)
		members, empty = append(members, more...), empty && none
	}
	return members, empty
}

// groupState says whether process group pgid has live members and, when
// it may, lists them. kill(-pgid, 0) answers the common case without
// reading /proc; only when it finds members is /proc read, because
// zombies count for kill(2) and zombies whose parent is not us (adopted
// services) are dead for our purpose.
func groupState(pgid int) (members []int, empty bool) {
	if pgid <= 0 || unix.Kill(-pgid, 0) == unix.ESRCH {
		return nil, true
	}
	members = liveGroupMembers(pgid)
	return members, len(members) == 0
}

// watchMembers opens a pidfd on each member.
func (l *loop) watchMembers(s *service, members []int) {
	for _, pid := range members {
		fd, err := unix.PidfdOpen(pid, 0)
		if err != nil {
			continue // already gone
		}
		s.group = append(s.group, fd)
		l.register(fd, fdOwner{kind: fdGroup, svc: s, pid: pid})
	}
}

// checkGroup re-examines a draining group after a member died.
func (l *loop) checkGroup(s *service) {
	if !s.draining {
		return
	}
	members, empty := s.groupState()
	if !empty {
		if len(s.group) == 0 {
			// Every watched member died but the group lives on: members
			// forked after the last look. Watch those.
			l.watchMembers(s, members)
		}
		return
	}
	l.stopDraining(s)
	l.feed(s, supervise.Event{Kind: supervise.EvGroupEmpty})
}

func (s *service) dropGroupFd(fd int) {
	for i, g := range s.group {
		if g == fd {
			s.group = append(s.group[:i], s.group[i+1:]...)
			return
		}
	}
}

// stopDraining takes s off the list of services whose group drains.
func (l *loop) stopDraining(s *service) {
	if !s.draining {
		return
	}
	s.draining = false
	for i, x := range l.draining {
		if x == s {
			l.draining = append(l.draining[:i], l.draining[i+1:]...)
			break
		}
	}
	for _, fd := range s.group {
		l.release(fd)
	}
	s.group = s.group[:0]
}

// liveGroupMembers lists the pids whose process group is pgid (/proc/PID/stat
// field 5), zombies excluded. Called only when a dead run left members behind.
func liveGroupMembers(pgid int) []int {
	d, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []int
	for _, e := range d {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if st, err := servicedir.ReadProcStat(pid); err == nil && st.Pgrp == pgid && st.State != 'Z' {
			out = append(out, pid)
		}
	}
	return out
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
	if err := l.notify(s, "x"); err != nil {
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
	s.ctl, s.notify, s.pidfd, s.checkFd = -1, -1, -1, -1
	if s.wd >= 0 {
		delete(l.wds, s.wd)
		l.rmWatch(s.wd)
		s.wd = -1
	}
	s.lock.Close()
	// The directory fd goes last, with the batch: paths built on s.dir
	// may still be used until then.
	l.closing = append(l.closing, s.dirfd)
	s.dirfd = -1
	if l.sc != nil {
		l.sc.serviceGone(s)
	} else {
		l.done = true
	}
}

// readInotify routes inotify events to the scan directory or to the
// services waiting for their ./run.
func (l *loop) readInotify() {
	for {
		n, err := unix.Read(l.ino, l.buf[:])
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&l.buf[off]))
			nameb := l.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if i := bytes.IndexByte(nameb, 0); i >= 0 {
				nameb = nameb[:i]
			}
			if ev.Mask&unix.IN_Q_OVERFLOW != 0 {
				l.recheckPidfiles() // their events may be among the lost
				if l.sc != nil {
					l.sc.rescan()
				}
				continue
			}
			if l.sc != nil && ev.Wd == l.sc.wd {
				l.sc.inotify(ev.Mask, string(nameb))
				continue
			}
			if s, ok := l.wds[ev.Wd]; ok && string(nameb) == servicedir.RunFile {
				l.feed(s, supervise.Event{Kind: supervise.EvRunChanged})
			}
			if _, ok := l.pidWatch[ev.Wd]; ok && len(nameb) > 0 {
				l.pidfileChanged(ev.Wd, string(nameb))
			}
		}
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
