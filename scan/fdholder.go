package scan

import (
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdhold"
	"github.com/gosv/gosv/internal/servicedir"
)

// The fd holder keeps a read end of every in-process log pipe, so that a
// pipe outlives both the scanner and the service: what a service writes
// before exiting while no scanner runs waits in the pipe for the next
// scanner (issue 9). One holder serves a scan directory; the first scanner
// that needs it starts it (this binary, as gosv-fdholder), and later
// scanners, or a re-executed one, connect to it and take the pipes back
// (internal/fdhold/HOLDER.md). It also keeps each run's notification-fd
// pipe until the run is ready. Scan directories with neither log-script
// nor notification-fd never start one.

// holderArgv0 runs the scanner's own binary as the holder: cmd/gosv maps
// it to `gosv fdholder`.
const holderArgv0 = "gosv-fdholder"

// holderExe is the scanner's binary. NOTE: /proc/self/exe still execs the
// binary the scanner runs even if the file was replaced by an upgrade.
const holderExe = "/proc/self/exe"

func holderKey(id devIno) string { return fmt.Sprintf("%d:%d", id.dev, id.ino) }

// holderWait bounds the wait for the holder's list at start-up: it
// serves one scanner at a time, and the killed one is gone only once its
// children that had forked and not yet exec'd have exec'd (they hold a
// copy of its socket). Only a holder that does not answer for that long
// is given up on.
const holderWait = 30 * time.Second

// connectHolder takes back, at start-up, the pipes a holder keeps for a
// previous scanner. No holder is not an error: none was needed yet.
func (sc *scanner) connectHolder() {
	c, held, err := fdhold.Connect(filepath.Join(sc.dir, servicedir.ScanFDHolderPath), holderWait)
	switch {
	case err == nil:
		sc.holder, sc.held = c, held
	case !errors.Is(err, fdhold.ErrNoHolder):
		// NOTE: never start a second holder beside a live one: the pipes
		// it holds, and the lines in them, would be orphaned.
		sc.holderBusy = true
		sc.l.warn(nil, "fdhold-takeback|"+sc.dir, "unable to take the log pipes back from the fd holder of %s: %v (in-process logs lose what their services write before exiting while no scanner runs)", sc.dir, err)
	}
}

// takeHeld returns e's pipe if the holder kept it: the held read end and a
// new write end opened through it.
func (sc *scanner) takeHeld(e *entry) ([2]int, bool) {
	key := holderKey(e.id)
	r, ok := sc.held[key]
	if !ok {
		return [2]int{-1, -1}, false
	}
	delete(sc.held, key)
	// NOTE: open(2) on /proc/self/fd/N of a pipe's read end reaches the
	// same pipe; O_WRONLY gives a write end (fifo(7)); O_NONBLOCK only so
	// that it can never wait, although the read end is open.
	w, err := unix.Open(fmt.Sprintf("/proc/self/fd/%d", r), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		// The pipe stays in the holder until a new one replaces it: what
		// it holds is lost then, so say so.
		sc.l.warn(nil, "fdhold-reopen|"+sc.dir, "unable to reopen the log pipe of %s taken back from the fd holder: %v (its unread lines are lost)", e.name, err)
		unix.Close(r)
		return [2]int{-1, -1}, false
	}
	unix.SetNonblock(w, false)
	return [2]int{r, w}, true
}

// hold hands e's read end to the holder, starting the holder if needed.
// A holder that died is restarted and given every in-process pipe again.
func (sc *scanner) hold(e *entry) { sc.holdFd(e, holderKey(e.id), e.pipe[0]) }

// notifyKey names the notification-fd pipe of s (the service of its entry,
// or its log/ service) in the holder.
func notifyKey(s *service) string {
	k := "notify " + holderKey(s.entry.id)
	if s.name != s.entry.name {
		k += " log"
	}
	return k
}

// unholdNotify drops s's notification pipe from the holder once the
// scanner has read readiness (or the pipe is closed).
func (sc *scanner) unholdNotify(s *service) {
	if s.entry != nil && sc.holder != nil {
		sc.holder.Drop(notifyKey(s))
	}
}

// takeNotify gives an adopted run that is not ready yet its notification
// pipe back, if the holder kept it; that of a ready or dead run is dropped.
func (sc *scanner) takeNotify(s *service, adopted bool) {
	if s.entry == nil {
		return
	}
	key := notifyKey(s)
	fd, ok := sc.held[key]
	if !ok {
		return
	}
	delete(sc.held, key)
	if !adopted || s.m.Ready || s.notify >= 0 {
		unix.Close(fd)
		sc.unholdNotify(s)
		return
	}
	if err := sc.l.register(fd, fdOwner{kind: fdNotify, svc: s}); err != nil {
		unix.Close(fd)
		return
	}
	s.notify = fd
}

// holdFd hands fd to the holder under key and reports whether it did.
func (sc *scanner) holdFd(e *entry, key string, fd int) bool {
	if sc.holder != nil {
		err := sc.holder.Store(key, fd)
		if err == nil {
			return true
		}
		if errors.Is(err, unix.EAGAIN) {
			// Alive but not reading for ioTimeout: keep it (see holderBusy).
			sc.l.warn(nil, "fdhold-hand|"+sc.dir, "unable to hand a pipe of %s to the fd holder: %v", e.name, err)
			return false
		}
		sc.holder.Close() // it died: start another
		sc.holder = nil
	}
	if sc.holderBusy {
		return false
	}
	c, err := fdhold.Start(filepath.Join(sc.dir, servicedir.ScanFDHolderPath), holderExe, holderArgv0)
	if err != nil {
		if !sc.holderWarned {
			sc.holderWarned = true
			sc.l.warn(nil, "fdhold-start|"+sc.dir, "unable to start the fd holder of %s: %v (an in-process log loses what its service writes before exiting while no scanner runs)", sc.dir, err)
		}
		return false
	}
	sc.holder, sc.holderWarned = c, false
	err = c.Store(key, fd)
	if err != nil {
		sc.l.warn(nil, "fdhold-hand|"+sc.dir, "unable to hand a pipe of %s to the fd holder: %v", e.name, err)
	}
	for _, x := range sc.byID {
		if x.logger != nil && x.pipe[0] >= 0 && x != e {
			if err := c.Store(holderKey(x.id), x.pipe[0]); err != nil {
				sc.l.warn(nil, "fdhold-handlog|"+sc.dir, "unable to hand the log pipe of %s to the fd holder: %v", x.name, err)
			}
		}
		if x.stage != nil && stageKey(x.id) != key {
			if err := c.Store(stageKey(x.id), x.stage.Fd()); err != nil {
				sc.l.warn(nil, "fdhold-handlog|"+sc.dir, "unable to hand the log stage of %s to the fd holder: %v", x.name, err)
			}
		}
	}
	return err == nil
}

// unhold tells the holder that e's pipe and stage are no longer needed.
func (sc *scanner) unhold(e *entry) {
	if sc.holder != nil {
		sc.holder.Drop(holderKey(e.id))
		sc.holder.Drop(stageKey(e.id))
	}
}

// closeHolder disconnects at exit. Unless the scanner leaves its services
// running (b), the holder drops what it still holds (pipes of services no
// longer in the scan directory) and, being left with nothing, exits.
func (sc *scanner) closeHolder() {
	for k, fd := range sc.held {
		unix.Close(fd)
		delete(sc.held, k)
	}
	if sc.holder == nil {
		return
	}
	if sc.killer != 'b' {
		sc.holder.DropAll()
	}
	sc.holder.Close()
	sc.holder = nil
}
