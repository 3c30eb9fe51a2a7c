package openrc

import (
	"os"
	"slices"
	"syscall"
	"time"
)

// executable is os.Executable (a variable for the tests).
var executable = os.Executable

// newestInput is the time a generated directory of s must be newer than:
// the newest of s's sources (modification times) and of the binaries that
// write its files, the gosv binary gosv (which the run and finish exec),
// the hook's client gosv-openrc beside it (whose openrc package generates
// the directory) and the running executable (either of them). For a binary it is the
// later of its modification and status change times, so that a binary
// installed with its old mtime kept (dpkg, cp -p) counts as new too.
func newestInput(s *Service, gosv string) (time.Time, error) {
	newest, err := s.NewestSource()
	if err != nil {
		return newest, err
	}
	// NOTE: the client beside gosv too, when gosv runs (ls, or a start
	// without the client): the client's next start would regenerate.
	bins := []string{gosv, gosv + "-openrc"}
	if exe, err := executable(); err == nil && !slices.Contains(bins, exe) {
		bins = append(bins, exe)
	}
	for _, p := range bins {
		var st syscall.Stat_t
		if syscall.Stat(p, &st) != nil {
			continue
		}
		for _, ts := range []syscall.Timespec{st.Mtim, st.Ctim} {
			if t := time.Unix(ts.Unix()); t.After(newest) {
				newest = t
			}
		}
	}
	return newest, nil
}
