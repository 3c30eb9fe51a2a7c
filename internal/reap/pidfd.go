package reap

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// Pidfd reaps the child that pidfd refers to, without blocking: ok is
// false when it has not exited, or is not (or no longer) a child of the
// caller that is still to be reaped.
//
// NOTE: waitid(P_PIDFD) looks at that one process only (the kernel's
// do_wait_pid, Linux ≥ 5.14), where wait4(-1) walks the caller's whole
// list of children (wait_consider_task on each, newest last): with
// thousands of children the walk, not the reaping, is the cost of a
// restart. A pidfd names one process for its whole life, so no pid
// recycled meanwhile can be reaped by mistake.
func Pidfd(pidfd int) (e Exit, ok bool) {
	var si siginfoChild
	for {
		err := unix.Waitid(unix.P_PIDFD, pidfd, (*unix.Siginfo)(unsafe.Pointer(&si)), unix.WEXITED|unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		// NOTE: with WNOHANG, a child that has not exited yet gives
		// success and si_pid 0 (waitid(2)); ECHILD: reaped already.
		if err != nil || si.Pid == 0 {
			return Exit{}, false
		}
		return Exit{Pid: int(si.Pid), Status: si.waitStatus()}, true
	}
}

// siginfoChild is the SIGCHLD part of the kernel's siginfo_t, which
// x/sys/unix leaves opaque (the same layout as Go's
// internal/syscall/unix.SiginfoChild).
type siginfoChild struct {
	Signo int32
	errnoCode
	_ [is64bit]int32 // the union is 8-aligned on 64-bit hosts
	// The union's SIGCHLD member.
	Pid    int32
	Uid    uint32
	Status int32
	_      [128 - (6+is64bit)*4]byte
}

const is64bit = int(unsafe.Sizeof(uintptr(0)) >> 3)

// si_code of a SIGCHLD (asm-generic/siginfo.h; x/sys/unix has no names).
const (
	cldExited = 1 // exited: si_status is the exit code
	cldKilled = 2 // killed: si_status is the signal
	cldDumped = 3 // killed, and dumped core
)

// waitStatus rebuilds the wait4-style status s6 stores (see [Wstat]).
func (si *siginfoChild) waitStatus() unix.WaitStatus {
	switch si.Code {
	case cldExited:
		return unix.WaitStatus(si.Status&0xff) << 8
	case cldKilled:
		return unix.WaitStatus(si.Status & 0x7f)
	case cldDumped:
		return unix.WaitStatus(si.Status&0x7f) | 0x80
	}
	return 0
}
