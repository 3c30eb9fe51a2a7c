package logdir

import (
	"bytes"
	"errors"
	"io"
	"time"
)

// segment is the part of one line that a batch holds: data[pos:end] is
// its text; next is where the following line starts; term says that the
// line ends here (a newline was found, the line limit was reached, or the
// input ended), so a newline follows it in the output.
type segment struct {
	pos, end, next int
	term           bool
}

// process writes the lines of data, from the earliest action's progress
// on, and returns how many input bytes every action has handled. data[0]
// is l.lineOff bytes into a line. With force, a trailing incomplete line
// is ended (EOF).
//
// A rotation runs only at the start of a batch, when everything written
// so far has been taken out of the input: a line that needs one ends the
// batch (more is true), so that a crash in the middle of a rotation finds
// nothing written twice.
func (l *Logger) process(data []byte, sc *Scratch, force bool, now time.Time, errs []error) (n int, more bool, _ []error) {
	cut := len(data)
	if l.script.wholeLines && !force {
		cut = cutPoint(data, l.limit)
	}
	sinks := sc.sinksFor(len(l.acts))
	start := cut
	for id := range sinks {
		sinks[id].covered = l.ahead[id]
		start = min(start, l.ahead[id])
	}
	l.stamp(sc, now)
	for pos := start; pos < cut; {
		seg := l.nextSegment(data, pos, cut, force)
		if pos > start && l.needRotation(sinks, sc, data, seg, now) {
			cut, more = pos, true
			break
		}
		errs = l.dispatch(data, seg, sinks, sc, now, errs)
		pos = seg.next
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
	if force && n == cut && !more {
		l.lineOff = 0 // the tail was ended with a newline
	} else {
		l.lineOff = lineOffset(data, n, l.lineOff, l.limit)
	}
	return n, more, errs
}

// dispatch hands one segment to the actions that select its line.
func (l *Logger) dispatch(data []byte, seg segment, sinks []sinkState, sc *Scratch, now time.Time, errs []error) []error {
	set := uint64(1)<<len(l.acts) - 1
	if l.script.selects {
		set = l.script.selectLine(data[seg.pos:seg.end]) // whole-line mode: seg is the whole line
	}
	lossless := l.opts.LossBytes <= 0
	for id, a := range l.acts {
		s := &sinks[id]
		from := max(seg.pos, s.covered)
		if from >= seg.next || (s.stopped && lossless) {
			continue
		}
		if set&(1<<id) != 0 && (from < seg.end || seg.term) {
			// A line starts a segment unless it began in an earlier batch
			// (lineOff) or this action wrote its beginning already.
			first := from == seg.pos && (seg.pos > 0 || l.lineOff == 0)
			errs = l.emit(a, s, sc, data[from:seg.end], first, seg.term, now, errs)
		}
		if !s.stopped || !lossless {
			s.covered = seg.next
		}
	}
	return errs
}

// nextSegment returns the segment at pos. The line limit counts from the
// start of the line, which may lie before data (lineOff).
func (l *Logger) nextSegment(data []byte, pos, cut int, force bool) segment {
	room := l.limit
	if pos == 0 {
		room -= l.lineOff
	}
	if i := bytes.IndexByte(data[pos:min(cut, pos+room+1)], '\n'); i >= 0 {
		return segment{pos, pos + i, pos + i + 1, true}
	}
	if pos+room <= cut {
		return segment{pos, pos + room, pos + room, true} // at the limit: s6-log -l inserts a newline
	}
	return segment{pos, cut, cut, force}
}

// cutPoint is where the whole lines of data end: after the last newline,
// plus whole line-limit pieces of the incomplete tail.
func cutPoint(data []byte, limit int) int {
	cut := bytes.LastIndexByte(data, '\n') + 1
	tail := len(data) - cut
	return cut + tail/limit*limit
}

// lineOffset is how far into a line position n of data is, data[0] being
// off bytes into one.
func lineOffset(data []byte, n, off, limit int) int {
	if i := bytes.LastIndexByte(data[:n], '\n'); i >= 0 {
		return (n - i - 1) % limit
	}
	return (off + n) % limit
}

// needRotation reports whether a directory that takes the line starting
// at seg must rotate first.
func (l *Logger) needRotation(sinks []sinkState, sc *Scratch, data []byte, seg segment, now time.Time) bool {
	for _, d := range l.dirs {
		a, s := d.act, &sinks[d.act.id]
		if s.covered > seg.pos || s.stopped || d.failing(now) {
			continue
		}
		pending := d.size + int64(len(s.out))
		if d.step != stepWritable || (pending > 0 && pending+int64(segLen(a, sc, seg.end-seg.pos, true, true)) > d.cfg.MaxSize) {
			return !l.script.selects || l.script.selectLine(data[seg.pos:seg.end])&(1<<a.id) != 0
		}
	}
	return false
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

// appendSegment formats a segment: stamps and prefix if it starts its
// line, the text, a newline if it ends it.
func appendSegment(b []byte, a *action, sc *Scratch, text []byte, first, term bool) []byte {
	if first {
		if a.tai {
			b = append(b, sc.tai...)
		}
		if a.iso {
			b = append(b, sc.iso...)
		}
		b = append(b, a.prefix...)
	}
	b = append(b, text...)
	if term {
		b = append(b, '\n')
	}
	return b
}

func segLen(a *action, sc *Scratch, text int, first, term bool) int {
	n := text
	if first {
		n += len(a.prefix)
		if a.tai {
			n += len(sc.tai)
		}
		if a.iso {
			n += len(sc.iso)
		}
	}
	if term {
		n++
	}
	return n
}

// emit adds a segment to an action's output, rotating the directory first
// if a line would take current over its size. Rotations happen only at
// line starts: a line written in pieces may take current over s by less
// than the line limit.
func (l *Logger) emit(a *action, s *sinkState, sc *Scratch, text []byte, first, term bool, now time.Time, errs []error) []error {
	k := segLen(a, sc, len(text), first, term)
	if a.kind != actDir {
		i := int(a.kind - actStdout)
		if len(sc.std[i])+k+len(l.opts.Prog)+len(alertTag)+3 > cap(sc.std[i]) {
			errs = l.flushStd(sc, errs)
		}
		sc.std[i] = l.appendStd(sc.std[i], a, sc, text, first, term)
		return errs
	}
	d := l.dirs[a.dir]
	if s.stopped || d.failing(now) {
		if l.opts.LossBytes > 0 {
			l.holdSegment(d, a, sc, text, first, term)
		}
		return errs
	}
	if first && d.dropped > 0 {
		s.out = appendDropped(s.out, d, now)
	}
	pending := d.size + int64(len(s.out))
	if first && (d.step != stepWritable || (pending > 0 && pending+int64(k) > d.cfg.MaxSize)) {
		if errs = l.flush(a, s, now, errs); s.stopped {
			return l.emit(a, s, sc, text, first, term, now, errs)
		}
		if err := d.rotate(now, l.hook); err != nil {
			s.stopped = true
			return l.emit(a, s, sc, text, first, term, now, l.fail(d, err, now, errs))
		}
	}
	if len(s.out)+k > cap(s.out) {
		if errs = l.flush(a, s, now, errs); s.stopped {
			return l.emit(a, s, sc, text, first, term, now, errs)
		}
	}
	s.out = appendSegment(s.out, a, sc, text, first, term)
	return errs
}

const alertTag = ": alert: "

// appendStd formats a segment for the 1 and 2 actions; an alert (always a
// whole line) is cut to E bytes and marked with "...", as s6-log does.
func (l *Logger) appendStd(b []byte, a *action, sc *Scratch, text []byte, first, term bool) []byte {
	if a.kind != actStderr {
		return appendSegment(b, a, sc, text, first, term)
	}
	b = append(append(b, l.opts.Prog...), alertTag...)
	if a.alertMax == 0 || a.alertMax+3 >= len(text) {
		return appendSegment(b, a, sc, text, first, true)
	}
	b = appendSegment(b, a, sc, text[:a.alertMax], first, false)
	return append(b, "...\n"...)
}

// flush writes an action's output. For a directory, success moves the
// action's progress to what the output covered; failure stops the action
// for this batch (lossless) or moves the lines to the held buffer
// (bounded-loss).
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
		var err error
		if l.st != nil {
			err = l.writeStaged(d, out, s.covered)
		} else {
			err = d.write(out)
		}
		if err != nil {
			s.stopped = true
			errs = l.fail(d, err, now, errs)
			if lossless {
				return errs
			}
			l.holdBytes(d, out)
		} else if lossless {
			d.failed = false
		}
	}
	if !s.stopped || !lossless {
		l.ahead[a.id] = s.covered
	}
	return errs
}

// flushStd writes the output of the 1 and 2 actions. Their errors are
// reported once and the lines dropped: a broken stdout must not stop the
// log directories.
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

// Flush writes, ended with a newline, an incomplete line that whole-line
// mode holds in memory, as EOF would: call it before Close when a logger
// stops while its input goes on (gosv log on SIGTERM), so that the line is
// not lost with the process. The rest of the line, if it comes, starts a
// new line for the next logger. Nothing is held in the other modes.
func (l *Logger) Flush(sc *Scratch) error {
	if l.st != nil {
		return l.flushStaged(sc)
	}
	if len(l.pend) == 0 {
		return nil
	}
	now := l.opts.Now()
	k := copy(sc.in, l.pend)
	n, _, errs := l.process(sc.in[:k], sc, true, now, nil)
	l.pend = append(l.pend[:0], l.pend[n:]...)
	return errors.Join(errs...)
}

// endLine ends with a newline a line the input left incomplete at EOF.
func (l *Logger) endLine(sc *Scratch, now time.Time, errs []error) []error {
	if l.lineOff == 0 {
		return errs
	}
	sc.in[0] = '\n'
	_, _, errs = l.process(sc.in[:1], sc, true, now, errs)
	return errs
}
