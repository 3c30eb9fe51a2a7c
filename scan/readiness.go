package scan

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/notifyfd"
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
	notifyDirName      = servicedir.ScanNotifyDir
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
	if err := makeNotifyDir(dir); err != nil {
		return "", err
	}
	l.ndir = dir
	return dir, nil
}

// makeNotifyDir makes dir, or takes it if it exists, mode 0755 whatever
// the umask.
//
// NOTE: the mode is set through an fd opened O_NOFOLLOW|O_DIRECTORY, and
// the directory must be ours: in the /tmp fallback anyone may have made
// that name first, and chmod(2) on a planted symlink would have made its
// target (say /etc) 0755. /tmp's sticky bit keeps others from replacing
// the directory once it is ours.
func makeNotifyDir(dir string) error {
	if err := os.Mkdir(dir, 0o755); err != nil && !os.IsExist(err) {
		return err
	}
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		if err == unix.ELOOP {
			err = errors.New("a symlink, not a directory")
		}
		return &os.PathError{Op: "open", Path: dir, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: dir, Err: err}
	}
	if int(st.Uid) != os.Geteuid() {
		return &os.PathError{Op: "open", Path: dir, Err: fmt.Errorf("owned by uid %d, not by this user", st.Uid)}
	}
	if err := unix.Fchmod(fd, 0o755); err != nil {
		return &os.PathError{Op: "fchmod", Path: dir, Err: err}
	}
	return nil
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
		fd, err := notifyfd.BindSocket(path, unix.SOCK_NONBLOCK)
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

func (l *loop) closeNotifySocket(s *service) {
	l.resumeSdNotify(s)
	for len(s.senders) > 0 {
		l.forgetSender(s, len(s.senders)-1)
	}
	if s.sdfd >= 0 {
		l.release(s.sdfd)
		os.Remove(s.sdpath)
		s.sdfd, s.sdpath = -1, ""
	}
}

// sd_notify flood control. A datagram costs the loop O(1) system calls
// whoever sends it: recvmsg, and a liveness probe of the sender's cached
// pidfd; /proc is read only the first time a sender is seen. Each sender
// gets a token bucket; what it sends beyond is dropped, counted and
// reported (once an hour, see warn). A wakeup handles at most sdBatch
// datagrams, so that a flood on one socket cannot starve the others.
//
// Dropping alone still costs a recvmsg per datagram, as fast as a
// flooder can send. So a socket that had a datagram dropped, or yielded a
// whole batch in one wakeup, is not read for sdPause: its queue fills up
// (net.unix.max_dgram_qlen) and the flooder's sendto blocks, which bounds
// what a flood costs the scanner to about sdBatch datagrams per sdPause.
// The run's own datagrams are delayed meanwhile, not dropped (a sender
// blocks on a full queue).
const (
	sdSendersMax = 8   // senders remembered per service (their pidfds are held)
	sdRate       = 100 // datagrams per second per sender, sustained
	sdBurst      = 200 // datagrams a sender may send at once
	sdBatch      = 64  // datagrams read per wakeup per socket
	sdPause      = 100 * time.Millisecond
)

// sdSender is one process that sent datagrams to a service's socket.
// The pidfd ties what was learnt (its session) to that very process: a
// pid is only looked up again once the pidfd says its process died, so a
// recycled pid never inherits another process's verdict. The session is
// read once: no process can join a session it was not born in, so an
// outsider stays one; a process of the run that calls setsid later keeps
// its verdict, which it earned as the run's.
type sdSender struct {
	pid     int
	pidfd   int
	sid     int       // session id when first seen (see below)
	tokens  float64   // token bucket
	filled  time.Time // when tokens was last refilled
	dropped int       // datagrams dropped by the rate limit
}

// readSdNotify handles the pending datagrams (at most sdBatch). Passed
// fds are closed; a datagram counts only if its sender is the main
// process (main) or in the run's session (all); MAINPID= only from the
// session.
func (l *loop) readSdNotify(s *service, fd int) {
	now := time.Now()
	read, dropped := 0, false
	defer func() {
		if (dropped || read == sdBatch) && s.sdfd == fd {
			l.pauseSdNotify(s, now.Add(sdPause))
		}
	}()
	for ; read < sdBatch; read++ {
		n, oobn, _, _, err := unix.Recvmsg(fd, l.buf[:], l.oob[:], unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
		if err != nil {
			return // EAGAIN: nothing more
		}
		sender := credentials(l.oob[:oobn])
		if s.m.State != supervise.Up || sender <= 0 {
			continue
		}
		snd := l.sdSender(s, sender, now)
		if snd == nil {
			continue // gone before it could be identified
		}
		if !snd.take(now) {
			snd.dropped++
			dropped = true
			l.warnSig(s, "sdflood", "sdflood", fmt.Sprintf("%s: dropping sd_notify datagrams from pid %d beyond %d a second (%d dropped so far)",
				s.dir, snd.pid, sdRate, snd.dropped))
			continue
		}
		if snd.sid != s.m.Pgid {
			continue // an impostor: not a process of this run
		}
		var msg [4096]byte
		l.sdNotify(s, msg[:copy(msg[:], l.buf[:n])], sender)
	}
}

// credentials walks the control messages of one datagram without
// allocating: it closes the fds passed with SCM_RIGHTS (nobody wants
// them) and returns the sender's pid from SCM_CREDENTIALS, or -1.
func credentials(oob []byte) int {
	const align = int(unsafe.Sizeof(uintptr(0)))
	hdr := unix.CmsgSpace(0)
	pid := -1
	for len(oob) >= hdr {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&oob[0]))
		size := int(h.Len)
		if size < hdr || size > len(oob) {
			break
		}
		data := oob[hdr:size]
		if h.Level == unix.SOL_SOCKET {
			switch h.Type {
			case unix.SCM_RIGHTS:
				for ; len(data) >= 4; data = data[4:] {
					unix.Close(int(int32(binary.NativeEndian.Uint32(data))))
				}
			case unix.SCM_CREDENTIALS:
				if len(data) >= unix.SizeofUcred {
					pid = int((*unix.Ucred)(unsafe.Pointer(&data[0])).Pid)
				}
			}
		}
		next := (size + align - 1) &^ (align - 1)
		if next >= len(oob) {
			break
		}
		oob = oob[next:]
	}
	return pid
}

// sdSender returns what s knows of sender pid, learning it (one /proc
// read) if it is new or if the process it knew under that pid died. nil
// if pid is already gone.
func (l *loop) sdSender(s *service, pid int, now time.Time) *sdSender {
	for i := range s.senders {
		x := &s.senders[i]
		if x.pid != pid {
			continue
		}
		// NOTE: signal 0 checks existence only; EPERM (a scanner that is
		// not root) still means alive.
		if unix.PidfdSendSignal(x.pidfd, 0, nil, 0) != unix.ESRCH {
			return x
		}
		l.forgetSender(s, i) // died: pid may now be somebody else's
		break
	}
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil
	}
	l.procReads++
	st, err := servicedir.ReadProcStat(pid)
	// The pidfd was opened before the read: if its process still lives
	// after it, what was read is that process's.
	if err != nil || unix.PidfdSendSignal(fd, 0, nil, 0) == unix.ESRCH {
		unix.Close(fd)
		return nil
	}
	if len(s.senders) == sdSendersMax {
		oldest := 0
		for i := range s.senders {
			if s.senders[i].filled.Before(s.senders[oldest].filled) {
				oldest = i
			}
		}
		l.forgetSender(s, oldest)
	}
	s.senders = append(s.senders, sdSender{pid: pid, pidfd: fd, sid: st.Sid, tokens: sdBurst, filled: now})
	return &s.senders[len(s.senders)-1]
}

func (l *loop) forgetSender(s *service, i int) {
	unix.Close(s.senders[i].pidfd)
	s.senders = append(s.senders[:i], s.senders[i+1:]...)
}

// take spends one token of the sender's bucket, refilled at sdRate a
// second up to sdBurst; false means the datagram is over the limit.
func (x *sdSender) take(now time.Time) bool {
	if d := now.Sub(x.filled); d > 0 {
		x.tokens = min(sdBurst, x.tokens+d.Seconds()*sdRate)
		x.filled = now
	}
	if x.tokens < 1 {
		return false
	}
	x.tokens--
	return true
}

// pauseSdNotify stops reading s's socket until until (see sdPause).
func (l *loop) pauseSdNotify(s *service, until time.Time) {
	if s.sdResume.armed() {
		return
	}
	ev := unix.EpollEvent{Fd: int32(s.sdfd)} // no events: not reported until resumed
	if unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, s.sdfd, &ev) != nil {
		return
	}
	s.sdResume.kind, s.sdResume.svc = tmSdResume, s
	l.timers.set(&s.sdResume, until)
}

// resumeSdNotify reads s's socket again, if it was paused.
func (l *loop) resumeSdNotify(s *service) {
	// NOTE: the timer has fired (expire disarmed it) or is stopped here;
	// at is cleared last, so a paused socket is one with at set.
	if s.sdResume.at.IsZero() {
		return
	}
	l.timers.stop(&s.sdResume)
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(s.sdfd)}
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, s.sdfd, &ev)
}

// sessionOf returns the session id of pid (field 6 of /proc/PID/stat).
func sessionOf(pid int) int {
	st, err := servicedir.ReadProcStat(pid)
	if err != nil {
		return -1
	}
	return st.Sid
}

// readProcStat is [servicedir.ReadProcStat] with a found flag: the
// scanner only asks whether a live process fits.
func readProcStat(pid int) (servicedir.ProcStat, bool) {
	st, err := servicedir.ReadProcStat(pid)
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
		if s.notifyMode == servicedir.NotifyMain && sender != s.m.Pid {
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
			l.writeState(s, statusTextFile, servicedir.FormatStatusText(val))
		case "EXTEND_TIMEOUT_USEC":
			if us, err := strconv.ParseUint(string(val), 10, 63); err == nil && !s.m.Ready {
				at := time.Now().Add(time.Duration(us) * time.Microsecond)
				l.writeState(s, readyDeadlineFile, servicedir.FormatReadyDeadline(at))
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
		l.warn(s, "state|"+rel, "unable to write %v", err)
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
	pid, err := l.sys.start(&supervise.Proc{Dir: s.dir, Path: "./" + servicedir.CheckFile,
		Argv: []string{servicedir.CheckFile, s.name}, Env: l.env, Files: []int{l.devnull, p[1], p[1]}, Via: l.via()})
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

// readCheckOutput keeps the first servicedir.MaxCheckOutput bytes of the check's
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
		if room := servicedir.MaxCheckOutput - len(s.checkOut); room > 0 {
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
