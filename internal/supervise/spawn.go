package supervise

import (
	"errors"
	"syscall"
	"time"

	"github.com/gosv/gosv/internal/spawner"
)

// Proc describes a child to start: run or finish of one service.
type Proc struct {
	Dir   string   // working directory: the service directory
	Path  string   // "./run" or "./finish", relative to Dir
	Argv  []string // s6's conventions: run NAME / finish CODE SIG NAME
	Env   []string
	Files []int // fd i of the child is Files[i]; -1 closes it

	// Via, when not nil, forks from the spawn helper (internal/spawner),
	// whose clone does not copy the caller's descriptor table; Start
	// falls back to forking itself when the helper cannot answer.
	Via *spawner.Client
}

// Start forks and execs p in a new session (so its process group is the
// service's), with default signal dispositions and an empty signal mask.
//
// NOTE: syscall.ForkExec resets every signal the Go runtime handles to
// SIG_DFL in the child and restores the signal mask the process started
// with; the scanner starts with an empty one (see scan.normalizeSignals).
// It also restores the RLIMIT_NOFILE soft limit the process was started
// with (Go ≥ 1.21), so services do not inherit the scanner's raised limit.
// It returns only after execve succeeded or failed (close-on-exec pipe),
// which is when s6 announces "u".
func Start(p *Proc) (int, error) {
	if p.Via != nil {
		r := spawner.Request{Dir: p.Dir, Path: p.Path, Argv: p.Argv, Env: p.Env, Files: p.Files}
		if pid, err, ok := p.Via.Start(&r); ok {
			return pid, err
		}
	}
	files := make([]uintptr, len(p.Files))
	for i, fd := range p.Files {
		files[i] = uintptr(fd)
	}
	return syscall.ForkExec(p.Path, p.Argv, &syscall.ProcAttr{
		Dir:   p.Dir,
		Env:   p.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true},
	})
}

// RetryDelay says when to retry a failed spawn: 0 means "when ./run
// changes" (it is missing or not executable: the loop watches the
// directory instead of retrying on a timer), RetryFork for resource
// shortages, RetryExec for other exec failures.
func RetryDelay(err error) time.Duration {
	switch {
	case errors.Is(err, syscall.ENOENT), errors.Is(err, syscall.EACCES):
		return 0
	case errors.Is(err, syscall.EAGAIN), errors.Is(err, syscall.ENOMEM),
		errors.Is(err, syscall.EMFILE), errors.Is(err, syscall.ENFILE):
		return RetryFork
	}
	return RetryExec
}
