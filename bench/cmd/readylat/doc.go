// Command readylat measures readiness latency: the time from a daemon's
// readiness write to the return of a waiting `svwait -U`, for gosv
// (`gosv svscan`, `gosv svc`, `gosv svwait`) and s6 (`s6-svscan`,
// `s6-svc`, `s6-svwait`), interleaved sample by sample in one run.
//
// Each system gets a scan directory DIR/SYSTEM/scan with one normally-down
// service whose notification-fd is 3. Its run script (bash) blocks reading
// a trigger fifo, then takes `t=$EPOCHREALTIME` (no fork), writes the
// readiness newline to fd 3, and hands t back through a second fifo. One
// sample:
//
//  1. `svc -u DIR` starts the service; its run blocks on the trigger;
//  2. the waiter (`gosv svwait -U DIR` or `s6-svwait -U DIR`) is started,
//     and readylat waits on inotify until its listener fifo is renamed
//     into DIR/event, so that it is subscribed;
//  3. readylat writes the trigger; the daemon stamps t0 and notifies;
//  4. the waiter exits; readylat reads the clock: t1 (after waitid);
//  5. the sample is t1 − t0; `svc -wD -d DIR` stops the service.
//
// A third row, gosv-lib, waits in readylat itself with package svwait (as
// the OpenRC backend does): the same supervisor path without a waiter
// process to start and, above all, to exit. -diag adds a listener of
// readylat's own and splits each sample at the 'U' it sees.
//
// Nothing sleeps: every wait is a blocking open or read of a fifo, a
// waitid, or an inotify wait, each bounded by -timeout.
package main
