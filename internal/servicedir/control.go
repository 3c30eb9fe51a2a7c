package servicedir

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// supervise/control is a FIFO the supervisor keeps open for reading (and
// for writing, so that it never reads EOF). A client opens it write-only and
// non-blocking: with no reader the open fails with ENXIO, which is how
// s6-svc tells "supervisor not listening". The letters then go in ONE
// write(2), so that a burst like "pcOQ" is applied in order without
// interleaving with another client's (s6 s6_svc_write.c; writes of at most
// PIPE_BUF bytes to a fifo are atomic).

// WriteControl writes letters to dir/supervise/control in one write.
// No reader (ENXIO) or no fifo (ENOENT) yields an error wrapping ErrNotListening.
//
// The outcomes match s6-svc 2.11.3.2 (s6_svc_writectl.c, s6-protocol.md §6.3):
//   - a reader exists: the letters are written (none at all is a liveness
//     probe: open, close, nil);
//   - no reader (stale supervise/), no supervise/ directory, supervise is
//     not a directory, or supervise/ has no control fifo: an *os.PathError
//     on the fifo wrapping [ErrNotListening] and the errno (s6-svc exits 100);
//   - dir itself does not exist or is not a directory: a plain
//     *os.PathError on dir (s6-svc exits 111);
//   - any other failure: a plain *os.PathError.
//
// The write blocks while the fifo is full, that is while the supervisor
// is not reading; callers that cannot wait should run it with a deadline
// of their own.
func WriteControl(dir string, letters []byte) error {
	return writeControl(dir, ControlPath, letters)
}

// WriteScanControl writes letters to scanDir/.s6-svscan/control in one
// write, the way s6-svscanctl does; errors are classified exactly as for
// [WriteControl] (ErrNotListening: exit 100; a missing scanDir: 111).
func WriteScanControl(scanDir string, letters []byte) error {
	return writeControl(scanDir, ScanCtlPath, letters)
}

// writeControl implements s6_svc_writectl for the fifo at dir/ctl.
func writeControl(dir, ctl string, letters []byte) error {
	p := filepath.Join(dir, ctl)
	fd, err := openRetry(p, unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch err {
	case nil:
	case unix.ENXIO:
		return notListening(p, err)
	case unix.ENOENT, unix.ENOTDIR, unix.EISDIR:
		return diagnoseControl(dir, p, err)
	default:
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	defer unix.Close(fd)
	// Blocking from now on: a full fifo makes the writer wait for the
	// supervisor rather than drop letters (s6 ndelay_off).
	if err := unix.SetNonblock(fd, false); err != nil {
		return &os.PathError{Op: "fcntl", Path: p, Err: err}
	}
	if len(letters) == 0 {
		return nil
	}
	for {
		n, err := unix.Write(fd, letters)
		if err == unix.EINTR {
			continue
		}
		if err == nil && n < len(letters) {
			// Only possible above PIPE_BUF (4096) letters; s6-svc caps at 62.
			err = fmt.Errorf("short write: %d of %d bytes", n, len(letters))
		}
		if err != nil {
			return &os.PathError{Op: "write", Path: p, Err: err}
		}
		return nil
	}
}

// diagnoseControl tells a missing service or scan directory (a system
// error) from one without a usable control directory (not listening), as
// s6_svc_writectl does after its open fails with ENOENT/ENOTDIR/EISDIR.
func diagnoseControl(dir, fifo string, openErr error) error {
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return &os.PathError{Op: "open", Path: dir, Err: unix.ENOTDIR}
	}
	// supervise/ (or .s6-svscan/) missing, not a directory, or without a
	// fifo: s6-svc says "supervisor not listening" or "something is wrong
	// with the supervise directory", both exit 100.
	return notListening(fifo, openErr)
}

func notListening(fifo string, errno error) error {
	return &os.PathError{Op: "open", Path: fifo, Err: fmt.Errorf("%w (%w)", ErrNotListening, errno)}
}
