package logdir

import "golang.org/x/sys/unix"

// Raw system calls, retried on EINTR (Go installs its handlers with
// SA_RESTART, but splice-family calls and writes to slow devices may
// still report it).

// tee duplicates up to n bytes from the pipe in to the pipe out without
// consuming them (tee(2)); SPLICE_F_NONBLOCK makes it non-blocking
// whatever in's own flags are.
func tee(in, out, n int) (int, error) {
	for {
		k, err := unix.Tee(in, out, n, unix.SPLICE_F_NONBLOCK)
		if err != unix.EINTR {
			return int(k), err
		}
	}
}

func readRetry(fd int, b []byte) (int, error) {
	for {
		n, err := unix.Read(fd, b)
		if err != unix.EINTR {
			return n, err
		}
	}
}

// readFull reads exactly len(b) bytes that are known to be in fd (the
// scratch pipe right after a tee).
func readFull(fd int, b []byte) error {
	for len(b) > 0 {
		n, err := readRetry(fd, b)
		if err != nil {
			return err
		}
		if n == 0 {
			return unix.EIO
		}
		b = b[n:]
	}
	return nil
}

// writeFull writes all of b and returns how much was written.
func writeFull(fd int, b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Write(fd, b[done:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return done, err
		}
		if n == 0 {
			return done, unix.EIO
		}
		done += n
	}
	return done, nil
}

func ftruncate(fd int, size int64) error {
	for {
		err := unix.Ftruncate(fd, size)
		if err != unix.EINTR {
			return err
		}
	}
}
