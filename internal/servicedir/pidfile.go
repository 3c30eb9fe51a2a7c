package servicedir

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// Forking daemons (PROTOCOL.md §9.1): a service directory with a pidfile
// file says "run is a launcher: it starts the daemon, which forks away,
// writes its pid to this path and lets run exit 0". The supervisor then
// supervises the process the daemon's pidfile names.
const (
	// PidfileFile holds the path of the daemon's own pidfile, one line;
	// a relative path is relative to the service directory.
	PidfileFile = "pidfile"
	// TimeoutPidfileFile is a uint file (milliseconds) bounding the whole
	// launch: from the spawn of run until the pidfile names the daemon.
	// 0 means no limit.
	TimeoutPidfileFile = "timeout-pidfile"
	// LaunchErrorPath is why the last launch of a forking daemon failed
	// (one line of text), written by the supervisor when it gives a launch
	// up and removed when a launch succeeds.
	LaunchErrorPath = "supervise/gosv/launch-error"
	// LaunchRecordPath records "PID STARTTIME\n" of a forking service's
	// launcher from its spawn until the daemon is found or the launch
	// ends, so that a scanner restarted in between knows a launch was in
	// progress (and since when: the record's modification time).
	LaunchRecordPath = "supervise/gosv/launch"
)

// Read limits: a path fits in PATH_MAX; a pid in 10 digits, but daemons
// may add blanks or a second line (some write "PID\nPORT").
const (
	pidfileFileMaxBytes = 4096
	daemonPidfileMax    = 64
)

// ReadPidfileFile reads dir/pidfile: the absolute path of the daemon's
// pidfile (a relative one is made absolute against dir). present is false
// when the file does not exist; an empty or multi-word first line is an
// *os.PathError wrapping [ErrBadValue].
func ReadPidfileFile(dir string) (path string, present bool, err error) {
	p := filepath.Join(dir, PidfileFile)
	var buf [pidfileFileMaxBytes]byte
	n, err := readAtMost(p, buf[:])
	if errors.Is(err, fs.ErrNotExist) {
		return "", false, nil
	}
	if err != nil {
		return "", true, err
	}
	text := string(bytes.TrimSpace([]byte(cutLine(buf[:n]))))
	if text == "" || bytes.ContainsAny([]byte(text), " \t") {
		return "", true, badValue(p, text)
	}
	if !filepath.IsAbs(text) {
		text = filepath.Join(dir, text)
	}
	return filepath.Clean(text), true, nil
}

// DaemonPidfile is what a daemon's pidfile said when it was read.
type DaemonPidfile struct {
	Pid     int       // 0 when the content is not a pid (empty, being written)
	ModTime time.Time // when the daemon last wrote it
	Uid     int       // its owner
}

// ReadDaemonPidfile reads the pidfile a daemon wrote at path: the first
// word of its first line, a positive decimal pid, as OpenRC's
// start-stop-daemon and systemd read it. The last component is not
// followed if it is a symlink (a daemon that dropped privileges must not
// make gosv read another file). A missing file gives an error wrapping
// fs.ErrNotExist; content that is not a pid gives Pid 0 and no error,
// because a daemon may be between its create and its write.
func ReadDaemonPidfile(path string) (DaemonPidfile, error) {
	var d DaemonPidfile
	fd, err := openRetry(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return d, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return d, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return d, &os.PathError{Op: "open", Path: path, Err: errors.New("not a regular file")}
	}
	d.ModTime = time.Unix(st.Mtim.Unix())
	d.Uid = int(st.Uid)
	var buf [daemonPidfileMax]byte
	n := 0
	for n < len(buf) {
		r, err := unix.Read(fd, buf[n:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return d, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if r == 0 {
			break
		}
		n += r
	}
	d.Pid = ParseDaemonPid(buf[:n])
	return d, nil
}

// ParseDaemonPid returns the pid at the start of a pidfile's content
// (blanks around it and anything after its line ignored), or 0.
func ParseDaemonPid(b []byte) int {
	line, _, _ := bytes.Cut(b, []byte{'\n'})
	f := bytes.Fields(line)
	if len(f) == 0 {
		return 0
	}
	v, ok := parseDecimal(f[0], 31)
	if !ok {
		return 0
	}
	return int(v)
}
