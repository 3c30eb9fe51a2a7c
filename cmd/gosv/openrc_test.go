package main

import (
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
		// What the kernel runs for a generated run and finish (#!gosv openrc).
		{[]string{"./run", "web"}, openrcOptions{Sub: "exec", Args: []string{"web"}}, ""},
		{[]string{"./finish", "-1", "0", "web"}, openrcOptions{Sub: "finish", Args: []string{"-1", "0", "web"}}, ""},
		{[]string{"./finish", "256", "9", "web"}, openrcOptions{Sub: "finish", Args: []string{"256", "9", "web"}}, ""},
		{[]string{"finish", "-1", "0", "web"}, openrcOptions{Sub: "finish", Args: []string{"-1", "0", "web"}}, ""},
		{[]string{"bogus"}, openrcOptions{}, "usage: unknown command \"bogus\""},
		{[]string{}, openrcOptions{}, "usage"},
		{[]string{"svscan", "--notify-fd", "3"}, openrcOptions{Sub: "svscan", Notify: 3, Args: []string{},
			LogDir: openrc.DefaultCatchAllDir, Script: openrc.DefaultCatchAllScript, NoFile: openrc.DefaultNoFile, Timeout: 10 * sec}, ""},
		{[]string{"svscan", "--wait", "--timeout", "3s"}, openrcOptions{Sub: "svscan", Wait: true, Args: []string{},
			LogDir: openrc.DefaultCatchAllDir, Script: openrc.DefaultCatchAllScript, NoFile: openrc.DefaultNoFile, Timeout: 3 * sec}, ""},
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

// TestOpenRCRequest: the hook's environment and --var values.
func TestOpenRCRequest(t *testing.T) {
	e, _, _ := testEnv()
	vals := map[string]string{"RC_SVCNAME": "web", "RC_SERVICE": "/etc/init.d/web"}
	e.Getenv = func(k string) string { return vals[k] }
	req, err := openrcRequest(e, openrc.Layout{}, "/usr/bin/gosv", &openrcOptions{Sub: "start",
		Vars: []string{"command=/bin/x", "command_args=a=b c"}, Args: []string{"/bin/x", "a=b", "c"}})
	if err != nil {
		t.Fatal(err)
	}
	if req.Name != "web" || req.Script != "/etc/init.d/web" || req.Vars["command_args"] != "a=b c" || len(req.Argv) != 3 {
		t.Errorf("request %+v", req)
	}
	if _, err := openrcRequest(e, openrc.Layout{}, "", &openrcOptions{Sub: "stop", Vars: []string{"novalue"}}); usageMsg(err) != `usage: --var "novalue": want NAME=VALUE` {
		t.Errorf("bad --var: %v", err)
	}
	e.Getenv = func(string) string { return "" }
	if _, err := openrcRequest(e, openrc.Layout{}, "", &openrcOptions{Sub: "status"}); usageMsg(err) == "" {
		t.Error("accepted outside openrc-run")
	}
}
