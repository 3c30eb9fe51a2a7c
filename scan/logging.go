package scan

import (
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/logdir"
	"github.com/gosv/gosv/internal/servicedir"
)

// In-process logging: a service directory with a log-script file
// (PROTOCOL.md §9.1) has its output written to its log directories by the
// scanner itself, from the loop, with no logger process. The pipe is the
// scanner's, like a log/ service's, so restarts of the service lose
// nothing; bytes leave it only once written (logdir.Logger.Consume), so
// even a SIGKILL of the scanner loses nothing a new scanner cannot read
// back from the pipe, which it takes back from the adopted service.

// flushRounds bounds the final drain of a log pipe at exit: each round
// takes at most one scratch buffer.
const flushRounds = 1 << 12

// chooseLog decides how the service in dir is logged, before its first
// start, and returns the log-script to run in process (or nil). The rule
// (PROTOCOL.md §9.1): a log/ directory holding a run file is a logger
// service; otherwise a log-script file means in-process logging, and log/
// may be its log directory (the README's "t s1048576 n10 ./log"); a log/
// directory without either is a logger service whose run is awaited, as
// with s6-svscan. Both log/run and log-script is a conflict: log/run wins
// (it is what s6 tools see) and the conflict is reported once.
func (sc *scanner) chooseLog(e *entry, dir, shown string) ([]string, error) {
	logDir := filepath.Join(dir, servicedir.LogDir)
	fi, err := os.Stat(logDir)
	isDir := err == nil && fi.IsDir()
	_, err = os.Lstat(filepath.Join(logDir, servicedir.RunFile))
	hasRun := isDir && err == nil
	args, err := servicedir.ReadLogScript(dir)
	switch {
	case hasRun:
		e.hasLog = true
		if (args != nil || err != nil) && !e.logWarned {
			e.logWarned = true
			sc.l.warn(nil, "logscript|"+e.name, "ignoring %s: %s exists, so log/ is a logger service", filepath.Join(shown, servicedir.LogScriptFile), filepath.Join(shown, servicedir.LogDir, servicedir.RunFile))
		}
		return nil, nil
	case err != nil:
		return nil, err
	case args == nil && isDir:
		e.hasLog = true
	}
	return args, nil
}

// openInProcessLog gives entry e its pipe and logger. On error the service
// runs with the scanner's stdout, which is reported.
func (sc *scanner) openInProcessLog(e *entry, dir string, args []string) error {
	script, err := logdir.ParseScriptAt(dir, args) // ./log means the service's own log directory
	if err != nil {
		return &os.PathError{Op: "parse", Path: filepath.Join(dir, servicedir.LogScriptFile), Err: err}
	}
	e.stage = sc.takeStage(e)
	lg, err := logdir.Open(script, logdir.Options{Prog: sc.l.cfg.Prog + " " + filepath.Join(sc.dir, e.name), Stage: e.stage}) // dir is an fd path (fdPath)
	if err != nil {
		return err
	}
	if sc.l.scratch == nil {
		if sc.l.scratch, err = logdir.NewScratch(); err != nil {
			lg.Close()
			return err
		}
	}
	// The pipe comes back from the fd holder, or from the adopted service
	// (a holder that died, or a scanner that had none), or is new.
	p, fromHolder := sc.takeHeld(e)
	ok := fromHolder
	if !ok {
		p, ok = recoverPipe(dir, 1)
	}
	if !ok {
		if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
			lg.Close()
			return os.NewSyscallError("pipe2", err)
		}
	}
	// NOTE: the read end is ours alone (no logger process), so making it
	// non-blocking affects nobody else.
	logdir.SetPipeSize(p[0], logdir.PipeSize)
	unix.SetNonblock(p[0], true)
	if err := sc.l.registerET(p[0], fdOwner{kind: fdLogPipe, entry: e}); err != nil {
		unix.Close(p[0])
		unix.Close(p[1])
		lg.Close()
		return err
	}
	e.pipe, e.logger = p, lg
	if !fromHolder {
		sc.hold(e)
	}
	sc.consumeLog(e) // what the service wrote while no scanner ran
	return nil
}

// consumeLog moves what is in e's pipe to its log directories.
func (sc *scanner) consumeLog(e *entry) {
	if e.logger == nil {
		return
	}
	retry, eof, err := e.logger.Consume(e.pipe[0], sc.l.scratch)
	if err != nil {
		sc.l.warn(nil, "log|"+e.name, "unable to write the log of %s: %v", e.name, err)
	}
	sc.l.timers.set(&e.logRetry, retry)
	if eof {
		sc.closeInProcessLog(e)
	}
}

// flushInProcessLog closes the scanner's write end and drains the pipe
// into the log, when the service is gone for good.
func (sc *scanner) flushInProcessLog(e *entry) {
	if e.logger == nil {
		return
	}
	closeFd(&e.pipe[1])
	for i := 0; i < flushRounds && e.logger != nil; i++ {
		retry, eof, err := e.logger.Consume(e.pipe[0], sc.l.scratch)
		if eof {
			break
		}
		// A retry "now" means more input than one call takes; a later one
		// means the log directory fails: give up, as nobody will write.
		if err != nil || retry.After(time.Now()) {
			sc.l.warn(nil, "log|"+e.name, "unable to write the log of %s at exit: %v (unwritten lines are lost)", e.name, err)
			break
		}
		if retry.IsZero() {
			break // the pipe is empty
		}
	}
	if e.logger != nil {
		if err := e.logger.Flush(sc.l.scratch); err != nil {
			sc.l.warn(nil, "log|"+e.name, "unable to write the log of %s at exit: %v", e.name, err)
		}
	}
	sc.closeInProcessLog(e)
}

func (sc *scanner) closeInProcessLog(e *entry) {
	if e.logger == nil {
		return
	}
	if err := e.logger.Close(); err != nil {
		sc.l.warn(nil, "log|"+e.name, "unable to close the log of %s: %v", e.name, err)
	}
	e.logger = nil
	sc.l.timers.stop(&e.logRetry)
	sc.unhold(e)
	closeStage(e)
	if e.pipe[0] >= 0 {
		sc.l.release(e.pipe[0])
		e.pipe[0] = -1
	}
	closeFd(&e.pipe[1])
}

// registerET adds fd edge-triggered: Consume reads until the pipe is empty
// or the log is blocked, and a retry deadline covers the blocked case.
func (l *loop) registerET(fd int, o fdOwner) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLET, Fd: int32(fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.fds[int32(fd)] = o
	return nil
}
