package scan

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/gosv/gosv/internal/metrics"
)

// Metrics (issue 11): the scanner can keep a node_exporter textfile up to
// date and serve /metrics. Both render from the files the loop writes
// (internal/metrics), in goroutines of their own, so they share no
// mutable state with the loop: the loop only kicks the textfile writer
// through a one-slot channel when a status or an event changed something
// (kicks during a write coalesce into one more write). The textfile is
// therefore written on change, never on a timer; uptime in it is as of
// the last change (gosv_service_start_time_seconds does not age).
//
// Goroutines: one textfile writer, one HTTP accept loop, and at most
// metricsConns connection handlers, whatever the number of services.

const (
	metricsConns       = 4                // concurrent /metrics connections
	metricsReadTimeout = 10 * time.Second // a scraper's request, whole
)

// metricsState is the loop's handle on the metrics goroutines.
type metricsState struct {
	kick chan struct{} // nil when no textfile is kept
}

// lockedWriter serialises whole writes to the scanner's stderr, which the
// metrics goroutines share with the loop for their warnings.
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (w *lockedWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.w.Write(b)
}

// metricsDir is what the metrics cover: the scan directory, or the one
// service of gosv supervise.
func (l *loop) metricsDir() string {
	if l.sc != nil {
		return l.sc.dir
	}
	return l.cfg.ServiceDir
}

// startMetrics starts the textfile writer and the /metrics server asked
// for. A listen error is a setup error (fatal), like any bad option.
func (l *loop) startMetrics() error {
	if l.cfg.MetricsListen != "" {
		ln, err := net.Listen("tcp", ListenAddr(l.cfg.MetricsListen))
		if err != nil {
			return fmt.Errorf("metrics: %w", err)
		}
		go serveMetrics(ln, l.metricsDir(), l.cfg.Prog, l.cfg.Stderr)
	}
	if l.cfg.MetricsTextfile != "" {
		l.metrics.kick = make(chan struct{}, 1)
		go writeTextfiles(l.metrics.kick, l.cfg.MetricsTextfile, l.metricsDir(), l.cfg.Prog, l.cfg.Stderr)
		l.metricsChanged()
	}
	return nil
}

// ListenAddr completes a metrics address: a bare port ("9101" or ":9101")
// listens on the loopback interface only; give a host (0.0.0.0:9101,
// [::]:9101) to listen elsewhere.
func ListenAddr(a string) string {
	if !strings.Contains(a, ":") {
		a = ":" + a
	}
	if strings.HasPrefix(a, ":") {
		return "127.0.0.1" + a
	}
	return a
}

// metricsChanged tells the textfile writer that something changed.
func (l *loop) metricsChanged() {
	select {
	case l.metrics.kick <- struct{}{}:
	default: // a write is due already (or no textfile is kept: nil channel)
	}
}

// writeTextfiles rewrites path at each kick. A failure is reported when it
// appears or changes, and once when writing works again.
func writeTextfiles(kick <-chan struct{}, path, dir, prog string, stderr io.Writer) {
	var last string
	for range kick {
		err := metrics.WriteTextfile(path, dir, time.Now())
		msg := ""
		if err != nil {
			msg = err.Error()
		}
		if msg != last {
			if err != nil {
				fmt.Fprintf(stderr, "%s: warning: unable to write the metrics textfile: %v\n", prog, err)
			} else {
				fmt.Fprintf(stderr, "%s: metrics textfile %s written again\n", prog, path)
			}
			last = msg
		}
	}
}

// serveMetrics serves GET /metrics on ln until the process exits.
func serveMetrics(ln net.Listener, dir, prog string, stderr io.Writer) {
	mux := http.NewServeMux()
	mux.HandleFunc("/metrics", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		if err := metrics.RenderDir(&b, dir, time.Now()); err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
		w.Write(b.Bytes())
	})
	srv := &http.Server{Handler: mux, ReadTimeout: metricsReadTimeout, WriteTimeout: metricsReadTimeout,
		MaxHeaderBytes: 8 << 10}
	err := srv.Serve(&limitListener{Listener: ln, sem: make(chan struct{}, metricsConns)})
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintf(stderr, "%s: warning: the metrics server stopped: %v\n", prog, err)
	}
}

// limitListener bounds the connections served at once (and so the
// goroutines of the server): Accept waits for a free slot.
type limitListener struct {
	net.Listener
	sem chan struct{}
}

func (l *limitListener) Accept() (net.Conn, error) {
	l.sem <- struct{}{}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.sem
		return nil, err
	}
	return &limitConn{Conn: c, release: func() { <-l.sem }}, nil
}

type limitConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *limitConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
