package scan

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Warnings. Every warning of the loop goes through a warnlimit.Limiter
// (the service's, or the loop's own for the scan directory), keyed by the
// problem: each is printed when it appears or changes, then at most once
// an hour while it lasts, with the count of repeats it did not print.
// Without it a problem the loop retries (a bad config file read at every
// death, an unusable scan-directory entry retried every 3 s, EMFILE at
// every spawn) fills the log.

// warn prints a warning about problem key of s (nil: the scanner itself).
// The formatted message identifies the version of the problem: a
// different message under the same key is printed at once.
func (l *loop) warn(s *service, key, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.warnSig(s, key, msg, msg)
}

func (l *loop) warnSig(s *service, key, sig, msg string) {
	lim := &l.limits
	if s != nil {
		lim = &s.limits
	}
	ok, n := lim.Allow(key, sig, time.Now())
	if !ok {
		return
	}
	if s != nil {
		msg = s.show(msg)
	}
	if n > 0 {
		msg += fmt.Sprintf(" (repeated %d times since the last report)", n)
	}
	fmt.Fprintf(l.cfg.Stderr, "%s: warning: %s\n", l.cfg.Prog, msg)
}

// configWarn reports a bad configuration file of s once per version of
// the file: its identity (device, inode, size, mtime) is part of the
// version, so rewriting it, even with the same bad value, is reported
// again, and re-reading it unchanged at every death or spawn is not.
func (l *loop) configWarn(s *service, err error, fallback string) {
	key, sig := "config", err.Error()
	var pe *os.PathError
	var errno unix.Errno
	if errors.As(err, &errno) && (errno == unix.EMFILE || errno == unix.ENFILE || errno == unix.ENOMEM) {
		// Out of descriptors or memory: every file of the directory fails
		// alike, and one line per file would repeat one cause (up to 20
		// lines a spawn). One report per service and cause.
		key, sig = "config|"+errno.Error(), errno.Error()
	} else if errors.As(err, &pe) {
		key += "|" + pe.Path
		var st unix.Stat_t
		if unix.Lstat(pe.Path, &st) == nil {
			sig += fmt.Sprintf("|%d.%d.%d.%d", st.Dev, st.Ino, st.Size, st.Mtim.Nano())
		}
	}
	msg := "unable to read configuration: " + err.Error()
	if fallback != "" {
		msg += " (" + fallback + ")"
	}
	l.warnSig(s, key, sig, msg)
}

// fdPath is the path that reaches directory fd dirfd whatever its name
// now: /proc/self/fd/N is a link the kernel resolves to the open
// directory itself, so paths built on it, for this process and for the
// children that chdir there before exec, name the directory the scanner
// took, even after it was moved or its symlink removed.
//
// NOTE: a dirfd and the *at calls would do the same without /proc, but
// every s6 path helper of servicedir takes a directory path (as the
// clients that share them need); /proc is mounted wherever gosv runs (it
// reads /proc/PID/stat to adopt services).
func fdPath(dirfd int) string { return "/proc/self/fd/" + strconv.Itoa(dirfd) }

// show replaces the /proc/self/fd path of s in msg with the directory's
// current path, for humans.
func (s *service) show(msg string) string {
	if s.dirfd < 0 {
		return strings.ReplaceAll(msg, s.dir, s.path)
	}
	p, err := os.Readlink(s.dir)
	if err != nil {
		p = s.path
	}
	return strings.ReplaceAll(msg, s.dir, p)
}
