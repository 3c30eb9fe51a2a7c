package openrc

import (
	"strconv"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// Event hooks (docs/events-metrics.md): gosv_on_event=COMMAND, for one
// service in its conf.d or for every gosv service in conf.d/gosv-svscan,
// becomes the generated directory's on-event file, run by the scanner as
// `on-event EVENT NAME` with the event in GOSV_* variables; COMMAND is run
// by /bin/sh -c with those two as $1 and $2. gosv_on_event_timeout (a bare
// number is seconds) becomes timeout-on-event.

// events reads the hook variables.
func (b *specBuilder) events(sp *Spec) {
	cmd, ok := b.get("gosv_on_event")
	if !ok || cmd == "" {
		return
	}
	if !sp.Declarative {
		// A hand-written directory has its own on-event file: a value
		// from the gosv-wide defaults does not concern it.
		if p := b.s.Vars["gosv_on_event"].Pos; p.File != b.s.Layout.DefaultsFile() {
			b.add("gosv_on_event", Warning, "gosv_on_event applies to services built from command; a hand-written directory (%s) takes an executable %s file instead",
				sp.ServiceDir, servicedir.OnEventFile)
		}
		return
	}
	sp.OnEvent = cmd
	sp.OnEventTimeout = b.duration("gosv_on_event_timeout", time.Second, 0)
}

// eventFiles adds the hook's files to a generated directory.
func eventFiles(sp *Spec, f map[string]string, head string) {
	if sp.OnEvent == "" {
		return
	}
	f[servicedir.OnEventFile] = head + "exec /bin/sh -c " + shQuote(sp.OnEvent) + " " + servicedir.OnEventFile + " \"$@\"\n"
	if sp.OnEventTimeout > 0 {
		f[servicedir.TimeoutOnEventFile] = strconv.FormatInt(sp.OnEventTimeout.Milliseconds(), 10) + "\n"
	}
}
