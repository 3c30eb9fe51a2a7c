package logdir

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// stagePoint names the places a staged Logger can be killed at, for the
// tests' crash injection (Logger.stageHook).
type stagePoint uint8

const (
	spFilled  stagePoint = iota // after a splice into the stage
	spWrite                     // record stored, before write(2): the hook may write part of out and crash
	spWritten                   // after write(2), before D is stored
	spDone                      // after D is stored and pend cleared
	spHead                      // after P is stored, before the punch
	spPoints
)

var stagePointNames = [...]string{"filled", "write", "written", "done", "head"}

func (p stagePoint) String() string { return stagePointNames[p] }

// settleStage runs at Open, before the directory's own recovery: it finds
// d's record in the stage and settles a write that was in flight when the
// previous logger died, by the size of the file it went to (found by its
// identity, in case a rotation renamed it): B or more, it was written (D
// moves to T); between A and B, it was cut, and the cut part is
// truncated away; A, it was not. It returns d's slot (-1: none) and
// whether current is the file the record describes, which makes a
// current ending in the middle of a line safe to continue.
func (d *logDir) settleStage(st *Stage) (slot int, trusted bool, err error) {
	if st == nil {
		return -1, false, nil
	}
	var ds unix.Stat_t
	if err := unix.Fstat(d.dirfd, &ds); err != nil {
		return -1, false, &os.PathError{Op: "stat", Path: d.cfg.Path, Err: err}
	}
	d.dirDev, d.dirIno = ds.Dev, ds.Ino
	slot = -1
	for i := range maxStageDirs {
		w := st.dir(i)
		if uint64(load(w, dDirDev)) == ds.Dev && uint64(load(w, dDirIno)) == ds.Ino {
			slot = i
			break
		}
	}
	if slot < 0 {
		return -1, false, nil
	}
	w := st.dir(slot)
	dev, ino := uint64(load(w, dCurDev)), uint64(load(w, dCurIno))
	if load(w, dPend) == 1 {
		if err := d.settleWrite(w, dev, ino); err != nil {
			return -1, false, err
		}
	}
	var cs unix.Stat_t
	trusted = unix.Lstat(d.path(currentName), &cs) == nil && cs.Dev == dev && cs.Ino == ino
	return slot, trusted, nil
}

// settleWrite decides the write in flight of record w.
func (d *logDir) settleWrite(w []uint64, dev, ino uint64) error {
	a, b := load(w, dA), load(w, dB)
	name, size, found := d.findFile(dev, ino)
	switch {
	case !found || size >= b:
		// Written. A file that is gone was rotated away and trimmed: a
		// rotation starts only after the writes before it returned.
		store(w, dD, load(w, dT))
	case size > a:
		p := d.path(name)
		fd, err := unix.Open(p, unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return &os.PathError{Op: "open", Path: p, Err: err}
		}
		err = ftruncate(fd, a)
		unix.Close(fd)
		if err != nil {
			return &os.PathError{Op: "truncate", Path: p, Err: err}
		}
	}
	store(w, dPend, 0)
	return nil
}

// findFile looks for the file with identity dev:ino among current,
// previous and the archives.
func (d *logDir) findFile(dev, ino uint64) (name string, size int64, found bool) {
	names := []string{currentName, previousName}
	if archives, err := d.archives(); err == nil {
		for _, a := range archives {
			names = append(names, a.name)
		}
	}
	for _, n := range names {
		var st unix.Stat_t
		if unix.Lstat(d.path(n), &st) == nil && st.Dev == dev && st.Ino == ino && st.Mode&unix.S_IFMT == unix.S_IFREG {
			return n, st.Size, true
		}
	}
	return "", 0, false
}

// attachStage gives the directories without a record a free slot, and
// sets each action's progress and the line offset from the stage.
func (l *Logger) attachStage(st *Stage) {
	l.st = st
	p, lineOff := st.head()
	l.lineOff = lineOff
	used := make([]bool, maxStageDirs)
	fresh := true
	for _, d := range l.dirs {
		if d.slot >= 0 {
			used[d.slot], fresh = true, false
		}
	}
	if fresh && !l.script.wholeLines {
		// A new stage after a logger without one (or another program):
		// a current cut in the middle of a line continues as without a
		// stage (see Open).
		for _, d := range l.dirs {
			if d.mid {
				l.lineOff = 1
			}
		}
		st.storeHead(p, l.lineOff)
	}
	for i, u := range used {
		if !u {
			store(st.dir(i), dPend, 0) // a directory no longer in the script: its write in flight is moot
		}
	}
	for _, d := range l.dirs {
		if d.slot < 0 {
			for i := range used {
				if !used[i] {
					d.slot, used[i] = i, true
					w := st.dir(i)
					store(w, dPend, 0)
					store(w, dD, p)
					store(w, dDirDev, int64(d.dirDev))
					store(w, dDirIno, int64(d.dirIno))
					break
				}
			}
		}
		if d.slot >= 0 && d.act != nil {
			l.ahead[d.act.id] = int(min(max(load(st.dir(d.slot), dD)-p, 0), st.end-p))
		}
	}
}

// recordWrite stores, before write(2) appends out to d's current, what
// the next logger needs to tell whether it happened: current's identity,
// its size before and after, and the input offset the write reaches.
func (l *Logger) recordWrite(d *logDir, covered, n int) {
	w := l.st.dir(d.slot)
	store(w, dCurDev, int64(d.curDev))
	store(w, dCurIno, int64(d.curIno))
	store(w, dA, d.size)
	store(w, dB, d.size+int64(n))
	store(w, dT, l.base+int64(covered))
	store(w, dPend, 1)
}

// writeStaged is flush's write for a staged Logger: the record around
// d.write. A failed write leaves pend set: d.write truncated current back
// to A (or could not, and the next logger will), so either way the size
// says "not written".
func (l *Logger) writeStaged(d *logDir, out []byte, covered int) error {
	if d.slot < 0 {
		return d.write(out)
	}
	l.recordWrite(d, covered, len(out))
	if l.stageHook != nil {
		l.stageHook(spWrite, d, out)
	}
	if err := d.write(out); err != nil {
		return err
	}
	if l.stageHook != nil {
		l.stageHook(spWritten, d, out)
	}
	w := l.st.dir(d.slot)
	store(w, dD, l.base+int64(covered))
	store(w, dPend, 0)
	if l.stageHook != nil {
		l.stageHook(spDone, d, out)
	}
	return nil
}

// consumeStaged is Consume for a staged Logger: the input is moved into
// the stage first (splice), processed from there, and P moves past what
// every directory wrote.
func (l *Logger) consumeStaged(fd int, sc *Scratch) (retryAt time.Time, eof bool, err error) {
	now := l.opts.Now()
	errs := l.retryDue(now, nil)
	if next, blocked := l.deadline(now); blocked {
		return next, false, errors.Join(errs...)
	}
	for range maxBatches {
		hup, err := l.fill(fd, sc)
		if err != nil {
			return time.Time{}, false, errors.Join(append(errs, err)...)
		}
		if hup {
			if err := l.endStage(); err != nil {
				return time.Time{}, false, errors.Join(append(errs, err)...)
			}
		}
		data, err := l.stageData(sc)
		if err != nil {
			return time.Time{}, false, errors.Join(append(errs, err)...)
		}
		if len(data) == 0 || (l.st.end == l.seenEnd && !hup) {
			next, _ := l.deadline(now)
			return next, hup && next.IsZero() && len(data) == 0 && l.drained(), errors.Join(errs...)
		}
		var n int
		var more bool
		n, more, errs = l.process(data, sc, false, now, errs)
		next, blocked := l.deadline(now)
		l.advance(n)
		l.seenEnd = 0
		if !blocked && !more && l.base+int64(len(data)) == l.st.end {
			l.seenEnd = l.st.end // an incomplete line waits for more input
		}
		if blocked {
			return next, false, errors.Join(errs...)
		}
		now = l.opts.Now()
	}
	return now, false, errors.Join(errs...)
}

// fill moves what the pipe holds into the stage, up to stageAhead bytes
// ahead of P. hup says that the pipe has no writer left and is empty.
func (l *Logger) fill(fd int, sc *Scratch) (hup bool, err error) {
	st := l.st
	for st.pending() < stageAhead {
		want := int(stageAhead - st.pending())
		var n int
		if l.notPipe {
			// Not a pipe: read, then append. Bytes read are lost if the
			// logger dies before the pwrite, as without a stage.
			n, err = readRetry(fd, sc.in[:min(want, len(sc.in))])
			if err == nil && n > 0 {
				_, err = unix.Pwrite(st.fd, sc.in[:n], st.end)
			}
		} else {
			off := st.end
			var m int64
			m, err = unix.Splice(fd, nil, st.fd, &off, want, unix.SPLICE_F_NONBLOCK)
			n = int(m)
			if err == unix.EINVAL {
				l.notPipe = true
				continue
			}
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			return false, nil
		case err != nil:
			return false, os.NewSyscallError("splice", err)
		case n == 0:
			// NOTE: as with tee(2) (see peek), only POLLHUP makes 0 the
			// end of the input.
			return l.notPipe || hungUp(fd), nil
		}
		st.end += int64(n)
		if l.stageHook != nil {
			l.stageHook(spFilled, nil, nil)
		}
	}
	return false, nil
}

// endStage ends with a newline, in the stage itself, an input that ended
// in the middle of a line, so that the newline is written exactly once
// like any other input byte.
func (l *Logger) endStage() error {
	st := l.st
	p, lineOff := st.head()
	last := byte('\n')
	if st.end > p {
		var b [1]byte
		if _, err := unix.Pread(st.fd, b[:], st.end-1); err != nil {
			return os.NewSyscallError("pread", err)
		}
		last = b[0]
	} else if lineOff != 0 {
		last = 0
	}
	if last == '\n' {
		return nil
	}
	if _, err := unix.Pwrite(st.fd, []byte{'\n'}, st.end); err != nil {
		return os.NewSyscallError("pwrite", err)
	}
	st.end++
	return nil
}

// stageData reads the next batch from P.
func (l *Logger) stageData(sc *Scratch) ([]byte, error) {
	p, _ := l.st.head()
	l.base = p
	n := int(min(l.st.end-p, int64(len(sc.in))))
	for k := 0; k < n; {
		m, err := unix.Pread(l.st.fd, sc.in[k:n], p+int64(k))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, os.NewSyscallError("pread", err)
		}
		if m == 0 {
			return nil, os.NewSyscallError("pread", unix.EIO)
		}
		k += m
	}
	return sc.in[:n], nil
}

// advance moves P past the n bytes every action handled.
func (l *Logger) advance(n int) {
	if n == 0 {
		return
	}
	p := l.base + int64(n)
	l.st.storeHead(p, l.lineOff)
	if l.stageHook != nil {
		l.stageHook(spHead, nil, nil)
	}
	l.st.punch(p)
}

// flushStaged is Flush for a staged Logger: an incomplete line left in
// the stage is ended with a newline and written.
func (l *Logger) flushStaged(sc *Scratch) error {
	if l.st.pending() == 0 {
		return nil
	}
	if err := l.endStage(); err != nil {
		return err
	}
	now := l.opts.Now()
	var errs []error
	for range maxBatches {
		data, err := l.stageData(sc)
		if err != nil || len(data) == 0 {
			return errors.Join(append(errs, err)...)
		}
		var n int
		n, _, errs = l.process(data, sc, false, now, errs)
		l.advance(n)
		if _, blocked := l.deadline(now); blocked || n == 0 {
			break
		}
	}
	return errors.Join(errs...)
}
