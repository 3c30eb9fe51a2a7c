package servicedir

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/signal"
	"testing"

	"golang.org/x/sys/unix"
)

// helperEnv selects a helper mode when the test binary is re-executed as a
// child process (the os/exec helper-command pattern):
//
//	pause       block until SIGTERM, SIGHUP or SIGINT (a service's run)
//	posixlock   take a classic POSIX write lock on $SERVICEDIR_TEST_PATH,
//	            print "locked", hold it until stdin reaches EOF
const (
	helperEnv     = "SERVICEDIR_TEST_HELPER"
	helperPathEnv = "SERVICEDIR_TEST_PATH"
)

func TestMain(m *testing.M) {
	switch mode := os.Getenv(helperEnv); mode {
	case "":
		os.Exit(m.Run())
	case "pause":
		// Dies of the signal it gets, as a daemon without handlers does,
		// whether the signal comes before or after Notify: an exit 0 on
		// a caught SIGTERM made TestRealS6Supervise's status and
		// death_tally depend on that race.
		c := make(chan os.Signal, 1)
		signal.Notify(c, unix.SIGTERM, unix.SIGHUP, unix.SIGINT)
		sig := (<-c).(unix.Signal)
		signal.Reset(sig)
		unix.Kill(os.Getpid(), sig)
		select {}
	case "posixlock":
		os.Exit(helperPosixLock(os.Getenv(helperPathEnv)))
	default:
		fmt.Fprintf(os.Stderr, "unknown helper mode %q\n", mode)
		os.Exit(2)
	}
}

func helperPosixLock(path string) int {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	lk := unix.Flock_t{Type: unix.F_WRLCK}
	if err := unix.FcntlFlock(f.Fd(), unix.F_SETLK, &lk); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("locked")
	_, _ = io.Copy(io.Discard, bufio.NewReader(os.Stdin))
	return 0
}
