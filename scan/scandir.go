package scan

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdhold"
	"github.com/gosv/gosv/internal/logdir"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// Scanner timing (s6-svscan's, adapted: inotify replaces most rescans).
const (
	// RecreateDelay: a service whose machine exited (x) while its
	// directory is still in the scan directory is taken again after this.
	RecreateDelay = time.Second
	// RetryScan: a scan-directory entry that could not be examined or
	// taken (stat error, EMFILE, lock held) is tried again after this.
	RetryScan = 3 * time.Second
)

type devIno struct{ dev, ino uint64 }

// entry is one service of the scan directory: a service directory,
// identified by device and inode as s6-svscan does, and its optional
// logger NAME/log, with the pipe between them that the scanner holds so
// that it survives restarts of either side.
type entry struct {
	name      string
	id        devIno
	dirfd     int  // O_PATH fd of the directory, from the first take; -1 before
	active    bool // still present in the scan directory
	hasLog    bool // a log/ subservice: decided once, by chooseLog
	logWarned bool // the log-script-versus-log/run conflict was reported
	svc, log  *service
	pipe      [2]int         // read end (logger's stdin), write end (service's stdout); -1 when closed
	recreate  timer          // armed while waiting for RecreateDelay after x
	logger    *logdir.Logger // in-process logger (log-script), or nil
	stage     *logdir.Stage  // the in-process logger's stage (kept by the fd holder), or nil
	logRetry  timer          // when to call the logger again although nothing was written
	preparing bool           // a worker prepares the directory of svc or log (prepare.go)
}

// scanner is the scan-directory half of the loop: entries, .s6-svscan/,
// and the scanner's control letters.
type scanner struct {
	l        *loop
	dir      string
	lock     *os.File
	ctl      int
	wd       int32
	byName   map[string]*entry
	byID     map[devIno]*entry
	exiting  bool
	killer   byte  // the letter that started the exit: t, i, q or b
	rescanAt timer // next periodic (-t) or retried rescan

	holder       *fdhold.Client // the fd holder, once connected (fdholder.go)
	held         map[string]int // pipes the holder kept for a previous scanner, not yet taken back
	holderWarned bool
	holderBusy   bool // a holder listens but did not answer: never start a second one

	// syncTakes: the loop takes directories itself, in the turn that
	// finds them: a re-exec'd scanner's first scan (see resumed), and
	// gosv init's, whose main command starts once the services present
	// at boot are taken, as before workers prepared them.
	syncTakes bool
}

func newScanner(l *loop, dir string) (*scanner, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	sc := &scanner{l: l, dir: abs, ctl: -1, byName: map[string]*entry{}, byID: map[devIno]*entry{}}
	sc.rescanAt.kind = tmRescan
	sc.syncTakes = l.rx.resumed || l.cfg.Init != nil
	ctlDir := filepath.Join(abs, servicedir.ScanCtlDir)
	if err := servicedir.MkdirPrivate(ctlDir, 0o700); err != nil {
		return nil, err
	}
	var given bool
	if sc.lock, sc.ctl, given = l.givenFds("scan", filepath.Join(abs, servicedir.ScanLockPath), filepath.Join(abs, servicedir.ScanCtlPath)); !given {
		if sc.lock, err = servicedir.Lock(filepath.Join(abs, servicedir.ScanLockPath), 0o600); err != nil {
			return nil, err
		}
		if sc.ctl, err = openControl(filepath.Join(abs, servicedir.ScanCtlPath)); err != nil {
			return nil, err
		}
	}
	if err := l.register(sc.ctl, fdOwner{kind: fdScanCtl}); err != nil {
		return nil, err
	}
	wd, err := unix.InotifyAddWatch(l.ino, abs, unix.IN_CREATE|unix.IN_DELETE|unix.IN_MOVED_FROM|unix.IN_MOVED_TO|unix.IN_ONLYDIR)
	if err != nil {
		return nil, &os.PathError{Op: "inotify_add_watch", Path: abs, Err: err}
	}
	sc.wd = int32(wd)
	sc.connectHolder()
	if l.cfg.Rescan > 0 {
		l.timers.set(&sc.rescanAt, time.Now().Add(l.cfg.Rescan))
	}
	return sc, nil
}

// rescan reads the whole scan directory: new entries are taken, vanished
// ones become inactive (they keep running until h, n or N).
func (sc *scanner) rescan() {
	d, err := os.ReadDir(sc.dir)
	if err != nil {
		sc.l.warn(nil, "scan", "unable to scan %s: %v - retrying every %d seconds", sc.dir, err, RetryScan/time.Second)
		sc.retryScan()
		return
	}
	sc.l.limits.Clear("scan")
	for _, e := range sc.byName {
		e.active = false
	}
	for _, de := range d {
		sc.found(de.Name())
	}
	for name, e := range sc.byName {
		if !e.active {
			delete(sc.byName, name)
			sc.dropIfIdle(e)
		}
	}
	sc.l.resolveOrphans()
}

func (sc *scanner) retryScan() {
	if t := time.Now().Add(RetryScan); !sc.rescanAt.armed() || t.Before(sc.rescanAt.at) {
		sc.l.timers.set(&sc.rescanAt, t)
	}
}

// found examines one name of the scan directory.
func (sc *scanner) found(name string) {
	if strings.HasPrefix(name, ".") || sc.exiting {
		return
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(sc.dir, name), &st); err != nil {
		if err != unix.ENOENT {
			sc.l.warn(nil, "entry|"+name, "unable to stat %s: %v - retrying every %d seconds", filepath.Join(sc.dir, name), err, RetryScan/time.Second)
			sc.retryScan()
		}
		return
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return
	}
	id := devIno{st.Dev, st.Ino}
	e := sc.byID[id]
	if e == nil {
		e = &entry{id: id, pipe: [2]int{-1, -1}, dirfd: -1}
		e.recreate = timer{kind: tmRecreate, e: e}
		e.logRetry = timer{kind: tmLogRetry, e: e}
		sc.byID[id] = e
	}
	if old := sc.byName[name]; old != nil && old != e {
		old.active = false
		sc.dropIfIdle(old)
	}
	if e.name != name && e.name != "" {
		delete(sc.byName, e.name)
		sc.renamed(e, name)
	}
	e.name, e.active = name, true
	sc.byName[name] = e
	sc.take(e)
}

// renamed follows an entry renamed within the scan directory: the
// directory is the same (same device and inode), its NAME argument is not.
func (sc *scanner) renamed(e *entry, name string) {
	if e.svc != nil {
		e.svc.name = name
	}
	if e.log != nil {
		e.log.name = name + "/" + servicedir.LogDir
	}
}

// take starts the machines an active entry lacks: the logger first, as
// s6-svscan does, so the service's first line has a reader.
func (sc *scanner) take(e *entry) {
	if e.recreate.armed() || e.preparing {
		return // x: waiting for RecreateDelay; or a worker's result
	}
	// NOTE: the machines work through a directory fd (fdPath), as
	// s6-supervise works from inside the directory after chdir: once the
	// directory is moved out of the scan directory, or its symlink is
	// removed (s6-svunlink), the service must still reach its files.
	if e.dirfd < 0 {
		p := filepath.Join(sc.dir, e.name)
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			sc.l.warn(nil, "entry|"+e.name, "unable to open %s: %v - retrying every %d seconds", p, err, RetryScan/time.Second)
			sc.retryScan()
			return
		}
		var st unix.Stat_t
		if unix.Fstat(fd, &st) != nil || (devIno{st.Dev, st.Ino}) != e.id {
			// Replaced since it was examined: the inotify event of the
			// change, or the next scan, examines the new one.
			unix.Close(fd)
			sc.retryScan()
			return
		}
		e.dirfd = fd
	}
	dir := fdPath(e.dirfd)
	shown := filepath.Join(sc.dir, e.name)
	if e.svc == nil && !e.hasLog && e.logger == nil {
		args, err := sc.chooseLog(e, dir, shown)
		if err == nil && args != nil {
			err = sc.openInProcessLog(e, dir, args)
		}
		if err != nil {
			sc.l.warn(nil, "entry|"+e.name, "unable to set up in-process logging for %s: %v (its output goes to the scanner's)", shown, strings.ReplaceAll(err.Error(), dir, shown))
		}
	}
	if e.hasLog && e.pipe[0] < 0 {
		var p [2]int
		var ok bool
		// A logger or service left running by a killed scanner still has
		// the old pipe: take it back, so that neither loses a line.
		if p, ok = recoverPipe(filepath.Join(dir, servicedir.LogDir), 0); !ok {
			p, ok = recoverPipe(dir, 1)
		}
		if !ok {
			if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
				sc.l.warn(nil, "entry|"+e.name, "unable to create log pipe for %s: %v - retrying every %d seconds", shown, err, RetryScan/time.Second)
				sc.retryScan()
				return
			}
		}
		e.pipe = p
	}
	// A worker prepares the directory (prepare.go), except in a re-exec'd
	// scanner's first scan (the previous image's locks and FIFOs are
	// matched to their directories, and the runs that died during the
	// exec reaped, once every directory has its machine) and in gosv
	// init's (see syncTakes), and when descriptors are short (fdRoom).
	async := !sc.syncTakes && sc.l.fdRoom()
	if e.hasLog && e.log == nil {
		at := filepath.Join(dir, servicedir.LogDir)
		if async {
			sc.prepare(e, true, at)
			return // prepared resumes here
		}
		name := e.name + "/" + servicedir.LogDir
		if e.log = sc.newService(e, at, -1, filepath.Join(shown, servicedir.LogDir), name, e.pipe[0], 1); e.log == nil {
			return
		}
	}
	if e.svc == nil {
		if async {
			sc.prepare(e, false, dir)
			return
		}
		// The service works through the entry's directory fd: one fd
		// per service fewer (5000 services fit in 20000 descriptors).
		if e.svc = sc.newService(e, dir, e.dirfd, shown, e.name, 0, sc.svcOut(e)); e.svc != nil {
			sc.l.limits.Clear("entry|" + e.name)
		}
	}
}

// svcOut is the stdout of e's service: its log pipe, if it has a logger.
func (sc *scanner) svcOut(e *entry) int {
	if e.hasLog || e.logger != nil {
		return e.pipe[1]
	}
	return 1
}

// prepared makes the service (or the logger) of e from a worker's
// preparation, starts it, and goes on with the entry's take.
func (sc *scanner) prepared(r *prepResult) {
	e := r.job.e
	e.preparing = false
	if !e.active || sc.exiting || e.dirfd < 0 {
		r.p.release()
		if r.dirfd >= 0 {
			unix.Close(r.dirfd)
		}
		if !r.job.log && sc.killer != 'b' {
			// The service will not run: its logger reads until every
			// writer is gone, ours too (as in serviceGone).
			closeFd(&e.pipe[1])
			sc.flushInProcessLog(e)
		}
		sc.dropIfIdle(e)
		return
	}
	shown := filepath.Join(sc.dir, e.name)
	var s *service
	err := r.err
	if r.job.log {
		shown = filepath.Join(shown, servicedir.LogDir)
		if err == nil {
			s, err = sc.l.takePrepared(r.dirfd, shown, e.name+"/"+servicedir.LogDir, e.pipe[0], 1, &r.p)
		}
		if err != nil && r.dirfd >= 0 {
			err = &shownError{err, strings.ReplaceAll(err.Error(), fdPath(r.dirfd), shown)}
			unix.Close(r.dirfd)
		}
	} else if err == nil {
		if s, err = sc.l.takePrepared(e.dirfd, shown, e.name, 0, sc.svcOut(e), &r.p); err == nil {
			s.sharedDir = true
		}
	}
	if err != nil {
		err = &shownError{err, strings.ReplaceAll(err.Error(), r.job.dir, shown)}
	}
	if s = sc.started(e, s, err, shown); s == nil {
		return
	}
	if r.job.log {
		e.log = s
	} else {
		e.svc = s
		sc.l.limits.Clear("entry|" + e.name)
	}
	sc.take(e) // the service, after its logger
}

// newService takes the service directory dir, through dirfd when that is
// not -1 (the entry's, which outlives the service: see dropIfIdle).
func (sc *scanner) newService(e *entry, dir string, dirfd int, shown, name string, stdin, stdout int) *service {
	var s *service
	var err error
	if dirfd >= 0 {
		s, err = sc.l.newServiceOn(dirfd, shown, name, stdin, stdout)
	} else {
		s, err = sc.l.newService(dir, shown, name, stdin, stdout)
	}
	return sc.started(e, s, err, shown)
}

// started starts s, the service or logger of e just taken, or reports
// why the take failed (err) and retries it later. It returns s, or nil
// when there is none or its machine ended at once.
func (sc *scanner) started(e *entry, s *service, err error, shown string) *service {
	if err != nil {
		msg := err.Error()
		if errors.Is(err, servicedir.ErrLocked) {
			sc.l.warn(nil, "entry|"+e.name, "unable to supervise %s: another supervisor holds %s", shown, servicedir.LockPath)
		} else {
			sc.l.warn(nil, "entry|"+e.name, "unable to supervise %s: %s - retrying every %d seconds", shown, msg, RetryScan/time.Second)
		}
		sc.retryScan()
		return nil
	}
	s.entry = e
	sc.l.startService(s)
	if s.m.State == supervise.Exited || s.m.State == supervise.Fatal {
		return nil
	}
	return s
}

// inotify handles a change of one name in the scan directory.
func (sc *scanner) inotify(mask uint32, name string) {
	switch {
	case mask&(unix.IN_CREATE|unix.IN_MOVED_TO) != 0:
		sc.found(name)
		sc.l.resolveOrphans()
	case mask&(unix.IN_DELETE|unix.IN_MOVED_FROM) != 0:
		if e := sc.byName[name]; e != nil {
			delete(sc.byName, name)
			e.active = false
			sc.dropIfIdle(e)
		}
	}
}

// serviceGone is called when a machine of e exits.
func (sc *scanner) serviceGone(s *service) {
	e := s.entry
	if e == nil {
		return
	}
	fatal := s.m.State == supervise.Fatal
	if s == e.svc {
		e.svc = nil
		if (sc.exiting || !e.active) && !s.left {
			// The logger reads until every writer is gone: ours too.
			closeFd(&e.pipe[1])
			sc.flushInProcessLog(e)
		}
	} else {
		e.log = nil
	}
	if sc.exiting || !e.active {
		sc.dropIfIdle(e)
		return
	}
	if !fatal && !e.recreate.armed() {
		sc.l.timers.set(&e.recreate, time.Now().Add(RecreateDelay))
	}
}

// dropIfIdle forgets an entry whose machines are gone and that is no
// longer in the scan directory (or the scanner is exiting).
func (sc *scanner) dropIfIdle(e *entry) {
	if e.svc != nil || e.log != nil || e.preparing || (e.active && !sc.exiting) {
		return // a preparing entry is dropped once its result is back
	}
	if e.logger != nil {
		e.logger.Close() // b: leaving the service running; the pipe stays in it
		e.logger = nil
		sc.l.release(e.pipe[0])
		e.pipe[0] = -1
	}
	closeStage(e) // after b, the fd holder keeps it for the next scanner
	closeFd(&e.pipe[0])
	closeFd(&e.pipe[1])
	if e.dirfd >= 0 {
		// Closed with the batch: paths built on it may still be in use.
		sc.l.closing = append(sc.l.closing, e.dirfd)
		e.dirfd = -1
	}
	sc.l.limits.Clear("entry|" + e.name)
	// Forgotten entries keep no deadline: nothing would fire for them.
	sc.l.timers.stop(&e.recreate)
	sc.l.timers.stop(&e.logRetry)
	delete(sc.byID, e.id)
	if sc.byName[e.name] == e {
		delete(sc.byName, e.name)
	}
	if sc.exiting && len(sc.byID) == 0 {
		sc.l.done = true
	}
}

func closeFd(fd *int) {
	if *fd >= 0 {
		unix.Close(*fd)
		*fd = -1
	}
}

// recreate takes e again once RecreateDelay has passed since its machine
// exited (its timer fired and is disarmed).
func (sc *scanner) recreate(e *entry) {
	if e.active && !sc.exiting {
		sc.take(e)
		sc.l.resolveOrphans()
	} else {
		sc.dropIfIdle(e)
	}
}

// periodicRescan is the expiry of the rescan timer: -t's period, or a
// retry after a failed look at the scan directory.
func (sc *scanner) periodicRescan(now time.Time) {
	if sc.l.cfg.Rescan > 0 {
		sc.l.timers.set(&sc.rescanAt, now.Add(sc.l.cfg.Rescan))
	}
	sc.rescan()
}

// readControl applies .s6-svscan/control letters in order, as s6-svscanctl(8)
// documents them.
func (sc *scanner) readControl(fd int) {
	var b [64]byte
	n, err := unix.Read(fd, b[:])
	if err != nil || n <= 0 {
		return
	}
	for _, c := range b[:n] {
		sc.command(c)
	}
}

func (sc *scanner) command(c byte) {
	switch c {
	case 'a':
		sc.rescan()
	case 'z':
		sc.l.reapAll()
	case 'h':
		sc.rescan()
		sc.killInactive(false)
	case 'n':
		sc.killInactive(false)
	case 'N':
		sc.killInactive(true)
	case 't', 'i', 'q', 'b':
		if sc.l.cfg.Init != nil && sc.l.cfg.Init.Letter(Ctl{sc.l}, c) {
			return
		}
		sc.exit(c)
	case ReexecLetter:
		sc.reexec() // reexec.go
	case '\n':
		// echo a >control adds a newline: not worth a warning.
	default:
		sc.l.warn(nil, "scanctl", "received unknown control command: %q", c)
	}
}

// killInactive stops the services whose directory left the scan
// directory: the service with SIGTERM semantics, its logger with SIGHUP
// semantics (it drains the pipe and exits at EOF) unless hard.
func (sc *scanner) killInactive(hard bool) {
	for _, e := range sc.byID {
		if !e.active {
			sc.stopEntry(e, hard)
		}
	}
}

func (sc *scanner) stopEntry(e *entry, hard bool) {
	if e.svc != nil {
		sc.l.feed(e.svc, supervise.Event{Kind: supervise.EvTerm})
	}
	if e.log != nil {
		k := supervise.EvHup
		if hard {
			k = supervise.EvTerm
		}
		sc.l.feed(e.log, supervise.Event{Kind: k})
	}
}

// exit starts the scanner's exit: t and i stop every service (loggers
// drain), q stops loggers too, b leaves everything running for the next
// scanner, which adopts the services.
func (sc *scanner) exit(c byte) {
	if sc.exiting && c != 'b' && c != 'q' {
		return
	}
	sc.exiting, sc.killer = true, c
	for _, e := range sc.byID {
		sc.l.timers.stop(&e.recreate)
		if c == 'b' {
			for _, s := range []*service{e.svc, e.log} {
				if s != nil {
					sc.l.feed(s, supervise.Event{Kind: supervise.EvQuit})
				}
			}
			continue
		}
		sc.stopEntry(e, c == 'q')
	}
	for _, e := range sc.byID {
		sc.dropIfIdle(e)
	}
	if len(sc.byID) == 0 {
		sc.l.done = true
	}
}

// signal applies s6-svscan's signal handling: a .s6-svscan/SIGNAME script
// if there is one, else the default action.
func (sc *scanner) signal(sig unix.Signal) {
	if sc.runSignalScript(sig) {
		return
	}
	switch sig {
	case unix.SIGHUP:
		sc.command('h')
	case unix.SIGINT, unix.SIGTERM:
		sc.command('t')
	case unix.SIGQUIT:
		sc.command('q')
	case unix.SIGABRT:
		sc.command('b')
	case unix.SIGALRM:
		sc.command('a')
	}
}

var signalScripts = map[unix.Signal]string{
	unix.SIGHUP: "SIGHUP", unix.SIGINT: "SIGINT", unix.SIGTERM: "SIGTERM", unix.SIGQUIT: "SIGQUIT",
	unix.SIGUSR1: "SIGUSR1", unix.SIGUSR2: "SIGUSR2", unix.SIGPWR: "SIGPWR", unix.SIGWINCH: "SIGWINCH",
}

func (sc *scanner) runSignalScript(sig unix.Signal) bool {
	name, ok := signalScripts[sig]
	if !ok {
		return false
	}
	path := filepath.Join(servicedir.ScanCtlDir, name)
	if unix.Access(filepath.Join(sc.dir, path), unix.X_OK) != nil {
		return false
	}
	_, err := supervise.Start(&supervise.Proc{Dir: sc.dir, Path: "./" + path, Argv: []string{name},
		Env: sc.l.env, Files: []int{0, 1, 2}})
	if err != nil {
		sc.l.warn(nil, "sig|"+name, "unable to spawn %s: %v", filepath.Join(sc.dir, path), err)
		return false
	}
	return true
}

// finish runs after the loop: exec .s6-svscan/finish if it exists.
func (sc *scanner) finish() error {
	sc.closeHolder()
	path := filepath.Join(sc.dir, servicedir.ScanFinishPath)
	if err := os.Chdir(sc.dir); err != nil {
		return err
	}
	err := syscall.Exec(path, []string{"finish"}, sc.l.env)
	if errors.Is(err, syscall.ENOENT) {
		return nil
	}
	return &os.PathError{Op: "exec", Path: path, Err: err}
}

// recoverPipe opens both ends of the pipe that the live process recorded
// in dir's pid record has as fd n, through /proc/PID/fd/N (open(2) on that
// link reaches the same pipe). It is how a new scanner takes back the log
// pipe of services and loggers it adopts.
func recoverPipe(dir string, n int) ([2]int, bool) {
	p := [2]int{-1, -1}
	rec, err := servicedir.ReadPidRecord(dir)
	if err != nil {
		return p, false
	}
	if st, err := servicedir.ProcStartTime(rec.Pid); err != nil || st != rec.StartTime {
		return p, false
	}
	link := fmt.Sprintf("/proc/%d/fd/%d", rec.Pid, n)
	var st unix.Stat_t
	if unix.Stat(link, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFIFO {
		return p, false
	}
	// NOTE: O_NONBLOCK so that neither open waits for the other side
	// (fifo(7)); the read end is opened first so the write end finds a
	// reader. Both are made blocking again: children inherit them.
	r, err := unix.Open(link, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return p, false
	}
	w, err := unix.Open(link, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		unix.Close(r)
		return p, false
	}
	unix.SetNonblock(r, false)
	unix.SetNonblock(w, false)
	return [2]int{r, w}, true
}
