package spawner

import (
	"os"
	"runtime"
	"runtime/debug"
	"syscall"

	"golang.org/x/sys/unix"
)

// helperComm is the helper's process name: the scanner's own, so that
// counting a supervisor's processes by name (bench/) counts the helper.
const helperComm = "gosv"

// helperMemoryLimit is the helper's soft memory limit, a bound in case of
// a leak: a request is at most maxRequest bytes, decoded once, and GOGC
// keeps the heap small.
// NOTE: the limit counts every byte the runtime maps, about 5 MiB here
// even after FreeOSMemory. At 4 MiB the runtime returned pages to the
// kernel (madvise) at every request and faulted them back in: about 0.1
// ms more between the request and the clone. The price: ~0.6-1 MiB more
// anonymous memory in the helper (bench/README.md, "The restart path at
// 5000 services"; TestMemoryLimitAboveRuntime).
const helperMemoryLimit = 16 << 20

// dieBeforeReply is a test hook (set only by this package's tests): the
// helper kills itself after a successful spawn, before its reply.
var dieBeforeReply bool

// Serve is the helper: it answers spawn requests on the socket fd until
// the scanner closes its end, and returns nil then. It must be started
// with nothing open but fds 0-2 and fd (see [Client]).
func Serve(fd int) error {
	// NOTE: /proc/self/comm names the thread-group leader whatever thread
	// writes it; exec through /proc/self/exe named the process "exe".
	os.WriteFile("/proc/self/comm", []byte(helperComm), 0)
	// The socket came as a plain fd 3: no child may inherit it.
	unix.CloseOnExec(fd)
	// One request at a time: one P is enough.
	runtime.GOMAXPROCS(1)
	debug.SetMemoryLimit(helperMemoryLimit)
	// What the binary's package initialisers allocated is garbage here:
	// hand it back to the kernel once, before the first request.
	debug.FreeOSMemory()
	buf := make([]byte, maxRequest)
	oob := make([]byte, unix.CmsgSpace(maxFiles*4))
	for {
		n, oobn, flags, _, err := unix.Recvmsg(fd, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return os.NewSyscallError("recvmsg", err)
		}
		if n == 0 && oobn == 0 {
			return nil // the scanner is gone
		}
		fds := rights(oob[:oobn])
		pid, err := serveOne(buf[:n], fds, flags)
		// NOTE: closed before the reply: once the scanner has the reply it
		// may close or reuse its own ends (a notification pipe's reader
		// counts on the helper holding no copy of the write end).
		closeAll(fds)
		if dieBeforeReply && err == nil {
			unix.Kill(os.Getpid(), unix.SIGKILL) // the test of lost.go: killed between fork and reply
		}
		if _, err := unix.Write(fd, reply(pid, err)); err != nil {
			return os.NewSyscallError("write", err)
		}
	}
}

// rights returns the descriptors of an SCM_RIGHTS message.
func rights(oob []byte) []int {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for i := range msgs {
		if f, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

func serveOne(b []byte, fds []int, flags int) (int, error) {
	if flags&(unix.MSG_TRUNC|unix.MSG_CTRUNC) != 0 {
		return 0, unix.EMSGSIZE
	}
	r, err := decode(b, fds)
	if err != nil {
		return 0, unix.EINVAL
	}
	return forkExec(r, unix.CLONE_PARENT)
}

// forkExec starts r in a new session with default signal dispositions.
// cloneFlags is CLONE_PARENT in the helper: the child becomes the
// scanner's. NOTE: when exec fails, syscall.ForkExec waits for the child
// it believes its own; with CLONE_PARENT that wait4 gets ECHILD at once,
// and the dead child is the scanner's to reap (an unknown pid, dropped).
func forkExec(r *Request, cloneFlags uintptr) (int, error) {
	files := make([]uintptr, len(r.Files))
	for i, fd := range r.Files {
		files[i] = uintptr(fd)
	}
	return syscall.ForkExec(r.Path, r.Argv, &syscall.ProcAttr{
		Dir:   r.Dir,
		Env:   r.Env,
		Files: files,
		Sys:   &syscall.SysProcAttr{Setsid: true, Cloneflags: cloneFlags},
	})
}
