// Package reap is the only package of gosv that waits for child processes.
//
// The scanner's event loop calls [Pidfd] when the pidfd of a recently
// spawned child is readable, and [One] until it finds nothing after each
// SIGCHLD; nothing else in the process may call wait4 or waitid, or
// os/exec's Wait, because two waiters for the same children lose exit
// statuses (supervisord's ReapZombie next to cmd.Wait, or go-reaper beside
// os/exec).
// A test in this package greps the tree to keep it that way.
package reap
