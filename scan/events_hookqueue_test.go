package scan

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/events"
	"github.com/gosv/gosv/internal/servicedir"
)

// TestHookQueueOverflow: while a service's hook hangs, a crash loop
// queues hookQueueMax events for it; the later ones are dropped for the
// hook (the log has them), the overflow is reported once, and when the
// hook ends the number dropped is reported once and the queued ones run,
// in order.
func TestHookQueueOverflow(t *testing.T) {
	scan := t.TempDir()
	_, w := startScannerWarnings(t, scan)
	tmp := t.TempDir()
	fifo, out := filepath.Join(tmp, "release"), filepath.Join(tmp, "hook.out")
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	// The first hook run blocks until the test writes the fifo.
	hook := fmt.Sprintf("#!/bin/sh\nif mkdir %[1]s.first 2>/dev/null; then read x <%[1]s; fi\necho \"$GOSV_EVENT\" >>%[2]s\n", fifo, out)
	dir := mksvc(t, scan, "loop", "#!/bin/sh\nexit 1\n", map[string]string{
		servicedir.OnEventFile: hook, servicedir.RespawnDelayFile: "1\n",
		// The crash loop ends in a give-up after 61 deaths (182 events):
		// the last event, so the log is complete when it comes.
		servicedir.RespawnMaxFile: "60\n", servicedir.RespawnPeriodFile: "600000\n",
	})
	os.Chmod(filepath.Join(dir, servicedir.OnEventFile), 0o755)
	ch := follow(t, scan)
	link(t, scan, dir)
	timeout := time.After(60 * time.Second)
	for gaveUp := false; !gaveUp; {
		select {
		case r := <-ch:
			gaveUp = r.Service == "loop" && r.Event == "give-up"
		case <-timeout:
			t.Fatal("no give-up")
		}
	}
	w.sync(t, scan, 'Y')
	if n := w.count("loop", "is busy"); n != 1 {
		t.Errorf("the full queue was reported %d times, want once", n)
	}
	var logged []string
	rd := &events.Reader{Dir: filepath.Join(scan, servicedir.ScanEventsDir), Each: func(r *events.Record, _ []byte) error {
		if r.Service == "loop" {
			logged = append(logged, r.Event)
		}
		return nil
	}}
	if err := rd.ReadAll(); err != nil {
		t.Fatal(err)
	}
	// Release the hook: it and the 64 queued run, nothing else.
	if err := os.WriteFile(fifo, []byte("go\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	waitFileLines(t, out, 1+hookQueueMax)
	timeout = time.After(10 * time.Second)
	for w.count("loop", "were not handed") == 0 {
		select {
		case <-w.more:
		case <-timeout:
			t.Fatal("the dropped events were not reported")
		}
	}
	w.sync(t, scan, 'Y')
	b, _ := os.ReadFile(out)
	ran := strings.Fields(string(b))
	if len(ran) != 1+hookQueueMax || strings.Join(ran, " ") != strings.Join(logged[:1+hookQueueMax], " ") {
		t.Errorf("the hook ran for %d events:\n%v\nwant the log's first %d:\n%v", len(ran), ran, 1+hookQueueMax, logged)
	}
	want := fmt.Sprintf("%d events were not handed", len(logged)-1-hookQueueMax)
	if n := w.count("loop", "were not handed"); n != 1 || w.count(want) != 1 {
		t.Errorf("dropped reports: %d, with %q: %d; want one", n, want, w.count(want))
	}
}
