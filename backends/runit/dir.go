package runit

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/gosv/gosv/internal/servicedir"
)

// defaultLogConfig bounds a default log directory (on $RC_SVCDIR, a
// tmpfs): two archives of 1 MiB besides current.
const defaultLogConfig = "s1048576\nn2\n"

// checkNotifyFd is the notification fd of a source with a check script:
// gosv notifyoncheck writes there and closes it in the daemon.
const checkNotifyFd = 3

// gosv is the gosv binary the run of a check service execs: Gosv, or
// this executable (the backend runs inside gosv openrc).
func (b *Backend) gosv() (string, error) {
	if b.Gosv != "" {
		return b.Gosv, nil
	}
	return os.Executable()
}

// writeDir (re)writes the runit directory rdir for the source src and
// returns the source's notification-fd (0: none).
func (b *Backend) writeDir(name, src, rdir string) (int, error) {
	chpst, err := exec.LookPath("chpst")
	if err != nil {
		return 0, fmt.Errorf("chpst (runit) not found: %w", err)
	}
	for _, d := range []string{rdir, filepath.Join(rdir, servicedir.RunitControlDir), filepath.Join(rdir, servicedir.LogDir)} {
		if err := mkdirNoFollow(d); err != nil {
			return 0, err
		}
	}
	head := "#!/bin/sh\n# Written by gosv for gosv_backend=runit from " + src + "; rewritten at each start.\n"
	fd, _, err := servicedir.ReadUintFile(src, servicedir.NotificationFDFile)
	if err != nil {
		return 0, err
	}
	// A check script: gosv notifyoncheck runs it on gosv's schedule and
	// writes the newline (Check refuses it beside a notification-fd).
	wrap := ""
	if isFile(filepath.Join(src, servicedir.CheckFile)) {
		gosv, err := b.gosv()
		if err != nil {
			return 0, err
		}
		fd = checkNotifyFd
		wrap = shQuote(gosv) + " notifyoncheck -3 " + itoa(checkNotifyFd) + " -- "
	}
	run := head + "cd " + shQuote(src) + " || exit 111\n"
	if fd > 0 {
		run += "exec " + itoa(int(fd)) + "<>" + shQuote(filepath.Join(rdir, servicedir.RunitNotifyFifo)) + " || exit 111\n"
	}
	run += "exec " + shQuote(chpst) + " -P " + wrap + "./" + servicedir.RunFile + "\n"
	files := map[string]string{servicedir.RunFile: run}
	if _, err := os.Stat(filepath.Join(src, servicedir.FinishFile)); err == nil {
		files[servicedir.FinishFile] = head + "cd " + shQuote(src) + " || exit 0\nexec ./" + servicedir.FinishFile + " \"$@\"\n"
	}
	sig, err := servicedir.ReadDownSignal(src)
	if err != nil {
		return 0, err
	}
	sigName := "TERM"
	if sig != 0 {
		sigName = servicedir.SignalName(sig)
	}
	// runsv runs control/t at d and x, in the runit directory, and sends
	// no SIGTERM of its own when it exits 0.
	files[servicedir.RunitDownHook] = head + "read pid < " + servicedir.RunitPidPath + " || exit 1\n" +
		"[ \"${pid:-0}\" != 0 ] || exit 1\n" +
		"kill -s " + sigName + " -- -\"$pid\" 2>/dev/null || exit 1\n" +
		"kill -s CONT -- -\"$pid\" 2>/dev/null\nexit 0\n"
	logRun, err := b.logRun(name, src, head)
	if err != nil {
		return 0, err
	}
	files[servicedir.LogRunPath] = logRun
	for rel, content := range files {
		if err := servicedir.WriteFileMode(rdir, rel, []byte(content), 0o755); err != nil {
			return 0, err
		}
	}
	if files[servicedir.FinishFile] == "" {
		os.Remove(filepath.Join(rdir, servicedir.FinishFile))
	}
	return int(fd), nil
}

// logRun is log/run of the runit directory: svlogd for gosv's in-process
// logger (log-script, translated) or for the default log, or the
// source's own log/run.
func (b *Backend) logRun(name, src, head string) (string, error) {
	words, err := servicedir.ReadLogScript(src)
	if err != nil {
		return "", err
	}
	var flags []string
	var dir, config string
	switch {
	case words != nil:
		if flags, dir, config, err = svlogdScript(words); err != nil {
			return "", fmt.Errorf("%s: %w", filepath.Join(src, servicedir.LogScriptFile), err)
		}
		// A relative directory (./log) is the service directory's
		// (PROTOCOL.md), for the config written here from the client's
		// working directory as for svlogd, which runs in runit/log/.
		if !filepath.IsAbs(dir) {
			dir = filepath.Join(src, dir)
		}
	case isFile(filepath.Join(src, servicedir.LogRunPath)):
		return head + "cd " + shQuote(filepath.Join(src, servicedir.LogDir)) + " || exit 111\nexec ./" + servicedir.RunFile + "\n", nil
	default:
		flags, dir, config = []string{"-t"}, DefaultLogDir(b.ScanDir, name), defaultLogConfig
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	if err := servicedir.WriteFileMode(dir, servicedir.RunitLogConfig, []byte(config), 0o644); err != nil {
		return "", err
	}
	svlogd, err := exec.LookPath("svlogd")
	if err != nil {
		return "", fmt.Errorf("svlogd (runit) not found: %w", err)
	}
	argv := append([]string{shQuote(svlogd)}, flags...)
	return head + "exec " + strings.Join(argv, " ") + " " + shQuote(dir) + "\n", nil
}

// svlogdScript translates an s6-log script (gosv's log-script) to
// svlogd's flags and one log directory's config: t (TAI64N stamps: -t),
// T (ISO 8601: -ttt), sN (file size), nN (archives) and one directory.
// Anything else has no svlogd equivalent and is an error, never dropped.
func svlogdScript(words []string) (flags []string, dir, config string, err error) {
	var cfg strings.Builder
	for _, w := range words {
		switch {
		case w == "t":
			flags = append(flags, "-t")
		case w == "T":
			flags = append(flags, "-ttt")
		case len(w) > 1 && (w[0] == 's' || w[0] == 'n') && digits(w[1:]):
			cfg.WriteString(w + "\n")
		case strings.HasPrefix(w, "/") || strings.HasPrefix(w, "."):
			if dir != "" {
				return nil, "", "", fmt.Errorf("more than one log directory (%s, %s): %w", dir, w, ErrUnsupported)
			}
			dir = w
		default:
			return nil, "", "", fmt.Errorf("s6-log directive %q has no svlogd equivalent: %w", w, ErrUnsupported)
		}
	}
	if dir == "" {
		return nil, "", "", fmt.Errorf("no log directory: %w", ErrUnsupported)
	}
	return flags, dir, cfg.String(), nil
}

func digits(s string) bool {
	for _, c := range s {
		if c < '0' || c > '9' {
			return false
		}
	}
	return s != ""
}

// mkdirNoFollow creates the directory d, or accepts an existing one,
// never a symlink: the files gosv writes in it would land where the link
// points (a planted runit -> /etc makes root write /etc/run).
func mkdirNoFollow(d string) error {
	if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	fi, err := os.Lstat(d)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s: not a directory (%v): refused, gosv follows no symlink in a service directory", d, fi.Mode().Type())
	}
	return nil
}

func isFile(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular()
}

// shQuote quotes s for sh.
func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
