package scan

import (
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/svwait"
)

// finishSvc starts a scanner with one service, up and ready at once
// (notification-fd 3), whose finish runs the shell line finish, OUT in it
// replaced by the path of a fresh file; it returns once the service is up
// and ready.
func finishSvc(t *testing.T, name, finish string, extra map[string]string) (svc, out string) {
	t.Helper()
	scan := t.TempDir()
	startScanner(t, scan)
	out = filepath.Join(t.TempDir(), "finish.out")
	files := map[string]string{
		"notification-fd": "3\n",
		"finish":          "#!/bin/sh\n" + strings.ReplaceAll(finish, "OUT", out) + "\n",
	}
	maps.Copy(files, extra)
	run := "#!/bin/sh\necho >&3\nGOSV_TEST_ROLE=pause exec \"$GOSV_TEST_BIN\"\n"
	svc = link(t, scan, mksvc(t, scan, name, run, files))
	waitFor(t, svc, svwait.UpReady)
	return svc, out
}

// TestFinishWantedUp: with finish-wanted-up, finish runs after a death
// while the service is wanted up (a kill), and not after a stop, which
// goes straight to down and ready.
func TestFinishWantedUp(t *testing.T) {
	svc, out := finishSvc(t, "fwu", "echo \"$@\" >> OUT", map[string]string{servicedir.FinishWantedUpFile: ""})
	ctlWait(t, svc, "k", svwait.RestartReady) // SIGKILL while wanted up: finish runs
	ctlWait(t, svc, "d", svwait.DownReady)    // a stop: no finish
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "256 9 fwu\n" {
		t.Fatalf("finish ran with %q (%v), want once, for the kill only", b, err)
	}
}

// TestFinishWantedUpGiveUp: a death the restart policy gives up at
// (respawn-on never) leaves the service wanted down, yet its finish runs:
// gosv openrc's finish is what tells OpenRC about the give-up.
func TestFinishWantedUpGiveUp(t *testing.T) {
	svc, out := finishSvc(t, "fwg", "echo \"$@\" >> OUT", map[string]string{
		servicedir.FinishWantedUpFile: "",
		servicedir.RespawnOnFile:      "never\n",
	})
	ctlWait(t, svc, "k", svwait.DownReady) // given up: down, and finish ran
	b, err := os.ReadFile(out)
	if err != nil || string(b) != "256 9 fwg\n" {
		t.Fatalf("finish ran with %q (%v), want once, for the given-up death", b, err)
	}
}

func TestSkipFinish(t *testing.T) {
	for _, c := range []struct {
		have, matters, wantedUpOnly, skip bool
	}{
		{false, true, false, true},  // no finish
		{true, true, true, false},   // a death while wanted up (or a give-up)
		{true, false, true, true},   // a stop, finish-wanted-up
		{true, false, false, false}, // a stop, an s6 finish
	} {
		if got := skipFinish(c.have, c.matters, func() bool { return c.wantedUpOnly }); got != c.skip {
			t.Errorf("skipFinish(%v, %v, %v) = %v, want %v", c.have, c.matters, c.wantedUpOnly, got, c.skip)
		}
	}
}
