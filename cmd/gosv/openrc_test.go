package main

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/gosv/gosv/openrc"
)

func TestNewOpenRCCmd(t *testing.T) {
	sec := time.Second
	tests := []struct {
		argv []string
		want openrcOptions // Timeout, NoFile, LogDir, Script ignored unless svscan
		err  string
	}{
		{[]string{"start", "--var", "command=/bin/x", "--var", "notify=fd:3", "--", "/bin/x", "-a", "--b"},
			openrcOptions{Sub: "start", Vars: []string{"command=/bin/x", "notify=fd:3"}, Args: []string{"/bin/x", "-a", "--b"}}, ""},
		{[]string{"start"}, openrcOptions{Sub: "start", Args: []string{}}, ""},
		{[]string{"stop", "--var", "timeout_down=5s"}, openrcOptions{Sub: "stop", Vars: []string{"timeout_down=5s"}, Args: []string{}}, ""},
		{[]string{"stop", "extra"}, openrcOptions{}, "usage: unknown command \"extra\" for \"openrc stop\""},
		{[]string{"status"}, openrcOptions{Sub: "status", Args: []string{}}, ""},
		{[]string{"reload"}, openrcOptions{Sub: "reload", Args: []string{}}, ""},
		{[]string{"check", "web", "/etc/init.d/db"}, openrcOptions{Sub: "check", Args: []string{"web", "/etc/init.d/db"}}, ""},
		{[]string{"check"}, openrcOptions{}, "usage: requires at least 1 arg(s), only received 0"},
		{[]string{"ls"}, openrcOptions{Sub: "ls", Args: []string{}}, ""},
		// The resolver child of check and ls (openrc.Resolve), hidden.
		{[]string{"resolve"}, openrcOptions{Sub: "resolve", Args: []string{}}, ""},
		// What the kernel runs for a generated run and finish (#!gosv openrc).
		{[]string{"./run", "web"}, openrcOptions{Sub: "exec", Args: []string{"web"}}, ""},
		{[]string{"./finish", "-1", "0", "web"}, openrcOptions{Sub: "finish", Args: []string{"-1", "0", "web"}}, ""},
		{[]string{"./finish", "256", "9", "web"}, openrcOptions{Sub: "finish", Args: []string{"256", "9", "web"}}, ""},
		{[]string{"finish", "-1", "0", "web"}, openrcOptions{Sub: "finish", Args: []string{"-1", "0", "web"}}, ""},
		{[]string{"bogus"}, openrcOptions{}, "usage: unknown command \"bogus\""},
		{[]string{}, openrcOptions{}, "usage"},
		{[]string{"svscan", "--notify-fd", "3"}, openrcOptions{Sub: "svscan", Notify: 3, Args: []string{},
			LogDir: openrc.DefaultCatchAllDir, Script: openrc.DefaultCatchAllScript, NoFile: openrc.DefaultNoFile, Timeout: 10 * sec, Backend: "gosv"}, ""},
		{[]string{"svscan", "--wait", "--timeout", "3s"}, openrcOptions{Sub: "svscan", Wait: true, Args: []string{},
			LogDir: openrc.DefaultCatchAllDir, Script: openrc.DefaultCatchAllScript, NoFile: openrc.DefaultNoFile, Timeout: 3 * sec, Backend: "gosv"}, ""},
		{[]string{"svscan", "--stop-leftovers"}, openrcOptions{Sub: "svscan", Cleanup: true, Args: []string{},
			LogDir: openrc.DefaultCatchAllDir, Script: openrc.DefaultCatchAllScript, NoFile: openrc.DefaultNoFile, Timeout: 10 * sec, Backend: "gosv"}, ""},
		{[]string{"svscan", "--wait", "--backend", "s6"}, openrcOptions{Sub: "svscan", Wait: true, Args: []string{},
			LogDir: openrc.DefaultCatchAllDir, Script: openrc.DefaultCatchAllScript, NoFile: openrc.DefaultNoFile, Timeout: 10 * sec, Backend: "s6"}, ""},
	}
	for _, tt := range tests {
		e, _, _ := testEnv()
		var got *openrcOptions
		err := execCmd(newOpenRCCmd(e, func(o *openrcOptions) error { got = o; return nil }), tt.argv)
		if msg := usageMsg(err); msg != tt.err {
			t.Errorf("%q: error %q, want %q", tt.argv, msg, tt.err)
			continue
		}
		if tt.err != "" {
			continue
		}
		if got == nil {
			t.Errorf("%q: runF not called", tt.argv)
			continue
		}
		if got.Sub != "svscan" {
			got.Timeout = 0
		}
		if !reflect.DeepEqual(*got, tt.want) {
			t.Errorf("%q:\n got %+v\nwant %+v", tt.argv, *got, tt.want)
		}
	}
}

// TestOpenRCSvscanExclusive: --wait, --stop-leftovers and --reexec are
// different jobs (start_post, stop_post, reexec): two at once is a usage
// error.
func TestOpenRCSvscanExclusive(t *testing.T) {
	for _, o := range []*openrcOptions{
		{Sub: "svscan", Wait: true, Cleanup: true, Timeout: time.Second},
		{Sub: "svscan", Wait: true, Reexec: true, Timeout: time.Second},
		{Sub: "svscan", Cleanup: true, Reexec: true, Timeout: time.Second},
	} {
		e, _, _ := testEnv()
		dir := t.TempDir()
		e.Getenv = func(k string) string { return map[string]string{"RC_SVCDIR": dir, "RC_LIBEXECDIR": dir}[k] }
		err := runOpenRC(context.Background(), e, o)
		if msg := usageMsg(err); msg != "usage: --wait, --stop-leftovers and --reexec exclude each other" {
			t.Errorf("%+v: error %q (%v)", *o, msg, err)
		}
	}
}
