package openrc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// ioprioWhoProcess and ioprioClassShift are ioprio_set(2)'s constants.
const (
	ioprioWhoProcess = 1
	ioprioClassShift = 13
)

// Exec is the generated run: it applies the service's ExecConfig (read
// from dir, the service directory, which is the current directory when the
// supervisor runs it) to the current process and execs the command, in
// supervise-daemon's order (child_process): OpenRC's options, cgroup,
// nice, ionice, oom_score_adj, chroot, chdir, umask, groups and user,
// capabilities, securebits, no_new_privs, environment, stdio. It returns
// only on failure.
//
// NOTE: capabilities, securebits and no_new_privs are per thread, and the
// thread that calls execve passes them on: the goroutine stays locked to
// its thread from here to the exec.
func Exec(dir string) error {
	runtime.LockOSThread()
	ec, err := ReadExecConfig(dir)
	if err != nil {
		return err
	}
	if len(ec.Argv) == 0 {
		return errors.New("no command to run")
	}
	ec.recordSpawn(dir)
	for _, cg := range ec.Cgroups {
		// A failed join is not fatal: supervise-daemon never joins at all.
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte("0\n"), 0); err != nil {
			fmt.Fprintf(os.Stderr, "gosv openrc exec %s: warning: unable to join cgroup %s: %v\n", ec.Service, cg, err)
		}
	}
	if err := ec.priorities(); err != nil {
		return err
	}
	cred, err := ec.credentials()
	if err != nil {
		return err
	}
	if err := ec.enter(cred); err != nil {
		return err
	}
	if err := ec.privileges(cred); err != nil {
		return err
	}
	env := ec.environ()
	if err := ec.stdio(); err != nil {
		return err
	}
	path, err := lookPath(ec.Argv[0], env)
	if err != nil {
		return err
	}
	err = syscall.Exec(path, ec.Argv, env)
	return &os.PathError{Op: "exec", Path: path, Err: err}
}

// recordSpawn sets the OpenRC options supervise-daemon's child sets before
// each exec: start_time, start_count (the respawns since OpenRC started the
// service) and child_pid. Errors are ignored: they only cost rc-status its
// uptime column.
func (ec *ExecConfig) recordSpawn(dir string) {
	rc := RC{SvcDir: ec.RCSvcDir}
	deaths := deathsSinceStart(dir)
	rc.SetValue(ec.Service, "start_time", time.Now().Format("2006-01-02 15:04:05"))
	rc.SetValue(ec.Service, "start_count", strconv.Itoa(len(deaths)))
	rc.SetValue(ec.Service, "child_pid", strconv.Itoa(os.Getpid()))
}

// deathsSinceStart returns the deaths of supervise/death_tally after the
// last OpenRC start (openrc.start), oldest first.
func deathsSinceStart(dir string) []time.Time {
	since := startedAt(dir)
	tally, _ := servicedir.ReadDeathTally(dir)
	var out []time.Time
	for _, d := range tally {
		if t := d.Stamp; !t.Before(since) {
			out = append(out, t)
		}
	}
	return out
}

// startedAt is when OpenRC last started the service (openrc.start), or
// the zero time.
func startedAt(dir string) time.Time {
	if b, err := os.ReadFile(filepath.Join(dir, StartFile)); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(b)), 10, 64); err == nil {
			return time.Unix(0, n)
		}
	}
	return time.Time{}
}

func (ec *ExecConfig) priorities() error {
	if ec.Nice != nil {
		if err := unix.Setpriority(unix.PRIO_PROCESS, 0, *ec.Nice); err != nil {
			return os.NewSyscallError("setpriority", err)
		}
		// As supervise-daemon: the autogroup too, when the kernel has one.
		if f, err := os.OpenFile("/proc/self/autogroup", os.O_WRONLY, 0); err == nil {
			fmt.Fprintf(f, "%d\n", *ec.Nice)
			f.Close()
		}
	}
	if io := ec.IONice; io != nil {
		prio := io.Class<<ioprioClassShift | io.Data
		if _, _, e := unix.Syscall(unix.SYS_IOPRIO_SET, ioprioWhoProcess, 0, uintptr(prio)); e != 0 {
			return os.NewSyscallError("ioprio_set", e)
		}
	}
	if ec.OOMScoreAdj != nil {
		if err := os.WriteFile("/proc/self/oom_score_adj", []byte(strconv.Itoa(*ec.OOMScoreAdj)+"\n"), 0); err != nil {
			return err
		}
	}
	return nil
}

// cred is who the command runs as.
type cred struct {
	set    bool
	uid    int
	gid    int
	groups []int
	home   string
	name   string
}

// credentials looks the user and group up before any chroot, in the
// system's databases.
func (ec *ExecConfig) credentials() (cred, error) {
	var c cred
	if ec.User == "" && ec.Group == "" {
		return c, nil
	}
	c.set, c.uid, c.gid = true, os.Getuid(), os.Getgid()
	if ec.User != "" {
		u, err := lookupUser(ec.User)
		if err != nil {
			return c, fmt.Errorf("look up user %q: %w", ec.User, err)
		}
		c.uid, _ = strconv.Atoi(u.Uid)
		c.gid, _ = strconv.Atoi(u.Gid)
		c.home, c.name = u.HomeDir, u.Username
		if ids, err := groupIDs(u); err == nil {
			c.groups = ids
		}
	}
	if ec.Group != "" {
		g, err := lookupGroup(ec.Group)
		if err != nil {
			return c, fmt.Errorf("look up group %q: %w", ec.Group, err)
		}
		c.gid, _ = strconv.Atoi(g.Gid)
	}
	return c, nil
}

// enter applies chroot, directory and umask.
func (ec *ExecConfig) enter(c cred) error {
	if ec.Chroot != "" {
		if err := unix.Chroot(ec.Chroot); err != nil {
			return &os.PathError{Op: "chroot", Path: ec.Chroot, Err: err}
		}
		if ec.Directory == "" {
			ec.Directory = "/"
		}
	}
	if ec.Directory != "" {
		if err := unix.Chdir(ec.Directory); err != nil {
			return &os.PathError{Op: "chdir", Path: ec.Directory, Err: err}
		}
	}
	if ec.Umask != "" {
		n, err := strconv.ParseUint(ec.Umask, 8, 32)
		if err != nil {
			return fmt.Errorf("umask %q: not octal", ec.Umask)
		}
		unix.Umask(int(n))
	}
	return nil
}

// privileges switches user and group, then sets capabilities, securebits
// and no_new_privs.
func (ec *ExecConfig) privileges(c cred) error {
	var iab *IAB
	if ec.Capabilities != "" {
		v, err := ParseIAB(ec.Capabilities)
		if err != nil {
			return err
		}
		iab = &v
	}
	if c.set {
		if iab != nil && c.uid != 0 {
			// Keep the permitted set across setuid, as libcap's cap_setuid.
			if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
				return os.NewSyscallError("prctl PR_SET_KEEPCAPS", err)
			}
		}
		if err := syscall.Setgroups(c.groups); err != nil {
			return os.NewSyscallError("setgroups", err)
		}
		if err := syscall.Setgid(c.gid); err != nil {
			return os.NewSyscallError("setgid", err)
		}
		if err := syscall.Setuid(c.uid); err != nil {
			return os.NewSyscallError("setuid", err)
		}
	}
	if iab != nil {
		if err := setIAB(*iab); err != nil {
			return err
		}
	}
	if ec.Secbits != nil {
		if err := unix.Prctl(unix.PR_SET_SECUREBITS, uintptr(*ec.Secbits), 0, 0, 0); err != nil {
			return os.NewSyscallError("prctl PR_SET_SECUREBITS", err)
		}
	}
	if ec.NoNewPrivs {
		if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
			return os.NewSyscallError("prctl PR_SET_NO_NEW_PRIVS", err)
		}
	}
	if c.set && c.home != "" {
		ec.Env = setEnv(ec.Env, "HOME", c.home)
		ec.Env = setEnv(ec.Env, "USER", c.name)
		ec.Env = setEnv(ec.Env, "LOGNAME", c.name)
	}
	return nil
}

// setIAB applies an IAB the way cap_iab_set_proc does: the effective set
// is raised to the permitted one (CAP_SETPCAP is needed to drop bounding
// capabilities), the inheritable set is replaced, the bounding drops are
// made, then the ambient set is replaced.
func setIAB(iab IAB) error {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capget", err)
	}
	for i := range data {
		data[i].Effective = data[i].Permitted
		data[i].Inheritable = uint32(iab.Inh >> (32 * i))
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	for n := range 64 {
		if iab.Drop&(1<<n) != 0 {
			if err := unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(n), 0, 0, 0); err != nil {
				return os.NewSyscallError("prctl PR_CAPBSET_DROP", err)
			}
		}
	}
	if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0); err != nil && err != unix.EINVAL {
		return os.NewSyscallError("prctl PR_CAP_AMBIENT_CLEAR_ALL", err)
	}
	for n := range 64 {
		if iab.Amb&(1<<n) != 0 {
			if err := unix.Prctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(n), 0, 0); err != nil {
				return os.NewSyscallError("prctl PR_CAP_AMBIENT_RAISE "+capName(n), err)
			}
		}
	}
	return nil
}

func capName(n int) string {
	if n < len(capNames) {
		return "cap_" + capNames[n]
	}
	return strconv.Itoa(n)
}

// supervisorVars are set by the supervisor for the service (sd_notify and
// its watchdog) and pass through the exec helper.
var supervisorVars = []string{"NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"}

func (ec *ExecConfig) environ() []string {
	env := ec.Env
	for _, name := range supervisorVars {
		if v, ok := os.LookupEnv(name); ok {
			env = setEnv(env, name, v)
		}
	}
	return env
}

func setEnv(env []string, name, val string) []string {
	for i, kv := range env {
		if strings.HasPrefix(kv, name+"=") {
			out := append([]string{}, env...)
			out[i] = name + "=" + val
			return out
		}
	}
	return append(append([]string{}, env...), name+"="+val)
}

// stdio redirects stdin, stdout and stderr as configured; an empty value
// keeps what the supervisor gave (the log pipe or the catch-all log).
func (ec *ExecConfig) stdio() error {
	if ec.Stdin != "" {
		if err := redirect(0, ec.Stdin, unix.O_RDONLY); err != nil {
			return err
		}
	}
	if ec.Stdout != "" {
		if err := redirect(1, ec.Stdout, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND); err != nil {
			return err
		}
	}
	switch ec.Stderr {
	case "":
	case "&1":
		if err := unix.Dup2(1, 2); err != nil {
			return os.NewSyscallError("dup2", err)
		}
	default:
		if err := redirect(2, ec.Stderr, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND); err != nil {
			return err
		}
	}
	return nil
}

// redirect opens path (mode 0600 when created, as supervise-daemon) onto fd.
func redirect(fd int, path string, flags int) error {
	nfd, err := unix.Open(path, flags|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(nfd)
	// NOTE: dup2 clears FD_CLOEXEC on the new descriptor.
	if err := unix.Dup2(nfd, fd); err != nil {
		return os.NewSyscallError("dup2", err)
	}
	return nil
}

// lookPath is execvp's search, in the daemon's PATH.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	path := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v
		}
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		if unix.Access(p, unix.X_OK) == nil {
			if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
				return p, nil
			}
		}
	}
	return "", &os.PathError{Op: "find", Path: file, Err: errors.New("not found in PATH")}
}
