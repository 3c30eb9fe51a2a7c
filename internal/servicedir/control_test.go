package servicedir

import (
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// controlCases builds the on-disk situations of s6-protocol.md §6.3 and
// the outcome s6-svc -u (s6-svscanctl -a for a scan directory) has there:
// 100 (not listening) or 111 (error). ctl is supervise or .s6-svscan.
var controlCases = []struct {
	name    string
	setup   func(t *testing.T, dir, ctl string) // dir exists and is empty on entry
	target  string                              // relative dir to control
	s6Exit  int
	errno   error
	errPath string // relative path the error names; CTL stands for ctl
}{
	{"no control dir", func(*testing.T, string, string) {}, "svc", 100, unix.ENOENT, "svc/CTL/control"},
	{"control dir without fifo", func(t *testing.T, d, ctl string) { mkdir(t, filepath.Join(d, ctl)) },
		"svc", 100, unix.ENOENT, "svc/CTL/control"},
	{"stale fifo, no reader", func(t *testing.T, d, ctl string) {
		mkdir(t, filepath.Join(d, ctl))
		mkFifo(t, filepath.Join(d, ctl, "control"))
	},
		"svc", 100, unix.ENXIO, "svc/CTL/control"},
	{"control dir is a file", func(t *testing.T, d, ctl string) { writeFile(t, filepath.Join(d, ctl), nil) },
		"svc", 100, unix.ENOTDIR, "svc/CTL/control"},
	{"dir missing", func(*testing.T, string, string) {}, "nope", 111, unix.ENOENT, "nope"},
	{"dir is a file", func(*testing.T, string, string) {}, "file", 111, unix.ENOTDIR, "file"},
}

func TestWriteControlNotListening(t *testing.T) {
	for _, kind := range []struct {
		ctl   string
		write func(dir string, letters []byte) error
		s6    []string // tool and its arguments before the directory
	}{
		{SuperviseDir, WriteControl, []string{"s6-svc", "-u"}},
		{ScanCtlDir, WriteScanControl, []string{"s6-svscanctl", "-a"}},
	} {
		for _, tt := range controlCases {
			t.Run(kind.ctl+"/"+tt.name, func(t *testing.T) {
				root := t.TempDir()
				mkdir(t, filepath.Join(root, "svc"))
				writeFile(t, filepath.Join(root, "file"), nil)
				tt.setup(t, filepath.Join(root, "svc"), kind.ctl)
				err := kind.write(filepath.Join(root, tt.target), []byte("a"))
				if errors.Is(err, ErrNotListening) != (tt.s6Exit == 100) {
					t.Errorf("error %v: ErrNotListening = %v, s6 exits %d", err, !(tt.s6Exit == 100), tt.s6Exit)
				}
				want := filepath.Join(root, strings.Replace(tt.errPath, "CTL", kind.ctl, 1))
				assertPathError(t, err, want, tt.errno)
				if bin := optionalS6(t, kind.s6[0]); bin != "" {
					cmd := exec.Command(bin, append(kind.s6[1:], filepath.Join(root, tt.target))...)
					if rc := exitCode(t, cmd); rc != tt.s6Exit {
						t.Errorf("%s exited %d, want %d", kind.s6[0], rc, tt.s6Exit)
					}
				}
			})
		}
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

	scan := t.TempDir()
	mkdir(t, filepath.Join(scan, ScanCtlDir))
	mkFifo(t, filepath.Join(scan, ScanCtlPath))
	r = openFifoReader(t, filepath.Join(scan, ScanCtlPath))
	if err := WriteScanControl(scan, []byte("an")); err != nil {
		t.Fatal(err)
	}
	if got := readAvailable(t, r); got != "an" {
		t.Errorf("scan control fifo got %q, want an", got)
	}
}

func mkControlFifo(t *testing.T, dir string) {
	t.Helper()
	mkdir(t, filepath.Join(dir, SuperviseDir))
	mkFifo(t, filepath.Join(dir, ControlPath))
}

func mkFifo(t *testing.T, p string) {
	t.Helper()
	if err := unix.Mkfifo(p, 0o600); err != nil {
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
