package logdir

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/internal/servicedir"
)

// DefaultScanDir is the scan directory of the gosv-svscan OpenRC service,
// where service names are looked up.
const DefaultScanDir = "/run/openrc/gosv-scan"

// ErrNoLog means that a service has no log directory gosv can find.
var ErrNoLog = errors.New("no log directory found")

// Resolve returns the log directories that arg designates:
//   - a log directory (it holds current or lock): itself;
//   - a service directory, given as a path or as a NAME under scanDir: the
//     directory actions of its log-script file (relative paths are relative
//     to the service directory), or else of the logger that its log/run
//     execs (relative to log/, run's working directory).
//
// For log/run, only the simple case is understood: the last line that
// runs s6-log, gosv log (gosv-log), svlogd or multilog, split on blanks
// (quotes are removed, nothing is expanded). The error wraps [ErrNoLog]
// when nothing is found.
func Resolve(scanDir, arg string) ([]string, error) {
	dir := arg
	if !strings.ContainsRune(arg, '/') && arg != "." && arg != ".." {
		if _, err := os.Stat(arg); err != nil {
			dir = filepath.Join(scanDir, arg)
		}
	}
	if isLogDir(dir) {
		return []string{dir}, nil
	}
	if fi, err := os.Stat(dir); err != nil {
		return nil, err
	} else if !fi.IsDir() {
		return nil, &os.PathError{Op: "open", Path: dir, Err: errors.New("not a directory")}
	}
	if args, err := servicedir.ReadLogScript(dir); args != nil && err == nil {
		s, err := ParseScriptAt(dir, args)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", filepath.Join(dir, servicedir.LogScriptFile), err)
		}
		return scriptDirs(dir, s.Dirs()), nil
	}
	run := filepath.Join(dir, servicedir.LogRunPath)
	data, err := os.ReadFile(run)
	if err != nil {
		return nil, fmt.Errorf("%s: %w (no %s, no %s)", dir, ErrNoLog, servicedir.LogScriptFile, servicedir.LogRunPath)
	}
	dirs := runDirs(data)
	if len(dirs) == 0 {
		return nil, fmt.Errorf("%s: %w (no logger command with a directory found)", run, ErrNoLog)
	}
	return scriptDirs(filepath.Join(dir, servicedir.LogDir), dirsOf(dirs)), nil
}

func isLogDir(dir string) bool {
	for _, f := range []string{currentName, lockName} {
		if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
			return true
		}
	}
	return false
}

func dirsOf(paths []string) []DirConfig {
	out := make([]DirConfig, len(paths))
	for i, p := range paths {
		out[i].Path = p
	}
	return out
}

// scriptDirs resolves the directories of a script against base.
func scriptDirs(base string, dirs []DirConfig) []string {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		p := d.Path
		if !filepath.IsAbs(p) {
			p = filepath.Join(base, p)
		}
		out = append(out, p)
	}
	return out
}

// loggers maps a logger's name to its option string; "" marks svlogd,
// whose operands are all directories.
var loggers = map[string]string{
	"s6-log": "d:qvbpl:t:", "gosv-log": "d:bpqvl:B:", "multilog": "",
	"svlogd": "",
}

// runDirs finds the directories of the last logger command of a run
// script.
func runDirs(script []byte) []string {
	var found []string
	sc := bufio.NewScanner(bytes.NewReader(script))
	for sc.Scan() {
		words := splitWords(sc.Text())
		for i, w := range words {
			name := filepath.Base(w)
			if name == "gosv" && i+1 < len(words) && words[i+1] == "log" {
				name, i = "gosv-log", i+1
			}
			if opts, ok := loggers[name]; ok {
				if dirs := loggerDirs(name, opts, words[i+1:]); len(dirs) > 0 {
					found = dirs
				}
				break
			}
		}
	}
	return found
}

// loggerDirs returns the directory operands of one logger command line.
func loggerDirs(name, opts string, args []string) []string {
	if name == "svlogd" {
		p := getopt.New(args, "tvr:R:l:b:")
		for opt, _, err := p.Next(); opt != getopt.End && err == nil; opt, _, err = p.Next() {
		}
		return args[p.Index():]
	}
	if opts != "" {
		p := getopt.New(args, opts)
		for opt, _, err := p.Next(); opt != getopt.End && err == nil; opt, _, err = p.Next() {
		}
		args = args[p.Index():]
	}
	var dirs []string
	for _, a := range args {
		if strings.HasPrefix(a, ".") || strings.HasPrefix(a, "/") {
			dirs = append(dirs, a)
		}
	}
	return dirs
}

// splitWords splits a command line on blanks, removing quotes; a # at the
// start of a word starts a comment.
func splitWords(line string) []string {
	var words []string
	var cur strings.Builder
	inWord := false
	var quote rune
	for _, r := range line {
		switch {
		case quote != 0:
			if r == quote {
				quote = 0
			} else {
				cur.WriteRune(r)
			}
		case r == '\'' || r == '"':
			quote, inWord = r, true
		case r == ' ' || r == '\t':
			if inWord {
				words, inWord = append(words, cur.String()), false
				cur.Reset()
			}
		case r == '#' && !inWord:
			return words
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words
}
