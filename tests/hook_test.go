//go:build integration

package tests

import (
	"strconv"
	"strings"
	"testing"
)

// TestOpenRCHookHangsOrFails (issue 11 item 5): a service's gosv_on_event
// hook that hangs is killed at gosv_on_event_timeout while supervision
// goes on (the daemon killed meanwhile is restarted); one that fails is
// reported; each once, in gosv-svscan's log, not at every event.
func TestOpenRCHookHangsOrFails(t *testing.T) { forEachRC(t, testOpenRCHookHangsOrFails) }

func testOpenRCHookHangsOrFails(t *testing.T, version string) {
	e := newRCv(t, true, version)
	// At a start the hook hangs (the helper runs until killed); at
	// any other event it exits 3.
	script := e.WriteFile(t, "gosv-hooked", `#!/sbin/openrc-run
supervisor=gosv
command=`+e.helper+`
gosv_on_event='[ "$1" = start ] && exec `+e.helper+`; exit 3'
gosv_on_event_timeout=500ms
`, 0o755)
	e.MustRun(t, "install", "-m", "755", script, "/etc/init.d/gosv-hooked")
	e.MustRun(t, "rc-update", "-u") // its need of gosv-svscan
	e.mustSvc(t, "gosv-hooked", "start")
	logDir := e.host("/var/log/gosv")
	waitLog(t, logDir, "gosv-hooked: on-event start (pid ", 1)
	before := e.status(t, "gosv-hooked")
	l := e.listen(t, rcServices+"/gosv-hooked")
	e.MustRun(t, "kill", "-KILL", strconv.FormatUint(before.Pid, 10))
	l.Wait(t, "u") // the respawn did not wait for the hook
	// exit and restart each exit 3; the second start hangs again.
	log := waitLog(t, logDir, "gosv-hooked: on-event exit exited 3", 1)
	e.mustSvc(t, "gosv-hooked", "stop")
	log = waitLog(t, logDir, "gosv-hooked: on-event exit exited 3", 1)
	if n := strings.Count(log, "gosv-hooked: on-event start (pid "); n != 1 || !strings.Contains(log, "ran longer than 5") {
		t.Errorf("the hanging hook reported %d times, want once:\n%s", n, log)
	}
	if n := strings.Count(log, "exited 3"); n != 1 {
		t.Errorf("the failing hook reported %d times, want once per cause:\n%s", n, log)
	}
}
