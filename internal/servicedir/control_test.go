package servicedir

import (
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// controlCases builds the on-disk situations of s6-protocol.md §6.3 and
// the outcome s6-svc -u has there: 100 (not listening) or 111 (error).
var controlCases = []struct {
	name    string
	setup   func(t *testing.T, dir string) // dir exists and is empty on entry
	svcDir  string                         // relative service dir to control
	s6Exit  int
	errno   error
	errPath string // relative path the error names
}{
	{"no supervise dir", func(*testing.T, string) {}, "svc", 100, unix.ENOENT, "svc/" + ControlPath},
	{"supervise without control", func(t *testing.T, d string) { mkdir(t, filepath.Join(d, SuperviseDir)) },
		"svc", 100, unix.ENOENT, "svc/" + ControlPath},
	{"stale fifo, no reader", func(t *testing.T, d string) { mkControlFifo(t, d) }, "svc", 100, unix.ENXIO, "svc/" + ControlPath},
	{"supervise is a file", func(t *testing.T, d string) { writeFile(t, filepath.Join(d, SuperviseDir), nil) },
		"svc", 100, unix.ENOTDIR, "svc/" + ControlPath},
	{"service dir missing", func(*testing.T, string) {}, "nope", 111, unix.ENOENT, "nope"},
	{"service dir is a file", func(*testing.T, string) {}, "file", 111, unix.ENOTDIR, "file"},
}

func TestWriteControlNotListening(t *testing.T) {
	for _, tt := range controlCases {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			mkdir(t, filepath.Join(root, "svc"))
			writeFile(t, filepath.Join(root, "file"), nil)
			tt.setup(t, filepath.Join(root, "svc"))
			err := WriteControl(filepath.Join(root, tt.svcDir), []byte("u"))
			if errors.Is(err, ErrNotListening) != (tt.s6Exit == 100) {
				t.Errorf("error %v: ErrNotListening = %v, s6-svc exits %d", err, !(tt.s6Exit == 100), tt.s6Exit)
			}
			assertPathError(t, err, filepath.Join(root, tt.errPath), tt.errno)
			if svc := optionalS6(t, "s6-svc"); svc != "" {
				cmd := exec.Command(svc, "-u", filepath.Join(root, tt.svcDir))
				if rc := exitCode(t, cmd); rc != tt.s6Exit {
					t.Errorf("s6-svc -u exited %d, want %d", rc, tt.s6Exit)
				}
			}
		})
	}
}

func TestWriteControl(t *testing.T) {
	dir := t.TempDir()
	mkControlFifo(t, dir)
	r := openFifoReader(t, filepath.Join(dir, ControlPath))
	if err := WriteControl(dir, []byte("pcOQ")); err != nil {
		t.Fatal(err)
	}
	if err := WriteControl(dir, nil); err != nil { // liveness probe: writes nothing
		t.Fatal(err)
	}
	if got := readAvailable(t, r); got != "pcOQ" {
		t.Errorf("fifo got %q, want pcOQ", got)
	}
	if got := readAvailable(t, r); got != "" {
		t.Errorf("fifo got %q after an empty WriteControl", got)
	}
}

func mkControlFifo(t *testing.T, dir string) {
	t.Helper()
	mkdir(t, filepath.Join(dir, SuperviseDir))
	if err := unix.Mkfifo(filepath.Join(dir, ControlPath), 0o600); err != nil {
		t.Fatal(err)
	}
}

// openFifoReader opens a non-blocking raw read end, closed with the test.
func openFifoReader(t *testing.T, p string) int {
	t.Helper()
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

// readAvailable returns what one non-blocking read gets ("" on EAGAIN).
func readAvailable(t *testing.T, fd int) string {
	t.Helper()
	buf := make([]byte, 4096)
	n, err := unix.Read(fd, buf)
	if err == unix.EAGAIN {
		return ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}
