package main

import (
	"context"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/gosv/gosv/internal/getopt"
	"github.com/gosv/gosv/scan"
)

type svscanOptions struct {
	Dir      string
	Rescan   time.Duration
	NotifyFd int
	// -m, -M: metrics (docs/events-metrics.md).
	MetricsListen   string
	MetricsTextfile string
}

const svscanLong = `Supervise every service directory of SCANDIR (default: the current
directory) from one process, as s6-svscan and one s6-supervise per service
would: same service-directory layout, same supervise/ and event/ files, so
the s6 tools (s6-svc, s6-svstat, s6-svwait, s6-svok, s6-svscanctl,
s6-svlink) work on the tree.

New entries are taken at once (inotify): no s6-svscanctl -a needed. An entry
whose run is missing or not executable is watched and started as soon as it
is. A NAME/log directory gets a logger fed by a pipe the scanner keeps open
across restarts of either side. Services still running from a scanner that
was killed are adopted, never started twice.

  -t rescan   also rescan the whole directory every rescan milliseconds
  -d fd       write a newline to fd once ready to take services, then close it
  -c max      accepted for compatibility with s6-svscan; no limit applies
  -m addr     serve Prometheus metrics on http://addr/metrics (a bare port
              listens on 127.0.0.1 only; 0.0.0.0:PORT on every interface)
  -M file     keep file (e.g. a node_exporter textfile, NAME.prom) up to
              date with the same metrics, rewritten atomically on change

Every start, readiness, exit, restart, backoff, give-up, unhealthy and
recovered is appended to SCANDIR/.gosv-events (gosv events) and handed to
the service's on-event hook, if it has one.

Signals: SIGHUP rescans and stops removed services, SIGTERM and SIGINT stop
everything and exit, SIGQUIT likewise harsher, SIGABRT exits leaving
services running; a .s6-svscan/SIGNAME script replaces the default.

EXIT STATUS
  0    exited on request (then .s6-svscan/finish is executed if present)
  100  usage error, or another scanner holds SCANDIR/.s6-svscan/lock
  111  system error during setup`

func newSvscanCmd(e *env, runF func(*svscanOptions) error) *cobra.Command {
	opts := &svscanOptions{NotifyFd: -1}
	return s6Cmd(&cobra.Command{
		Use:   "svscan [-t rescan] [-d fd] [-m addr] [-M file] [scandir]",
		Short: "Supervise every service directory of a scan directory (s6-svscan)",
		Long:  svscanLong,
		RunE:  s6RunE(opts, parseSvscanArgs, runF, func(c *cobra.Command) error { return runSvscan(c.Context(), e, opts) }),
	})
}

func parseSvscanArgs(args []string, opts *svscanOptions) error {
	p := getopt.New(args, "c:t:d:m:M:")
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return &usageError{err: err}
		}
		if opt == getopt.End {
			break
		}
		switch opt {
		case 'm':
			opts.MetricsListen = arg
			continue
		case 'M':
			opts.MetricsTextfile = arg
			continue
		}
		n, err := strconv.ParseUint(arg, 10, 31)
		if err != nil {
			return usageErrorf("-%c: invalid number %q", opt, arg)
		}
		switch opt {
		case 't':
			opts.Rescan = time.Duration(n) * time.Millisecond
		case 'd':
			if n < 3 {
				return usageErrorf("-d: fd must be at least 3")
			}
			opts.NotifyFd = int(n)
		}
	}
	rest := args[p.Index():]
	switch len(rest) {
	case 0:
		opts.Dir = "."
	case 1:
		opts.Dir = rest[0]
	default:
		return &usageError{}
	}
	return nil
}

func runSvscan(_ context.Context, e *env, opts *svscanOptions) error {
	if err := scan.EnsureEmptySignalMask(); err != nil {
		return err
	}
	return scan.Run(scan.Config{Prog: "gosv svscan", ScanDir: opts.Dir, Rescan: opts.Rescan,
		NotifyFd: opts.NotifyFd, Stderr: e.Stderr, MetricsListen: opts.MetricsListen, MetricsTextfile: opts.MetricsTextfile,
		Spawner: true, SpawnerMin: scan.DefaultSpawnerMin})
}
