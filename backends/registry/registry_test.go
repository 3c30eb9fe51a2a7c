package registry

import (
	"strings"
	"testing"

	"github.com/gosv/gosv/backends/gosv"
	"github.com/gosv/gosv/backends/runit"
	"github.com/gosv/gosv/backends/s6"
)

func TestNew(t *testing.T) {
	if n := Names(); len(n) == 0 || n[0] != Default {
		t.Fatalf("Names() = %q, want the default %q first", n, Default)
	}
	if g, ok := NewDefault("/scan").(*gosv.Backend); !ok || g.ScanDir != "/scan" {
		t.Errorf("NewDefault = %#v", g)
	}
	b, err := New(Default, "/run/x/gosv-scan")
	if g, ok := b.(*gosv.Backend); err != nil || !ok || g.ScanDir != "/run/x/gosv-scan" {
		t.Errorf("New(%q) = %#v, %v", Default, b, err)
	}
	if b, err := New("s6", "/run/openrc/s6-scan"); err != nil || b.(*s6.Backend).ScanDir != "/run/openrc/s6-scan" {
		t.Errorf(`New("s6") = %#v, %v`, b, err)
	}
	if b, err := New("runit", "/run/openrc/sv"); err != nil || b.(*runit.Backend).ScanDir != "/run/openrc/sv" {
		t.Errorf(`New("runit") = %#v, %v`, b, err)
	}
	if d := LogDir("runit", "/run/openrc/sv", "web"); d != "/run/openrc/runit-logs/web" {
		t.Errorf("LogDir(runit) = %q", d)
	}
	if d := LogDir("s6", "/run/openrc/s6-scan", "web"); d != "" {
		t.Errorf("LogDir(s6) = %q", d)
	}
	for _, name := range []string{"", "s6x", "GOSV"} {
		if b, err := New(name, "/scan"); err == nil || b != nil || !strings.Contains(err.Error(), `known: gosv, s6, runit`) {
			t.Errorf("New(%q) = %v, %v; want an error naming the known backends", name, b, err)
		}
	}
}
