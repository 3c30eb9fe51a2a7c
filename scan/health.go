package scan

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/reap"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// The executor of health checks (supervise/fsm_health.go decides when).
// The loop never blocks on a check:
//   - exec checks and the unhealthy hook are children in their own
//     session, reaped by reapAll like any child; a cut kills the group;
//   - tcp: and http:// checks are non-blocking sockets in the loop's
//     epoll set: connect, write the request, read the status line;
//   - https:// checks go to one shared pool of healthTLSWorkers goroutines
//     (health_tls.go): crypto/tls needs a blocking net.Conn, and a TLS
//     state machine in the loop would be a second TLS stack. The pool is
//     started at the first https check; results come back through the
//     loop's eventfd.
// No goroutine and no process per service: a check in flight holds one
// fd or one child; between checks a service holds nothing but healthRun.

// healthRespMax bounds what is kept of an HTTP response: its status line
// ("HTTP/1.1 200 OK") is all a check needs.
const healthRespMax = 32

// healthRun is the check state of one service.
type healthRun struct {
	check   servicedir.HealthCheck // read when checking starts for a run
	name    string                 // check.String(), kept: it names every state write
	bad     bool                   // health-check is invalid (reported by ReadConfig)
	fd      int                    // socket of a tcp/http check, or -1
	writing bool                   // http: connected, request not yet written
	pid     int                    // exec check, or 0
	hookPid int                    // unhealthy hook, or 0
	gen     uint32                 // numbers checks, so that a late TLS result is dropped
	resp    [healthRespMax]byte
	nresp   int
	written servicedir.HealthState // last content of supervise/gosv/health
}

// healthProcs maps the pids of exec checks and hooks to their service.
type healthProcs map[int]*service

func (l *loop) healthOf(s *service) *healthRun {
	if s.health == nil {
		s.health = &healthRun{fd: -1}
	}
	return s.health
}

// healthAction executes the health actions of s's machine.
func (l *loop) healthAction(s *service, a *supervise.Action) {
	h := l.healthOf(s)
	switch a.Kind {
	case supervise.ActHealthCheck:
		l.startCheck(s, h)
	case supervise.ActHealthCancel:
		l.cancelCheck(h)
	case supervise.ActHealthState:
		l.healthState(s, h, a.Health)
	case supervise.ActUnhealthy:
		l.runHook(s, h)
	case supervise.ActHookCancel:
		if h.hookPid > 0 {
			unix.Kill(-h.hookPid, unix.SIGKILL)
			h.hookPid = 0
		}
	}
}

// healthDone queues the result of the current check.
func (l *loop) healthDone(s *service, ok bool, msg string) {
	l.pending = append(l.pending, supervise.Event{Kind: supervise.EvHealthDone, OK: ok, Msg: msg})
}

// feedHealth feeds a result that arrived outside a feed (socket, reap).
func (l *loop) feedHealth(s *service, ok bool, msg string) {
	l.feed(s, supervise.Event{Kind: supervise.EvHealthDone, OK: ok, Msg: msg})
}

func (l *loop) startCheck(s *service, h *healthRun) {
	l.cancelCheck(h) // nothing runs, but never leak one
	h.gen++
	if h.bad || h.check.Kind == 0 {
		l.healthDone(s, false, "no valid "+servicedir.HealthCheckFile)
		return
	}
	switch h.check.Kind {
	case servicedir.HealthExec:
		pid, err := l.spawnHealth(s, h.check.Command)
		if err != nil {
			l.healthDone(s, false, err.Error())
			return
		}
		h.pid = pid
	case servicedir.HealthHTTPS:
		l.tlsCheck(s, h)
	default:
		if err := l.connectCheck(s, h); err != nil {
			l.healthDone(s, false, errText(err))
		}
	}
}

// cancelCheck forgets the running check: a late exit or TLS result is
// dropped (its pid or gen no longer matches).
func (l *loop) cancelCheck(h *healthRun) {
	if h.fd >= 0 {
		l.release(h.fd)
		h.fd = -1
	}
	if h.pid > 0 {
		unix.Kill(-h.pid, unix.SIGKILL)
		h.pid = 0
	}
	h.gen++
}

// spawnHealth starts an exec check or the hook: its own session (so the
// cut reaches its children), cwd the service directory, stdout to
// /dev/null and stderr to the scanner's.
func (l *loop) spawnHealth(s *service, command string) (int, error) {
	argv := servicedir.CommandArgv(command)
	if len(argv) == 0 {
		return 0, errors.New("empty command")
	}
	path := argv[0]
	if !strings.Contains(path, "/") {
		p, err := exec.LookPath(path)
		if err != nil {
			return 0, fmt.Errorf("%s: not found in PATH", path)
		}
		path = p
	}
	pid, err := supervise.Start(&supervise.Proc{Dir: s.dir, Path: path, Argv: argv, Env: l.healthEnv(), Files: []int{l.devnull, l.devnull, 2}, Via: l.via()})
	if err != nil {
		return 0, fmt.Errorf("unable to run %s: %v", argv[0], err)
	}
	if l.healthPids == nil {
		l.healthPids = healthProcs{}
	}
	l.healthPids[pid] = s
	return pid, nil
}

// healthEnv is the environment of exec checks and hooks: the scanner's,
// without the RC_, SSD_ and EINFO_ variables and SVCNAME, as
// supervise-daemon cleans its children's. An OpenRC script run as
// `/etc/init.d/NAME healthcheck` then sets up its own environment
// (openrc-run's env_filter and env_config), whoever started the scanner.
func (l *loop) healthEnv() []string {
	if l.henv != nil {
		return l.henv
	}
	for _, kv := range l.env {
		if strings.HasPrefix(kv, "RC_") || strings.HasPrefix(kv, "SSD_") || strings.HasPrefix(kv, "EINFO_") || strings.HasPrefix(kv, "SVCNAME=") {
			continue
		}
		l.henv = append(l.henv, kv)
	}
	if l.henv == nil {
		l.henv = []string{}
	}
	return l.henv
}

// healthExited routes the exit of a check or a hook; it reports whether
// pid was one.
func (l *loop) healthExited(e reap.Exit) bool {
	s, ok := l.healthPids[e.Pid]
	if !ok {
		return false
	}
	delete(l.healthPids, e.Pid)
	h := s.health
	switch {
	case h == nil:
	case h.pid == e.Pid:
		h.pid = 0
		ws := unix.WaitStatus(reap.Wstat(e.Status))
		l.feedHealth(s, ws.Exited() && ws.ExitStatus() == 0, exitText(ws))
	case h.hookPid == e.Pid:
		h.hookPid = 0
		l.feed(s, supervise.Event{Kind: supervise.EvHookDone})
	}
	return true
}

func exitText(ws unix.WaitStatus) string {
	if ws.Signaled() {
		return "killed by signal " + strconv.Itoa(int(ws.Signal()))
	}
	return "exit " + strconv.Itoa(ws.ExitStatus())
}

func (l *loop) runHook(s *service, h *healthRun) {
	cmd, ok, err := servicedir.ReadHealthUnhealthy(s.dir)
	if err == nil && ok {
		var pid int
		if pid, err = l.spawnHealth(s, cmd); err == nil {
			h.hookPid = pid
			return
		}
	}
	if err != nil {
		l.warn(s, "health-hook", "%s: unhealthy hook: %v", s.name, err)
	}
	l.pending = append(l.pending, supervise.Event{Kind: supervise.EvHookDone})
}

// healthState records a result in supervise/gosv/health when what the
// file says changes, and reads the check when checking starts for a run.
func (l *loop) healthState(s *service, h *healthRun, st servicedir.HealthState) {
	if st.Health == servicedir.HealthUnknown {
		c, _, err := servicedir.ReadHealthCheck(s.dir)
		h.check, h.bad, h.name = c, err != nil, checkName(&c)
		if !h.written.At.IsZero() {
			// The last run's result stays until this run's first one:
			// it says why the service was restarted.
			return
		}
	}
	st.Check = h.name
	w := h.written
	if w.Health == st.Health && w.Fails == st.Fails && w.Last == st.Last && w.Check == st.Check && w.Retries == st.Retries && !w.At.IsZero() {
		return
	}
	h.written = st
	if st.Health == servicedir.HealthUnhealthy {
		l.warnSig(s, "unhealthy", "unhealthy|"+st.At.String(), fmt.Sprintf("%s unhealthy: %s → %s (%d/%d); restarting", s.name, st.Check, st.Last, st.Fails, st.Retries))
	}
	if err := servicedir.WriteHealthState(s.dir, &st); err != nil {
		l.warn(s, "health-state", "unable to write %s: %v", servicedir.HealthStatePath, err)
	}
}

// checkName is how supervise/gosv/health names a check (servicedir.HealthState):
// "GET URL" for HTTP, "healthcheck()" for an OpenRC script's function
// (exec:/etc/init.d/NAME healthcheck), else the check as written.
func checkName(c *servicedir.HealthCheck) string {
	switch c.Kind {
	case servicedir.HealthHTTP, servicedir.HealthHTTPS:
		url, _, _ := strings.Cut(c.String(), " ")
		return "GET " + url
	case servicedir.HealthExec:
		if argv := servicedir.CommandArgv(c.Command); len(argv) == 2 && argv[1] == "healthcheck" && strings.HasSuffix(filepath.Dir(argv[0]), "/init.d") {
			return "healthcheck()"
		}
	}
	return c.String()
}

// configFallback says what the supervisor does about a bad config file:
// the default, except for health-check, which leaves the service unchecked.
func configFallback(err error) string {
	var pe *os.PathError
	if errors.As(err, &pe) && filepath.Base(pe.Path) == servicedir.HealthCheckFile {
		return "the service is not health-checked"
	}
	return "using the default"
}

// connectCheck starts a tcp: or http:// check: a non-blocking connect
// whose completion epoll reports (EPOLLOUT).
func (l *loop) connectCheck(s *service, h *healthRun) error {
	ap := h.check.Addr
	var sa unix.Sockaddr
	family := unix.AF_INET
	if ap.Addr().Is4() {
		sa = &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ap.Addr().As4()}
	} else {
		family = unix.AF_INET6
		sa = &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ap.Addr().As16()}
	}
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	err = unix.Connect(fd, sa)
	if err != nil && err != unix.EINPROGRESS {
		unix.Close(fd)
		return err
	}
	h.fd, h.writing, h.nresp = fd, true, 0
	events := uint32(unix.EPOLLOUT)
	if err == nil {
		// Connected at once (loopback usually is): no wakeup for the
		// connect, the request goes now.
		if ok, msg, done := l.healthStep(h); done {
			unix.Close(fd)
			h.fd = -1
			l.healthDone(s, ok, msg)
			return nil
		}
		events = unix.EPOLLIN | unix.EPOLLRDHUP
	}
	ev := unix.EpollEvent{Events: events, Fd: int32(fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		unix.Close(fd)
		return err
	}
	l.fds[int32(fd)] = fdOwner{kind: fdHealth, svc: s}
	return nil
}

// healthIO advances the socket check of s on an epoll event.
func (l *loop) healthIO(s *service, fd int) {
	h := s.health
	if h == nil || h.fd != fd {
		l.release(fd)
		return
	}
	ok, msg, done := l.healthStep(h)
	if done {
		l.release(fd)
		h.fd = -1
		l.feedHealth(s, ok, msg)
	}
}

// healthStep does what the socket is ready for; done says the check ended.
func (l *loop) healthStep(h *healthRun) (ok bool, msg string, done bool) {
	if h.writing {
		if e, err := unix.GetsockoptInt(h.fd, unix.SOL_SOCKET, unix.SO_ERROR); err != nil || e != 0 {
			if err == nil {
				err = unix.Errno(e)
			}
			return false, errText(err), true
		}
		if h.check.Kind == servicedir.HealthTCP {
			return true, "connected", true
		}
		req := fmt.Appendf(l.buf[:0], "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: gosv-health\r\nConnection: close\r\n\r\n",
			h.check.Path, hostHeader(&h.check))
		// NOTE: a fresh socket's send buffer holds far more than one
		// request line, so a short write means something is wrong.
		if n, err := unix.Write(h.fd, req); err != nil || n != len(req) {
			return false, "unable to send the request: " + errText(err), true
		}
		h.writing = false
		if _, ok := l.fds[int32(h.fd)]; ok { // registered: connect completed later
			ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: int32(h.fd)}
			unix.EpollCtl(l.ep, unix.EPOLL_CTL_MOD, h.fd, &ev)
		}
		return false, "", false
	}
	for {
		n, err := unix.Read(h.fd, l.buf[:])
		if err == unix.EAGAIN || err == unix.EINTR {
			return false, "", false
		}
		if err != nil {
			return false, errText(err), true
		}
		if n == 0 {
			return statusResult(&h.check, h.resp[:h.nresp], true)
		}
		h.nresp += copy(h.resp[h.nresp:], l.buf[:n])
		if ok, msg, done := statusResult(&h.check, h.resp[:h.nresp], false); done {
			return ok, msg, done
		}
	}
}

func hostHeader(c *servicedir.HealthCheck) string {
	def := uint16(80)
	if c.Kind == servicedir.HealthHTTPS {
		def = 443
	}
	host := c.Host
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	if c.Addr.Port() != def {
		host += ":" + strconv.Itoa(int(c.Addr.Port()))
	}
	return host
}

// statusResult reads the status line in resp ("HTTP/1.1 200 OK"); done
// is false while more bytes may complete it.
func statusResult(c *servicedir.HealthCheck, resp []byte, eof bool) (ok bool, msg string, done bool) {
	line, _, full := bytes.Cut(resp, []byte("\n"))
	full = full || len(resp) >= healthRespMax || eof
	if !full && len(resp) < len("HTTP/1.1 200 ") {
		return false, "", false
	}
	f := bytes.Fields(line)
	if len(f) < 2 || !bytes.HasPrefix(f[0], []byte("HTTP/")) {
		if eof && len(resp) == 0 {
			return false, "connection closed without a response", true
		}
		return false, fmt.Sprintf("not an HTTP response: %q", line), true
	}
	code, err := strconv.Atoi(string(f[1]))
	if err != nil || len(f[1]) != 3 {
		return false, fmt.Sprintf("bad HTTP status %q", f[1]), true
	}
	if code >= c.StatusLo && code <= c.StatusHi {
		return true, string(f[1]), true
	}
	want := c.Status
	if want == "" {
		want = "2xx"
	}
	return false, string(f[1]) + " (want " + want + ")", true
}

// errText is an error in the words of the health state ("connection refused").
func errText(err error) string {
	if err == nil {
		return "short write"
	}
	var en unix.Errno
	if errors.As(err, &en) {
		return en.Error()
	}
	return err.Error()
}

// dropHealth releases what an exiting service's check holds. A running
// hook is left to finish (its exit is reaped and dropped).
func (l *loop) dropHealth(s *service) {
	if h := s.health; h != nil {
		l.cancelCheck(h)
	}
}
