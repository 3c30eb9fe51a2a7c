package scan

import (
	"runtime"
	"sync"
)

// reservedThreads is how many OS threads the scanner makes at setup and
// keeps idle for later. The Go runtime starts a thread whenever a goroutine
// blocks in a system call and no idle thread is left, and a failed thread
// creation is fatal ("pthread_create failed: Resource temporarily
// unavailable"): under a pids-cgroup limit or RLIMIT_NPROC that the
// services reached, the scanner would die. The runtime never gives idle
// threads back, so threads made while there was room keep the loop, its
// signal forwarder and the garbage collector running at the limit.
const reservedThreads = 8

// reserveThreads makes n threads now and leaves them idle: each of n
// goroutines locks itself to a thread and blocks, which makes the runtime
// start another thread for the rest; then all unlock and end, and their
// threads go to the idle pool (a goroutine that ends locked would take its
// thread down with it).
func reserveThreads(n int) {
	var ready, release sync.WaitGroup
	ready.Add(n)
	release.Add(1)
	for i := 0; i < n; i++ {
		go func() {
			runtime.LockOSThread()
			ready.Done()
			release.Wait()
			runtime.UnlockOSThread()
		}()
	}
	ready.Wait()
	release.Done()
}
