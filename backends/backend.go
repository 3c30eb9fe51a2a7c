package backends

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/svwait"
)

// Service names one service of a backend.
type Service struct {
	Name string // its name in the backend's scan directory (RC_SVCNAME)
	Dir  string // its service directory
}

// StartOptions say what Start waits for. Goals are svwait's, s6-svwait's
// letters: whatever supervises the service, a wait means the same.
type StartOptions struct {
	Goal    svwait.Goal
	Timeout time.Duration // 0 = no limit
	// StartWait, with Goal svwait.Up: once up, the process must stay up
	// this long, or the start fails with how it died (OpenRC's start_wait).
	StartWait time.Duration
}

// StopOptions say how long Stop waits.
type StopOptions struct {
	Timeout time.Duration // 0 = no limit
}

// Status is a service's state as its backend sees it.
type Status struct {
	Supervised     bool // a supervisor holds the service
	SupervisorDead bool // the service was supervised and its supervisor died (pid alive or not)
	Up, Ready      bool
	WantUp         bool
	Pid            int       // the run process while up (or an orphan left by a dead supervisor)
	Since          time.Time // last up/down transition
	ReadySince     time.Time
	Wstat          uint16 // raw wait status of the last death
	Deaths         int    // deaths counted since the service was started
	// Line is a one-line summary in s6-svstat's words.
	Line string
}

// Backend runs services for OpenRC. Implementations are safe for use by
// one goroutine at a time per service.
type Backend interface {
	// Start makes the backend supervise svc and waits, within
	// opts.Timeout, until it reaches opts.Goal. On failure nothing is
	// left supervised or running, and the error is a *StartError.
	Start(ctx context.Context, svc Service, opts StartOptions) error
	// Stop brings svc down, waits for it within opts.Timeout, and stops
	// supervising it.
	Stop(ctx context.Context, svc Service, opts StopOptions) error
	// Status reports svc's state.
	Status(svc Service) (Status, error)
	// Signal sends sig to svc's process (reload).
	Signal(svc Service, sig unix.Signal) error
	// Wait waits until svc reaches goal or ctx ends.
	Wait(ctx context.Context, svc Service, goal svwait.Goal) error
}

// FileChecker is implemented by a backend whose supervisor cannot honour
// every file gosv may put in a service directory: CheckFiles returns an
// error naming the feature of the first of names (relative to the
// directory) it cannot honour, so that `gosv openrc check` reports it
// before any start does.
type FileChecker interface {
	CheckFiles(names []string) error
}

// GosvUser is implemented by a backend whose generated directories run
// a gosv command (gosv notifyoncheck): UseGosv names the gosv binary to
// run. Without it the backend runs its own executable, which is not gosv
// when the hook's lean client (gosv-openrc) drives the backend.
type GosvUser interface {
	UseGosv(path string)
}

// ErrNoSupervisor is returned when the backend's supervisor (the scanner)
// is not running.
var ErrNoSupervisor = errors.New("the supervisor is not running")

// ErrNotUp is returned by Signal when the service has no process.
var ErrNotUp = errors.New("the service is not up")

// LinkDir makes link, a scan directory's entry, a symlink to dir,
// replacing a link to another directory; anything else there is an error
// naming it.
func LinkDir(link, dir string) error {
	if target, err := os.Readlink(link); err == nil {
		if target == dir {
			return nil
		}
		if err := os.Remove(link); err != nil {
			return err
		}
	}
	err := os.Symlink(dir, link)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists and is not a symlink", link)
	}
	return err
}

// SignalUp sends sig to the process of a service whose status b reports
// up (what every backend's Signal does), or returns [ErrNotUp].
func SignalUp(b Backend, svc Service, sig unix.Signal) error {
	s, err := b.Status(svc)
	if err != nil {
		return err
	}
	if !s.Up || s.Pid <= 0 {
		return ErrNotUp
	}
	if err := unix.Kill(s.Pid, sig); err != nil {
		return os.NewSyscallError("kill", err)
	}
	return nil
}

// StartError says why a start failed, in words for the operator.
type StartError struct {
	Service string
	Reason  string // "died with exit code 3", "not ready within 5s", ...
	Err     error  // the underlying error, if any
}

func (e *StartError) Error() string {
	var b strings.Builder
	b.WriteString(e.Service)
	b.WriteString(": ")
	b.WriteString(e.Reason)
	return b.String()
}

func (e *StartError) Unwrap() error { return e.Err }
