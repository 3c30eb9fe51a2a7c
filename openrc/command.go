package openrc

import (
	"context"
	"errors"
	"fmt"
	"github.com/gosv/gosv/internal/svctl"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/gosv/gosv/backends/registry"
)

// Command is one `gosv openrc SUB` call as its command line and process
// gave it: cmd/gosv parses the flags into it and hands it to [Run].
type Command struct {
	Sub     string   // start, stop, status, reload, ls, check, exec, finish, resolve, svscan
	Vars    []string // --var NAME=VALUE (the hook's live values)
	Args    []string // start: the command line; check: scripts; finish: its arguments
	Notify  int      // svscan --notify-fd
	LogDir  string   // svscan --log-dir
	Script  string   // svscan --log-script
	Wait    bool     // svscan --wait
	Cleanup bool     // svscan --stop-leftovers
	Reexec  bool     // svscan --reexec
	Backend string   // svscan --backend: whose scan directory --wait and --stop-leftovers mean
	Timeout time.Duration
	NoFile  uint64 // svscan --nofile
	// svscan --metrics-listen, --metrics-textfile: the scanner's -m, -M.
	MetricsListen, MetricsTextfile string

	Gosv    string              // this gosv binary (os.Executable)
	Getenv  func(string) string // openrc-run's environment: RC_SVCNAME, RC_SERVICE, RC_SVCDIR...
	Environ []string            // the whole of it, for the service's environment
	Stdin   io.Reader           // resolve's request
	Stdout  io.Writer           // ls, check, status, resolve
	Stderr  io.Writer           // what the hook prints with ewarn or eerror
}

// UsageError is a command line Run cannot accept (exit 100 with the usage).
type UsageError struct{ Msg string }

func (e *UsageError) Error() string { return e.Msg }

func usageErrorf(format string, a ...any) error { return &UsageError{Msg: fmt.Sprintf(format, a...)} }

// Run runs c. It returns the exit code of a command that has its own
// (status: [StatusStarted] and the others; finish; check: 1 when it found
// errors; start, stop and reload: 1 when they failed, the reason printed),
// or an error to print.
func Run(ctx context.Context, c *Command) (int, error) {
	if c.Sub == "resolve" {
		return 0, ServeResolve(ctx, c.Stdin, c.Stdout) // first: no layout to read, it is in the request
	}
	if c.Gosv == "" {
		gosv, err := os.Executable()
		if err != nil {
			return 0, err
		}
		c.Gosv = gosv
	}
	layout := DefaultLayout(c.Getenv)
	switch c.Sub {
	case "ls":
		return 0, Ls(ctx, layout, c.Gosv, c.Stdout)
	case "check":
		return check(ctx, layout, c)
	case "exec":
		return 0, Exec(".")
	case "finish":
		return Finish(".", c.Args, c.Stderr), nil
	case "svscan":
		return 0, svscanCommand(ctx, layout, c)
	}
	req, err := c.request(layout)
	if err != nil {
		return 0, err
	}
	switch c.Sub {
	case "start":
		err = Start(ctx, req)
	case "stop":
		err = Stop(ctx, req)
	case "reload":
		err = Reload(req)
	case "status":
		return Status(req), nil
	default:
		return 0, usageErrorf("unknown command %q", c.Sub)
	}
	if errors.Is(err, ErrFailed) {
		return 1, nil
	}
	return 0, err
}

// request builds the hook's request from openrc-run's environment.
func (c *Command) request(layout Layout) (*Request, error) {
	req := &Request{Name: c.Getenv("RC_SVCNAME"), Script: c.Getenv("RC_SERVICE"), Layout: layout,
		Gosv: c.Gosv, Env: c.Environ, Out: c.Stderr, Vars: map[string]string{}}
	if c.Sub == "start" {
		req.Argv = append([]string{}, c.Args...) // non-nil: start checks it
	}
	if req.Name == "" || req.Script == "" {
		return nil, usageErrorf("%s must run inside openrc-run (RC_SVCNAME and RC_SERVICE are not set)", c.Sub)
	}
	for _, kv := range c.Vars {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, usageErrorf("--var %q: want NAME=VALUE", kv)
		}
		req.Vars[name] = val
	}
	if c.Sub == "status" {
		req.Out = c.Stdout // the status line, as s6_status prints s6-svstat's
	}
	return req, nil
}

// check lints the scripts of c.Args: names are looked up in the first
// init directory, paths taken as they are.
func check(ctx context.Context, layout Layout, c *Command) (int, error) {
	scripts := make([]string, len(c.Args))
	for i, a := range c.Args {
		scripts[i] = a
		if !strings.Contains(a, "/") {
			scripts[i] = filepath.Join(layout.InitDirs[0], a)
		}
	}
	n, err := CheckScripts(ctx, layout, scripts, filepath.Dir(c.Gosv), c.Stdout)
	if err != nil || n == 0 {
		return 0, err
	}
	return 1, nil
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

// svscanCommand is gosv-svscan's command: the scanner, or with --wait or
// --stop-leftovers one of its helpers.
func svscanCommand(ctx context.Context, layout Layout, c *Command) error {
	if n := btoi(c.Wait) + btoi(c.Cleanup) + btoi(c.Reexec); n > 1 {
		return usageErrorf("--wait, --stop-leftovers and --reexec exclude each other")
	}
	if c.Backend == "" {
		c.Backend = registry.Default
	}
	if !slices.Contains(registry.Names(), c.Backend) {
		return usageErrorf("--backend %q: unknown backend (known: %s)", c.Backend, strings.Join(registry.Names(), ", "))
	}
	if c.Reexec {
		if c.Backend != registry.Default {
			return usageErrorf("--reexec: only gosv's own scanner re-executes in place (not --backend %s)", c.Backend)
		}
		// rc-service gosv-svscan reexec: the same pid, every service kept
		// (scan/REEXEC.md).
		return svctl.Reexec(ScanDir(layout.SvcDir), c.Timeout)
	}
	if c.Wait {
		ctx, cancel := context.WithTimeout(ctx, c.Timeout)
		defer cancel()
		dir := BackendScanDir(c.Backend, layout.SvcDir)
		// A scanner without s6's control fifo (runsvdir) has a wait of
		// its own.
		if b, err := registry.New(c.Backend, dir); err == nil {
			if w, ok := b.(interface{ WaitRunning(context.Context) error }); ok {
				return w.WaitRunning(ctx)
			}
		}
		return WaitScanner(ctx, dir)
	}
	if c.Cleanup {
		ctx, cancel := context.WithTimeout(ctx, c.Timeout)
		defer cancel()
		return StopLeftovers(ctx, c.Backend, BackendScanDir(c.Backend, layout.SvcDir))
	}
	if c.Backend != registry.Default {
		return usageErrorf("--backend %s: only with --wait or --stop-leftovers (gosv runs no other scanner)", c.Backend)
	}
	if c.Notify < 0 || c.Notify == 1 || c.Notify == 2 {
		return usageErrorf("--notify-fd %d: must be 0 (none) or at least 3", c.Notify)
	}
	return Svscan(SvscanConfig{RCSvcDir: layout.SvcDir, LibexecDir: layout.LibexecDir, Gosv: c.Gosv, NotifyFd: c.Notify,
		LogDir: c.LogDir, Script: c.Script, Logger: []string{c.Gosv, "log"}, NoFile: c.NoFile,
		MetricsListen: c.MetricsListen, MetricsTextfile: c.MetricsTextfile})
}
