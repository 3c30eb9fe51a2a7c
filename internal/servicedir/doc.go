// Package servicedir is gosv's implementation of the s6 2.11 on-disk protocol:
// the service directory, supervise/status, supervise/death_tally, the control
// FIFO, the supervise lock and the event/ fifodir, plus gosv's own state under
// supervise/gosv/.
//
// Every program of the suite (the scanner, svc, svstat, svwait, svok) goes
// through this package, so that they agree byte for byte with each other and
// with the real s6 tools. The format is specified in PROTOCOL.md beside this
// file.
//
// Functions are safe for concurrent use. A [Notifier] and a [Subscription]
// are not: each belongs to one goroutine (the supervisor's event loop keeps
// one Notifier for all its services). Errors have the os.PathError shape
// and wrap the sentinels callers branch on ([ErrLocked], [ErrNotListening],
// [ErrShortStatus], [ErrBadValue], [ErrBadDeathTally]).
package servicedir
