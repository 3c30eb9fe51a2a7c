package openrc

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/backends/gosv"
	"github.com/gosv/gosv/backends/runit"
	"github.com/gosv/gosv/backends/s6"
)

// TestBackendSelection: gosv_backend picks the backend and its scan
// directory, per service or from conf.d/gosv-svscan (the service's own
// value wins); an unknown name is one error naming the known ones.
func TestBackendSelection(t *testing.T) {
	confd := t.TempDir()
	os.WriteFile(filepath.Join(confd, SvscanName), []byte("gosv_backend=s6\n"), 0o644)
	withDefault := Layout{LibexecDir: "/lib/rc", ConfD: confd, SvcDir: "/run/openrc"}
	plain := Layout{LibexecDir: "/lib/rc", ConfD: t.TempDir(), SvcDir: "/run/openrc"}
	for _, c := range []struct {
		l       Layout
		backend string // the service's own gosv_backend, "" = unset
		want    string // the scan directory, "" = an error
	}{
		{plain, "", "/run/openrc/gosv-scan"},
		{plain, "gosv", "/run/openrc/gosv-scan"},
		{plain, "s6", "/run/openrc/s6-scan"},
		{plain, "runit", "/run/openrc/sv"},
		{withDefault, "", "/run/openrc/s6-scan"},
		{withDefault, "gosv", "/run/openrc/gosv-scan"},
		{plain, "runit2", ""},
	} {
		vars := map[string]string{"command": "/bin/x"}
		if c.backend != "" {
			vars["gosv_backend"] = c.backend
		}
		req := &Request{Name: "web", Script: "/etc/init.d/web", Layout: c.l, Vars: vars, Argv: []string{"/bin/x"}}
		sp, probs := LiveService(req).Spec()
		if c.want == "" {
			if len(probs) != 1 || !strings.Contains(probs[0].Msg, `unknown backend "runit2" (known: gosv, s6, runit)`) {
				t.Errorf("%q: problems %v, want one naming the known backends", c.backend, probs)
			}
			continue
		}
		if len(probs) != 0 {
			t.Errorf("%q: problems %v", c.backend, probs)
		}
		var got string
		switch b := req.backend(sp).(type) {
		case *gosv.Backend:
			got = b.ScanDir
		case *s6.Backend:
			got = b.ScanDir
		case *runit.Backend:
			got = b.ScanDir
		}
		if got != c.want {
			t.Errorf("%q (defaults %v): scan directory %q, want %q", c.backend, c.l.ConfD == confd, got, c.want)
		}
	}
}

// TestUserBackend: a user service (rc-service --user) on another backend
// is one error naming gosv_backend, from the service or from the user's
// gosv-svscan defaults; gosv's own tree is fine.
func TestUserBackend(t *testing.T) {
	conf := t.TempDir()
	os.MkdirAll(filepath.Join(conf, "conf.d"), 0o755)
	l := Layout{LibexecDir: "/lib/rc", ConfD: filepath.Join(conf, "conf.d"), SvcDir: t.TempDir(), UserConf: conf}
	for _, c := range []struct {
		own, def string
		bad      bool
	}{
		{"", "", false},
		{"gosv", "", false},
		{"s6", "", true},
		{"", "gosv_backend=s6\n", true},
		{"gosv", "gosv_backend=s6\n", false},
	} {
		os.WriteFile(l.DefaultsFile(), []byte(c.def), 0o644)
		vars := map[string]string{"command": "/bin/x"}
		if c.own != "" {
			vars["gosv_backend"] = c.own
		}
		req := &Request{Name: "web", Script: conf + "/init.d/web", Layout: l, Vars: vars, Argv: []string{"/bin/x"}}
		sp, probs := LiveService(req).Spec()
		bad := len(probs) == 1 && strings.Contains(probs[0].Msg, "gosv_backend=s6: user services (rc-service --user) run on gosv's own tree only")
		if bad != c.bad || (!c.bad && (len(probs) != 0 || sp.Backend != "gosv")) {
			t.Errorf("own %q, default %q: problems %v, backend %q", c.own, c.def, probs, sp.Backend)
		}
	}
}

// TestLinkedBackendWins: stop, status and reload reach the backend whose
// scan directory links the service (the one that started it), whatever
// gosv_backend says now; with no link, gosv_backend decides.
func TestLinkedBackendWins(t *testing.T) {
	svcdir := t.TempDir()
	l := Layout{LibexecDir: "/lib/rc", ConfD: t.TempDir(), SvcDir: svcdir}
	req := &Request{Name: "web", Script: "/etc/init.d/web", Layout: l, Vars: map[string]string{"command": "/bin/x"}}
	sp, _ := LiveService(req).Spec()
	req.linkedBackend(sp)
	if sp.Backend != "gosv" {
		t.Errorf("no link: backend %q, want gosv_backend's default gosv", sp.Backend)
	}
	os.MkdirAll(S6ScanDir(svcdir), 0o755)
	if err := os.Symlink("/nowhere", filepath.Join(S6ScanDir(svcdir), "web")); err != nil {
		t.Fatal(err)
	}
	req.linkedBackend(sp)
	if sp.Backend != "s6" {
		t.Errorf("linked in s6-scan: backend %q, want s6", sp.Backend)
	}
}

// TestRespawnExceeded: under s6-supervise, finish gives up when the
// deaths within respawn_period go beyond respawn_max (supervise-daemon's
// rule); respawn_max=0 never gives up.
func TestRespawnExceeded(t *testing.T) {
	now := time.Unix(10000, 0)
	ago := func(s ...int) []time.Time {
		var out []time.Time
		for _, x := range s {
			out = append(out, now.Add(-time.Duration(x)*time.Second))
		}
		return out
	}
	for _, c := range []struct {
		r      Respawn
		deaths []time.Time
		give   bool
	}{
		{Respawn{Max: 2, Period: time.Minute}, ago(3, 2), false},
		{Respawn{Max: 2, Period: time.Minute}, ago(3, 2, 1), true},
		{Respawn{Max: 2, Period: time.Minute}, ago(300, 200, 1), false},
		{Respawn{Max: 2}, ago(300, 200, 1), true},
		{Respawn{Max: 0, Period: time.Minute}, ago(3, 2, 1, 0), false},
	} {
		why, give := c.r.exceeded(c.deaths, now, "s6-supervise")
		if give != c.give || give && !strings.Contains(why, "respawned 3 times") {
			t.Errorf("%+v, %d deaths: %q, %v; want give up %v", c.r, len(c.deaths), why, give, c.give)
		}
	}
}

// TestLintBackend: check reports, as an error, what the service's backend
// cannot honour in its generated directory; the same service on gosv's
// own tree is fine.
func TestLintBackend(t *testing.T) {
	l := Layout{LibexecDir: "/lib/rc", ConfD: t.TempDir(), SvcDir: t.TempDir()}
	for _, backend := range []string{"s6", "runit", "gosv"} {
		req := &Request{Name: "web", Script: "/etc/init.d/web", Layout: l, Argv: []string{"/bin/x"},
			Vars: map[string]string{"supervisor": "gosv", "command": "/bin/x", "gosv_backend": backend, "respawn_delay": "2"}}
		var bad []string
		for _, p := range LiveService(req).Lint() {
			if p.Severity == Error {
				bad = append(bad, p.Msg)
			}
		}
		wantMsg := map[string]string{
			"s6":    "gosv_backend=s6: respawn_delay (respawn-delay): not supported by s6-supervise",
			"runit": "gosv_backend=runit: respawn_delay (runsv waits 1 s) (respawn-delay): not supported by runsv",
		}[backend]
		want := wantMsg != ""
		if got := len(bad) == 1 && strings.Contains(bad[0], wantMsg); got != want || (!want && len(bad) > 0) {
			t.Errorf("gosv_backend=%s: errors %q", backend, bad)
		}
	}
}
