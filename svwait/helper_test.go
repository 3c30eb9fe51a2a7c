package svwait

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// The test binary doubles as a fake supervisor process (the os/exec helper
// pattern): with helperEnv set it locks a service directory the way gosv
// (OFD lock + supervise/gosv/supervisor) or s6-supervise (POSIX lock) does,
// says "R" on stdout, and then obeys stdin:
//
//	"x": write a down-and-ready status, send "dD" and exit 0 without an 'x'
//	     (a supervisor that dies right after its last events);
//	EOF: exit.
//
// Otherwise it blocks, so that the test can SIGKILL it by pid.
const (
	helperEnv    = "SVWAIT_TEST_SUPERVISOR" // "ofd" or "posix"
	helperDirEnv = "SVWAIT_TEST_DIR"
)

func TestMain(m *testing.M) {
	if mode := os.Getenv(helperEnv); mode != "" {
		if err := helperSupervisor(mode, os.Getenv(helperDirEnv)); err != nil {
			fmt.Fprintln(os.Stderr, "helper supervisor:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func helperSupervisor(mode, dir string) error {
	lockPath := filepath.Join(dir, servicedir.LockPath)
	switch mode {
	case "ofd":
		f, err := servicedir.Lock(lockPath, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		st, err := servicedir.ProcStartTime(os.Getpid())
		if err != nil {
			return err
		}
		if err := servicedir.WriteRecord(dir, servicedir.SupervisorRecordPath, servicedir.PidRecord{Pid: os.Getpid(), StartTime: st}); err != nil {
			return err
		}
	case "posix":
		f, err := os.OpenFile(lockPath, os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			return err
		}
		defer f.Close()
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: io.SeekStart}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown mode %q", mode)
	}
	os.Stdout.WriteString("R")
	cmd, err := bufio.NewReader(os.Stdin).ReadByte()
	if err != nil || cmd != 'x' {
		return nil
	}
	st := servicedir.Status{Wstat: 15, Ready: true}
	if err := servicedir.WriteStatus(dir, &st); err != nil {
		return err
	}
	return servicedir.Notify(filepath.Join(dir, servicedir.EventDir), "dD")
}

// helper is a running fake supervisor process.
type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
}

// startHelper runs a fake supervisor on dir and returns once it holds the
// lock (it said "R"). It is killed and reaped at cleanup.
func startHelper(t *testing.T, mode, dir string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperDirEnv+"="+dir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	var b [1]byte
	if _, err := io.ReadFull(stdout, b[:]); err != nil || b[0] != 'R' {
		t.Fatalf("helper supervisor did not start: %q, %v", b, err)
	}
	return h
}
