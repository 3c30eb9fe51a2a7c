package openrc

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
)

// Check lints the init script at script for supervisor=gosv: syntax,
// unresolved values, bad values, start()/stop()/status() that bypass the
// backend, a missing service directory, reload on OpenRC 0.45. The hook is
// checked separately, with [CheckHook]: it concerns every script at once.
//
// Problems come sorted by position. A syntax error, or a resolution
// stopped by a limit, is returned as the only problem.
func Check(ctx context.Context, l Layout, script string) []Problem {
	s, err := Resolve(ctx, l, script)
	return checkResolved(script, s, err)
}

// checkResolved is Check once the script is resolved.
func checkResolved(script string, s *Service, err error) []Problem {
	if err != nil {
		var pe *ParseError
		var re *ResolveError
		if errors.As(err, &pe) {
			return []Problem{{Pos: pe.Pos, Severity: Error, Msg: pe.Msg}}
		}
		if errors.As(err, &re) {
			return []Problem{{Pos: re.Pos, Severity: Error, Msg: re.Msg}}
		}
		return []Problem{{Pos: Pos{File: script}, Severity: Error, Msg: err.Error()}}
	}
	return s.Lint()
}

// Lint lints a resolved service; see [Check].
func (s *Service) Lint() []Problem {
	probs := slices.Clone(s.Problems)
	sup := s.Vars["supervisor"]
	if sup.Text != "gosv" || sup.Unresolved.IsValid() {
		if !sup.Unresolved.IsValid() {
			probs = append(probs, Problem{Pos: Pos{File: s.Script}, Severity: Warning,
				Msg: fmt.Sprintf("supervisor is %q, not gosv: nothing more to check", sup.Text)})
		}
		return sortProblems(probs)
	}
	sp, sprobs := s.Spec()
	probs = append(probs, sprobs...)
	probs = append(probs, s.lintFuncs()...)
	probs = append(probs, s.lintLayout(sp)...)
	probs = append(probs, s.lintReadiness(sp)...)
	probs = append(probs, s.lintReload(sp)...)
	probs = append(probs, s.lintBackend(sp)...)
	if p := sup.Pos; p.IsValid() && s.Layout.Runlevel != "" && strings.HasSuffix(p.File, "."+s.Layout.Runlevel) {
		probs = append(probs, Problem{Pos: p, Severity: Warning,
			Msg: "supervisor=gosv set only in a per-runlevel conf.d: OpenRC's dependency scan does not read it, so gosv-svscan is not pulled in"})
	}
	if hasLSBHeader(s.Script) {
		probs = append(probs, Problem{Pos: Pos{File: s.Script}, Severity: Warning,
			Msg: "LSB header: Debian's openrc-run.sh takes another path for such scripts; remove it"})
	}
	return sortProblems(probs)
}

// lintBackend reports what the service's backend cannot honour in the
// directory its configuration generates (a start would refuse it).
func (s *Service) lintBackend(sp *Spec) []Problem {
	fc, ok := newBackend(sp, s.Layout.SvcDir).(backends.FileChecker)
	if !ok || !sp.Declarative {
		return nil
	}
	files, err := Files(sp, GenConfig{Gosv: "gosv", RCSvcDir: s.Layout.SvcDir, LibexecDir: s.Layout.LibexecDir})
	if err != nil {
		return nil // reported by the start's own generation
	}
	if err := fc.CheckFiles(slices.Collect(maps.Keys(files))); err != nil {
		pos := s.Vars["gosv_backend"].Pos
		if !pos.IsValid() {
			pos = Pos{File: s.Script}
		}
		return []Problem{{Pos: pos, Severity: Error, Msg: "gosv_backend=" + sp.Backend + ": " + err.Error()}}
	}
	return nil
}

// lintReload reports a reload the script means to offer (reload_signal
// set, or its own reload()) that OpenRC before 0.63.1 refuses because
// extra_started_commands does not list it. A script that shows no sign of
// reload is left alone: like any OpenRC service, it has none.
func (s *Service) lintReload(sp *Spec) []Problem {
	if s.Layout.Version.HasDefaultReload() || sp.ReloadListed {
		return nil
	}
	var pos Pos
	var what string
	if v := s.Vars["reload_signal"]; v.Set {
		pos, what = v.Pos, "reload_signal is set"
	} else if f, ok := s.Funcs["reload"]; ok {
		pos, what = f.Pos, "reload() is defined"
	} else {
		return nil
	}
	on := "OpenRC " + s.Layout.Version.String()
	if s.Layout.Version.IsZero() {
		on = "an OpenRC of unknown version (no " + filepath.Join(s.Layout.LibexecDir, "version") + ")"
	}
	return []Problem{{Pos: pos, Severity: Warning,
		Msg: fmt.Sprintf("%s but reload is not listed in extra_started_commands: on %s `rc-service %s reload` fails (0.63.1 lists it for every service)",
			what, on, s.Name)}}
}

// lintFuncs reports start()/stop()/status() that never call the backend.
func (s *Service) lintFuncs() []Problem {
	var out []Problem
	for _, fn := range []string{"start", "stop", "status"} {
		f, ok := s.Funcs[fn]
		if !ok || slices.Contains(f.Calls, "default_"+fn) {
			continue
		}
		out = append(out, Problem{Pos: f.Pos, Severity: Warning,
			Msg: fmt.Sprintf("%s() is defined and does not call default_%s: supervisor=gosv is bypassed for %s", fn, fn, fn)})
	}
	return out
}

// lintLayout checks the service directory or the command, and the user.
func (s *Service) lintLayout(sp *Spec) []Problem {
	var out []Problem
	if !sp.Declarative {
		fi, err := os.Stat(sp.ServiceDir)
		switch {
		case err != nil:
			out = append(out, Problem{Pos: Pos{File: s.Script}, Severity: Error,
				Msg: fmt.Sprintf("no command and no service directory: %v", err)})
		case !fi.IsDir():
			out = append(out, Problem{Pos: Pos{File: s.Script}, Severity: Error,
				Msg: fmt.Sprintf("no command, and %s is not a directory", sp.ServiceDir)})
		case unix.Access(sp.ServiceDir+"/"+servicedir.RunFile, unix.X_OK) != nil:
			out = append(out, Problem{Pos: Pos{File: s.Script}, Severity: Error,
				Msg: fmt.Sprintf("no command, and %s/run is not executable", sp.ServiceDir)})
		}
	}
	if sp.User != "" {
		if _, err := lookupUser(sp.User); err != nil {
			out = append(out, Problem{Pos: s.Vars["command_user"].Pos, Severity: Error,
				Msg: fmt.Sprintf("command_user: unknown user %q", sp.User)})
		}
	}
	if sp.Group != "" {
		if _, err := lookupGroup(sp.Group); err != nil {
			out = append(out, Problem{Pos: s.Vars["command_user"].Pos, Severity: Error,
				Msg: fmt.Sprintf("command_user: unknown group %q", sp.Group)})
		}
	}
	return out
}

// lintReadiness suggests a readiness source or start_wait to a
// declarative service with neither: its start succeeds as soon as the
// daemon is spawned, even when it exits at once. It also reports a
// start_wait of the service's own that readiness makes useless (a
// gosv-wide default is meant for the services without readiness).
func (s *Service) lintReadiness(sp *Spec) []Problem {
	if !sp.Declarative {
		return nil
	}
	sw := s.Vars["start_wait"]
	ownWait := sw.Set && sw.Pos.File != s.Layout.DefaultsFile()
	switch {
	case sp.HasReadiness() && ownWait && sp.StartWait > 0:
		return []Problem{{Pos: s.varPos("start_wait"), Severity: Warning,
			Msg: "start_wait is ignored: notify says when the service is ready"}}
	case !sp.HasReadiness() && sp.StartWait == 0 && s.Get("notify") == "" && s.Get("ready") == "":
		// (A notify or ready that is set but invalid has its own error.)
		defaults := s.Layout.DefaultsFile()
		if defaults == "" {
			defaults = "/etc/conf.d/" + SvscanName
		}
		return []Problem{{Pos: s.varPos("command"), Severity: Warning,
			Msg: fmt.Sprintf("no readiness source: start succeeds as soon as the daemon is spawned, even if it exits at once; "+
				"set notify (fd:N or socket:ready) if the daemon can tell, else start_wait=1 (here, or in %s for every gosv service)", defaults)}}
	}
	return nil
}

// varPos is where a variable was set, or the script when that is unknown.
func (s *Service) varPos(name string) Pos {
	if p := s.Vars[name].Pos; p.IsValid() {
		return p
	}
	return Pos{File: s.Script}
}

// hasLSBHeader reports whether the script has an LSB "### BEGIN INIT INFO".
func hasLSBHeader(script string) bool {
	b, err := readSource(script) // as the resolver read it: no FIFO, no device
	return err == nil && strings.Contains(string(b), "### BEGIN INIT INFO")
}

func sortProblems(p []Problem) []Problem {
	slices.SortStableFunc(p, func(a, b Problem) int {
		if c := strings.Compare(a.Pos.File, b.Pos.File); c != 0 {
			return c
		}
		if a.Pos.Line != b.Pos.Line {
			return int(a.Pos.Line) - int(b.Pos.Line)
		}
		return int(a.Pos.Col) - int(b.Pos.Col)
	})
	return p
}
