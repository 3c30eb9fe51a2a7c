// Command gosv-openrc is the OpenRC hook's client: `gosv openrc start`,
// `stop`, `status` and `reload` as the hook calls them, in a binary that
// links only the openrc package's client path (no cobra command tree, no
// scanner, no metrics server): each rc-service call of a supervisor=gosv
// service runs one, and a 7 MB program starts about a millisecond sooner
// than the 17 MB gosv (bench/README.md, "A lean client for the hook").
//
// It is installed beside gosv as GOSV-openrc, where GOSV is the gosv binary
// (make install: /usr/bin/gosv and /usr/bin/gosv-openrc), and the hook runs
// it when it is there. It handles exactly the hook's command lines:
//
//	gosv-openrc start|stop|status|reload [--var NAME=VALUE]... [-- ARGV...]
//
// (ARGV for start only), and `resolve` (the limited child of check and
// ls, which re-runs /proc/self/exe as `gosv openrc resolve`: a leading
// "openrc" is dropped), and execs `GOSV openrc ARG...` for anything else
// (other subcommands, --help, a command line it does not take, a usage
// error), so that gosv-openrc X always means gosv openrc X, with gosv's
// messages and exit codes.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"github.com/gosv/gosv/openrc"
)

// Exit codes of gosv's (cmd/gosv/root.go) for the cases handled here.
const (
	exitInternal = 101 // a bug: please report
	exitSystem   = 111
)

// clientSuffix ends the client's name: GOSV-openrc runs beside GOSV.
const clientSuffix = "-openrc"

// hookSubs are the subcommands the client runs itself.
var hookSubs = map[string]bool{"start": true, "stop": true, "status": true, "reload": true}

func main() { os.Exit(run(os.Args)) }

func run(argv []string) (code int) {
	args := argv[1:]
	if len(args) > 0 && args[0] == "openrc" {
		// GOSV-openrc openrc ARG... is GOSV openrc ARG...: the resolver
		// of check and ls re-runs /proc/self/exe as `gosv openrc
		// resolve` (openrc/resolver_linux.go).
		args = args[1:]
	}
	c, ok := parse(args)
	if ok && c.Sub == "resolve" {
		// The resolver's child: no gosv binary needed (argv[0] is "gosv").
		return serveResolve()
	}
	gosv, err := gosvBinary(argv[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "gosv-openrc: fatal: %v\n", err)
		return exitSystem
	}
	if !ok {
		return execGosv(gosv, args)
	}
	prog := "gosv openrc " + c.Sub
	c.Gosv, c.Getenv, c.Environ = gosv, os.Getenv, os.Environ()
	c.Stdin, c.Stdout, c.Stderr = os.Stdin, os.Stdout, os.Stderr
	// NOTE: as gosv's openrc commands: SIGINT and SIGTERM cancel the
	// context, and an interrupted start brings its service down.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	defer func() {
		if p := recover(); p != nil {
			fmt.Fprintf(os.Stderr, "%s: fatal: internal error: %v (please report)\n%s", prog, p, debug.Stack())
			code = exitInternal
		}
	}()
	code, err = openrc.Run(ctx, c)
	if _, usage := err.(*openrc.UsageError); usage {
		// Before any side effect (the request is built first): gosv
		// prints the error and the usage line.
		return execGosv(gosv, args)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: fatal: %v\n", prog, err)
		return exitSystem
	}
	return code
}

// serveResolve is `gosv openrc resolve`: the limited child that resolves
// init scripts for ResolveAll, its request on stdin.
func serveResolve() int {
	if err := openrc.ServeResolve(context.Background(), os.Stdin, os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "gosv openrc resolve: fatal: %v\n", err)
		return exitSystem
	}
	return 0
}

// parse takes the hook's command line: SUB, then --var NAME=VALUE (or
// --var=NAME=VALUE) options, then for start "--" and the command line;
// or a bare resolve. It reports false for anything else, which gosv
// itself must answer.
func parse(args []string) (*openrc.Command, bool) {
	if len(args) == 1 && args[0] == "resolve" {
		return &openrc.Command{Sub: "resolve"}, true
	}
	if len(args) == 0 || !hookSubs[args[0]] {
		return nil, false
	}
	c := &openrc.Command{Sub: args[0], Timeout: 10 * time.Second}
	for rest := args[1:]; len(rest) > 0; {
		switch a := rest[0]; {
		case a == "--var" && len(rest) > 1:
			c.Vars = append(c.Vars, rest[1])
			rest = rest[2:]
		case strings.HasPrefix(a, "--var="):
			c.Vars = append(c.Vars, a[len("--var="):])
			rest = rest[1:]
		case a == "--" && c.Sub == "start":
			c.Args = append([]string{}, rest[1:]...)
			return c, true
		default:
			return nil, false
		}
	}
	return c, true
}

// gosvBinary is the gosv this client belongs to: its own path (as the
// hook runs it, else /proc/self/exe) without the -openrc suffix, with its
// symbolic links resolved, which is the path gosv finds for itself and
// writes into the generated run and finish.
func gosvBinary(argv0 string) (string, error) {
	self := argv0
	if !strings.Contains(self, "/") {
		exe, err := os.Executable()
		if err != nil {
			return "", err
		}
		self = exe
	}
	gosv, ok := strings.CutSuffix(self, clientSuffix)
	if !ok {
		return "", fmt.Errorf("%s: the client must be named GOSV%s, beside the gosv binary GOSV", self, clientSuffix)
	}
	// NOTE: absolute first: a relative GOSV (./bin/gosv-openrc, a
	// relative gosv_bin) would otherwise be written into the generated
	// finish, which runs in the service directory.
	abs, err := filepath.Abs(gosv)
	if err != nil {
		return "", fmt.Errorf("the gosv binary beside %s: %w", self, err)
	}
	resolved, err := filepath.EvalSymlinks(abs)
	if err != nil {
		return "", fmt.Errorf("the gosv binary beside %s: %w", self, err)
	}
	return resolved, nil
}

// execGosv hands the command line to `gosv openrc`.
func execGosv(gosv string, args []string) int {
	err := syscall.Exec(gosv, append([]string{gosv, "openrc"}, args...), os.Environ())
	fmt.Fprintf(os.Stderr, "gosv-openrc: fatal: unable to exec %s: %v\n", gosv, err)
	return exitSystem
}
