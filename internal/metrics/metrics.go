// Package metrics renders the state of supervised services in the
// Prometheus text exposition format (version 0.0.4), from the files the
// supervisor keeps: supervise/status, supervise/death_tally and
// supervise/gosv/policy and health. It reads files only, so `gosv
// metrics`, the scanner's textfile writer and its /metrics server share
// no state with the supervising loop.
package metrics

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// Service is one supervised directory and the name it is labelled with.
type Service struct {
	Name string
	Dir  string
}

// Services lists the services of a scan directory: every entry that does
// not start with a dot and has a supervise/status, and its logger
// (NAME/log) when that has one too, sorted by name. A service directory
// (one run by gosv supervise) is itself the one service, named by its base
// name.
func Services(dir string) ([]Service, error) {
	if hasStatus(dir) {
		abs, _ := filepath.Abs(dir)
		return []Service{{Name: filepath.Base(abs), Dir: dir}}, nil
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []Service
	for _, e := range ents {
		n := e.Name()
		if strings.HasPrefix(n, ".") {
			continue
		}
		d := filepath.Join(dir, n)
		if hasStatus(d) {
			out = append(out, Service{Name: n, Dir: d})
		}
		if ld := filepath.Join(d, servicedir.LogDir); hasStatus(ld) {
			out = append(out, Service{Name: n + "/" + servicedir.LogDir, Dir: ld})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func hasStatus(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, servicedir.StatusPath))
	return err == nil
}

// sample is one service's values.
type sample struct {
	name                       string
	up, ready, wantUp, healthy bool
	restarts                   int
	exitCode, exitSignal       int
	uptime, backoff            float64
	gaveUp                     bool
	healthFails                int
}

// read collects s's values at now; a service whose status cannot be read
// is left out (it is being created, or was removed).
func read(s Service, now time.Time) (sample, bool) {
	st, err := servicedir.ReadStatus(s.Dir)
	if err != nil {
		return sample{}, false
	}
	x := sample{name: s.Name, up: st.Up(), ready: st.Up() && st.Ready, wantUp: st.WantUp}
	if x.up {
		x.uptime = max(0, now.Sub(st.Stamp).Seconds())
	}
	ws := unix.WaitStatus(st.Wstat)
	if ws.Signaled() {
		x.exitSignal = int(ws.Signal())
	} else {
		x.exitCode = ws.ExitStatus()
	}
	// The count of records is all that is needed: the size says it,
	// without reading up to 4096 records per service and scrape.
	if fi, err := os.Stat(filepath.Join(s.Dir, servicedir.DeathTallyPath)); err == nil {
		x.restarts = int(fi.Size() / servicedir.DeathTallySize)
	}
	x.healthy = x.up
	if h, ok, _ := servicedir.ReadHealthState(s.Dir); ok {
		if !x.up || h.OfRun(st.Stamp) {
			// Not the last run's result: svstat says why it was restarted.
			x.healthFails = h.Fails
			x.healthy = x.healthy && h.Health != servicedir.HealthUnhealthy
		}
	}
	if p, ok, _ := servicedir.ReadPolicyState(s.Dir); ok {
		if !p.Until.IsZero() && p.Until.After(now) {
			x.backoff = p.Until.Sub(now).Seconds()
		}
		x.gaveUp = p.GaveUp
	}
	return x, true
}

// family is one metric: its name, help, type and how to get its value.
type family struct {
	name, help, typ string
	value           func(*sample) float64
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

var families = []family{
	{"gosv_service_up", "Whether the service's process runs (1) or not (0).", "gauge", func(x *sample) float64 { return b2f(x.up) }},
	{"gosv_service_ready", "Whether the service is up and has signalled readiness.", "gauge", func(x *sample) float64 { return b2f(x.ready) }},
	{"gosv_service_want_up", "Whether the supervisor keeps the service up (1) or down (0).", "gauge", func(x *sample) float64 { return b2f(x.wantUp) }},
	{"gosv_service_healthy", "Whether the service is up and not unhealthy by its health check.", "gauge", func(x *sample) float64 { return b2f(x.healthy) }},
	{"gosv_service_health_failures", "Consecutive failed health checks.", "gauge", func(x *sample) float64 { return float64(x.healthFails) }},
	{"gosv_service_restarts_total", "Deaths of the service's process since its supervisor took it (the records of supervise/death_tally, at most max-death-tally).", "counter", func(x *sample) float64 { return float64(x.restarts) }},
	{"gosv_service_last_exit_code", "Exit code of the last death of the process (0 if it was killed by a signal, or never died).", "gauge", func(x *sample) float64 { return float64(x.exitCode) }},
	{"gosv_service_last_exit_signal", "Signal number that killed the process at its last death (0 if it exited).", "gauge", func(x *sample) float64 { return float64(x.exitSignal) }},
	{"gosv_service_uptime_seconds", "Seconds since the process was started (0 when down).", "gauge", func(x *sample) float64 { return x.uptime }},
	{"gosv_service_backoff_seconds", "Seconds left before the restart policy respawns the service (0 when none is pending).", "gauge", func(x *sample) float64 { return x.backoff }},
	{"gosv_service_given_up", "Whether the restart policy stopped respawning the service.", "gauge", func(x *sample) float64 { return b2f(x.gaveUp) }},
}

// Render writes the metrics of svcs at now.
func Render(w io.Writer, svcs []Service, now time.Time) error {
	xs := make([]sample, 0, len(svcs))
	for _, s := range svcs {
		if x, ok := read(s, now); ok {
			x.name = labelEscaper.Replace(x.name)
			xs = append(xs, x)
		}
	}
	bw := bufio.NewWriter(w)
	for _, f := range families {
		fmt.Fprintf(bw, "# HELP %s %s\n# TYPE %s %s\n", f.name, f.help, f.name, f.typ)
		for i := range xs {
			fmt.Fprintf(bw, "%s{name=\"%s\"} %s\n", f.name, xs[i].name, strconv.FormatFloat(f.value(&xs[i]), 'f', -1, 64))
		}
	}
	return bw.Flush()
}

// RenderDir renders the services of dir (a scan directory or one service
// directory).
func RenderDir(w io.Writer, dir string, now time.Time) error {
	svcs, err := Services(dir)
	if err != nil {
		return err
	}
	return Render(w, svcs, now)
}

// labelEscaper quotes a label value: backslash, double quote and newline
// (the exposition format's only escapes).
var labelEscaper = strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)

// WriteTextfile renders dir's metrics into path atomically (path.tmp, then
// rename), as node_exporter's textfile collector wants. An existing
// symlink at path.tmp is replaced, never followed.
func WriteTextfile(path, dir string, now time.Time) error {
	tmp := path + ".tmp"
	if err := os.Remove(tmp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o644)
	if err != nil {
		return err
	}
	err = RenderDir(f, dir, now)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}
