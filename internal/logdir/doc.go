// Package logdir is gosv's logger: s6-log's script language and log
// directories, fed losslessly from a pipe.
//
// It serves two callers. `gosv log` (cmd/gosv/log.go) is the s6-log
// replacement a log/run script execs: one Logger reading its stdin. The
// scanner (scan/) runs the in-process loggers of the service directories
// that have a log-script file (PROTOCOL.md §9.1): one Logger per service,
// driven by the scanner's own epoll loop, with no process and no buffer
// of its own. SCRIPT.md beside this file lists the script directives and
// how they differ from s6-log's and svlogd's; LOGDIR.md specifies the
// files of a log directory and its rotation.
//
// # API for an event loop
//
//	sc, _ := logdir.NewScratch()              // once per process: the shared pipe and buffers
//	s, _ := logdir.ParseScript(strings.Fields(logScript))
//	l, err := logdir.Open(s, logdir.Options{Prog: "gosv svscan"})
//	                                          // locks and recovers the directories; err is
//	                                          // fatal for this service's logging only
//	logdir.SetPipeSize(pipe[0], logdir.PipeSize) // 1 MiB of slack for the service
//	unix.SetNonblock(pipe[0], true)
//	epoll_ctl(ADD, pipe[0], EPOLLIN|EPOLLET)  // edge-triggered, see Consume
//
//	// when pipe[0] is readable, or when the deadline returned last time passes:
//	retryAt, eof, err := l.Consume(pipe[0], sc)
//	if err != nil { warn(err) }               // *WriteError: reported once per failure
//	if !retryAt.IsZero() { arm(retryAt) }     // call again then, readable or not
//	if eof { l.Close() }                      // every writer is gone and all is written
//
//	l.Rotate()                                // s6-log's SIGALRM, if the loop offers it
//	l.Close()                                 // at exit: fsync, current marked complete, unlock
//
// Consume never blocks and never allocates per line. Bytes leave the pipe
// only after write(2) to every log directory that selected them has
// returned (tee, write, then splice to /dev/null), so killing the process
// at any point loses nothing that the service wrote; the pipe, which the
// scanner keeps across restarts of the service and of the logger, still
// holds it. In the default lossless mode a log directory that cannot be
// written (ENOSPC, EACCES, EIO) is reported once, retried after its r
// delay (2 s by default, at most 10 s), and nothing more is taken from the
// pipe meanwhile, so the service blocks once the pipe is full. With
// Options.LossBytes (gosv log -B) the directory instead holds up to that
// many bytes, then drops whole lines and writes "gosv: dropped N lines"
// when it recovers.
//
// A Logger and a Scratch belong to one goroutine. Scripts are immutable
// and may be shared. Errors have the os.PathError shape; the sentinels and
// types callers branch on are [ErrScript], [*ScriptError] and
// [*WriteError], and servicedir.ErrLocked for a log directory another
// logger holds.
package logdir
