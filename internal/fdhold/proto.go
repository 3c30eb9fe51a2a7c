package fdhold

import (
	"errors"

	"golang.org/x/sys/unix"
)

// Requests and replies are SOCK_SEQPACKET messages: one op byte, then the
// key (HOLDER.md).
const (
	opStore   = 'S' // client: hold the attached fd under the key (replacing any)
	opDrop    = 'D' // client: close the fd held under the key
	opDropAll = 'X' // client: close every fd held
	opList    = 'L' // client: send every held fd back (the holder keeps them)
	opEntry   = 'E' // holder: one held fd, attached, under the key
	opEnd     = 'Z' // holder: end of the list
)

// MaxKey bounds a key: messages are at most 1+MaxKey bytes.
const MaxKey = 255

var (
	errProto  = errors.New("fd holder protocol error")
	errClosed = errors.New("fd holder closed the connection")
)

// send writes one message, with fd attached when fd >= 0.
func send(c int, op byte, key string, fd int) error {
	if len(key) > MaxKey {
		return errors.New("fd holder key too long")
	}
	msg := append([]byte{op}, key...)
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	for {
		err := unix.Sendmsg(c, msg, oob, nil, 0)
		if err != unix.EINTR {
			return err
		}
	}
}

// recv reads one message and the fds attached to it (close-on-exec). A
// closed peer is io.EOF-like: op 0.
func recv(c int, buf, oob []byte) (op byte, key string, fds []int, err error) {
	for {
		n, oobn, _, _, err := unix.Recvmsg(c, buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, "", nil, err
		}
		if oobn > 0 {
			msgs, perr := unix.ParseSocketControlMessage(oob[:oobn])
			if perr == nil {
				for _, m := range msgs {
					if rights, err := unix.ParseUnixRights(&m); err == nil {
						fds = append(fds, rights...)
					}
				}
			}
		}
		if n == 0 {
			return 0, "", fds, nil // the peer closed (a seqpacket never carries an empty message here)
		}
		return buf[0], string(buf[1:n]), fds, nil
	}
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}
