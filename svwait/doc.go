// Package svwait waits until supervised services reach a state: up, up and
// ready, down, down and ready, or restarted.
//
// It is the engine behind `gosv svc -w…` and `gosv svwait`, and the OpenRC
// backend's way to wait for a service. It follows s6-svwait and s6-svlisten1
// (s6_svlisten_loop.c) exactly, so that it agrees with them on every service
// directory, whether its supervisor is gosv or s6-supervise: for each
// directory it first subscribes to the event/ fifodir, then reads
// supervise/status, and from then on it only consumes event bytes. Because a
// supervisor renames the status file into place before it notifies, nothing
// can fall between the two. It never polls: it blocks in the Go poller on the
// listener fifos until an event or the context's deadline.
package svwait
