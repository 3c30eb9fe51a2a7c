package initd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Sys is the seam between PID 1's executor and the kernel for the calls a
// test must never make for real: reboot(2), and kill(-1) on the machine's
// processes. The unit tests drive the executor's end with a fake.
type Sys interface {
	// Machine reports whether this process is the real PID 1 of the
	// machine, which halts or reboots at the end instead of exiting.
	Machine() bool
	// KillAll sends sig to every process left: kill(-1) as PID 1 of a
	// namespace, else to each child of this process (a subreaper's
	// children include every orphaned descendant).
	KillAll(sig unix.Signal)
	Sync()
	Reboot(cmd int) error
}

// initPidNsIno is the inode number of the kernel's initial PID namespace
// (PROC_PID_INIT_INO in include/linux/proc_ns.h): every other PID
// namespace has another.
const initPidNsIno = 0xEFFFFFFC

type realSys struct{}

func (realSys) Machine() bool {
	if os.Getpid() != 1 {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err == nil {
		return st.Ino == initPidNsIno
	}
	// NOTE: no /proc (stage 1 of a machine mounts it): containers
	// always have one, and systemd's convention marks them anyway.
	return os.Getenv("container") == ""
}

func (realSys) KillAll(sig unix.Signal) {
	if os.Getpid() == 1 {
		unix.Kill(-1, sig) // every process of the PID namespace but PID 1
		return
	}
	for _, pid := range children() {
		unix.Kill(pid, sig)
	}
}

func (realSys) Sync() { unix.Sync() }

func (realSys) Reboot(cmd int) error { return unix.Reboot(cmd) }

// children lists this process's children, from every thread's
// /proc/self/task/TID/children (a child belongs to the thread that forked it).
func children() []int {
	var pids []int
	tasks, _ := filepath.Glob("/proc/self/task/*/children")
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if pid, err := strconv.Atoi(f); err == nil {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}

// rebootCmd is reboot(2)'s command for h.
func rebootCmd(h How) int {
	switch h {
	case Halt:
		return unix.LINUX_REBOOT_CMD_HALT
	case Poweroff:
		return unix.LINUX_REBOOT_CMD_POWER_OFF
	case Reboot:
		return unix.LINUX_REBOOT_CMD_RESTART
	}
	return 0
}
