package main

import (
	"context"
	"errors"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/internal/logdir"
)

type logOptions struct {
	NotifyFd  int  // -d: -1 = none
	Protect   bool // -p: SIGTERM does not stop the logger
	Quiet     bool // -q: no warnings
	LineLimit int  // -l: 0 = default
	LossBytes int  // -B: 0 = lossless
	Script    []string
}

const logLong = `Read lines on standard input and write them to log directories, with
s6-log's script language and rotation (s6-log 2.11 compatible), for a
service's log/run script:

  exec gosv log t s1048576 n10 /var/log/foo

Directives (see internal/logdir/SCRIPT.md): t (TAI64N stamp), T (local
ISO 8601 stamp), pPREFIX, sSIZE (rotate current at this size), nCOUNT
(archives kept), STOTAL (total size of the archives), rMS (retry delay),
+REGEX / -REGEX / f (selection, POSIX ERE), 1 (stdout), 2 (alert to
stderr), and a directory (starting with . or /) as action.

Nothing is lost: a byte leaves stdin only once it is written to every
log directory that selects it, so even a SIGKILLed logger loses no line (at
worst the last chunk is written twice). A log directory that cannot be
written (full disk) is reported once and retried every r (2 s), and the
service blocks on its full pipe. With -B bytes, a failing directory
instead keeps that many bytes, then drops whole lines and logs how many.

For a service directory, the in-process logger (a log-script file holding
the same script) does the same job inside gosv svscan, without a process;
it is the recommended form.

  -d fd      write a newline to fd once the log directories are ready
  -b         accepted (s6-log's blocking mode is how gosv log always works)
  -p         ignore SIGTERM: exit only on SIGHUP or at end of input
  -q         no warnings; -v accepted
  -l limit   split lines longer than limit bytes (default 8192, minimum 48,
             0 = 65536)
  -B bytes   bounded-loss mode for failing log directories

Signals: SIGTERM and SIGHUP write what stdin holds and exit (an incomplete
last line is left in the pipe for the next logger); SIGALRM rotates.

EXIT STATUS
  0    end of input, or stopped by a signal
  100  usage error, bad script, or a log directory locked by another logger
  111  system error`

func newLogCmd(e *env, runF func(*logOptions) error) *cobra.Command {
	opts := &logOptions{NotifyFd: -1}
	return s6Cmd(&cobra.Command{
		Use:         "log [-d fd] [-b] [-p] [-q] [-l limit] [-B bytes] script...",
		Annotations: map[string]string{cancelOnSignal: "1"}, // SIGTERM: finish writing, then exit
		Short:       "Log standard input to rotated log directories (s6-log)",
		Long:        logLong,
		RunE:        s6RunE(opts, parseLogArgs, runF, func(c *cobra.Command) error { return runLog(c.Context(), e.warner(c), opts) }),
	})
}

// parseLogArgs parses the leading options like s6-log; the script starts
// at the first operand (directives such as -regex need a "--" before them
// when they come first, as with s6-log).
func parseLogArgs(args []string, opts *logOptions) error {
	p := getopt.New(args, "d:bpqvl:B:")
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return &usageError{err: err}
		}
		if opt == getopt.End {
			break
		}
		n := 0
		if arg != "" {
			v, err := strconv.ParseUint(arg, 10, 31)
			if err != nil {
				return usageErrorf("-%c: invalid number %q", opt, arg)
			}
			n = int(v)
		}
		switch opt {
		case 'd':
			opts.NotifyFd = n
		case 'p':
			opts.Protect = true
		case 'q':
			opts.Quiet = true
		case 'l':
			opts.LineLimit = n
			if n == 0 {
				opts.LineLimit = -1
			}
		case 'B':
			opts.LossBytes = n
		}
	}
	opts.Script = args[p.Index():]
	if len(opts.Script) == 0 {
		return &usageError{}
	}
	return nil
}

func runLog(_ context.Context, warn func(string), opts *logOptions) error {
	if opts.Quiet {
		warn = nil
	}
	err := logdir.Run(logdir.RunConfig{Script: opts.Script, In: 0, NotifyFd: opts.NotifyFd, Protect: opts.Protect,
		LineLimit: opts.LineLimit, LossBytes: opts.LossBytes, Prog: "gosv log", Warn: warn})
	if errors.Is(err, logdir.ErrScript) {
		return &usageError{err: err}
	}
	return err
}
