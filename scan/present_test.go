package scan

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// TestListingSeesLaterFiles: the scanner lists the service directory at
// each point where s6-supervise re-reads its files and opens only the
// optional files the listing found; a file created after one listing
// is seen at the next read point, as when every file was opened.
func TestListingSeesLaterFiles(t *testing.T) {
	t0 := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	f := &fakeSys{t: t, clock: t0}
	l, s, out := newExecLoop(t, f, servicedir.RunFile)
	l.feed(s, supervise.Event{Kind: supervise.EvCtl, Byte: 'u'})
	if s.m.State != supervise.Up || !s.present.Has(servicedir.RunFile) || s.present.Has(servicedir.FinishFile) ||
		s.present.Has(servicedir.DownSignalFile) {
		t.Fatalf("after u: state %v, listing %+v", s.m.State, s.present)
	}
	// Created while the run lives: the next read point (the d) sees
	// down-signal, the death after it sees finish.
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(s.dir, name), []byte(data), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write(servicedir.DownSignalFile, "SIGHUP\n")
	write(servicedir.FinishFile, "#!/bin/sh\n")
	write(servicedir.MaxDeathTallyFile, "0\n")
	f.calls = nil
	l.feed(s, supervise.Event{Kind: supervise.EvCtl, Byte: 'd'})
	l.feed(s, supervise.Event{Kind: supervise.EvExit, Pid: f.last, Wstat: 1})
	if got, want := strings.Join(f.calls, " "), "kill -#1 1 kill -#1 18 kill -#1 1 kill -#1 18 start ./finish 256 1 tally=0"; got != want {
		t.Errorf("calls %q, want %q (output %s)", got, want, out)
	}
}
