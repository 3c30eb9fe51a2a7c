package logdir

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strconv"
	"time"
)

// Line limits (s6-log's -l option).
const (
	DefaultLineLimit = 8192
	MinLineLimit     = 48
)

// Options tune a Logger beyond its script.
type Options struct {
	// LineLimit is s6-log's -l: a longer line is split by inserting a
	// newline after LineLimit bytes. 0 means DefaultLineLimit; a negative
	// value means as long as a batch ([ScratchSize]). Values below
	// MinLineLimit are raised to it.
	LineLimit int
	// LossBytes selects bounded-loss mode (gosv log -B) when positive: a
	// log directory that cannot be written buffers up to LossBytes of
	// formatted lines, then drops whole lines and counts them, and the
	// input keeps flowing. 0 (the default) is lossless: nothing more is
	// taken from the input until the directory is writable again.
	LossBytes int
	// Now is the clock (stamps, archive names, retries); nil is time.Now.
	Now func() time.Time
	// Stdout and Stderr receive the 1 and 2 actions; nil is os.Stdout and
	// os.Stderr.
	Stdout, Stderr io.Writer
	// Prog prefixes alerts (the 2 action): "PROG: alert: line".
	Prog string
	// Stage, when set, makes the log directories get each input byte
	// exactly once across SIGKILLs: the input is moved into the stage
	// before it is written, and a new Logger given the same stage
	// settles what the previous one was doing (LOGDIR.md, "Exactly
	// once"). Lossless mode only. The caller keeps and closes it.
	Stage *Stage
}

// WriteError reports that a log directory could not be written or
// rotated. Consume returns it once when the directory starts failing, not
// at every retry; the directory is retried at the deadline Consume
// returns.
type WriteError struct {
	Dir string
	Err error
}

func (e *WriteError) Error() string {
	return "unable to write to log directory " + e.Dir + ": " + e.Err.Error()
}

func (e *WriteError) Unwrap() error { return e.Err }

// Logger writes the lines of one input to the actions of a script. It is
// not safe for concurrent use: the event loop that owns it calls Consume.
type Logger struct {
	script  *Script
	opts    Options
	limit   int
	dirs    []*logDir
	acts    []*action // by action id
	ahead   []int     // per action: input bytes, from the input's head, already handled
	pend    []byte    // bytes taken from the input, not yet handled everywhere (see discard)
	lineOff int       // how far into a line the input's head is (incomplete lines written as they come)
	notPipe bool
	outErr  [2]bool                     // a 1 or 2 write error was reported
	hook    func(string, rotStep) error // tests: runs before each rotation step

	st        *Stage                            // see Options.Stage
	base      int64                             // staged: the stage offset of the batch's first byte
	seenEnd   int64                             // staged: the stage's end when an incomplete line was last left waiting
	stageHook func(stagePoint, *logDir, []byte) // tests: runs at each stagePoint
}

// Open creates, locks and recovers the script's log directories (see
// LOGDIR.md) and returns a Logger ready to consume. Errors have the
// os.PathError shape; a directory locked by another logger wraps
// servicedir.ErrLocked.
func Open(s *Script, opts Options) (*Logger, error) {
	l := &Logger{script: s, opts: opts, ahead: make([]int, s.nacts), acts: make([]*action, s.nacts)}
	if opts.Stage != nil && opts.LossBytes > 0 {
		return nil, errors.New("logdir: a stage needs lossless mode")
	}
	if l.opts.Now == nil {
		l.opts.Now = time.Now
	}
	if l.opts.Stdout == nil {
		l.opts.Stdout = os.Stdout
	}
	if l.opts.Stderr == nil {
		l.opts.Stderr = os.Stderr
	}
	switch {
	case opts.LineLimit == 0:
		l.limit = DefaultLineLimit
	case opts.LineLimit < 0 || opts.LineLimit > ScratchSize:
		l.limit = ScratchSize
	default:
		l.limit = max(opts.LineLimit, MinLineLimit)
	}
	for i := range s.elems {
		for j := range s.elems[i].acts {
			a := &s.elems[i].acts[j]
			l.acts[a.id] = a
		}
	}
	now := l.opts.Now()
	for _, cfg := range s.dirs {
		d, err := openDir(cfg, now, opts.Stage)
		if err != nil {
			l.Close()
			return nil, err
		}
		l.dirs = append(l.dirs, d)
	}
	for _, a := range l.acts {
		if a.kind == actDir {
			l.dirs[a.dir].act = a
			if l.dirs[a.dir].mid && !s.wholeLines && opts.Stage == nil {
				// A logger before us wrote the start of the line the input
				// continues: no stamp for the rest of it.
				l.lineOff = 1
			}
		}
	}
	if opts.Stage != nil {
		l.attachStage(opts.Stage)
	}
	return l, nil
}

// Close flushes what bounded-loss mode holds if it can, completes a
// pending rotation, fsyncs each current and marks it complete (mode 0744,
// as s6-log at exit), and releases the locks. What it cannot finish is
// recovered by the next Open.
func (l *Logger) Close() error {
	var errs []error
	now := l.opts.Now()
	for _, d := range l.dirs {
		if d.fd >= 0 && (len(d.held) > 0 || d.dropped > 0) && l.writeHeld(d) == nil && d.dropped > 0 {
			d.write(appendDropped(nil, d, now))
		}
		if d.fd >= 0 || d.step != stepWritable {
			if err := d.finalize(now, l.hook); err != nil {
				errs = append(errs, &WriteError{Dir: d.cfg.Path, Err: err})
			}
		}
		d.close()
	}
	l.dirs = nil
	return errors.Join(errs...)
}

// Rotate rotates every log directory whose current is not empty, as
// s6-log does on SIGALRM. A failure is retried by the next Consume.
func (l *Logger) Rotate() error {
	var errs []error
	now := l.opts.Now()
	for _, d := range l.dirs {
		if d.size == 0 || d.mid || d.failing(now) {
			continue // nothing to rotate, or in the middle of a line: rotations fall between lines
		}
		if err := d.rotate(now, l.hook); err != nil {
			errs = l.fail(d, err, now, errs)
		}
	}
	return errors.Join(errs...)
}

func (d *logDir) failing(now time.Time) bool { return d.failed && now.Before(d.retryAt) }

// fail records a failure of d: retry after the r delay, report once.
func (l *Logger) fail(d *logDir, err error, now time.Time, errs []error) []error {
	d.retryAt = now.Add(d.cfg.Retry)
	if d.failed {
		return errs
	}
	d.failed = true
	return append(errs, &WriteError{Dir: d.cfg.Path, Err: err})
}

// retryDue retries the failed directories whose deadline has come: the
// rotation first, then, in bounded-loss mode, the held lines.
func (l *Logger) retryDue(now time.Time, errs []error) []error {
	for _, d := range l.dirs {
		if d.failed && !d.retryAt.IsZero() && !now.Before(d.retryAt) {
			errs = l.retry(d, now, errs)
		}
	}
	return errs
}

// deadline returns the earliest retry deadline still pending, and whether
// input must wait for it: lossless mode with a failing directory.
func (l *Logger) deadline(now time.Time) (next time.Time, blocked bool) {
	for _, d := range l.dirs {
		if d.failing(now) {
			if next.IsZero() || d.retryAt.Before(next) {
				next = d.retryAt
			}
			blocked = blocked || l.opts.LossBytes <= 0
		}
	}
	return next, blocked
}

func (l *Logger) retry(d *logDir, now time.Time, errs []error) []error {
	if d.step != stepWritable {
		if err := d.rotate(now, l.hook); err != nil {
			return l.fail(d, err, now, errs)
		}
	}
	if len(d.held) > 0 {
		if err := l.writeHeld(d); err != nil {
			return l.fail(d, err, now, errs)
		}
	}
	// Lossless mode: the failed batch is still in the input and the next
	// write decides. Bounded-loss mode: what was held is written.
	d.retryAt = time.Time{}
	if l.opts.LossBytes > 0 {
		d.failed = false
	}
	return errs
}

// writeHeld writes the lines bounded-loss mode held. The count of the
// lines it dropped is written before the next line (appendDropped), or at
// Close.
func (l *Logger) writeHeld(d *logDir) error {
	if err := d.write(d.held); err != nil {
		return err
	}
	d.held = nil // an idle Logger owns no buffer
	return nil
}

// appendDropped appends the line that tells how many lines bounded-loss
// mode dropped, stamped like the directory's lines (after a newline if
// current ends in the middle of a line).
func appendDropped(b []byte, d *logDir, now time.Time) []byte {
	if d.mid && len(b) == 0 {
		b = append(b, '\n')
	}
	if d.act.tai {
		b = appendTAI64N(b, now)
	}
	if d.act.iso {
		b = appendISO(b, now)
	}
	b = append(b, d.act.prefix...)
	b = append(b, "gosv: dropped "...)
	b = strconv.AppendInt(b, int64(d.dropped), 10)
	d.dropped = 0
	return append(b, " lines: the log directory was not writable\n"...)
}

// holdSegment keeps a segment for a failing directory in bounded-loss
// mode. A line is dropped, and counted, when it starts while LossBytes are
// already held or lines are already being dropped; the rest of a line
// follows the fate of its start. So the log reads: held lines, "dropped N
// lines", newer lines, and LossBytes is exceeded by less than a line.
func (l *Logger) holdSegment(d *logDir, a *action, sc *Scratch, text []byte, first, term bool) {
	if first {
		d.dropping = d.dropped > 0 || len(d.held) >= l.opts.LossBytes
		if d.dropping {
			d.dropped++
		}
	}
	if !d.dropping {
		d.held = appendSegment(d.held, a, sc, text, first, term)
	}
	d.open = !term
}

// holdBytes holds the formatted output of a failed write, segment by
// segment (pieces ending in a newline; the output may start in the middle
// of a line and end in the middle of another).
func (l *Logger) holdBytes(d *logDir, out []byte) {
	for len(out) > 0 {
		i := bytes.IndexByte(out, '\n') + 1
		if i == 0 {
			i = len(out)
		}
		first, term := !d.open, out[i-1] == '\n'
		if first {
			d.dropping = d.dropped > 0 || len(d.held) >= l.opts.LossBytes
			if d.dropping {
				d.dropped++
			}
		}
		if !d.dropping {
			d.held = append(d.held, out[:i]...)
		}
		d.open = !term
		out = out[i:]
	}
}

// write appends b to current. A short write (the disk filled up midway)
// is undone with ftruncate so that the retry does not duplicate a partial
// chunk.
func (d *logDir) write(b []byte) error {
	if len(b) == 0 {
		return nil
	}
	n, err := writeFull(d.fd, b)
	if err == nil {
		d.size += int64(n)
		d.mid = b[len(b)-1] != '\n'
		d.open = d.mid
		return nil
	}
	if n > 0 {
		if terr := ftruncate(d.fd, d.size); terr != nil {
			d.size += int64(n) // NOTE: the partial chunk stays and will be repeated
		}
	}
	return &os.PathError{Op: "write", Path: d.path(currentName), Err: err}
}
