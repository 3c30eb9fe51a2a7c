package logdir

import (
	"errors"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// maxBatches bounds the work of one Consume call (16 × 64 KiB), so that a
// service writing without pause cannot starve the caller's event loop.
// Consume then returns a retryAt of "now": call again after other work.
const maxBatches = 16

// Consume moves what the input fd holds to the script's actions, without
// blocking, and returns once the input is empty.
//
// fd must be the read end of a pipe, or anything readable (see below). It
// should be O_NONBLOCK; Consume never waits on it. The bytes are first
// duplicated with tee(2) into sc's pipe and read from there; they are taken
// out of fd (splice(2) to /dev/null) only once write(2) to every selected
// current has returned. So a logger that dies at any moment loses nothing:
// what it had not consumed is still in the pipe, and at worst the last
// chunk is written twice.
//
// An incomplete last line is written as it is (a line gets the stamps of
// the batch its first byte is handled in, and exactly one set of them),
// and a newline is added at EOF. Scripts with +/- selections or a 2
// action need whole lines: there an incomplete line is taken out of the
// pipe into memory until its newline comes, and a crash loses it.
//
// Results:
//   - retryAt zero, eof false: the input is empty; call again when fd
//     becomes readable. Edge-triggered epoll (EPOLLET) is enough, since
//     Consume never leaves bytes behind in that case.
//   - retryAt set: call again at retryAt even if fd does not become
//     readable. It is "now" when the batch budget ran out (16 × 64 KiB),
//     and the directory's retry deadline when a log directory failed; in
//     lossless mode nothing is taken from fd until then, so the service
//     blocks on its full pipe.
//   - eof: all writers closed fd and everything was written; Close the
//     Logger.
//   - err: a [*WriteError] (joined if several) when a log directory starts
//     failing, reported once per failure, for the caller to print; the
//     Logger keeps going. Any other error concerns fd itself.
//
// If fd is not a pipe (tee gives EINVAL), Consume reads it instead; bytes
// read but not yet written then live in the Logger, and a crash loses them.
func (l *Logger) Consume(fd int, sc *Scratch) (retryAt time.Time, eof bool, err error) {
	if l.st != nil {
		return l.consumeStaged(fd, sc)
	}
	now := l.opts.Now()
	errs := l.retryDue(now, nil)
	if next, blocked := l.deadline(now); blocked {
		return next, false, errors.Join(errs...)
	}
	for range maxBatches {
		data, k, inEOF, err := l.peek(fd, sc)
		if err != nil {
			return time.Time{}, false, errors.Join(append(errs, err)...)
		}
		if len(data) == k && !inEOF {
			next, _ := l.deadline(now)
			return next, false, errors.Join(errs...) // nothing new: the input is empty
		}
		if len(data) == 0 {
			errs = l.endLine(sc, now, errs)
			errs = l.reportDropped(now, errs)
			next, _ := l.deadline(now)
			return next, next.IsZero() && l.drained(), errors.Join(errs...)
		}
		var n int
		var more bool
		n, more, errs = l.process(data, sc, inEOF, now, errs)
		next, blocked := l.deadline(now)
		if err := l.discard(fd, sc, data, k, n, !blocked && !more); err != nil {
			return time.Time{}, false, errors.Join(append(errs, err)...)
		}
		if blocked {
			return next, false, errors.Join(errs...)
		}
		now = l.opts.Now()
	}
	return now, false, errors.Join(errs...)
}

// reportDropped writes the count of dropped lines of the directories that
// recovered, at EOF, when no next line will carry it.
func (l *Logger) reportDropped(now time.Time, errs []error) []error {
	for _, d := range l.dirs {
		if d.dropped > 0 && !d.failing(now) && len(d.held) == 0 {
			n := d.dropped
			if err := d.write(appendDropped(nil, d, now)); err != nil {
				d.dropped = n
				errs = l.fail(d, err, now, errs)
			}
		}
	}
	return errs
}

// drained reports whether nothing is held back in memory.
func (l *Logger) drained() bool {
	for _, d := range l.dirs {
		if len(d.held) > 0 || d.dropped > 0 || d.step != stepWritable {
			return false
		}
	}
	return len(l.pend) == 0 && l.lineOff == 0
}

// peek returns the input's next bytes, after the k bytes of an incomplete
// line kept in memory: from a pipe without consuming them (tee), from
// anything else by reading.
func (l *Logger) peek(fd int, sc *Scratch) (data []byte, k int, eof bool, err error) {
	k = copy(sc.in, l.pend)
	if k == len(sc.in) {
		return sc.in, k, false, nil
	}
	if !l.notPipe {
		n, err := tee(fd, sc.w, len(sc.in)-k)
		switch {
		case err == unix.EINVAL:
			l.notPipe = true
		case err == unix.EAGAIN:
			return sc.in[:k], k, false, nil
		case err != nil:
			return nil, 0, false, os.NewSyscallError("tee", err)
		case n == 0:
			// NOTE: tee(2) also returns 0, not EAGAIN, when it races with
			// a writer that is filling a new pipe buffer (seen on Linux
			// 6.18 with a writer blocked on a full pipe): only POLLHUP
			// (no writer left) makes it the end of the input.
			return sc.in[:k], k, hungUp(fd), nil
		default:
			if err := readFull(sc.r, sc.in[k:k+n]); err != nil {
				return nil, 0, false, os.NewSyscallError("read scratch pipe", err)
			}
			return sc.in[:k+n], k, false, nil
		}
	}
	n, err := readRetry(fd, sc.in[k:])
	switch {
	case err == unix.EAGAIN:
		return sc.in[:k], k, false, nil
	case err != nil:
		return nil, 0, false, os.NewSyscallError("read", err)
	}
	return sc.in[:k+n], k, n == 0, nil
}

// hungUp reports whether a pipe has no writer left.
func hungUp(fd int) bool {
	pfd := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
	k, err := unix.Poll(pfd, 0)
	return err == nil && k == 1 && pfd[0].Revents&unix.POLLHUP != 0
}

// discard takes what a batch handled out of the input: the n first bytes
// of data (whose k first came from memory). With all, the rest of data (an
// incomplete line in whole-line mode) is taken too and kept in memory, so
// that the pipe is left empty.
//
// NOTE: the pipe must be left empty whenever Consume waits for the next
// write: a writer that fills a non-empty pipe and blocks does not wake
// edge-triggered readers (Linux fs/pipe.c pipe_write wakes them before
// sleeping only "if (was_empty)"), and both would wait forever.
func (l *Logger) discard(fd int, sc *Scratch, data []byte, k, n int, all bool) error {
	taken := n
	if all || l.notPipe {
		taken = len(data)
	}
	l.pend = append(l.pend[:0], data[n:max(n, min(taken, len(data)), k)]...)
	if len(l.pend) == 0 {
		l.pend = nil // an idle Logger owns no buffer
	}
	if l.notPipe {
		return nil
	}
	for left := taken - k; left > 0; {
		m, err := unix.Splice(fd, nil, sc.null, nil, left, unix.SPLICE_F_NONBLOCK)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("splice", err)
		}
		left -= int(m)
	}
	return nil
}
