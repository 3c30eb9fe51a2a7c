// Package registry is the one place that knows the concrete supervision
// backends and makes one by name (gosv_backend), so that their user,
// package openrc, depends only on the [backends.Backend] interface: gosv
// (gosv's own tree, the default), s6 (a real s6-svscan tree) and runit
// (a real runsvdir tree).
package registry

import (
	"fmt"
	"strings"

	"github.com/gosv/gosv/backends"
	"github.com/gosv/gosv/backends/gosv"
	"github.com/gosv/gosv/backends/runit"
	"github.com/gosv/gosv/backends/s6"
)

// Default is the backend of a service that names none: gosv's own tree.
const Default = "gosv"

// entries are the backends, the default first: each one's name and its
// constructor for the scanner of a scan directory.
var entries = []struct {
	name string
	new  func(scanDir string) backends.Backend
}{
	{"gosv", func(scanDir string) backends.Backend { return gosv.New(scanDir) }},
	{"s6", func(scanDir string) backends.Backend { return s6.New(scanDir) }},
	{"runit", func(scanDir string) backends.Backend { return runit.New(scanDir) }},
}

// LogDir is where the backend called name sends the output of a service
// without a logger of its own, when that is a log directory of the
// service's own (runit: an svlogd directory), or "".
func LogDir(name, scanDir, service string) string {
	if name == "runit" {
		return runit.DefaultLogDir(scanDir, service)
	}
	return ""
}

// Names returns the names of the backends, the default first.
func Names() []string {
	out := make([]string, len(entries))
	for i, e := range entries {
		out[i] = e.name
	}
	return out
}

// NewDefault returns the default backend, driving the scanner of scanDir.
func NewDefault(scanDir string) backends.Backend { return entries[0].new(scanDir) }

// New returns the backend called name, driving the scanner of scanDir.
func New(name, scanDir string) (backends.Backend, error) {
	for _, e := range entries {
		if e.name == name {
			return e.new(scanDir), nil
		}
	}
	return nil, fmt.Errorf("unknown backend %q (known: %s)", name, strings.Join(Names(), ", "))
}
