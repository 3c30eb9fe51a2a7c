package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/openrc"
)

// openrcOptions are the options of every `gosv openrc` subcommand: the
// flags fill the library's request, which runOpenRC completes with the
// process's environment and streams.
type openrcOptions = openrc.Command

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
  status              answer supervise_status: exit 3 (stopped), 4
                      (stopping), 8 (starting) or 16 (inactive); for a
                      started service print its status line and exit 0,
                      32 (crashed) or 64 (unsupervised): supervise-daemon's
                      codes
  reload              send reload_signal (SIGHUP)

Commands run by gosv itself: exec (the generated run), finish (the
generated finish), resolve (the limited child in which check and ls run
init scripts) and svscan (gosv-svscan's command; --wait waits until the
scanner accepts services; --stop-leftovers, after it stopped, stops what
a dead scanner left running).

EXIT STATUS
  0    success
  1    start, stop or reload failed (the reason is printed); check found errors
  3    status: stopped (4 stopping, 8 starting, 16 inactive)
  32   status: crashed
  64   status: unsupervised
  100  usage error
  111  system error`

// openrcSubLong is each subcommand's help after its one-line summary:
// what it does, and its EXIT STATUS.
var openrcSubLong = map[string]string{
	"start": `Run by the hook inside openrc-run (RC_SVCNAME, RC_SERVICE, RC_SVCDIR,
RC_LIBEXECDIR and the script's variables as --var NAME=VALUE): generate or
find the service directory, link it into $RC_SVCDIR/gosv-scan and wait
until it is up (ready with a readiness source) within timeout_ready;
without one, it must then stay up for start_wait. The arguments after --
are the command line openrc-run evaluated.

EXIT STATUS
  0    started
  1    not started: the reason and the last lines of its log are printed
  100  usage error, or not run inside openrc-run
  111  system error`,
	"stop": `Run by the hook inside openrc-run: bring the service down (its
down-signal, SIGKILL after timeout_kill), wait up to timeout_down, unlink
it and let its supervisor exit.

EXIT STATUS
  0    stopped
  1    not stopped in time (the reason is printed)
  100  usage error, or not run inside openrc-run
  111  system error`,
	"status": `Run by the hook inside openrc-run: answer supervise_status's questions
(OpenRC's state, then gosv's) and, for a started service, print its status
line. The codes are supervise-daemon's; the hook prints OpenRC's
"status: ..." line for each.

EXIT STATUS
  0    started and supervised
  3    stopped
  4    stopping
  8    starting
  16   inactive
  32   crashed: neither supervised nor running
  64   unsupervised: running, but its supervisor is gone
  100  usage error, or not run inside openrc-run
  111  system error`,
	"reload": `Run by the hook inside openrc-run: send reload_signal (SIGHUP by
default) to the service's process.

EXIT STATUS
  0    sent
  1    not sent: invalid reload_signal, or the service is not up
  100  usage error, or not run inside openrc-run
  111  system error`,
	"ls": `List every gosv service: state, status, directory (and whether a
generated one is stale) and configuration.

EXIT STATUS
  0    listed
  111  system error`,
	"check": `Lint init scripts (names in /etc/init.d, or paths) and the installed
hook; problems are printed as file:line:col: severity: message. A warning
says when the hook's client gosv-openrc, beside gosv, is another build.

EXIT STATUS
  0    no errors (warnings may be printed)
  1    errors found
  100  usage error
  111  system error`,
	"exec": `The generated run: apply the service directory's configuration
(user, limits, capabilities, chroot...) and exec its command.

EXIT STATUS
  111  system error: the command could not be started (otherwise this
       process becomes the command)`,
	"finish": `The generated finish (arguments: exit code, signal, name): apply the
respawn policy of the service directory.

EXIT STATUS
  0    respawn (after respawn_delay)
  125  give up: the service is marked stopped, then failed`,
	"resolve": `The limited child in which check and ls run init scripts: reads a
request on standard input, writes the answer on standard output.

EXIT STATUS
  0    answered
  111  system error`,
	"svscan": `gosv-svscan's command: run the scanner of $RC_SVCDIR/gosv-scan with its
catch-all logger; with --wait, wait until the scanner accepts services;
with --stop-leftovers, after the scanner stopped, stop what a dead scanner
left running; with --reexec, re-execute the running scanner in place (the
same pid, every service kept running: rc-service gosv-svscan reexec).
With --backend s6, --wait and --stop-leftovers mean the s6-svscan of
$RC_SVCDIR/s6-scan (init.d/s6-svscan); with --backend runit, the
runsvdir of $RC_SVCDIR/sv (init.d/runsvdir).

EXIT STATUS
  0    the scanner exited cleanly; --wait: it accepts services;
       --stop-leftovers: nothing is left; --reexec: the new scanner
       accepts control
  100  usage error, or no scanner listening
  111  system error; --wait: not accepting services in time; --reexec:
       the re-exec did not happen (the old scanner keeps running) or its
       outcome was not seen in time`,
}

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
			Long:   short + ".\n\n" + openrcSubLong[name],
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
		c.Flags().BoolVar(&o.Reexec, "reexec", false, "re-execute the running scanner in place, keeping every service, then exit")
		c.Flags().DurationVar(&o.Timeout, "timeout", 10*time.Second, "--wait, --reexec: give up after this long; --stop-leftovers: SIGKILL after this long")
		c.Flags().StringVar(&o.Backend, "backend", "gosv", "--wait, --stop-leftovers: the scanner of this backend's scan directory (gosv; s6: $RC_SVCDIR/s6-scan; runit: $RC_SVCDIR/sv)")
	})
	return root
}

func runOpenRC(ctx context.Context, e *env, o *openrcOptions) error {
	o.Getenv, o.Environ, o.Stdin, o.Stdout, o.Stderr = e.Getenv, os.Environ(), os.Stdin, e.Stdout, e.Stderr
	code, err := openrc.Run(ctx, o)
	if o.Sub == "check" && err == nil {
		self, _ := debug.ReadBuildInfo()
		if p := clientProblem(o.Gosv, self); p != nil {
			fmt.Fprintln(o.Stdout, p)
		}
	}
	var ue *openrc.UsageError
	switch {
	case errors.As(err, &ue):
		return &usageError{err: err}
	case err != nil:
		return err
	case code != 0:
		return silentExit(code)
	}
	return nil
}

func firstArg(args []string) string {
	if len(args) == 0 {
		return ""
	}
	return args[0]
}
