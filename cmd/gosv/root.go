package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/svctl"
	"github.com/gosv/gosv/internal/svstat"
	"github.com/gosv/gosv/svwait"
)

// commands lists the subcommands' constructors. Add new ones here, wrapping
// a gh-style newXCmd(env, runF) with sub: sub(newXCmd).
var commands = []func(*env) *cobra.Command{
	sub(newSvcCmd), sub(newSvstatCmd), sub(newSvokCmd), sub(newSvscanctlCmd),
	sub(newSvscanCmd), sub(newSuperviseCmd),
	sub(newSvwaitCmd),
	sub(newOpenRCCmd),
	sub(newLogCmd), sub(newLogsCmd),
	sub(newEventsCmd), sub(newMetricsCmd),
	sub(newFdholderCmd), sub(newSpawnerCmd),
	sub(newInitCmd),
	sub(newNotifyFdCmd), sub(newNotifyOnCheckCmd), sub(newNotifyWatchCmd),
}

// sub adapts newXCmd(env, runF) to the commands list: runF nil means "run
// for real" (the tests pass their own runF to capture the options).
func sub[O any](newCmd func(*env, func(*O) error) *cobra.Command) func(*env) *cobra.Command {
	return func(e *env) *cobra.Command { return newCmd(e, nil) }
}

// env is what commands take from the process; tests replace it.
type env struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Now            func() time.Time
}

// Exit codes: s6's, because OpenRC's sh/s6.sh hands them to eend as they are.
const (
	exitOK       = 0
	exitFalse    = 1   // svok, svstat: not running; svc -w: the service failed
	exitTimeout  = 99  // a wait's deadline passed
	exitUsage    = 100 // bad usage; also "supervisor not listening", as s6
	exitInternal = 101 // a bug in gosv: please report
	exitSystem   = 111 // a system call failed
	// maxFailedExit caps svwait's "number of failed services" so that it
	// never reads as a timeout, a usage error, or wraps to 0.
	maxFailedExit = 98
)

func run(argv []string) int {
	e := &env{Stdout: os.Stdout, Stderr: os.Stderr, Getenv: os.Getenv, Now: time.Now}
	// NOTE: one command tree for the dispatch and the run: building it
	// costs a short-lived command such as OpenRC's gosv openrc status about
	// 0.2 ms the first time (bench/README.md, "rc-service process cost").
	root := newRootCmd(e)
	return e.executeRoot(context.Background(), root, dispatch(argv, isCommand(root)))
}

// isCommand reports whether name is a subcommand of root: only those are
// dispatched on argv[0], so that a copy named gosv-bin is still gosv.
func isCommand(root *cobra.Command) func(name string) bool {
	return func(name string) bool {
		for _, c := range root.Commands() {
			if c.Name() == name {
				return true
			}
		}
		return false
	}
}

// cancelOnSignal is the annotation of commands whose context is cancelled
// by SIGINT and SIGTERM, so that they can clean up (an OpenRC start brings
// its half-started service down). The others keep the default signal
// actions: installing handlers costs a short-lived command like
// `gosv svwait` about half a millisecond, and daemons handle their own.
const cancelOnSignal = "gosv.cancel-on-signal"

// dispatch maps argv to the root command's arguments: a binary called
// gosv-X, where X is a command, runs `gosv X`; under any other name the
// arguments are taken as is.
func dispatch(argv []string, isCommand func(string) bool) []string {
	if len(argv) == 0 {
		return nil
	}
	if name, ok := strings.CutPrefix(filepath.Base(argv[0]), "gosv-"); ok && isCommand(name) {
		return append([]string{name}, argv[1:]...)
	}
	return argv[1:]
}

func newRootCmd(e *env) *cobra.Command {
	root := &cobra.Command{
		Use:                   "gosv command [argument...]",
		Short:                 "An s6-compatible process supervision suite",
		Long:                  rootLong,
		SilenceErrors:         true,
		SilenceUsage:          true,
		DisableFlagsInUseLine: true,
		Args: func(_ *cobra.Command, args []string) error {
			if len(args) > 0 {
				return usageErrorf("unknown command %q", args[0])
			}
			return nil
		},
		RunE: func(*cobra.Command, []string) error { return &usageError{} },
		// Non-empty so that cobra adds --version; the template prints
		// versionLine, computed only when asked.
		Version: "-",
	}
	addVersionFunc.Do(func() { cobra.AddTemplateFunc("gosvVersion", versionLine) })
	root.SetVersionTemplate("{{gosvVersion}}\n")
	root.SetOut(e.Stdout)
	root.SetErr(e.Stderr)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return &usageError{err: err} })
	for _, newCmd := range commands {
		root.AddCommand(newCmd(e))
	}
	withFiles(root)
	return root
}

// execute runs the command line and is the one place that prints errors
// and picks the exit code.
func (e *env) execute(ctx context.Context, args []string) int {
	return e.executeRoot(ctx, newRootCmd(e), args)
}

// executeRoot is execute with the command tree root, built by newRootCmd(e).
func (e *env) executeRoot(ctx context.Context, root *cobra.Command, args []string) (code int) {
	if args == nil {
		args = []string{} // NOTE: cobra reads os.Args when given nil
	}
	root.SetArgs(args)
	c := root
	if found, _, err := root.Find(args); err == nil {
		c = found // so that even a panic names its command
	}
	for p := c; p != nil; p = p.Parent() {
		if p.Annotations[cancelOnSignal] != "" {
			var stop context.CancelFunc
			ctx, stop = signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
			defer stop()
			break
		}
	}
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(e.Stderr, "%s: fatal: internal error: %v (please report)\n%s", progName(c), p, debug.Stack())
			code = exitInternal
		}
	}()
	c, err := root.ExecuteContextC(ctx)
	if err == nil {
		return exitOK
	}
	code = exitCode(err)
	var ue *usageError
	var silent silentExit
	switch {
	case errors.As(err, &silent):
	case errors.As(err, &ue):
		if ue.err != nil {
			fmt.Fprintf(e.Stderr, "%s: fatal: %v\n", progName(c), ue.err)
		}
		fmt.Fprintf(e.Stderr, "%s: usage: %s\n", progName(c), c.UseLine())
	default:
		fmt.Fprintf(e.Stderr, "%s: fatal: %s\n", progName(c), message(err))
	}
	return code
}

// exitCode is the table from errors to exit codes.
func exitCode(err error) int {
	var (
		silent silentExit
		ue     *usageError
		failed *svwait.FailedError
		cde    *svctl.CtlDirError
	)
	switch {
	case err == nil:
		return exitOK
	case errors.As(err, &silent):
		return int(silent)
	case errors.As(err, &ue):
		return exitUsage
	case errors.Is(err, svwait.ErrTimeout):
		return exitTimeout
	case errors.As(err, &failed):
		return max(1, min(failed.N, maxFailedExit))
	case errors.Is(err, svstat.ErrNotRunning):
		return exitFalse
	case errors.Is(err, servicedir.ErrNotListening), errors.As(err, &cde),
		errors.Is(err, servicedir.ErrLocked): // another supervisor: s6 exits 100

		return exitUsage
	default:
		return exitSystem
	}
}

// message renders err for "PROG: fatal: …". Errors shaped "op object:
// cause" (*os.PathError and friends) read as "unable to op object: cause",
// skalibs' strerr_diefu wording.
func message(err error) string {
	switch err.(type) {
	case *os.PathError, *os.LinkError, *os.SyscallError:
		return "unable to " + err.Error()
	}
	if errors.Is(err, context.Canceled) {
		return "interrupted"
	}
	return err.Error()
}

// progName is the message prefix: "gosv" or "gosv svc".
func progName(c *cobra.Command) string {
	if c == nil || !c.HasParent() {
		return "gosv"
	}
	return c.CommandPath() // gosv openrc check, not gosv check
}

// usageArgs makes a positional-argument check's error a usage error: exit
// 100 and the usage line, like a bad flag.
func usageArgs(check cobra.PositionalArgs) cobra.PositionalArgs {
	return func(c *cobra.Command, args []string) error {
		if err := check(c, args); err != nil {
			return &usageError{err: err}
		}
		return nil
	}
}

// warner returns the function a command prints warnings with.
func (e *env) warner(c *cobra.Command) func(string) {
	return func(msg string) { fmt.Fprintf(e.Stderr, "%s: warning: %s\n", progName(c), msg) }
}

// usageError is a command line the command cannot accept: exit 100, and the
// usage line is printed after the message (err may be nil: usage only).
type usageError struct{ err error }

func (e *usageError) Error() string {
	if e.err == nil {
		return "usage error"
	}
	return e.err.Error()
}

func (e *usageError) Unwrap() error { return e.err }

func usageErrorf(format string, a ...any) error {
	return &usageError{err: fmt.Errorf(format, a...)}
}

// silentExit ends the command with that exit code and no message, like
// s6-svok answering "not running".
type silentExit int

func (e silentExit) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// s6Cmd finishes an s6-compatible command, which parses its own options:
// the help flag loses its -h shorthand (a command letter for svc) and is
// hidden from the help text, and only a leading --help asks for help.
func s6Cmd(c *cobra.Command) *cobra.Command {
	c.DisableFlagParsing = true
	c.DisableFlagsInUseLine = true
	c.Flags().Bool("help", false, "help for "+c.Name())
	c.Flags().MarkHidden("help")
	return c
}

// s6RunE is the RunE of an s6-compatible command: a leading --help, then
// the command's own parser, then runF (tests capture the options) or run.
func s6RunE[O any](opts *O, parse func([]string, *O) error, runF func(*O) error, run func(*cobra.Command) error) func(*cobra.Command, []string) error {
	return func(c *cobra.Command, args []string) error {
		if helpRequested(args) {
			return c.Help()
		}
		if err := parse(args, opts); err != nil {
			return err
		}
		if runF != nil {
			return runF(opts)
		}
		return run(c)
	}
}

// helpRequested reports whether args ask for help. The s6-compatible
// commands parse their own options, where -h may be a command letter, so
// only a leading --help counts.
func helpRequested(args []string) bool { return len(args) > 0 && args[0] == "--help" }
