package openrc

import (
	"errors"
	"testing"
)

// TestCommandRequest: the hook's environment and --var values.
func TestCommandRequest(t *testing.T) {
	vals := map[string]string{"RC_SVCNAME": "web", "RC_SERVICE": "/etc/init.d/web"}
	c := &Command{Sub: "start", Gosv: "/usr/bin/gosv", Getenv: func(k string) string { return vals[k] },
		Vars: []string{"command=/bin/x", "command_args=a=b c"}, Args: []string{"/bin/x", "a=b", "c"}}
	req, err := c.request(Layout{})
	if err != nil {
		t.Fatal(err)
	}
	if req.Name != "web" || req.Script != "/etc/init.d/web" || req.Vars["command_args"] != "a=b c" || len(req.Argv) != 3 {
		t.Errorf("request %+v", req)
	}
	var ue *UsageError
	c = &Command{Sub: "stop", Getenv: c.Getenv, Vars: []string{"novalue"}}
	if _, err := c.request(Layout{}); !errors.As(err, &ue) || err.Error() != `--var "novalue": want NAME=VALUE` {
		t.Errorf("bad --var: %v", err)
	}
	c = &Command{Sub: "status", Getenv: func(string) string { return "" }}
	if _, err := c.request(Layout{}); !errors.As(err, &ue) {
		t.Errorf("accepted outside openrc-run: %v", err)
	}
}
