package logdir

import (
	"bytes"
	"errors"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// maxBatches bounds the work of one Consume call (16 × 64 KiB), so that a
// service writing without pause cannot starve the caller's event loop.
// Consume then returns a retryAt of "now": call again after other work.
const maxBatches = 16

// Consume moves what the input fd holds to the script's actions, without
// blocking, and returns when the input has nothing more to give now.
//
// fd must be the read end of a pipe, or anything readable (see below). It
// should be O_NONBLOCK; Consume never waits on it. The bytes are first
// duplicated with tee(2) into sc's pipe and read from there; they are taken
// out of fd (splice(2) to /dev/null) only once write(2) to every selected
// current has returned. So a logger that dies at any moment loses nothing:
// what it had not consumed is still in the pipe, and at worst the last
// chunk is written twice.
//
// Lines are handled whole: an incomplete last line stays in the pipe until
// its newline arrives, until it reaches the line limit, until the pipe is
// full, or until EOF (where a newline is added). Each line gets the stamps
// of the batch it is handled in.
//
// Results:
//   - retryAt zero, eof false: everything available was handled; call
//     again when fd becomes readable. Register fd edge-triggered
//     (EPOLLET): an incomplete line is left in the pipe, and a
//     level-triggered fd would stay readable.
//   - retryAt set: call again at retryAt even if fd does not become
//     readable. It is "now" when the batch budget ran out, and the
//     directory's retry deadline when a log directory failed; in lossless
//     mode nothing is taken from fd until then, so the service blocks on
//     its full pipe.
//   - eof: all writers closed fd and everything was written; Close the
//     Logger.
//   - err: a [*WriteError] (joined if several) when a log directory starts
//     failing, reported once per failure, for the caller to print; the
//     Logger keeps going. Any other error concerns fd itself.
//
// If fd is not a pipe (tee gives EINVAL), Consume reads it instead; bytes
// read but not yet written then live in the Logger, and a crash loses them.
func (l *Logger) Consume(fd int, sc *Scratch) (retryAt time.Time, eof bool, err error) {
	now := l.opts.Now()
	errs := l.retryDue(now, nil)
	if next, blocked := l.deadline(now); blocked {
		return next, false, errors.Join(errs...)
	}
	for range maxBatches {
		data, inEOF, err := l.peek(fd, sc)
		if err != nil {
			return time.Time{}, false, errors.Join(append(errs, err)...)
		}
		if len(data) == 0 {
			next, _ := l.deadline(now)
			return next, inEOF && l.drained(), errors.Join(errs...)
		}
		var n int
		var more bool
		n, more, errs = l.process(data, sc, inEOF, now, errs)
		if n == 0 && !more && !inEOF && l.stuck(fd, len(data)) {
			// Only an incomplete line is left and no newline can come:
			// the pipe is full or has no writer left. Cut it, as at the
			// line limit (a newline is added).
			n, more, errs = l.process(data, sc, true, now, errs)
		}
		if err := l.discard(fd, sc, data, n); err != nil {
			return time.Time{}, false, errors.Join(append(errs, err)...)
		}
		// A short batch with a line left over: wait for the rest of it. A
		// full batch may have been cut by the scratch size: go on.
		next, blocked := l.deadline(now)
		if blocked || (!more && !l.notPipe && n < len(data) && len(data) < len(sc.in)) {
			return next, false, errors.Join(errs...)
		}
		now = l.opts.Now()
	}
	return now, false, errors.Join(errs...)
}

// drained reports whether nothing is held back in memory.
func (l *Logger) drained() bool {
	for _, d := range l.dirs {
		if len(d.held) > 0 || d.dropped > 0 || d.step != stepWritable {
			return false
		}
	}
	return len(l.pend) == 0
}

// peek returns the bytes at the head of the input without consuming them
// (tee), or, for an input that is not a pipe, the bytes kept from earlier
// reads plus a new read.
func (l *Logger) peek(fd int, sc *Scratch) (data []byte, eof bool, err error) {
	if !l.notPipe {
		n, err := tee(fd, sc.w, len(sc.in))
		switch {
		case err == unix.EINVAL:
			l.notPipe = true
		case err == unix.EAGAIN:
			return nil, false, nil
		case err != nil:
			return nil, false, os.NewSyscallError("tee", err)
		case n == 0:
			return nil, true, nil
		default:
			if err := readFull(sc.r, sc.in[:n]); err != nil {
				return nil, false, os.NewSyscallError("read scratch pipe", err)
			}
			return sc.in[:n], false, nil
		}
	}
	k := copy(sc.in, l.pend)
	if k == len(sc.in) {
		return sc.in, false, nil
	}
	n, err := readRetry(fd, sc.in[k:])
	switch {
	case err == unix.EAGAIN:
		return nil, false, nil // nothing new: what pend holds waits for more
	case err != nil:
		return nil, false, os.NewSyscallError("read", err)
	}
	return sc.in[:k+n], n == 0, nil
}

// discard takes the n first bytes of data, now handled, out of the input.
func (l *Logger) discard(fd int, sc *Scratch, data []byte, n int) error {
	if l.notPipe {
		l.pend = append(l.pend[:0], data[n:]...)
		return nil
	}
	for n > 0 {
		k, err := unix.Splice(fd, nil, sc.null, nil, n, unix.SPLICE_F_NONBLOCK)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("splice", err)
		}
		n -= int(k)
	}
	return nil
}

// stuck reports whether an input holding only the n bytes of an
// incomplete line cannot receive its newline: the pipe is full, or no
// writer is left (poll's POLLHUP; tee reports EOF only once the pipe is
// empty).
func (l *Logger) stuck(fd, n int) bool {
	if l.notPipe {
		return n >= ScratchSize
	}
	if size, err := unix.FcntlInt(uintptr(fd), unix.F_GETPIPE_SZ, 0); err == nil && n >= min(size, ScratchSize) {
		return true
	}
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	k, err := unix.Poll(pfd, 0)
	return err == nil && k == 1 && pfd[0].Revents&unix.POLLHUP != 0
}

// process writes the lines of data, from the earliest action's progress
// up to the cut, and returns how many input bytes every action has
// handled. With force, a trailing incomplete line counts as a line.
//
// A rotation runs only at the start of a batch, when everything written
// so far has been taken out of the input: a line that needs one ends the
// batch (more is true), so that a crash in the middle of a rotation finds
// nothing written twice.
func (l *Logger) process(data []byte, sc *Scratch, force bool, now time.Time, errs []error) (n int, more bool, _ []error) {
	cut := cutPoint(data, l.limit, force)
	sinks := sc.sinksFor(len(l.acts))
	start := cut
	for id := range sinks {
		sinks[id].covered = l.ahead[id]
		start = min(start, l.ahead[id])
	}
	l.stamp(sc, now)
	lossless := l.opts.LossBytes <= 0
	all := uint64(1)<<len(l.acts) - 1
	for pos := start; pos < cut; {
		end, next := nextLine(data, pos, cut, l.limit)
		set := all
		if l.script.selects {
			set = l.script.selectLine(data[pos:end])
		}
		if pos > start && l.needRotation(set, sinks, sc, data[pos:end], pos, now) {
			cut, more = pos, true
			break
		}
		for id, a := range l.acts {
			s := &sinks[id]
			if s.covered > pos || (s.stopped && lossless) {
				continue
			}
			if set&(1<<id) != 0 {
				errs = l.emit(a, s, sc, data[pos:end], now, errs)
			}
			if !s.stopped || !lossless {
				s.covered = next
			}
		}
		pos = next
	}
	n = cut
	for id, a := range l.acts {
		errs = l.flush(a, &sinks[id], now, errs)
		n = min(n, l.ahead[id])
	}
	errs = l.flushStd(sc, errs)
	for id := range l.ahead {
		l.ahead[id] -= n
	}
	return n, more, errs
}

// needRotation reports whether a directory that takes the line at pos
// must rotate first.
func (l *Logger) needRotation(set uint64, sinks []sinkState, sc *Scratch, line []byte, pos int, now time.Time) bool {
	for _, d := range l.dirs {
		a, s := d.act, &sinks[d.act.id]
		if set&(1<<a.id) == 0 || s.covered > pos || s.stopped || d.failing(now) {
			continue
		}
		pending := d.size + int64(len(s.out))
		if d.step != stepWritable || (pending > 0 && pending+int64(lineLen(a, sc, line)) > d.cfg.MaxSize) {
			return true
		}
	}
	return false
}

// cutPoint is where the lines end: after the last newline, plus whole
// line-limit pieces of the incomplete tail; with force, the whole data.
func cutPoint(data []byte, limit int, force bool) int {
	if force {
		return len(data)
	}
	cut := bytes.LastIndexByte(data, '\n') + 1
	tail := len(data) - cut
	return cut + tail/limit*limit
}

// nextLine returns the end of the line at pos (without its newline) and
// where the next one starts; a line longer than limit ends after limit
// bytes, as with s6-log -l.
func nextLine(data []byte, pos, cut, limit int) (end, next int) {
	hi := min(cut, pos+limit+1)
	if i := bytes.IndexByte(data[pos:hi], '\n'); i >= 0 {
		return pos + i, pos + i + 1
	}
	end = min(cut, pos+limit)
	if end < cut && data[end] == '\n' {
		return end, end + 1
	}
	return end, end
}

// stamp formats the batch's stamps once.
func (l *Logger) stamp(sc *Scratch, now time.Time) {
	if l.script.stampTAI {
		sc.tai = appendTAI64N(sc.tai[:0], now)
	}
	if l.script.stampISO {
		sc.iso = appendISO(sc.iso[:0], now)
	}
}

// appendLine appends one formatted line: stamps, prefix, line, newline.
func appendLine(b []byte, a *action, sc *Scratch, line []byte) []byte {
	if a.tai {
		b = append(b, sc.tai...)
	}
	if a.iso {
		b = append(b, sc.iso...)
	}
	b = append(b, a.prefix...)
	b = append(b, line...)
	return append(b, '\n')
}

func lineLen(a *action, sc *Scratch, line []byte) int {
	n := len(a.prefix) + len(line) + 1
	if a.tai {
		n += len(sc.tai)
	}
	if a.iso {
		n += len(sc.iso)
	}
	return n
}

// emit adds a selected line to an action's output, rotating the directory
// first if the line would take current over its size.
func (l *Logger) emit(a *action, s *sinkState, sc *Scratch, line []byte, now time.Time, errs []error) []error {
	k := lineLen(a, sc, line)
	if a.kind != actDir {
		i := int(a.kind - actStdout)
		if len(sc.std[i])+k+len(l.opts.Prog)+len(alertTag)+3 > cap(sc.std[i]) {
			errs = l.flushStd(sc, errs)
		}
		sc.std[i] = l.appendStd(sc.std[i], a, sc, line)
		return errs
	}
	d := l.dirs[a.dir]
	if s.stopped || d.failing(now) {
		if l.opts.LossBytes > 0 {
			l.hold(d, a, sc, line)
		}
		return errs
	}
	pending := d.size + int64(len(s.out))
	if d.step != stepWritable || (pending > 0 && pending+int64(k) > d.cfg.MaxSize) {
		if errs = l.flush(a, s, now, errs); s.stopped {
			return l.emit(a, s, sc, line, now, errs)
		}
		if err := d.rotate(now, l.hook); err != nil {
			s.stopped = true
			return l.emit(a, s, sc, line, now, l.fail(d, err, now, errs))
		}
	}
	if len(s.out)+k > cap(s.out) {
		if errs = l.flush(a, s, now, errs); s.stopped {
			return l.emit(a, s, sc, line, now, errs)
		}
	}
	s.out = appendLine(s.out, a, sc, line)
	return errs
}

const alertTag = ": alert: "

// appendStd formats a line for the 1 and 2 actions; an alert is cut to E
// bytes and marked with "...", as s6-log does.
func (l *Logger) appendStd(b []byte, a *action, sc *Scratch, line []byte) []byte {
	if a.kind != actStderr {
		return appendLine(b, a, sc, line)
	}
	b = append(append(b, l.opts.Prog...), alertTag...)
	if a.alertMax == 0 || a.alertMax+3 >= len(line) {
		return appendLine(b, a, sc, line)
	}
	b = appendLine(b, a, sc, line[:a.alertMax])
	return append(b[:len(b)-1], "...\n"...)
}

// flush writes an action's output. For a directory, success moves the
// action's progress to what the output covered; failure stops the action
// for this batch (lossless) or moves the lines to the held buffer
// (bounded-loss). Errors on 1 and 2 are reported once and the lines
// dropped: a broken stdout must not stop the log directories.
func (l *Logger) flush(a *action, s *sinkState, now time.Time, errs []error) []error {
	out := s.out
	s.out = s.out[:0]
	if a.kind != actDir {
		l.ahead[a.id] = s.covered // written by flushStd, which never blocks
		return errs
	}
	lossless := l.opts.LossBytes <= 0
	if len(out) > 0 && !s.stopped {
		d := l.dirs[a.dir]
		if err := d.write(out); err != nil {
			s.stopped = true
			errs = l.fail(d, err, now, errs)
			if lossless {
				return errs
			}
			l.holdLines(d, out)
		} else if lossless {
			d.failed = false
		}
	}
	if !s.stopped || !lossless {
		l.ahead[a.id] = s.covered
	}
	return errs
}

// holdLines holds the formatted lines of a failed write, one by one.
func (l *Logger) holdLines(d *logDir, out []byte) {
	for len(out) > 0 {
		i := bytes.IndexByte(out, '\n') + 1
		l.holdFormatted(d, out[:i])
		out = out[i:]
	}
}

// flushStd writes the output of the 1 and 2 actions.
func (l *Logger) flushStd(sc *Scratch, errs []error) []error {
	for i, w := range [2]io.Writer{l.opts.Stdout, l.opts.Stderr} {
		if len(sc.std[i]) == 0 {
			continue
		}
		if _, err := w.Write(sc.std[i]); err != nil && !l.outErr[i] {
			l.outErr[i] = true
			errs = append(errs, &WriteError{Dir: [2]string{"stdout", "stderr"}[i], Err: err})
		}
		sc.std[i] = sc.std[i][:0]
	}
	return errs
}
