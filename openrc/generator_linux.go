package openrc

import (
	"os"
	"syscall"
	"time"
)

// executable is os.Executable (a variable for the tests).
var executable = os.Executable

// newestInput is the time a generated directory of s must be newer than:
// the newest of s's sources (modification times) and of the binaries that
// write its files, the gosv binary gosv (which the run and finish exec)
// and the running executable (gosv, or the hook's client gosv-openrc,
// whose openrc package generates the directory). For a binary it is the
// later of its modification and status change times, so that a binary
// installed with its old mtime kept (dpkg, cp -p) counts as new too.
func newestInput(s *Service, gosv string) (time.Time, error) {
	newest, err := s.NewestSource()
	if err != nil {
		return newest, err
	}
	bins := []string{gosv}
	if exe, err := executable(); err == nil && exe != gosv {
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
