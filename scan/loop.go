package scan

import (
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/logdir"
	"github.com/gosv/gosv/internal/reap"
	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/spawner"
	"github.com/gosv/gosv/internal/supervise"
	"github.com/gosv/gosv/internal/warnlimit"
)

// Config says what to supervise and how to report.
type Config struct {
	Prog       string        // message prefix, e.g. "gosv svscan"
	ScanDir    string        // scanner mode: the scan directory
	ServiceDir string        // supervise mode: the one service directory
	Rescan     time.Duration // -t: periodic full rescan; 0 = only on events
	NotifyFd   int           // -d: write "\n" there once ready; -1 = none
	Stderr     io.Writer     // warnings
	// Metrics (metrics.go): serve /metrics on MetricsListen (a bare port:
	// loopback), keep the node_exporter textfile MetricsTextfile.
	MetricsListen   string
	MetricsTextfile string
	Init            Init // gosv init: PID 1's side of the loop (init.go); nil otherwise
	// Spawner: in scanner mode, fork services from a helper process
	// (internal/spawner): this binary re-executed as gosv-spawner, which
	// must call spawner.Serve(3) (cmd/gosv does). Off, the loop forks
	// itself, which costs more the more services it holds. SpawnerMin
	// delays the helper until the loop watches that many descriptors
	// (about one per service; see DefaultSpawnerMin).
	Spawner    bool
	SpawnerMin int
	// RunPidfds: how many of the most recently spawned children keep a
	// pidfd that reaps them at once (runfds.go); 0: DefaultRunPidfds,
	// negative: none (every child waits for the SIGCHLD sweep).
	RunPidfds int
	// Exe is the binary an in-place re-exec (svscanctl -X, reexec.go)
	// executes; empty: this process's executable, as named at start (an
	// upgrade that replaced the file is then what runs).
	Exe string
}

// fdKind says what an fd registered in the epoll set is.
type fdKind uint8

const (
	fdSignal   fdKind = iota // eventfd written by the signal forwarder
	fdInotify                // the inotify instance
	fdScanCtl                // .s6-svscan/control
	fdControl                // a service's supervise/control
	fdNotify                 // a run's notification-fd pipe
	fdAdopted                // pidfd of an adopted run
	fdGroup                  // pidfd of a member of a dead run's process group
	fdSdNotify               // a service's sd_notify datagram socket
	fdCheckOut               // output pipe of a running ./check
	fdLogPipe                // read end of an in-process logged service's pipe
	fdHealth                 // socket of a tcp or http health check (health.go)
	fdRun                    // pidfd of a recent child: run, finish, forking daemon (runfds.go)
)

type fdOwner struct {
	kind  fdKind
	svc   *service
	pid   int
	entry *entry // fdLogPipe
}

// handledSignals are caught by the scanner. SIGPIPE is caught only so
// that a write to a closed stdout/stderr returns EPIPE instead of killing
// the scanner (os/signal: "If the program is not ... SIGPIPE").
var handledSignals = []os.Signal{
	unix.SIGCHLD, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT,
	unix.SIGALRM, unix.SIGABRT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGPWR,
	unix.SIGWINCH, unix.SIGPIPE,
}

// loop is the one event loop. Only the goroutine running run() touches it,
// except pendSig, which the signal forwarder sets.
type loop struct {
	cfg     Config
	ep      int
	evfd    int
	ino     int
	pendSig atomic.Uint64
	sys     procSys   // processes and the clock (kernel{}; a fake in tests)
	stepNow time.Time // the time of the machine step whose actions run (feed)

	fds      map[int32]fdOwner
	byPid    map[int]*service
	checks   map[int]*service     // running ./check processes
	hooks    map[int]*service     // running event hooks (events.go)
	evlog    eventLog             // the events log (events.go)
	metrics  metricsState         // textfile and /metrics (metrics.go)
	wds      map[int32]*service   // inotify watches waiting for ./run
	pidWatch map[int32][]*service // inotify watches of pidfile directories (forking mode)
	draining []*service           // services whose dead run's group still has members
	runFds   runFds               // pidfds of the last spawned children (runfds.go)
	timers   timerHeap            // every deadline: machines, entries, rescans (timers.go)
	due      []*timer             // timers expired this turn
	closing  []int                // fds to close at the end of the batch (epoll may still report them)
	nev      int                  // events in the batch being handled (turn); 0 outside one

	orphanWait []*service          // services whose start waits for resolveOrphans
	orphans    map[devIno][]orphan // session leaders by cwd: the one walk of /proc (orphans.go)

	pending   []supervise.Event // feedback events of the service being stepped
	acts      []supervise.Action
	warns     []error
	limits    warnlimit.Limiter // the scanner's own warnings (see warn)
	procReads int               // /proc/PID/stat reads for sd_notify senders (tests)
	notifier  servicedir.Notifier
	scratch   *logdir.Scratch // buffers shared by every in-process logger
	ndir      string          // sd_notify socket directory, made on first use
	devnull   int
	oob       [512]byte            // SCM_CREDENTIALS and SCM_RIGHTS of sd_notify datagrams
	self      servicedir.PidRecord // this process, for supervise/gosv/supervisor
	env       []string
	buf       [4096]byte
	events    [128]unix.EpollEvent

	spawner *spawner.Client // nil: fork directly (see Config.Spawner)
	prep    *prepPool       // workers preparing service directories (prepare.go); nil until needed

	sc     *scanner // nil in supervise mode
	single *service // supervise mode
	done   bool

	// trace: with GOSV_TRACE=FILE, lines "ev=reap pid=P t=UNIXNANOS" when
	// wait4 returns a service's pid and "ev=exec pid=P t=UNIXNANOS" when a
	// run's execve succeeded — gosv's own share of a restart
	// (bench/cmd/latency reads them). -1 when off.
	trace    int
	reapedAt time.Time

	initTimer timer // Config.Init's deadline
	// Health checks (health.go): exec checks' and hooks' pids, the
	// environment they get, and the https pool (nil until needed).
	healthPids healthProcs
	henv       []string
	tls        *tlsPool

	rx reexecState // in-place re-exec (reexec.go)
}

// Run supervises until told to exit. Setup errors are returned (fatal);
// after setup every error becomes a warning and supervision goes on.
func Run(cfg Config) error {
	l := &loop{cfg: cfg, ep: -1, evfd: -1, ino: -1,
		fds: map[int32]fdOwner{}, byPid: map[int]*service{}, wds: map[int32]*service{}, pidWatch: map[int32][]*service{},
		checks: map[int]*service{}, hooks: map[int]*service{}, devnull: -1, sys: kernel{}}
	l.rx = takeReexecEnv() // before childEnv: children never see it
	if l.rx.resumed {
		l.cfg.NotifyFd = -1 // the first image wrote it; the number means nothing now
	}
	if l.rx.exe = cfg.Exe; l.rx.exe == "" {
		l.rx.exe, _ = os.Executable()
	}
	l.env = childEnv()
	switch {
	case cfg.RunPidfds == 0:
		l.runFds.slots = make([]runFd, DefaultRunPidfds)
	case cfg.RunPidfds > 0:
		l.runFds.slots = make([]runFd, cfg.RunPidfds)
	}
	l.trace = -1
	if p := os.Getenv("GOSV_TRACE"); p != "" {
		if fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_APPEND|unix.O_CLOEXEC, 0o644); err == nil {
			l.trace = fd
		}
	}
	l.self.Pid = os.Getpid()
	l.self.StartTime, _ = servicedir.ProcStartTime(l.self.Pid)
	reserveThreads(reservedThreads)
	l.cfg.Stderr = &lockedWriter{w: cfg.Stderr} // shared with the metrics goroutines
	if err := l.setup(); err != nil {
		if l.rx.resumed {
			return l.rollbackSetup(err)
		}
		return err
	}
	if l.rx.resumed && l.sc != nil {
		l.sc.resumed()
	}
	if err := l.startMetrics(); err != nil {
		return err
	}
	l.announceReady()
	if cfg.Init != nil {
		l.initTimer.kind = tmInit
		cfg.Init.Started(Ctl{l})
		if l.sc != nil && !l.rx.resumed {
			l.sc.syncTakes = false
		}
	}
	l.run()
	l.killHooks() // events.go
	if l.rx.to != "" {
		return l.sc.execNew() // reexec.go: returns only on failure
	}
	if cfg.Init != nil && l.sc != nil {
		// PID 1 goes on with its stage 3: .s6-svscan/finish is not executed.
		l.sc.closeHolder()
		return nil
	}
	if l.sc != nil {
		return l.sc.finish()
	}
	return nil
}

func (l *loop) setup() error {
	var err error
	if l.ep, err = unix.EpollCreate1(unix.EPOLL_CLOEXEC); err != nil {
		return os.NewSyscallError("epoll_create1", err)
	}
	if l.evfd, err = unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK); err != nil {
		return os.NewSyscallError("eventfd", err)
	}
	if l.ino, err = unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK); err != nil {
		return os.NewSyscallError("inotify_init1", err)
	}
	if l.devnull, err = unix.Open("/dev/null", unix.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		return &os.PathError{Op: "open", Path: "/dev/null", Err: err}
	}
	l.register(l.evfd, fdOwner{kind: fdSignal})
	l.register(l.ino, fdOwner{kind: fdInotify})
	// NOTE: subscribe to SIGCHLD before the first spawn, or an early
	// death could go unnoticed until the next wakeup (runc #5208).
	sigc := make(chan os.Signal, 64)
	signal.Notify(sigc, l.initSignals(handledSignals)...)
	go l.forwardSignals(sigc)
	if err := reap.SetSubreaper(); err != nil {
		return os.NewSyscallError("prctl PR_SET_CHILD_SUBREAPER", err)
	}
	if l.cfg.ServiceDir != "" {
		s, err := l.newService(l.cfg.ServiceDir, l.cfg.ServiceDir, l.cfg.ServiceDir, 0, 1)
		if err != nil {
			return err
		}
		l.single = s
		l.openEventLog()
		l.startService(s)
		l.resolveOrphans()
		return nil
	}
	sc, err := newScanner(l, l.cfg.ScanDir)
	if err != nil {
		return err
	}
	l.sc = sc
	l.openEventLog()
	sc.rescan()
	return nil
}

// announceReady writes -d's readiness line once the services present at
// start are taken: their directories prepared, their machines started
// (takePreparations calls it again until then).
func (l *loop) announceReady() {
	if l.cfg.NotifyFd < 0 || l.preparing() { // not cfg's: -1 after a re-exec
		return
	}
	unix.Write(l.cfg.NotifyFd, []byte("\n"))
	unix.Close(l.cfg.NotifyFd)
	l.cfg.NotifyFd = -1
}

// forwardSignals records each signal and wakes the loop. It decides
// nothing, and owns no state: like the https pool (health_tls.go) and the
// preparing workers (prepare.go), the loop's other goroutines hand results
// back through pendSig and the eventfd.
func (l *loop) forwardSignals(sigc chan os.Signal) {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for s := range sigc {
		l.pendSig.Or(1 << uint(s.(syscall.Signal)))
		unix.Write(l.evfd, one)
	}
}

func (l *loop) register(fd int, o fdOwner) error {
	ev := unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}
	if err := unix.EpollCtl(l.ep, unix.EPOLL_CTL_ADD, fd, &ev); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.fds[int32(fd)] = o
	return nil
}

// release removes fd from the epoll set and closes it at the end of the
// batch, so that a number reused within the batch is never confused.
func (l *loop) release(fd int) {
	if fd < 0 {
		return
	}
	unix.EpollCtl(l.ep, unix.EPOLL_CTL_DEL, fd, nil)
	delete(l.fds, int32(fd))
	l.closing = append(l.closing, fd)
}

func (l *loop) run() {
	for !l.done {
		l.turn(l.timeout())
	}
}

// turn waits for events (at most timeout ms, -1: no limit) and handles
// one batch of them, then the timers due.
func (l *loop) turn(timeout int) {
	n, err := unix.EpollWait(l.ep, l.events[:], timeout)
	if err != nil && err != unix.EINTR {
		l.warn(nil, "epoll", "unable to epoll_wait: %v", err)
	}
	l.nev = max(n, 0)
	// NOTE: consume the signal eventfd before reaping. Reading it
	// after reapAll would swallow the wakeup of a child that died in
	// between, leaving a zombie until some unrelated event.
	var sigs uint64
	for i := 0; i < n; i++ {
		if int(l.events[i].Fd) == l.evfd {
			var b [8]byte
			unix.Read(l.evfd, b[:])
			sigs = l.pendSig.Swap(0)
		}
	}
	// Deaths a pidfd names come first: no walk of every child
	// (runfds.go). The sweep below finds the others.
	for i := 0; i < n; i++ {
		if o, ok := l.fds[l.events[i].Fd]; ok && o.kind == fdRun {
			l.childExited(int(l.events[i].Fd), o)
		}
	}
	// Reap only when SIGCHLD was delivered: wait4 looks at every
	// child of the process in the kernel (wait_consider_task), so
	// reaping after every wakeup made each in-process log line, control
	// byte or timer cost O(services); with 5000 children that was most
	// of the loop's CPU. No death goes unseen: each one raises SIGCHLD
	// after its exit, and the forwarder turns it into a wakeup and the
	// bit tested here (several deaths may share one bit, Drain takes
	// them all).
	if sigs&(1<<uint(unix.SIGCHLD)) != 0 {
		l.reapAll()
	}
	if sigs&1 != 0 {
		// Bit 0: no signal, the worker pools' wakeup.
		l.takeTLSResults()
		l.takePreparations()
	}
	for i := 0; i < n && !l.done; i++ {
		ev := l.events[i]
		o, ok := l.fds[ev.Fd]
		if !ok || o.kind == fdSignal {
			continue // released earlier in this batch, or consumed above
		}
		l.dispatch(int(ev.Fd), o)
	}
	if sigs != 0 && !l.done {
		l.handleSignals(sigs)
	}
	l.nev = 0 // the timers' work is outside the batch
	l.fireTimers()
	for _, fd := range l.closing {
		unix.Close(fd)
	}
	l.closing = l.closing[:0]
}

// timeout converts the earliest deadline into epoll_wait's milliseconds,
// rounded up so that a deadline never fires early.
func (l *loop) timeout() int {
	d := l.nextDeadline()
	if d.IsZero() {
		return -1
	}
	ms := math.Ceil(float64(time.Until(d)) / float64(time.Millisecond))
	switch {
	case ms < 0:
		return 0
	case ms > math.MaxInt32:
		return math.MaxInt32
	}
	return int(ms)
}

func (l *loop) nextDeadline() time.Time { return l.timers.next() }

// fireTimers fires every timer due now: O(log n) each, and nothing else
// is looked at.
func (l *loop) fireTimers() {
	now := time.Now()
	l.due = l.timers.expire(now, l.due[:0])
	for _, t := range l.due {
		// An earlier handler of this turn may have cancelled t (its
		// entry was dropped) or armed it again: then it is not due.
		if t.armed() || t.at.IsZero() {
			continue
		}
		l.fire(t, now)
	}
	clear(l.due) // keep no pointers to services that may go away
	l.due = l.due[:0]
}

// fire runs the expiry of one timer.
func (l *loop) fire(t *timer, now time.Time) {
	switch t.kind {
	case tmMachine:
		l.feed(t.svc, supervise.Event{Kind: supervise.EvTimeout})
	case tmRecreate:
		l.sc.recreate(t.e)
	case tmLogRetry:
		l.sc.consumeLog(t.e)
	case tmRescan:
		l.sc.periodicRescan(now)
	case tmSdResume:
		l.resumeSdNotify(t.svc)
	case tmHook:
		l.hookTimeout(t.svc)
	case tmInit:
		l.cfg.Init.Timer(Ctl{l}, now)
	}
}

// reapAll drains every dead child and routes each exit (reaped).
//
// Each exit is handled (its service restarted) before the next wait4:
// the last one, which finds nothing, looks at every child, and with
// thousands of services that look came between a death and its restart.
func (l *loop) reapAll() {
	for {
		e, ok := reap.One()
		if !ok {
			break
		}
		l.reapedVia(e, "")
		l.reaped(e)
	}
	l.recheckDraining()
}

// recheckDraining looks again at the draining groups: members may have
// been among the reaped.
func (l *loop) recheckDraining() {
	for i := 0; i < len(l.draining); i++ {
		s := l.draining[i]
		l.checkGroup(s)
		if !s.draining {
			i-- // checkGroup took it off the list
		}
	}
}

func (l *loop) dispatch(fd int, o fdOwner) {
	switch o.kind {
	case fdInotify:
		l.readInotify()
	case fdScanCtl:
		l.sc.readControl(fd)
	case fdControl:
		l.readControl(o.svc, fd)
	case fdNotify:
		l.readNotify(o.svc, fd)
	case fdAdopted:
		s := o.svc
		l.release(fd)
		s.pidfd = -1
		if s.m.Pid == o.pid && (s.m.State == supervise.Up || s.m.State == supervise.Launching || s.m.State == supervise.LaunchAbort) {
			delete(l.byPid, o.pid)
			l.feed(s, supervise.Event{Kind: supervise.EvExit, Pid: o.pid, Unknown: true})
		}
	case fdSdNotify:
		l.readSdNotify(o.svc, fd)
	case fdCheckOut:
		l.readCheckOutput(o.svc)
	case fdLogPipe:
		l.sc.consumeLog(o.entry)
	case fdHealth:
		l.healthIO(o.svc, fd)
	case fdRun:
		l.childExited(fd, o) // turn's first pass handles these
	case fdGroup:
		l.release(fd)
		o.svc.dropGroupFd(fd)
		l.checkGroup(o.svc)
	}
}

func (l *loop) handleSignals(set uint64) {
	for sig := unix.Signal(1); sig < 64; sig++ {
		if set&(1<<uint(sig)) == 0 || sig == unix.SIGCHLD || sig == unix.SIGPIPE {
			continue // SIGCHLD: reaped in run
		}
		if l.cfg.Init != nil && l.cfg.Init.Signal(Ctl{l}, sig) {
			continue
		}
		if l.sc != nil {
			l.sc.signal(sig)
		} else {
			l.superviseSignal(sig)
		}
	}
}

// superviseSignal applies s6-supervise's signal semantics (s6-supervise(8),
// section "Signals"; the gosv table is in the README).
func (l *loop) superviseSignal(sig unix.Signal) {
	s := l.single
	switch sig {
	case unix.SIGTERM:
		l.feed(s, supervise.Event{Kind: supervise.EvTerm})
	case unix.SIGHUP:
		l.feed(s, supervise.Event{Kind: supervise.EvHup})
	case unix.SIGQUIT:
		l.feed(s, supervise.Event{Kind: supervise.EvQuit})
	case unix.SIGINT:
		if s.m.Pgid > 0 {
			l.sys.kill(-s.m.Pgid, unix.SIGINT)
		}
		l.feed(s, supervise.Event{Kind: supervise.EvQuit})
	}
}

// childEnv is the environment of every run and finish: the scanner's own,
// minus the marker of the signal-mask re-exec.
func childEnv() []string {
	env := os.Environ()
	out := env[:0]
	for _, kv := range env {
		if len(kv) >= len(cleanSigEnv)+1 && kv[:len(cleanSigEnv)+1] == cleanSigEnv+"=" {
			continue
		}
		out = append(out, kv)
	}
	return out
}

// rearm keeps s's place in the timer heap equal to its machine's
// deadline. feed, the one place where a Step's result is applied, calls
// it after every step of s, so no deadline change can be missed; an
// exited machine leaves the heap whatever deadlines it still holds (its
// events are ignored from then on, and a stale deadline would wake the
// loop for nothing).
func (l *loop) rearm(s *service) {
	s.tm.kind, s.tm.svc = tmMachine, s
	d := s.m.Deadline()
	if s.m.State == supervise.Exited || s.m.State == supervise.Fatal {
		d = time.Time{}
	}
	l.timers.set(&s.tm, d)
}

// traceEvent appends one trace line (GOSV_TRACE), unbuffered.
func (l *loop) traceEvent(ev string, pid int, t time.Time) {
	fmt.Fprintf(traceWriter(l.trace), "ev=%s pid=%d t=%d\n", ev, pid, t.UnixNano())
}

type traceWriter int

func (w traceWriter) Write(b []byte) (int, error) { return unix.Write(int(w), b) }
