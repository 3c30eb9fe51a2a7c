package main

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/openrc"
)

// openrcOptions are the options of every `gosv openrc` subcommand.
type openrcOptions struct {
	Sub     string   // start, stop, status, reload, ls, check, exec, finish, resolve, svscan
	Vars    []string // --var NAME=VALUE (the hook's live values)
	Args    []string // start: the command line; check: scripts; finish: its arguments
	Notify  int      // svscan --notify-fd
	LogDir  string   // svscan --log-dir
	Script  string   // svscan --log-script
	Wait    bool     // svscan --wait
	Cleanup bool     // svscan --stop-leftovers
	Timeout time.Duration
	NoFile  uint64 // svscan --nofile
	// svscan --metrics-listen, --metrics-textfile: the scanner's -m, -M.
	MetricsListen, MetricsTextfile string
}

const openrcLong = `supervisor=gosv for OpenRC. The hook /etc/rc.conf.d/gosv.conf makes
openrc-run call these commands for every script that sets supervisor=gosv;
gosv-svscan (/etc/init.d) runs the scanner they use.

Without the hook, OpenRC runs supervisor=gosv scripts with
start-stop-daemon, in the foreground: "gosv openrc check" reports a missing
or outdated hook. After installing or upgrading it, run rc-update -u
(OpenRC 0.45 does not see changes to rc.conf.d by itself).

Commands for users:
  check SCRIPT...  lint init scripts (names or paths) and the hook;
                   problems as file:line:col: severity: message
  ls               every gosv service: state, status, directory (and
                   whether a generated one is stale), configuration

Commands for the hook (they read RC_SVCNAME, RC_SERVICE, RC_SVCDIR and
RC_LIBEXECDIR from openrc-run's environment, and the script's variables
from --var NAME=VALUE):
  start [-- ARGV...]  generate or find the service directory, link it into
                      $RC_SVCDIR/gosv-scan and wait until it is up (ready
                      with a readiness source) within timeout_ready; without
                      one, it must then stay up for start_wait
  stop                bring it down, unlink it
  status              print its status line; exit 0, 32 (crashed) or 64
                      (unsupervised), supervise-daemon's codes
  reload              send reload_signal (SIGHUP)

Commands run by gosv itself: exec (the generated run), finish (the
generated finish), resolve (the limited child in which check and ls run
init scripts) and svscan (gosv-svscan's command; --wait waits until the
scanner accepts services; --stop-leftovers, after it stopped, stops what
a dead scanner left running).

EXIT STATUS
  0    success
  1    start, stop or reload failed (the reason is printed); check found errors
  32   status: crashed
  64   status: unsupervised
  100  usage error
  111  system error`

func newOpenRCCmd(e *env, runF func(*openrcOptions) error) *cobra.Command {
	root := &cobra.Command{
		Use:         "openrc command [argument...]",
		Annotations: map[string]string{cancelOnSignal: "1"}, // a start interrupted brings its service down
		Short:       "Run OpenRC services with gosv (supervisor=gosv)",
		Long:        openrcLong,
		// NOTE: a generated run or finish is "#!/usr/bin/gosv openrc": the
		// kernel runs `gosv openrc ./run NAME` or `gosv openrc ./finish CODE
		// SIG NAME`, which mean exec and finish.
		Args: cobra.ArbitraryArgs,
		RunE: func(c *cobra.Command, args []string) error {
			sub := map[string]string{"./" + servicedir.RunFile: "exec", "./" + servicedir.FinishFile: "finish"}[firstArg(args)]
			if sub == "" && len(args) > 0 {
				return usageErrorf("unknown command %q", args[0])
			}
			if sub == "" {
				return &usageError{}
			}
			o := &openrcOptions{Sub: sub, Args: args[1:]}
			if runF != nil {
				return runF(o)
			}
			return runOpenRC(c.Context(), e, o)
		},
	}
	// "./finish -1 0 NAME" (an adopted run) is not a flag.
	root.Flags().SetInterspersed(false)
	add := func(name, short string, args cobra.PositionalArgs, hidden bool, flags func(*cobra.Command, *openrcOptions)) {
		opts := &openrcOptions{Sub: name, Timeout: 10 * time.Second}
		c := &cobra.Command{
			Use:    name,
			Short:  short,
			Args:   usageArgs(args),
			Hidden: hidden,
			RunE: func(c *cobra.Command, args []string) error {
				opts.Args = args
				if runF != nil {
					return runF(opts)
				}
				return runOpenRC(c.Context(), e, opts)
			},
		}
		if flags != nil {
			flags(c, opts)
		}
		if hidden {
			// exec and finish take the supervisor's arguments as they are:
			// finish gets "-1 0 NAME" for an adopted run.
			c.DisableFlagParsing = true
		}
		root.AddCommand(c)
	}
	vars := func(c *cobra.Command, o *openrcOptions) {
		c.Flags().StringArrayVar(&o.Vars, "var", nil, "a live variable of the script, NAME=VALUE")
	}
	add("start", "Start the service of the running openrc-run", cobra.ArbitraryArgs, false, vars)
	add("stop", "Stop the service of the running openrc-run", cobra.NoArgs, false, vars)
	add("status", "Print the status of the service of the running openrc-run", cobra.NoArgs, false, vars)
	add("reload", "Send reload_signal to the service of the running openrc-run", cobra.NoArgs, false, vars)
	add("ls", "List the gosv services", cobra.NoArgs, false, nil)
	add("check", "Lint init scripts and the hook", cobra.MinimumNArgs(1), false, nil)
	add("exec", "Run the command of a generated service directory (its run)", cobra.NoArgs, true, nil)
	add("finish", "Apply the respawn policy of a generated service directory (its finish)", cobra.ArbitraryArgs, true, nil)
	add("resolve", "Resolve init scripts for check and ls (the limited child)", cobra.NoArgs, true, nil)
	add("svscan", "Run the scanner for gosv-svscan", cobra.NoArgs, false, func(c *cobra.Command, o *openrcOptions) {
		c.Flags().IntVar(&o.Notify, "notify-fd", 0, "pass -d FD to the scanner (readiness)")
		c.Flags().StringVar(&o.LogDir, "log-dir", openrc.DefaultCatchAllDir, "the catch-all log directory")
		c.Flags().StringVar(&o.Script, "log-script", openrc.DefaultCatchAllScript, "the catch-all log script")
		c.Flags().Uint64Var(&o.NoFile, "nofile", openrc.DefaultNoFile, "raise the hard file-descriptor limit to this (0: leave it)")
		c.Flags().StringVar(&o.MetricsListen, "metrics-listen", "", "serve /metrics on this `ADDR` (a bare port: loopback only)")
		c.Flags().StringVar(&o.MetricsTextfile, "metrics-textfile", "", "keep this node_exporter textfile up to date")
		c.Flags().BoolVar(&o.Wait, "wait", false, "wait until the scanner accepts services, then exit")
		c.Flags().BoolVar(&o.Cleanup, "stop-leftovers", false, "after the scanner stopped: stop what a dead scanner left running (the catch-all logger), then exit")
		c.Flags().DurationVar(&o.Timeout, "timeout", 10*time.Second, "--wait: give up after this long; --stop-leftovers: SIGKILL after this long")
	})
	return root
}

func runOpenRC(ctx context.Context, e *env, o *openrcOptions) error {
	if o.Sub == "resolve" {
		return openrc.ServeResolve(ctx, os.Stdin, os.Stdout) // first: no layout to read, it is in the request
	}
	gosv, err := os.Executable()
	if err != nil {
		return err
	}
	layout := openrc.DefaultLayout(e.Getenv)
	switch o.Sub {
	case "ls":
		return openrc.Ls(ctx, layout, gosv, e.Stdout)
	case "check":
		return runOpenRCCheck(ctx, e, layout, gosv, o.Args)
	case "exec":
		return openrc.Exec(".")
	case "finish":
		return silentExit(openrc.Finish(".", o.Args, e.Stderr))
	case "svscan":
		return runOpenRCSvscan(ctx, e, layout, gosv, o)
	}
	req, err := openrcRequest(e, layout, gosv, o)
	if err != nil {
		return err
	}
	switch o.Sub {
	case "start":
		err = openrc.Start(ctx, req)
	case "stop":
		err = openrc.Stop(ctx, req)
	case "reload":
		err = openrc.Reload(req)
	case "status":
		return silentExit(openrc.Status(req))
	}
	if errors.Is(err, openrc.ErrFailed) {
		return silentExit(1)
	}
	return err
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}

// openrcRequest builds the hook's request from openrc-run's environment.
func openrcRequest(e *env, layout openrc.Layout, gosv string, o *openrcOptions) (*openrc.Request, error) {
	req := &openrc.Request{Name: e.Getenv("RC_SVCNAME"), Script: e.Getenv("RC_SERVICE"), Layout: layout,
		Gosv: gosv, Env: os.Environ(), Out: e.Stderr, Vars: map[string]string{}}
	if o.Sub == "start" {
		req.Argv = append([]string{}, o.Args...) // non-nil: start checks it
	}
	if req.Name == "" || req.Script == "" {
		return nil, usageErrorf("%s must run inside openrc-run (RC_SVCNAME and RC_SERVICE are not set)", o.Sub)
	}
	for _, kv := range o.Vars {
		name, val, ok := strings.Cut(kv, "=")
		if !ok || name == "" {
			return nil, usageErrorf("--var %q: want NAME=VALUE", kv)
		}
		req.Vars[name] = val
	}
	if o.Sub == "status" {
		req.Out = e.Stdout // the status line, as s6_status prints s6-svstat's
	}
	return req, nil
}

func runOpenRCCheck(ctx context.Context, e *env, layout openrc.Layout, gosv string, args []string) error {
	scripts := make([]string, len(args))
	for i, a := range args {
		scripts[i] = a
		if !strings.Contains(a, "/") {
			scripts[i] = filepath.Join(layout.InitDirs[0], a)
		}
	}
	n, err := openrc.CheckScripts(ctx, layout, scripts, filepath.Dir(gosv), e.Stdout)
	if err != nil {
		return err
	}
	if n > 0 {
		return silentExit(1)
	}
	return nil
}

func runOpenRCSvscan(ctx context.Context, e *env, layout openrc.Layout, gosv string, o *openrcOptions) error {
	if o.Wait && o.Cleanup {
		return usageErrorf("--wait and --stop-leftovers exclude each other")
	}
	if o.Wait {
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		return openrc.WaitScanner(ctx, openrc.ScanDir(layout.SvcDir))
	}
	if o.Cleanup {
		ctx, cancel := context.WithTimeout(ctx, o.Timeout)
		defer cancel()
		return openrc.StopLeftovers(ctx, openrc.ScanDir(layout.SvcDir))
	}
	if o.Notify < 0 || o.Notify == 1 || o.Notify == 2 {
		return usageErrorf("--notify-fd %d: must be 0 (none) or at least 3", o.Notify)
	}
	return openrc.Svscan(openrc.SvscanConfig{RCSvcDir: layout.SvcDir, LibexecDir: layout.LibexecDir, Gosv: gosv, NotifyFd: o.Notify,
		LogDir: o.LogDir, Script: o.Script, Logger: []string{gosv, "log"}, NoFile: o.NoFile,
		MetricsListen: o.MetricsListen, MetricsTextfile: o.MetricsTextfile})
}
