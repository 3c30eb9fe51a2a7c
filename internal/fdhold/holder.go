package fdhold

import (
	"os"
	"runtime"
	"runtime/debug"
	"strconv"

	"golang.org/x/sys/unix"
)

// holderMemoryLimit caps the holder's heap: it holds a map of small keys.
const holderMemoryLimit = 4 << 20

// Serve runs the holder on ln, a listening SOCK_SEQPACKET unix socket (the
// scanner passes it as fd 3). It serves one client at a time, in order, and
// returns when a client leaves (or dies) while nothing is held. It never
// reads the fds it holds.
func Serve(ln int) error {
	runtime.GOMAXPROCS(1)
	debug.SetMemoryLimit(holderMemoryLimit)
	unix.CloseOnExec(ln)
	closeInherited(ln)
	// NOTE: the holder must not keep the scan directory's mount busy, nor
	// die with the scanner's terminal session (the scanner starts it with
	// setsid).
	os.Chdir("/")
	held := map[string]int{}
	uid := os.Geteuid()
	for {
		c, _, err := unix.Accept4(ln, unix.SOCK_CLOEXEC)
		if err == unix.EINTR || err == unix.ECONNABORTED {
			continue
		}
		if err != nil {
			return os.NewSyscallError("accept4", err)
		}
		if cred, err := unix.GetsockoptUcred(c, unix.SOL_SOCKET, unix.SO_PEERCRED); err == nil && int(cred.Uid) == uid {
			serveConn(c, held)
		}
		unix.Close(c)
		if len(held) == 0 {
			return nil
		}
	}
}

// serveConn applies one client's requests until it disconnects.
func serveConn(c int, held map[string]int) {
	buf := make([]byte, 1+MaxKey)
	oob := make([]byte, unix.CmsgSpace(4*4))
	for {
		op, key, fds, err := recv(c, buf, oob)
		if err != nil || op == 0 {
			closeAll(fds)
			return
		}
		switch op {
		case opStore:
			if len(fds) == 1 {
				if old, ok := held[key]; ok {
					unix.Close(old)
				}
				held[key], fds = fds[0], nil
			}
		case opDrop:
			if old, ok := held[key]; ok {
				unix.Close(old)
				delete(held, key)
			}
		case opDropAll:
			for k, fd := range held {
				unix.Close(fd)
				delete(held, k)
			}
		case opList:
			for k, fd := range held {
				if send(c, opEntry, k, fd) != nil {
					break
				}
			}
			send(c, opEnd, "", -1)
		}
		closeAll(fds)
	}
}

// closeInherited closes the fds above stderr, other than ln, that the
// holder inherited by mistake (without close-on-exec) from its starter's
// own parent: holding them would keep, say, a pipe from ever seeing EOF.
// The Go runtime's own fds are close-on-exec and are left alone.
func closeInherited(ln int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd <= 2 || fd == ln {
			continue
		}
		if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
}
