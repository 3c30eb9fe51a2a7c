package scan

import (
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// The executor's spawns of ./run and ./finish (ActSpawnRun,
// ActSpawnFinish). Each ends by queueing the machine's feedback event
// (EvSpawned or EvSpawnFailed) in l.pending; feed steps it next.

// spawnRun starts ./run NAME: configuration re-read, readiness channels
// prepared, the spawn itself, then the bookkeeping of its success or
// failure.
func (l *loop) spawnRun(s *service) {
	if !s.cfgFresh { // s6 reads its files at each spawn; a death just did
		s.m.Cfg, s.cfgFresh = l.config(s), true
	}
	nfd, err := -1, error(nil)
	if l.has(s, servicedir.NotificationFDFile) {
		nfd, err = supervise.ReadNotificationFd(s.dir)
	}
	if err != nil {
		l.configWarn(s, err, "no readiness")
	}
	env := l.runEnv(s)
	l.clearState(s)
	files, r, w, err := l.runFiles(s, nfd)
	if err != nil {
		l.warn(s, "spawn", "unable to create notification pipe for %s: %v", s.dir, err)
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed, Delay: supervise.RetryFork})
		return
	}
	if w >= 0 {
		defer unix.Close(w) // the run's end: ours is closed once it has its copy
	}
	if s.m.Cfg.Forking {
		l.notePidfileBefore(s)
	}
	forkAt := time.Now()
	pid, err := l.sys.start(&supervise.Proc{Dir: s.dir, Path: "./" + servicedir.RunFile,
		Argv: []string{servicedir.RunFile, s.name}, Env: env, Files: files, Via: l.via()})
	if err != nil {
		l.runFailed(s, r, err)
		return
	}
	l.runStarted(s, pid, r, forkAt)
}

// runEnv is the run's environment: the scanner's, plus NOTIFY_SOCKET
// (and WATCHDOG_USEC) when the service uses sd_notify, whose socket is
// made or closed here, at the spawn that reads notification-socket.
func (l *loop) runEnv(s *service) []string {
	var err error
	if !l.has(s, servicedir.NotificationSocketFile) {
		s.notifyMode = servicedir.NotifyNone
	} else if s.notifyMode, err = servicedir.ReadNotifyMode(s.dir); err != nil {
		l.configWarn(s, err, "")
	}
	if s.notifyMode == servicedir.NotifyNone {
		l.closeNotifySocket(s)
		return l.env
	}
	extra, err := l.openNotifySocket(s)
	if err != nil {
		l.warn(s, "sdnotify", "unable to create the sd_notify socket of %s: %v (no sd_notify readiness)", s.dir, err)
	}
	return append(l.env[:len(l.env):len(l.env)], extra...)
}

// runFiles is the run's fd table: stdin, stdout, stderr, the write end w
// of a notification-fd pipe at fd nfd (nfd >= 0; r is our read end), and
// a read end of its own log pipe. r and w are -1 without a pipe.
func (l *loop) runFiles(s *service, nfd int) (files []int, r, w int, err error) {
	files = append(make([]int, 0, 8), s.stdin, s.stdout, 2)
	r, w = -1, -1
	if nfd >= 0 {
		var p [2]int
		// NOTE: O_NONBLOCK only on our end: the flag belongs to the open
		// file description, and the service's end must block like s6's.
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err == nil {
			if err = unix.SetNonblock(p[0], true); err != nil {
				unix.Close(p[0])
				unix.Close(p[1])
			}
		}
		if err != nil {
			return nil, -1, -1, err
		}
		r, w = p[0], p[1]
		for len(files) <= nfd {
			files = append(files, -1)
		}
		files[nfd] = w
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
	return files, r, w, nil
}

// runFailed handles a failed spawn of ./run: the notification pipe is
// dropped and the machine told when to try again (spawnRetry).
func (l *loop) runFailed(s *service, r int, err error) {
	if r >= 0 {
		if l.sc != nil {
			l.sc.unholdNotify(s)
		}
		unix.Close(r)
	}
	run := filepath.Join(s.dir, servicedir.RunFile)
	executable := unix.Access(run, unix.X_OK) == nil
	var delay time.Duration
	var msg retryMsg
	delay, s.retried, msg = spawnRetry(err, executable, s.retried)
	switch msg {
	case retryWhenRunChanges:
		l.warn(s, "spawn", "unable to spawn %s: %v - waiting for it to appear", run, err)
	case retryOnTimer:
		l.warn(s, "spawn", "unable to spawn %s: %v - retrying every %d seconds", run, err, delay/time.Second)
	}
	l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed, Delay: delay})
}

// retryMsg says which warning a failed spawn of ./run gets.
type retryMsg uint8

const (
	retryWhenRunChanges retryMsg = iota // "waiting for it to appear": the loop watches ./run
	retryOnTimer                        // "retrying every N seconds"
)

// spawnRetry decides what follows a failed spawn of ./run, given the
// spawn's error, whether ./run is executable now, and whether the
// previous spawn failed that way already. It returns the machine's retry
// delay (0: when ./run changes), the new retried flag and the warning.
//
// ./run executable, yet exec said ENOENT or EACCES: either it just
// appeared (retry at once, once), or its interpreter is missing or the
// mount is noexec, where waiting for ./run to change would spin: retry
// on a timer.
func spawnRetry(err error, runExecutable, retried bool) (time.Duration, bool, retryMsg) {
	delay := supervise.RetryDelay(err)
	if delay == 0 && runExecutable {
		if retried {
			delay = supervise.RetryExec
		}
		retried = true
	}
	if delay == 0 {
		return 0, retried, retryWhenRunChanges
	}
	return delay, retried, retryOnTimer
}

// runStarted records a run that was spawned: its pid, its readiness pipe,
// the pid record (and the launch of a forking service).
func (l *loop) runStarted(s *service, pid, r int, forkAt time.Time) {
	if l.trace >= 0 {
		// fork: when gosv called clone (the child calls execve at once);
		// exec: when the kernel's execve had succeeded (ForkExec returns).
		l.traceEvent("fork", pid, forkAt)
		l.traceEvent("exec", pid, time.Now())
	}
	l.byPid[pid] = s
	l.trackChild(s, pid)
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

// spawnFinish starts ./finish CODE SIG NAME after a run's death.
// skipFinish says whether a death's finish is skipped: there is none, or
// it acts only after a death that matters (wanted up, or given up) and
// this one does not. wantedUpOnly is asked only when it decides.
func skipFinish(haveFinish, matters bool, wantedUpOnly func() bool) bool {
	return !haveFinish || !matters && wantedUpOnly()
}

func (l *loop) spawnFinish(s *service, a *supervise.Action) {
	servicedir.RemovePidRecord(s.dir)
	endLaunch(s.dir)
	// A missing finish is the common case: skip the fork s6 makes for it.
	// So is a stop of a service whose finish acts only after a death
	// while wanted up or a give-up (finish-wanted-up: gosv openrc's, which
	// tells OpenRC about respawns and give-ups and nothing else).
	if skipFinish(l.has(s, servicedir.FinishFile) && unix.Access(filepath.Join(s.dir, servicedir.FinishFile), unix.F_OK) == nil,
		s.m.WantUp || s.m.Pol.GaveUp,
		func() bool {
			return l.has(s, servicedir.FinishWantedUpFile) &&
				unix.Access(filepath.Join(s.dir, servicedir.FinishWantedUpFile), unix.F_OK) == nil
		}) {
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed})
		return
	}
	// NOTE: finish may read death_tally (gosv openrc finish counts the
	// respawns in it): it must already hold this death, as with
	// s6-supervise. Otherwise a finish that ran before the end of the
	// feed (a loaded machine) saw one death fewer and respawned once too
	// often.
	l.flushTally(s)
	if s.statusFailed && s.tallyFailed {
		// Nothing on disk tells of this death: a scanner started after
		// this one died would find no status and no tally, take the
		// directory for one whose run was being spawned, and adopt the
		// finish as the run (orphans.go).
		l.warn(s, "finish", "not spawning %s: neither the status nor the death tally could be written", filepath.Join(s.dir, servicedir.FinishFile))
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed})
		return
	}
	argv := []string{servicedir.FinishFile, strconv.Itoa(a.Code), strconv.Itoa(a.FinSig), s.name}
	pid, err := l.sys.start(&supervise.Proc{Dir: s.dir, Path: "./" + servicedir.FinishFile, Argv: argv, Env: l.env,
		Files: []int{s.stdin, s.stdout, 2}, Via: l.via()})
	if err != nil {
		l.warn(s, "finish", "unable to spawn %s: %v", filepath.Join(s.dir, servicedir.FinishFile), err)
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawnFailed})
		return
	}
	l.byPid[pid] = s
	l.trackChild(s, pid)
	l.pending = append(l.pending, supervise.Event{Kind: supervise.EvSpawned, Pid: pid})
}
