package openrc

import (
	"github.com/gosv/gosv/internal/servicedir"
)

// Group-permitted control (docs/openrc.md): gosv_control_group=GROUP, for
// one service in its conf.d or for every gosv service in
// conf.d/gosv-svscan, becomes the generated directory's control-group
// file; the scanner then gives GROUP the service's control FIFO, status
// and event directory (PROTOCOL.md §9.7), so that its members can run
// gosv svc, svstat and svwait on it without root.

// controlGroup reads gosv_control_group. An unknown group is an error: a
// start would otherwise succeed while the group got nothing.
func (b *specBuilder) controlGroup(sp *Spec) {
	g, ok := b.get("gosv_control_group")
	if !ok || g == "" {
		return
	}
	if !sp.Declarative {
		// A hand-written directory takes its own control-group file: a
		// value from the gosv-wide defaults does not concern it.
		if p := b.s.Vars["gosv_control_group"].Pos; p.File != b.s.Layout.DefaultsFile() {
			b.add("gosv_control_group", Warning, "gosv_control_group applies to services built from command; a hand-written directory (%s) takes a %s file instead",
				sp.ServiceDir, servicedir.ControlGroupFile)
		}
		return
	}
	if _, err := servicedir.ParseGroup("gosv_control_group", g); err != nil {
		b.add("gosv_control_group", Error, "%v", err)
		return
	}
	sp.ControlGroup = g
}

// groupFiles adds the control-group file to a generated directory.
func groupFiles(sp *Spec, f map[string]string) {
	if sp.ControlGroup != "" {
		f[servicedir.ControlGroupFile] = sp.ControlGroup + "\n"
	}
}
