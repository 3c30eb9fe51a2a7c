package spawner

import (
	"encoding/binary"
	"errors"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Request is one program to start: what supervise.Proc describes.
type Request struct {
	Dir   string   // working directory
	Path  string   // program, relative to Dir or absolute
	Argv  []string // argv, argv[0] included
	Env   []string // the whole environment
	Files []int    // fd i of the child is Files[i]; -1 closes it
}

const (
	// maxRequest bounds one request datagram. A request that does not fit
	// (a huge environment) is spawned directly, never truncated; it is
	// below the default socket send buffer (net.core.wmem_default, 208
	// KiB), which bounds a SOCK_SEQPACKET datagram.
	maxRequest = 128 << 10
	// maxFiles bounds the descriptors one request passes (the kernel's
	// SCM_MAX_FD is 253); a run has 3 to 5.
	maxFiles = 64
	replyLen = 8 // int32 pid, int32 errno
)

var errBadRequest = errors.New("malformed spawn request")

// encode appends r's datagram to b and returns it with the descriptors
// to pass (the non-negative Files, in order; duplicates are passed twice).
//
// A Dir of the form /proc/self/fd/N[/REST] (the scanner reaches service
// directories through a descriptor it holds) names a descriptor of the
// sender: N is passed too, and the helper names its own copy.
func encode(b []byte, r *Request, fds []int) ([]byte, []int) {
	dir, dirIdx := r.Dir, int32(-1)
	if n, rest, ok := procFd(dir); ok {
		dir, dirIdx = rest, int32(len(fds))
		fds = append(fds, n)
	}
	b = binary.NativeEndian.AppendUint32(b, uint32(dirIdx))
	b = appendStr(b, dir)
	b = appendStr(b, r.Path)
	b = appendStrs(b, r.Argv)
	b = appendStrs(b, r.Env)
	b = binary.NativeEndian.AppendUint32(b, uint32(len(r.Files)))
	for _, fd := range r.Files {
		idx := int32(-1)
		if fd >= 0 {
			idx = int32(len(fds))
			fds = append(fds, fd)
		}
		b = binary.NativeEndian.AppendUint32(b, uint32(idx))
	}
	return b, fds
}

const procSelfFd = "/proc/self/fd/"

// procFd splits /proc/self/fd/N[/REST] into N and /REST.
func procFd(dir string) (int, string, bool) {
	rest, ok := strings.CutPrefix(dir, procSelfFd)
	if !ok {
		return 0, "", false
	}
	i := strings.IndexByte(rest, '/')
	if i < 0 {
		i = len(rest)
	}
	n, err := strconv.Atoi(rest[:i])
	if err != nil || n < 0 {
		return 0, "", false
	}
	return n, rest[i:], true
}

func appendStr(b []byte, s string) []byte {
	b = binary.NativeEndian.AppendUint32(b, uint32(len(s)))
	return append(b, s...)
}

func appendStrs(b []byte, ss []string) []byte {
	b = binary.NativeEndian.AppendUint32(b, uint32(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

// decoder reads a request datagram; any short read sets bad.
type decoder struct {
	b   []byte
	bad bool
}

func (d *decoder) u32() uint32 {
	if len(d.b) < 4 {
		d.bad = true
		return 0
	}
	v := binary.NativeEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *decoder) str() string {
	n := d.u32()
	if uint64(n) > uint64(len(d.b)) {
		d.bad = true
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) strs() []string {
	n := d.u32()
	if uint64(n) > uint64(len(d.b))/4 {
		d.bad = true
		return nil
	}
	ss := make([]string, n)
	for i := range ss {
		ss[i] = d.str()
	}
	return ss
}

// decode parses a datagram; fds are the descriptors that came with it.
// Files refers to them by index.
func decode(b []byte, fds []int) (*Request, error) {
	d := &decoder{b: b}
	dirIdx := int32(d.u32())
	r := &Request{Dir: d.str(), Path: d.str(), Argv: d.strs(), Env: d.strs()}
	if dirIdx >= 0 {
		if int(dirIdx) >= len(fds) {
			return nil, errBadRequest
		}
		r.Dir = procSelfFd + strconv.Itoa(fds[dirIdx]) + r.Dir
	}
	n := d.u32()
	if uint64(n) > uint64(len(d.b))/4 {
		return nil, errBadRequest
	}
	r.Files = make([]int, n)
	for i := range r.Files {
		idx := int32(d.u32())
		switch {
		case idx < 0:
			r.Files[i] = -1
		case int(idx) < len(fds):
			r.Files[i] = fds[idx]
		default:
			d.bad = true
		}
	}
	if d.bad || len(d.b) != 0 {
		return nil, errBadRequest
	}
	return r, nil
}

// reply encodes the helper's answer: the pid, or the errno of the failure.
func reply(pid int, err error) []byte {
	var errno syscall.Errno
	if err != nil && !errors.As(err, &errno) {
		errno = unix.EINVAL
	}
	b := binary.NativeEndian.AppendUint32(nil, uint32(int32(pid)))
	return binary.NativeEndian.AppendUint32(b, uint32(errno))
}

func parseReply(b []byte) (int, error) {
	pid := int(int32(binary.NativeEndian.Uint32(b)))
	if e := syscall.Errno(binary.NativeEndian.Uint32(b[4:])); e != 0 {
		return 0, e
	}
	return pid, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
