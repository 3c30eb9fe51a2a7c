package scan

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/reap"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// Readiness sources besides notification-fd: sd_notify datagrams on a
// per-service socket, and a ./check script. Both feed the machine's one
// ready flag (EvReady), on every restart.

// gosv-only state files (PROTOCOL.md §9.2).
const (
	notifySocketRecord = servicedir.NotifySocketRecordPath
	statusTextFile     = servicedir.StatusTextPath
	readyDeadlineFile  = servicedir.ReadyDeadlinePath
	checkOutputFile    = servicedir.CheckOutputPath

	maxStatusText  = 256  // bytes of STATUS= kept
	maxCheckOutput = 4096 // bytes of a failed check's output kept
	notifyDirName  = ".gosv-notify"
)

// notifyDir is where sd_notify sockets live: outside supervise/ (0700),
// so that a daemon that dropped privileges can still reach its socket.
// The directory is searchable by all; each socket is 0666 and only
// datagrams whose SCM_CREDENTIALS match the service count.
func (l *loop) notifyDir() (string, error) {
	if l.ndir != "" {
		return l.ndir, nil
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("gosv-notify-%d", os.Getuid()))
	if l.sc != nil {
		dir = filepath.Join(l.sc.dir, notifyDirName)
	} else if unix.Access("/run", unix.W_OK) == nil {
		dir = "/run/gosv-notify"
	}
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	l.ndir = dir
	return dir, nil
}

// openNotifySocket makes s's datagram socket if it has none, and returns
// the environment entries that tell the service where it is.
func (l *loop) openNotifySocket(s *service) ([]string, error) {
	if s.sdfd < 0 {
		dir, err := l.notifyDir()
		if err != nil {
			return nil, err
		}
		var st unix.Stat_t
		if err := unix.Stat(s.dir, &st); err != nil {
			return nil, &os.PathError{Op: "stat", Path: s.dir, Err: err}
		}
		path := filepath.Join(dir, fmt.Sprintf("%d-%d.sock", st.Dev, st.Ino))
		fd, err := bindNotifySocket(path)
		if err != nil {
			return nil, err
		}
		s.sdfd, s.sdpath = fd, path
		l.register(fd, fdOwner{kind: fdSdNotify, svc: s})
		servicedir.WriteFile(s.dir, notifySocketRecord, []byte(path+"\n"))
	}
	env := []string{"NOTIFY_SOCKET=" + s.sdpath}
	if s.m.Cfg.Watchdog > 0 {
		env = append(env, "WATCHDOG_USEC="+strconv.FormatInt(s.m.Cfg.Watchdog.Microseconds(), 10))
	}
	return env, nil
}

func bindNotifySocket(path string) (int, error) {
	if len(path) >= len(unix.RawSockaddrUnix{}.Path) {
		return -1, &os.PathError{Op: "bind", Path: path, Err: unix.ENAMETOOLONG}
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, os.NewSyscallError("socket", err)
	}
	os.Remove(path) // a socket left by a scanner that was killed
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "bind", Path: path, Err: err}
	}
	// NOTE: sendto(2) on a unix socket needs write permission on it.
	if err := unix.Chmod(path, 0o666); err == nil {
		err = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}
	if err != nil {
		unix.Close(fd)
		os.Remove(path)
		return -1, &os.PathError{Op: "setup", Path: path, Err: err}
	}
	return fd, nil
}

func (l *loop) closeNotifySocket(s *service) {
	if s.sdfd >= 0 {
		l.release(s.sdfd)
		os.Remove(s.sdpath)
		s.sdfd, s.sdpath = -1, ""
	}
}

// readSdNotify handles every pending datagram. Passed fds are closed; a
// datagram counts only if its sender is the main process (main) or in the
// run's session (all); MAINPID= only from the session.
func (l *loop) readSdNotify(s *service, fd int) {
	for {
		n, oobn, _, _, err := unix.Recvmsg(fd, l.buf[:], l.oob[:], unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			return // EAGAIN: nothing more
		}
		sender := -1
		if msgs, err := unix.ParseSocketControlMessage(l.oob[:oobn]); err == nil {
			for i := range msgs {
				if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
					for _, f := range fds {
						unix.Close(f)
					}
				}
				if c, err := unix.ParseUnixCredentials(&msgs[i]); err == nil {
					sender = int(c.Pid)
				}
			}
		}
		if s.m.State != supervise.Up || sender <= 0 {
			continue
		}
		if sessionOf(sender) != s.m.Pgid {
			continue // an impostor: not a process of this run
		}
		var msg [4096]byte
		l.sdNotify(s, msg[:copy(msg[:], l.buf[:n])], sender)
	}
}

// sessionOf returns the session id of pid (field 6 of /proc/PID/stat).
func sessionOf(pid int) int {
	st, ok := readProcStat(pid)
	if !ok {
		return -1
	}
	return st.sid
}

// procStat holds the fields of /proc/PID/stat that gosv needs.
type procStat struct {
	state           byte
	ppid, pgrp, sid int
}

// readProcStat parses /proc/PID/stat after the last ')' (the command name
// may hold blanks and parentheses).
func readProcStat(pid int) (procStat, bool) {
	var st procStat
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return st, false
	}
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return st, false
	}
	_, err = fmt.Sscanf(string(b[i+1:]), " %c %d %d %d", &st.state, &st.ppid, &st.pgrp, &st.sid)
	return st, err == nil
}

// sdNotify applies the assignments of one datagram from sender, a process
// of the run's session, in order. MAINPID= counts from any process of the
// session (a forking daemon's parent or the child itself may send it); the
// other assignments only from the main process, unless the mode is "all".
func (l *loop) sdNotify(s *service, msg []byte, sender int) {
	for len(msg) > 0 && s.m.State == supervise.Up {
		var line []byte
		line, msg, _ = bytes.Cut(msg, []byte{'\n'})
		key, val, ok := bytes.Cut(line, []byte{'='})
		if !ok {
			continue
		}
		if string(key) == "MAINPID" {
			if pid, err := strconv.Atoi(string(val)); err == nil {
				l.setMainPid(s, pid)
			}
			continue
		}
		if s.notifyMode == supervise.NotifyMain && sender != s.m.Pid {
			continue
		}
		switch string(key) {
		case "READY":
			if string(val) == "1" {
				l.feed(s, supervise.Event{Kind: supervise.EvReady})
			}
		case "RELOADING":
			if string(val) == "1" {
				l.feed(s, supervise.Event{Kind: supervise.EvNotReady})
			}
		case "WATCHDOG":
			if string(val) == "1" {
				l.feed(s, supervise.Event{Kind: supervise.EvWatchdog})
			}
		case "STATUS":
			if len(val) > maxStatusText {
				val = val[:maxStatusText]
			}
			l.writeState(s, statusTextFile, append(val, '\n'))
		case "EXTEND_TIMEOUT_USEC":
			if us, err := strconv.ParseUint(string(val), 10, 63); err == nil && !s.m.Ready {
				at := servicedir.TAI64NFromTime(time.Now().Add(time.Duration(us) * time.Microsecond))
				l.writeState(s, readyDeadlineFile, []byte(at.String()+"\n"))
				l.notify(s, "e")
			}
		}
		// STOPPING=1 and unknown assignments are accepted and ignored.
	}
}

// setMainPid makes pid the service's main process: its exit is the
// service's death, whether or not it is our child.
func (l *loop) setMainPid(s *service, pid int) {
	if pid <= 0 || pid == s.m.Pid || sessionOf(pid) != s.m.Pgid {
		return
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return
	}
	delete(l.byPid, s.m.Pid) // the old main process's exit no longer counts
	if s.pidfd >= 0 {
		l.release(s.pidfd)
	}
	s.pidfd = fd
	l.register(fd, fdOwner{kind: fdAdopted, svc: s, pid: pid})
	l.byPid[pid] = s
	l.feed(s, supervise.Event{Kind: supervise.EvMainPid, Pid: pid})
}

// writeState writes a gosv-only state file of s, remembering to clear it
// at the next spawn.
func (l *loop) writeState(s *service, rel string, data []byte) {
	s.stateFiles = true
	if err := servicedir.WriteFile(s.dir, rel, data); err != nil {
		l.warnf("unable to write %v", err)
	}
}

// clearState removes the per-run state files at a spawn.
func (l *loop) clearState(s *service) {
	if !s.stateFiles {
		return
	}
	s.stateFiles = false
	for _, rel := range []string{statusTextFile, readyDeadlineFile, checkOutputFile} {
		os.Remove(filepath.Join(s.dir, rel))
	}
}

// spawnCheck runs ./check NAME in its own session with its output on a
// pipe the loop reads (bounded), never blocking the loop.
func (l *loop) spawnCheck(s *service) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		s.checkOut = append(s.checkOut[:0], "unable to create a pipe for ./check: "+err.Error()...)
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvCheckDone, Unknown: true})
		return
	}
	unix.SetNonblock(p[0], true)
	pid, err := supervise.Start(&supervise.Proc{Dir: s.dir, Path: "./" + supervise.CheckFile,
		Argv: []string{supervise.CheckFile, s.name}, Env: l.env, Files: []int{l.devnull, p[1], p[1]}})
	unix.Close(p[1])
	if err != nil {
		unix.Close(p[0])
		s.checkOut = append(s.checkOut[:0], "unable to spawn ./check: "+err.Error()...)
		l.pending = append(l.pending, supervise.Event{Kind: supervise.EvCheckDone, Unknown: true})
		return
	}
	s.checkFd, s.checkOut = p[0], s.checkOut[:0]
	l.register(p[0], fdOwner{kind: fdCheckOut, svc: s})
	l.checks[pid] = s
	l.pending = append(l.pending, supervise.Event{Kind: supervise.EvCheckStarted, Pid: pid})
}

// readCheckOutput keeps the first maxCheckOutput bytes of the check's
// output and drains the rest.
func (l *loop) readCheckOutput(s *service) {
	for s.checkFd >= 0 {
		n, err := unix.Read(s.checkFd, l.buf[:])
		if err == unix.EAGAIN || err == unix.EINTR {
			return
		}
		if n <= 0 {
			l.release(s.checkFd)
			s.checkFd = -1
			return
		}
		if room := maxCheckOutput - len(s.checkOut); room > 0 {
			s.checkOut = append(s.checkOut, l.buf[:min(n, room)]...)
		}
	}
}

// checkExited routes the exit of a check run to its machine.
func (l *loop) checkExited(s *service, e reap.Exit) {
	l.readCheckOutput(s)
	if s.checkFd >= 0 {
		l.release(s.checkFd)
		s.checkFd = -1
	}
	l.feed(s, supervise.Event{Kind: supervise.EvCheckDone, Pid: e.Pid, Wstat: reap.Wstat(e.Status)})
}

// checkFailed records why the last check failed and sends event c.
func (l *loop) checkFailed(s *service, wstat uint16) {
	out := bytes.TrimRight(s.checkOut, "\n")
	ws := unix.WaitStatus(wstat)
	switch {
	case len(s.checkOut) > 0 && bytes.HasPrefix(s.checkOut, []byte("unable to")):
	case ws.Signaled():
		out = fmt.Appendf(out, "\n(./check killed by signal %d)", ws.Signal())
	default:
		out = fmt.Appendf(out, "\n(./check exited %d)", ws.ExitStatus())
	}
	l.writeState(s, checkOutputFile, append(bytes.TrimLeft(out, "\n"), '\n'))
	s.checkOut = nil
	l.notify(s, "c")
}
