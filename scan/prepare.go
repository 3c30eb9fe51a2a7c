package scan

import (
	"runtime"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// Preparing service directories off the loop.
//
// Taking a directory (prepareDir) creates supervise/ and event/, the lock,
// the control FIFO and the supervisor record, and removes an earlier
// supervisor's death tally: a dozen file-system operations, six of which
// allocate an inode.
// On a disk file system they cost more than the spawn itself, and done by
// the loop one service after another they made a bring-up of many
// services wait on each other's metadata (bench/README.md, "Bring-up off
// the loop"). The scanner hands them to a few workers instead and goes on
// spawning the services already prepared.
//
// Ownership: a worker touches only the directory of its job, through the
// entry's directory fd, which stays open while the job is out (dropIfIdle
// keeps a preparing entry), and returns the lock and the FIFO it opened.
// Everything else, the entry and the service alike, is the loop's: the
// result comes back as an event (pendSig bit 0 and the eventfd, as the
// https pool's) and the loop alone makes the service, registers the FIFO
// and starts it. A result the loop no longer wants (the entry left the
// scan directory, the scanner exits) is released unused.
const (
	prepWorkersMax = 4 // the pool's size at most, whatever the number of services
	// prepFdReserve: descriptors to spare for the loop's own work
	// (atomic writes, listings, pipes, spawns) beyond those the services
	// hold, for directories to be prepared on workers (fdRoom).
	prepFdReserve = 64
)

// prepWorkers is the pool's size: one P is left to the loop, so that its
// wakeup never waits for a worker's time slice (GOMAXPROCS 2: one worker).
func prepWorkers() int { return max(1, min(prepWorkersMax, runtime.GOMAXPROCS(0)-1)) }

// prepJob asks a worker to prepare the service (or, log, the logger) of
// an entry.
type prepJob struct {
	e       *entry
	log     bool
	dir     string // the directory: the entry's fdPath, or its log/ under it
	self    servicedir.PidRecord
	resumed bool
}

// prepResult is a job's outcome: dirfd is the logger's own directory fd
// (-1 for a service, which works through the entry's).
type prepResult struct {
	job   prepJob
	dirfd int
	p     prepared
	err   error
}

// prepPool: each worker has at most one job out; the other jobs wait in
// the loop (waiting), in the order the directories were found.
type prepPool struct {
	jobs     chan prepJob
	mu       sync.Mutex
	done     []prepResult
	inFlight int       // jobs handed out and not yet taken back (the loop's)
	waiting  []prepJob // jobs not handed out yet (the loop's)
	workers  int
}

// prepare queues the preparation of e's service (log: its logger).
func (sc *scanner) prepare(e *entry, log bool, dir string) {
	l := sc.l
	if l.prep == nil {
		n := prepWorkers()
		l.prep = &prepPool{jobs: make(chan prepJob, n), workers: n}
		for range n {
			go l.prep.work(l)
		}
	}
	e.preparing = true
	l.prep.waiting = append(l.prep.waiting, prepJob{e: e, log: log, dir: dir, self: l.self, resumed: l.rx.resumed})
	l.prep.handOut()
}

// handOut gives waiting jobs to idle workers; it never blocks (the
// channel holds one job per worker).
func (p *prepPool) handOut() {
	for p.inFlight < p.workers && len(p.waiting) > 0 {
		p.jobs <- p.waiting[0]
		p.waiting[0] = prepJob{}
		p.waiting = p.waiting[1:]
		p.inFlight++
	}
	if len(p.waiting) == 0 {
		p.waiting = nil
	}
}

func (p *prepPool) work(l *loop) {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for j := range p.jobs {
		r := prepResult{job: j, dirfd: -1}
		dir := j.dir
		if j.log {
			// The logger's own directory fd, as newService opens it.
			if r.dirfd, r.err = unix.Open(j.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); r.err == nil {
				dir = fdPath(r.dirfd)
			} else {
				r.dirfd = -1
			}
		}
		if r.err == nil {
			r.p, r.err = prepareDir(dir, nil, -1, j.self, j.resumed)
		}
		p.mu.Lock()
		p.done = append(p.done, r)
		p.mu.Unlock()
		l.pendSig.Or(1)
		unix.Write(l.evfd, one)
	}
}

// takePreparations makes services of the finished preparations, in the
// order they finished; once none is out, it looks for orphaned runs and
// announces readiness (-d) if that waited for the first scan.
func (l *loop) takePreparations() {
	if l.prep == nil {
		return
	}
	l.prep.mu.Lock()
	done := l.prep.done
	l.prep.done = nil
	l.prep.mu.Unlock()
	l.prep.inFlight -= len(done)
	dropped := l.dropUnwanted()
	l.prep.handOut() // the next directories, while the loop starts these
	for i := range done {
		l.sc.prepared(&done[i])
	}
	if len(done) > 0 || dropped {
		l.resolveOrphans()
		l.announceReady()
	}
}

// dropUnwanted releases, without preparing them, the waiting jobs whose
// entry left the scan directory or whose scanner exits (as prepared
// releases such a result): a t, b or re-exec during the bring-up of
// thousands of services waits only for the jobs out, and no directory
// gets the lock, supervisor record and empty death tally of a scanner
// that will not supervise it.
func (l *loop) dropUnwanted() bool {
	p, dropped := l.prep, false
	kept := p.waiting[:0]
	for _, j := range p.waiting {
		if j.e.active && !l.sc.exiting && j.e.dirfd >= 0 {
			kept = append(kept, j)
			continue
		}
		r := prepResult{job: j, dirfd: -1}
		l.sc.prepared(&r)
		dropped = true
	}
	clear(p.waiting[len(kept):])
	p.waiting = kept
	return dropped
}

// fdRoom says whether descriptors are plentiful: an estimate of those in
// use (three per entry: its directory, a lock and a FIFO; plus those in
// the epoll set) and prepFdReserve are below RLIMIT_NOFILE. Near the
// limit the loop takes directories itself, one after the other, as
// before workers: the locks and FIFOs of directories prepared ahead
// would take the descriptors it needs to start the services already
// prepared, and each would fail in several ways instead of one take
// failing once (TestFaultWarningCounts, emfile).
func (l *loop) fdRoom() bool {
	var lim unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_NOFILE, &lim) != nil {
		return false
	}
	return uint64(3*len(l.sc.byID)+len(l.fds)+prepFdReserve) < lim.Cur
}

// preparing says whether some directory is being prepared: the look for
// orphaned runs waits until every service of the batch exists.
func (l *loop) preparing() bool {
	return l.prep != nil && (l.prep.inFlight > 0 || len(l.prep.waiting) > 0)
}
