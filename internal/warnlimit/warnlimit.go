// Package warnlimit decides which of a long-running supervisor's warnings
// are printed, so that a problem that lasts is reported without flooding
// the log.
//
// The rule (issue 9): each distinct problem is reported when it first
// appears and again whenever it changes (a new message, or a new version
// of the file it is about), then at most once per interval while it lasts
// (an hour by default), with the count of the occurrences it did not
// print. A problem that goes away is forgotten ([Limiter.Clear]), so its
// return is reported at once.
//
// A Limiter is pure: the caller passes the time, which makes it testable
// as a table with a fake clock. It is not safe for concurrent use; each
// event loop owns its own.
package warnlimit

import "time"

// DefaultInterval is how often a problem that lasts is reported again.
const DefaultInterval = time.Hour

// MaxKeys bounds the memory of a Limiter: beyond it the oldest-reported
// problem is forgotten (it may then be reported once more).
const MaxKeys = 256

// Limiter remembers, per problem key, what was last reported and when.
// The zero value is ready to use, with [DefaultInterval].
type Limiter struct {
	Interval time.Duration // 0 means DefaultInterval
	seen     map[string]*record
}

type record struct {
	sig        string    // what identifies this version of the problem
	reportedAt time.Time // when it was last printed
	suppressed int       // occurrences not printed since then
}

// Allow says whether an occurrence at now of problem key, in the version
// sig, should be printed. When it should, suppressed is the number of
// occurrences of the same version that were not printed since the last
// report (0 on a first report or a change).
func (l *Limiter) Allow(key, sig string, now time.Time) (ok bool, suppressed int) {
	every := l.Interval
	if every <= 0 {
		every = DefaultInterval
	}
	r := l.seen[key]
	switch {
	case r == nil:
		if l.seen == nil {
			l.seen = map[string]*record{}
		}
		if len(l.seen) >= MaxKeys {
			l.evictOldest()
		}
		l.seen[key] = &record{sig: sig, reportedAt: now}
		return true, 0
	case r.sig != sig:
		*r = record{sig: sig, reportedAt: now}
		return true, 0
	case now.Sub(r.reportedAt) >= every || now.Before(r.reportedAt):
		// NOTE: a clock that went backwards (now before the last report)
		// reports rather than staying silent until it catches up.
		n := r.suppressed
		r.reportedAt, r.suppressed = now, 0
		return true, n
	}
	r.suppressed++
	return false, 0
}

// Clear forgets key: the problem went away.
func (l *Limiter) Clear(key string) { delete(l.seen, key) }

// Len is the number of problems remembered.
func (l *Limiter) Len() int { return len(l.seen) }

func (l *Limiter) evictOldest() {
	var oldest string
	var at time.Time
	for k, r := range l.seen {
		if oldest == "" || r.reportedAt.Before(at) {
			oldest, at = k, r.reportedAt
		}
	}
	delete(l.seen, oldest)
}
