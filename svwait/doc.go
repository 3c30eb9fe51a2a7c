// Package svwait waits until supervised services reach a state: up, up and
// ready, down, down and ready, or restarted.
//
// It is the engine behind `gosv svwait` and `gosv svc -w…`, and the OpenRC
// backend's way to wait for a service. It follows s6-svwait and s6-svlisten1
// (s6_svlisten_loop.c), so that it agrees with them on every service
// directory, whether its supervisor is gosv or s6-supervise: for each
// directory it first subscribes to the event/ fifodir, then reads
// supervise/status, and from then on it only consumes event bytes. Because a
// supervisor renames the status file into place before it notifies, nothing
// can fall between the two. It never polls: the waiting goroutine parks in
// the Go poller on one epoll descriptor until an event or the deadline.
//
// Where s6-svwait would wait forever, it does not: a service whose
// supervisor is not running when the wait starts, or dies during it, counts
// as failed at once (see [Reason]). The supervisor is found through
// supervise/lock and gosv's supervise/gosv/supervisor record, and watched
// with a pidfd (PROTOCOL.md §8, §9).
//
// It also reads gosv's readiness state (PROTOCOL.md §9.2, §9.3): a
// service's supervise/gosv/ready-deadline extends [Waiter.Deadline], and the
// output of its last failed check is kept for the error. A wait that ends
// without its goal returns a [*FailedError] or a [*TimeoutError] that says,
// per service, why.
//
// For the OpenRC backend, which must fail a start at the first death of
// the daemon and can ask it to stay up (start_wait), a [Waiter] can fail
// at a death ([Waiter.FailOnDeath]), last past its goal ([Waiter.Stay]),
// and take over a subscription its caller opened before the service was
// supervised ([ListenSubscribed]): one subscription and one wait per
// start.
package svwait
