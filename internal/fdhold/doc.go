// Package fdhold keeps file descriptors open across the death of the
// process that uses them: a small holder process, one per scan directory,
// to which the scanner hands descriptors over a unix socket (SCM_RIGHTS)
// and from which a restarted scanner takes them back, as s6-fdholder-daemon
// does for s6.
//
// The scanner uses it for the pipes of in-process logs (log-script): a
// pipe's buffer dies with its last open descriptor, so without a holder a
// service that writes its last lines and exits while no scanner runs
// takes those lines with it. The holder keeps one read end of each such
// pipe, never reads it, and hands it back; the new scanner drains what was
// written. It does the same for each run's notification-fd pipe until the
// run is ready. HOLDER.md describes the protocol and the holder's
// lifetime.
package fdhold
