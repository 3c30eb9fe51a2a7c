package openrc

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/fdwait"
)

// catchAllSyncWait bounds the wait for the catch-all logger to write the
// barrier line of a failed start.
const catchAllSyncWait = 2 * time.Second

// pipeBuf is PIPE_BUF on Linux: a write of at most this many bytes to a
// fifo is atomic, never interleaved with another writer's.
const pipeBuf = 4096

// syncCatchAll makes sure that what a service wrote before it died is in
// the catch-all log's current before a failed start prints its last
// lines. The catch-all logger is a separate process reading a fifo: the
// start sees the death (the supervisor's d event) before the logger has
// necessarily written the daemon's last lines, and then showed none of
// them (nginx's "unknown directive" was missing once in a few runs). So
// the start writes a line of its own into the fifo, after everything the
// daemon wrote (a fifo keeps order; the daemon is dead), and waits, on
// inotify, until the logger has written that line to current. The line
// stays in the log, where it says which start failed and why. It returns
// the line (without newline) for the printed tail to skip, or "" when
// there is no catch-all logger to sync with (current is then read as is).
func syncCatchAll(rcSvcDir, name string, why error) string {
	dir := CatchAllDir(rcSvcDir)
	if dir == "" {
		return ""
	}
	reason, _, _ := strings.Cut(why.Error(), "\n")
	line := fmt.Sprintf("gosv openrc start[%d]: %s failed to start: %s", os.Getpid(), name, reason)
	if len(line) >= pipeBuf {
		line = line[:pipeBuf-1] // one write(2), never interleaved
	}
	ino, err := unix.InotifyInit1(unix.IN_CLOEXEC | unix.IN_NONBLOCK)
	if err != nil {
		return ""
	}
	defer unix.Close(ino)
	// NOTE: before the write, so that the logger's write cannot be missed;
	// the directory, so that a rotation (a new current) is seen too.
	if _, err := unix.InotifyAddWatch(ino, dir, unix.IN_MODIFY|unix.IN_CREATE|unix.IN_MOVED_TO); err != nil {
		return ""
	}
	// O_NONBLOCK: ENXIO when no logger reads the fifo, never a hang.
	fd, err := unix.Open(filepath.Join(ScanDir(rcSvcDir), catchAllFifo), unix.O_WRONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return ""
	}
	_, err = unix.Write(fd, []byte(line+"\n"))
	unix.Close(fd)
	if err != nil {
		return ""
	}
	current := filepath.Join(dir, "current")
	deadline := time.Now().Add(catchAllSyncWait)
	buf := make([]byte, 4096)
	for {
		if lines, err := tail(current, logLines+1); err == nil {
			for _, l := range lines {
				if stripStamp(l) == line {
					return line
				}
			}
		}
		if !fdwait.Readable(ino, deadline) {
			return line
		}
		for {
			if n, err := unix.Read(ino, buf); n <= 0 || err != nil {
				break
			}
		}
	}
}
