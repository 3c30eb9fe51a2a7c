package spawner

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// A helper killed after its fork and before its reply: Start finds the
// run it left (the caller's child, a session leader in the request's
// directory) and returns it as started, so the caller does not start the
// service a second time. A child the caller knows is never taken.
func TestHelperKilledBeforeReply(t *testing.T) {
	exe, _ := os.Executable()
	for _, claimed := range []bool{false, true} {
		t.Run(fmt.Sprintf("known=%v", claimed), func(t *testing.T) {
			w := &warnings{}
			c := NewClient("/proc/self/exe", helperArgv0+"-die", w.warn)
			helper := c.Pid()
			if helper == 0 {
				t.Fatalf("no helper: %v", *w)
			}
			defer c.Close()
			asked := 0
			if claimed {
				c.Known = func(pid int) bool { asked = pid; return true }
			}
			dir := t.TempDir()
			var in [2]int
			if err := unix.Pipe2(in[:], unix.O_CLOEXEC); err != nil {
				t.Fatal(err)
			}
			defer unix.Close(in[0])
			pid, err, ok := c.Start(&Request{Dir: dir, Path: exe, Argv: []string{"hold"},
				Env: []string{roleEnv + "=hold"}, Files: []int{in[0], 1, 2}})
			if ws := waitExit(t, helper); ws.Signal() != unix.SIGKILL {
				t.Errorf("helper: %v, want killed by its test hook", ws)
			}
			if len(*w) != 1 || !strings.Contains((*w)[0], "lost the spawn helper") {
				t.Errorf("warnings: %q", *w)
			}
			if claimed {
				if ok || asked == 0 {
					t.Fatalf("Start: pid %d ok %v; Known asked about %d: a known child was taken", pid, ok, asked)
				}
				pid = asked
			} else if !ok || err != nil || pid <= 0 {
				t.Fatalf("Start: pid %d, ok %v, %v: the run the helper left was not found", pid, ok, err)
			}
			if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != dir {
				t.Errorf("pid %d has cwd %q, want %q", pid, cwd, dir)
			}
			unix.Close(in[1]) // EOF: the run exits; it is ours to reap
			if ws := waitExit(t, pid); !ws.Exited() || ws.ExitStatus() != 0 {
				t.Errorf("run: %v", ws)
			}
		})
	}
}
