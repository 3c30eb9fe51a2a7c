package openrc

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestUserLayout(t *testing.T) {
	home := t.TempDir()
	env := func(kv ...string) func(string) string {
		m := map[string]string{}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return func(k string) string { return m[k] }
	}
	l := DefaultLayout(env("RC_USER_SERVICES", "yes", "HOME", home, "XDG_RUNTIME_DIR", "/run/user/1000"))
	conf := filepath.Join(home, ".config", "rc")
	if l.UserConf != conf || l.SvcDir != "/run/user/1000/openrc" || l.ConfD != conf+"/conf.d" ||
		!slices.Equal(l.InitDirs, []string{conf + "/init.d", "/usr/local/etc/user/init.d", "/etc/user/init.d"}) {
		t.Errorf("user layout: %+v", l)
	}
	if l.DefaultsFile() != conf+"/conf.d/gosv-svscan" {
		t.Errorf("defaults file %q", l.DefaultsFile())
	}
	// RC_SVCDIR (openrc-run's) and XDG_CONFIG_HOME win.
	l = DefaultLayout(env("RC_USER_SERVICES", "YES", "XDG_CONFIG_HOME", "/x", "HOME", home, "RC_SVCDIR", "/r"))
	if l.UserConf != "/x/rc" || l.SvcDir != "/r" {
		t.Errorf("with XDG_CONFIG_HOME and RC_SVCDIR: %+v", l)
	}
	// The system layout: no RC_USER_SERVICES (this test runs as root or
	// with RC_SVCDIR set, so the non-root rule does not apply).
	l = DefaultLayout(env("RC_SVCDIR", "/run/openrc", "XDG_RUNTIME_DIR", "/run/user/1000", "HOME", home))
	if l.UserConf != "" || l.SvcDir != "/run/openrc" || l.InitDirs[0] != "/etc/init.d" {
		t.Errorf("system layout: %+v", l)
	}
}

// TestUserSources: openrc-run.sh's order in user mode: the system's
// rc.conf files, the user's, the script's conf.d, and for a script from
// /etc/user/init.d the user's conf.d last.
func TestUserSources(t *testing.T) {
	root := t.TempDir()
	conf := filepath.Join(root, "home", ".config", "rc")
	sys := filepath.Join(root, "etc", "user")
	files := []string{conf + "/rc.conf", conf + "/rc.conf.d/b.conf", conf + "/rc.conf.d/a.conf",
		conf + "/conf.d/svc", sys + "/conf.d/svc", sys + "/init.d/svc", conf + "/init.d/own", conf + "/conf.d/own"}
	for _, f := range files {
		if err := os.MkdirAll(filepath.Dir(f), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	l := Layout{RCConf: root + "/none", RCConfD: root + "/none.d", UserConf: conf}
	want := []string{conf + "/rc.conf", conf + "/rc.conf.d/a.conf", conf + "/rc.conf.d/b.conf",
		sys + "/conf.d/svc", conf + "/conf.d/svc", sys + "/init.d/svc"}
	if got := l.Sources(sys + "/init.d/svc"); !slices.Equal(got, want) {
		t.Errorf("Sources(/etc/user/init.d/svc):\n got %q\nwant %q", got, want)
	}
	want = []string{conf + "/rc.conf", conf + "/rc.conf.d/a.conf", conf + "/rc.conf.d/b.conf",
		conf + "/conf.d/own", conf + "/init.d/own"}
	if got := l.Sources(conf + "/init.d/own"); !slices.Equal(got, want) {
		t.Errorf("Sources(~/.config/rc/init.d/own):\n got %q\nwant %q", got, want)
	}
}
