package openrc

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/internal/servicedir"
)

// Scripts returns the OpenRC init scripts of l.InitDirs (executable files
// with an openrc-run or runscript shebang), as gendepends.sh finds them.
func (l Layout) Scripts() []string {
	var out []string
	for _, d := range l.InitDirs {
		ents, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range ents {
			p := filepath.Join(d, e.Name())
			if strings.Contains(e.Name(), ".dpkg") || !isOpenRCScript(p) {
				continue
			}
			out = append(out, p)
		}
	}
	return out
}

func isOpenRCScript(p string) bool {
	fi, err := os.Stat(p)
	if err != nil || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o111 == 0 {
		return false
	}
	f, err := openSource(p) // no FIFO or device swapped in after the Stat
	if err != nil {
		return false
	}
	defer f.Close()
	// The kernel reads at most 256 bytes of a #! line (BINPRM_BUF_SIZE).
	line, _ := bufio.NewReader(io.LimitReader(f, 256)).ReadString('\n')
	return strings.HasPrefix(line, "#!") && (strings.Contains(line, "openrc-run") || strings.Contains(line, "runscript"))
}

// Ls writes every gosv service of l's init directories to w: its OpenRC
// state and gosv status line, its directory (and whether a generated one
// is stale), and its resolved configuration. Scripts that cannot be
// resolved are listed with the reason. Cancelling ctx stops it.
func Ls(ctx context.Context, l Layout, gosv string, w io.Writer) error {
	l = l.fill()
	rc := RC{SvcDir: l.SvcDir}
	n := 0
	scripts := l.Scripts()
	svcs, errs := ResolveAll(ctx, l, scripts)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	for i, script := range scripts {
		s, err := svcs[i], errs[i]
		if err != nil {
			fmt.Fprintf(w, "%s: %v\n", filepath.Base(script), err)
			continue
		}
		if s.Get("supervisor") != "gosv" {
			continue
		}
		n++
		sp, _ := s.Spec()
		state, failed := rc.State(s.Name)
		line := string(state)
		if failed {
			line += ", failed"
		}
		dir := sp.ServiceDir
		if sp.Declarative {
			dir = filepath.Join(ServicesDir(l.SvcDir), s.Name)
		}
		if f, ok := s.ownStart(); ok {
			// Its generated directory would be a service gosv never starts.
			fmt.Fprintf(w, "%s: %s\n  start() at %s does not call default_start: gosv never starts it\n", s.Name, line, f.Pos)
			continue
		}
		if st, err := newBackend(sp, l.SvcDir).Status(backends.Service{Name: s.Name, Dir: dir}); err == nil {
			line += "; " + st.Line
		}
		if r := Reason(dir); r != "" {
			line += "; " + givenUp(dir) + r
		}
		fmt.Fprintf(w, "%s: %s\n", s.Name, line)
		describe(w, s, sp, dir, gosv)
	}
	if n == 0 {
		fmt.Fprintln(w, "no service with supervisor=gosv")
	}
	return nil
}

// ownStart returns the script's start() when it bypasses the backend (it
// never calls default_start).
func (s *Service) ownStart() (Func, bool) {
	f, ok := s.Funcs["start"]
	return f, ok && !slices.Contains(f.Calls, "default_start")
}

// describe writes a service's resolved configuration, indented.
func describe(w io.Writer, s *Service, sp *Spec, dir, gosv string) {
	if sp.Declarative {
		newest, _ := newestInput(s, gosv)
		fresh := "current"
		if Stale(dir, newest) {
			fresh = "stale: the next start rewrites it"
		}
		fmt.Fprintf(w, "  directory %s (generated, %s)\n", dir, fresh)
		fmt.Fprintf(w, "  command %s\n", shJoin(sp.Argv))
	} else {
		fmt.Fprintf(w, "  directory %s (hand-written)\n", dir)
	}
	ready := "none"
	switch sp.Notify {
	case NotifyFd:
		ready = fmt.Sprintf("fd:%d", sp.NotifyFd)
	case NotifySocket:
		ready = "socket:ready"
	default:
		ready += ", start_wait " + sp.StartWait.String()
		if p := s.Vars["start_wait"].Pos; p.IsValid() && p.File == s.Layout.DefaultsFile() {
			ready += " (gosv-wide default)"
		}
	}
	fmt.Fprintf(w, "  readiness %s, timeout_ready %v, timeout_down %v, timeout_kill %v, stop signal SIG%s, reload signal SIG%s\n",
		ready, sp.TimeoutReady, sp.TimeoutDown, sp.TimeoutKill, servicedir.SignalName(sp.DownSignal), servicedir.SignalName(sp.ReloadSignal))
	if sp.Declarative {
		fmt.Fprintf(w, "  respawn delay %v, max %d, period %v\n", sp.Respawn.Delay, sp.Respawn.Max, sp.Respawn.Period)
	}
	var unresolved []string
	for _, name := range Vars {
		if v := s.Vars[name]; v.Unresolved.IsValid() {
			unresolved = append(unresolved, name)
		}
	}
	if len(unresolved) > 0 {
		fmt.Fprintf(w, "  unresolved %s\n", strings.Join(unresolved, " "))
	}
}

func shJoin(argv []string) string {
	q := make([]string, len(argv))
	for i, a := range argv {
		q[i] = shQuote(a)
	}
	return strings.Join(q, " ")
}

// CheckScripts lints the hook and each script for `gosv openrc check`
// and writes the problems to w, one per line. It returns the number of
// errors; cancelling ctx stops it with ctx's error.
func CheckScripts(ctx context.Context, l Layout, scripts []string, bindir string, w io.Writer) (int, error) {
	l = l.fill()
	errs := 0
	var probs []Problem
	st, err := CheckHook(l.HookPath(), bindir)
	if err != nil {
		probs = append(probs, Problem{Pos: Pos{File: l.HookPath()}, Severity: Error, Msg: err.Error()})
	} else if p := hookProblem(l.HookPath(), st); p != nil {
		probs = append(probs, *p)
	}
	svcs, rerrs := ResolveAll(ctx, l, scripts)
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	for i, script := range scripts {
		probs = append(probs, checkResolved(script, svcs[i], rerrs[i])...)
	}
	for _, p := range slices.Clip(probs) {
		fmt.Fprintln(w, p)
		if p.Severity == Error {
			errs++
		}
	}
	return errs, nil
}
