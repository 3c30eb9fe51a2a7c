package logdir

import (
	"os"
	"os/signal"

	"golang.org/x/sys/unix"
)

// RunConfig is what gosv log (the s6-log analogue) runs: a script over one
// input, with its process-level behaviour.
type RunConfig struct {
	Script    []string // the s6-log script (directives and actions)
	In        int      // the input fd (gosv log: 0)
	NotifyFd  int      // -d: a newline here once the log directories are ready; -1 = none
	Protect   bool     // -p: SIGTERM does not stop the logger
	LineLimit int      // Options.LineLimit
	LossBytes int      // Options.LossBytes
	Prog      string   // prefix of the lines the logger writes about itself
	Warn      func(string)
}

// Run parses the script, opens its log directories and feeds In to them
// until the end of the input or a stopping signal: SIGTERM (unless
// Protect), SIGHUP and SIGINT stop it once what the input holds is
// written; SIGALRM rotates. A script it cannot accept is a
// [*ScriptError].
func Run(cfg RunConfig) error {
	s, err := ParseScript(cfg.Script)
	if err != nil {
		return err
	}
	warn := cfg.Warn
	if warn == nil {
		warn = func(string) {}
	}
	// NOTE: signals are taken here, not from a context, because Protect
	// must ignore SIGTERM. SIGPIPE is caught so that a closed stdout (the
	// 1 action) is an error to report, not a death.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGALRM, unix.SIGPIPE)
	defer func() { signal.Stop(sigs); close(sigs) }()
	l, err := Open(s, Options{LineLimit: cfg.LineLimit, LossBytes: cfg.LossBytes, Prog: cfg.Prog})
	if err != nil {
		return err
	}
	f, err := NewFeeder(l, cfg.In)
	if err != nil {
		l.Close()
		return err
	}
	defer f.Close()
	f.Warn = func(err error) { warn(err.Error()) }
	if cfg.NotifyFd >= 0 {
		unix.Write(cfg.NotifyFd, []byte("\n"))
		unix.Close(cfg.NotifyFd)
	}
	go forwardSignals(sigs, f, cfg.Protect)
	err = f.Run()
	if cerr := l.Close(); err == nil {
		err = cerr
	}
	return err
}

// forwardSignals turns signals into Feeder requests until sigs is
// stopped.
func forwardSignals(sigs <-chan os.Signal, f *Feeder, protect bool) {
	for sig := range sigs {
		switch sig {
		case unix.SIGALRM:
			f.Rotate()
		case unix.SIGTERM:
			if !protect {
				f.Stop()
			}
		case unix.SIGHUP, unix.SIGINT:
			f.Stop()
		}
	}
}
