package scan

import (
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/supervise"
)

// procSys is the executor's seam to the kernel (dinit's bp_sys): what the
// loop does to processes, and its clock. Tests swap in a fake to check,
// with tables and no real process, the order in which feed and do carry
// out a machine's actions (service_test.go).
//
// Only what a test cannot do for real goes through it: starting a
// process, signalling one, asking which processes are in a group (a
// fake pid's group could be a real one), and the time the machine is
// stepped at. File actions (status, down, death_tally, the pid record)
// stay direct calls into internal/servicedir: a test runs them on a
// temporary service directory and reads the result there, at the
// moment the fake is asked to start a process when order matters.
type procSys interface {
	start(p *supervise.Proc) (int, error)
	kill(pid int, sig unix.Signal) error
	groupState(pgid int) (members []int, empty bool)
	now() time.Time
}

// kernel is the real procSys.
type kernel struct{}

func (kernel) start(p *supervise.Proc) (int, error) { return supervise.Start(p) }
func (kernel) kill(pid int, sig unix.Signal) error  { return unix.Kill(pid, sig) }
func (kernel) groupState(pgid int) ([]int, bool)    { return groupState(pgid) }
func (kernel) now() time.Time                       { return time.Now() }
