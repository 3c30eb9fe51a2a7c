package scan

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/logdir"
)

// In-process logging: a service directory with a log-script file
// (PROTOCOL.md §9.1) has its output written to its log directories by the
// scanner itself, from the loop, with no logger process. The pipe is the
// scanner's, like a log/ service's, so restarts of the service lose
// nothing; bytes leave it only once written (logdir.Logger.Consume), so
// even a SIGKILL of the scanner loses nothing a new scanner cannot read
// back from the pipe, which it takes back from the adopted service.

// logScriptFile is the gosv-only file that switches in-process logging on.
const logScriptFile = "log-script"

// flushRounds bounds the final drain of a log pipe at exit: each round
// takes at most one scratch buffer.
const flushRounds = 1 << 12

// readLogScript returns the script of dir/log-script, or nil.
func readLogScript(dir string) ([]string, error) {
	b, err := os.ReadFile(filepath.Join(dir, logScriptFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	args := strings.Fields(string(b))
	if len(args) == 0 {
		return nil, &os.PathError{Op: "parse", Path: filepath.Join(dir, logScriptFile), Err: errors.New("empty script")}
	}
	return args, nil
}

// openInProcessLog gives entry e its pipe and logger. On error the service
// runs with the scanner's stdout, which is reported.
func (sc *scanner) openInProcessLog(e *entry, dir string, args []string) error {
	script, err := logdir.ParseScriptAt(dir, args) // ./log means the service's own log directory
	if err != nil {
		return &os.PathError{Op: "parse", Path: filepath.Join(dir, logScriptFile), Err: err}
	}
	lg, err := logdir.Open(script, logdir.Options{Prog: sc.l.cfg.Prog + " " + filepath.Join(sc.dir, e.name)}) // dir is an fd path (fdPath)
	if err != nil {
		return err
	}
	if sc.l.scratch == nil {
		if sc.l.scratch, err = logdir.NewScratch(); err != nil {
			lg.Close()
			return err
		}
	}
	p, ok := recoverPipe(dir, 1)
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
	sc.consumeLog(e) // what an adopted service wrote meanwhile
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
