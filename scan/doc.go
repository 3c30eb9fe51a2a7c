// Package scan is gosv's scanner: the s6-svscan analogue that supervises
// every service directory of a scan directory from one process.
//
// One goroutine runs one event loop ([Run]) that owns every piece of
// supervision state: the epoll set (control FIFOs, readiness pipes,
// pidfds, inotify, the scanner's own control FIFO), the single deadline,
// the children (reaped through package reap) and one pure state machine
// per service directory (package supervise). The only other goroutine
// forwards signals from os/signal to the loop through an eventfd.
//
// `gosv supervise DIR` runs the same loop with exactly one service and no
// scan directory.
package scan
