package openrc

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"mvdan.cc/sh/v3/syntax"
)

// SvscanName is the name of the scanner's init script, and so of its
// conf.d file, which also holds the gosv-wide defaults.
const SvscanName = "gosv-svscan"

// DefaultVars are the variables /etc/conf.d/gosv-svscan may set for every
// gosv service at once. A service's own value (set and not empty, from its
// conf.d, its script, rc.conf...) wins over the default.
//
// NOTE: openrc-run never sources another service's conf.d, so these
// defaults reach a service only through gosv: the hook passes the
// service's own values and [LiveService] and [Resolve] fill in the rest
// from the defaults file.
var DefaultVars = []string{"start_wait", "gosv_on_event", "gosv_on_event_timeout", "gosv_control_group", "gosv_backend"}

// DefaultsFile is the file of gosv-wide defaults, gosv-svscan's conf.d,
// or "" when the layout has no conf.d directory.
func (l Layout) DefaultsFile() string {
	if l.ConfD == "" {
		return ""
	}
	return filepath.Join(l.ConfD, SvscanName)
}

// Defaults are the values of [DefaultVars] set by the defaults file, and
// what is wrong with it.
type Defaults struct {
	Vars     map[string]Value
	Problems []Problem
}

// ResolveDefaults reads the defaults file of l the way [Resolve] reads a
// service's files: parsed and run in the sandbox, so that `: ${x:=1}` and
// conditionals work, and external commands are never run. A missing file
// means no defaults; a file that cannot be read or parsed is one problem
// (an error: a service's start would not know its configuration).
func ResolveDefaults(l Layout) Defaults {
	p := l.DefaultsFile()
	if p == "" {
		return Defaults{}
	}
	src, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Defaults{}
	}
	if err != nil {
		return Defaults{Problems: []Problem{{Pos: Pos{File: p}, Severity: Error, Msg: err.Error()}}}
	}
	if !mentionsDefault(src) {
		// Nothing to read: skip the interpreter, which every start,
		// stop and status would otherwise pay for a file of comments.
		return Defaults{}
	}
	f, err := Parse(p, src)
	if err != nil {
		var pe *ParseError
		if errors.As(err, &pe) {
			return Defaults{Problems: []Problem{{Pos: pe.Pos, Severity: Error, Msg: pe.Msg}}}
		}
		return Defaults{Problems: []Problem{{Pos: Pos{File: p}, Severity: Error, Msg: err.Error()}}}
	}
	foreground(f)
	s := &Service{Name: SvscanName, Script: p, Files: []string{p}, Layout: l,
		Vars: map[string]Value{}, Funcs: map[string]Func{}, Depend: map[string][]string{}}
	// NOTE: in the start path this runs in-process, bounded in time and to
	// regular files by the sandbox; the file is root's configuration, not a
	// script a package or user brings (check and ls run it in the limited
	// child with the rest of the resolution).
	if err := newSandbox(s, l).run(context.Background(), []*syntax.File{f}); err != nil {
		return Defaults{Problems: []Problem{{Pos: Pos{File: p}, Severity: Error, Msg: err.Error()}}}
	}
	d := Defaults{Vars: map[string]Value{}}
	for _, name := range DefaultVars {
		v := s.Vars[name]
		if v.Unresolved.IsValid() {
			d.Problems = append(d.Problems, Problem{Pos: v.Unresolved, Severity: Warning,
				Msg: fmt.Sprintf("%s depends on the external command %q: not resolved, the default is not used", name, v.Cmd)})
			continue
		}
		if v.Set && v.Text != "" {
			d.Vars[name] = v
		}
	}
	return d
}

// mentionsDefault reports whether a line of src that is not a comment
// names one of [DefaultVars]: a file where none does cannot set them (the
// shipped file mentions them in comments only).
func mentionsDefault(src []byte) bool {
	for line := range bytes.Lines(src) {
		if line = bytes.TrimLeft(line, " \t"); len(line) > 0 && line[0] == '#' {
			continue
		}
		for _, name := range DefaultVars {
			if bytes.Contains(line, []byte(name)) {
				return true
			}
		}
	}
	return false
}

// applyDefaults fills the [DefaultVars] the service leaves unset or empty
// from the defaults file of its layout, and adds that file's problems.
func (s *Service) applyDefaults() {
	d := ResolveDefaults(s.Layout)
	s.Problems = append(s.Problems, d.Problems...)
	for name, v := range d.Vars {
		own := s.Vars[name]
		if (own.Set && own.Text != "") || own.Unresolved.IsValid() {
			continue
		}
		s.Vars[name] = v
	}
}
