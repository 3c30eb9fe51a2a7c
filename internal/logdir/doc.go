// Package logdir is gosv's logger: s6-log's script language and log
// directories, fed losslessly from a pipe.
//
// It serves two callers. `gosv log` (cmd/gosv/log.go) is the s6-log
// replacement a log/run script execs: one Logger reading its stdin through
// a [Feeder]. The scanner (scan/) runs the in-process loggers of the
// service directories that have a log-script file (PROTOCOL.md §9.1): one
// Logger per service, driven by the scanner's own epoll loop, with no
// process and no buffer of its own. `gosv logs` and the OpenRC backend read
// log directories with [Resolve] and [Show]. SCRIPT.md beside this file
// lists the script directives and how they differ from s6-log's and
// svlogd's; LOGDIR.md specifies the files of a log directory, its
// rotation and its recovery.
//
// # API for an event loop
//
//	sc, _ := logdir.NewScratch()              // once per process: the shared pipe and buffers
//	s, _ := logdir.ParseScriptAt(svcDir, strings.Fields(logScript))
//	                                          // relative directories: relative to svcDir
//	l, err := logdir.Open(s, logdir.Options{Prog: "gosv svscan"})
//	                                          // creates, locks (OFD) and recovers the directories;
//	                                          // err concerns this service's logging only
//	logdir.SetPipeSize(pipe[0], logdir.PipeSize) // 1 MiB of slack for the service
//	unix.SetNonblock(pipe[0], true)
//	epoll_ctl(ADD, pipe[0], EPOLLIN|EPOLLET)  // edge-triggered is enough, see Consume
//
//	// when pipe[0] is readable, or when the deadline returned last time comes:
//	retryAt, eof, err := l.Consume(pipe[0], sc)
//	if err != nil { warn(err) }               // *WriteError: once per failure episode
//	switch {
//	case eof:               l.Close()         // every writer is gone and all is written
//	case retryAt.IsZero():                    // the pipe is empty: wait for readability
//	default:                arm(retryAt)      // call again then, readable or not; retryAt is
//	}                                         // "now" after 1 MiB (the per-call budget)
//
//	l.Rotate()                                // s6-log's SIGALRM, if the loop offers it
//	l.Flush(sc); l.Close()                    // stopping while the pipe stays: fsync,
//	                                          // current marked complete, locks released
//
// Consume never blocks and never allocates per line. Bytes leave the pipe
// only after write(2) to every log directory that selected them has
// returned (tee, write, then splice to /dev/null), so killing the process
// at any point loses nothing that the service wrote: the pipe, which the
// scanner keeps across restarts of the service and of the logger, still
// holds it, and the next Consume (of this or of a new Logger) writes it; at
// worst the last batch is written twice. With Options.Stage (a [Stage]
// that outlives the process, as the scanner's fd holder keeps it) the
// input is spliced into the stage first and each write is recorded there,
// so that a new Logger given the stage writes every byte exactly once
// (LOGDIR.md, "Exactly once"). In the default lossless mode a
// log directory that cannot be written (ENOSPC, EACCES, EIO) is reported
// once, retried after its r delay (2 s by default, at most 10 s), and
// nothing more is taken from the pipe meanwhile, so the service blocks once
// the pipe is full. With Options.LossBytes (gosv log -B) the directory
// instead holds about that many bytes, then drops whole lines and writes
// "gosv: dropped N lines" when it recovers.
//
// A Logger and a Scratch belong to one goroutine. Scripts are immutable
// and may be shared. Errors have the os.PathError shape; the sentinels and
// types callers branch on are [ErrScript], [*ScriptError], [*WriteError],
// [ErrNoLog], and servicedir.ErrLocked for a log directory another logger
// holds.
package logdir
