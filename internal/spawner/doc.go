// Package spawner forks and execs services' programs from a small helper
// process on the scanner's behalf, so that the cost of a spawn does not
// grow with the number of services.
//
// Why: the scanner holds about two descriptors per service (the lock and
// the control FIFO). clone(2) copies the whole descriptor table into the
// child and execve(2) then closes every close-on-exec entry one by one, so
// with 5000 services each fork+exec from the scanner took ~8 ms instead of
// ~1 ms (bench/README.md, "scale"). The helper is the scanner's own binary;
// every descriptor the scanner opens is close-on-exec, so whenever it is
// started it holds only its socket to the scanner (and, for the length of
// one request, the descriptors that request passes), and its clones copy
// a handful of entries.
//
// How: the scanner sends one request per spawn over a SOCK_SEQPACKET
// socketpair (directory, path, argv, environment, and the child's
// descriptors by SCM_RIGHTS); the helper forks with CLONE_PARENT, so the
// child is the scanner's child, not the helper's, and internal/reap in the
// scanner waits for it as before; it replies with the pid or the errno of
// the failed fork or exec (so supervise.RetryDelay classifies it as
// before), and closes the passed descriptors at once. The reply is read
// synchronously by the loop that made the request, so the child is in the
// loop's pid table before the loop can reap it, however soon it exits.
//
// The helper exits when the scanner goes (EOF on the socket; also
// PR_SET_PDEATHSIG). If it dies, [Client.Start] says so once, the caller
// spawns directly (the old, slower way), and the helper is started again
// at a later spawn; if it died with a request in flight after its fork,
// Start finds the run it left in /proc and returns it (lost.go). The wire
// format is in PROTOCOL.md.
package spawner
