package supervise

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// ReadConfig reads the configuration files of service directory dir that
// the machine needs: down-signal, timeout-kill, timeout-finish,
// timeout-watchdog, whether an executable check exists, timeout-check
// (read only when it does), pidfile with timeout-pidfile (forking
// mode), and the health check files. A missing file means its default; an invalid one means its
// default plus an error in warns (s6 warns and goes on), so supervision
// never stops on a bad config file.
func ReadConfig(dir string, warns []error) (Config, []error) {
	return ReadConfigIn(dir, &servicedir.Present{}, warns)
}

// ReadConfigIn is [ReadConfig] with a listing of dir: a file the listing
// did not find is not opened, it has its default.
func ReadConfigIn(dir string, p *servicedir.Present, warns []error) (Config, []error) {
	c := DefaultConfig
	var sig unix.Signal = unix.SIGTERM
	var err error
	if p.Has(servicedir.DownSignalFile) {
		sig, err = servicedir.ReadDownSignal(dir)
	}
	if err == nil && sig == 0 {
		// skalibs accepts 0, but a null down-signal would stop nothing.
		err = configError(filepath.Join(dir, servicedir.DownSignalFile), "signal 0 stops nothing")
	}
	if err != nil {
		warns = append(warns, err)
		sig = unix.SIGTERM
	}
	c.DownSignal = sig
	warns = readMillis(dir, p, servicedir.TimeoutKillFile, &c.TimeoutKill, warns)
	warns = readMillis(dir, p, servicedir.TimeoutFinishFile, &c.TimeoutFinish, warns)
	c.Check = p.Has(servicedir.CheckFile) && unix.Access(filepath.Join(dir, servicedir.CheckFile), unix.X_OK) == nil
	if c.Check {
		warns = readMillis(dir, p, servicedir.TimeoutCheckFile, &c.TimeoutCheck, warns)
	}
	if !p.Has(servicedir.PidfileFile) {
		// not forking
	} else if _, ok, err := servicedir.ReadPidfileFile(dir); err != nil {
		warns = append(warns, err) // not forking: the run is supervised as it is
	} else if ok {
		c.Forking = true
		warns = readMillis(dir, p, servicedir.TimeoutPidfileFile, &c.TimeoutPidfile, warns)
		for _, f := range []string{servicedir.NotificationFDFile, servicedir.NotificationSocketFile} {
			if p.Has(f) && unix.Access(filepath.Join(dir, f), unix.F_OK) == nil {
				c.NotifyReady = true
			}
		}
	}
	warns = readMillis(dir, p, servicedir.TimeoutWatchdogFile, &c.Watchdog, warns)
	c.Policy, warns = readPolicy(dir, p, warns)
	warns = readHealth(dir, p, &c, warns)
	return c, warns
}

// readPolicy reads the restart-policy files (PROTOCOL.md §9.6); each
// missing or invalid one keeps its default.
func readPolicy(dir string, ls *servicedir.Present, warns []error) (Policy, []error) {
	p := DefaultPolicy
	warns = readMillis(dir, ls, servicedir.RespawnDelayFile, &p.Delay, warns)
	warns = readMillis(dir, ls, servicedir.RespawnDelayMaxFile, &p.DelayMax, warns)
	warns = readMillis(dir, ls, servicedir.RespawnPeriodFile, &p.Period, warns)
	if p.Period > 0 {
		p.Reset = p.Period // respawn-reset defaults to respawn-period
	}
	warns = readMillis(dir, ls, servicedir.RespawnResetFile, &p.Reset, warns)
	if !ls.Has(servicedir.RespawnMaxFile) {
		// the default
	} else if v, ok, err := servicedir.ReadUintFile(dir, servicedir.RespawnMaxFile); err != nil {
		warns = append(warns, err)
	} else if ok {
		p.Max = int(v)
	}
	var err error
	if !ls.Has(servicedir.RespawnOnFile) {
		// the default
	} else if p.On, err = servicedir.ReadRespawnOn(dir); err != nil {
		warns = append(warns, err)
	}
	if !ls.Has(servicedir.SuccessExitFile) {
		// the default
	} else if p.Success, err = servicedir.ReadSuccessExits(dir); err != nil {
		warns = append(warns, err)
	}
	return p, warns
}

// readMillis sets *d from the uint file dir/name, in milliseconds, when it
// exists (and listing p has it) and is valid; an invalid one leaves *d
// and adds to warns.
func readMillis(dir string, p *servicedir.Present, name string, d *time.Duration, warns []error) []error {
	if !p.Has(name) {
		return warns
	}
	v, ok, err := servicedir.ReadUintFile(dir, name)
	switch {
	case err != nil:
		return append(warns, err)
	case ok:
		*d = time.Duration(v) * time.Millisecond
	}
	return warns
}

// ReadNotificationFd returns the fd number in dir/notification-fd, or -1.
//
// The number must be at least 3 (0-2 are the service's stdio; s6 accepts
// them but the result is never what the user meant) and below the
// scanner's RLIMIT_NOFILE soft limit: the pipe is dup'ed to that number
// before exec, and a number at or above the limit makes every spawn fail
// with EBADF. The error names the file and the bound.
func ReadNotificationFd(dir string) (int, error) {
	p := filepath.Join(dir, servicedir.NotificationFDFile)
	v, ok, err := servicedir.ReadUintFile(dir, servicedir.NotificationFDFile)
	if err != nil || !ok {
		return -1, err
	}
	if v < 3 {
		return -1, configError(p, fmt.Sprintf("fd %d is one of stdin, stdout, stderr (must be at least 3)", v))
	}
	if max := maxFd(); v > max {
		return -1, configError(p, fmt.Sprintf("fd %d is above the open-file limit (must be at most %d, RLIMIT_NOFILE %d)", v, max, max+1))
	}
	return int(v), nil
}

// maxFd is the highest fd number this process can dup to: RLIMIT_NOFILE
// minus one (the Go runtime raised the soft limit to the hard one at
// startup; children get the original soft limit back only after the fd
// shuffle, which is what matters here).
func maxFd() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil || rl.Cur == 0 {
		return 1<<20 - 1 // fs.nr_open's default
	}
	return rl.Cur - 1
}

// ReadMaxDeathTally returns max-death-tally (default 100, capped at 4096).
func ReadMaxDeathTally(dir string) (int, error) {
	v, ok, err := servicedir.ReadUintFile(dir, servicedir.MaxDeathTallyFile)
	switch {
	case err != nil || !ok:
		return 100, err
	case v > 4096:
		return 4096, nil
	}
	return int(v), nil
}

// configError is the error of a configuration file with a valid syntax
// but an unusable value: the shape of servicedir's errors, naming the file.
func configError(path, msg string) error {
	return &os.PathError{Op: "parse", Path: path, Err: errors.New(msg)}
}
