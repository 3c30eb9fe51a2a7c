package openrc

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// fakeGetent puts a getent in PATH that knows one NSS-only user
// (gosvnss, 4242) and group (gosvnssg, 4343), the way sssd or LDAP would
// answer, and records its calls in the returned file.
func fakeGetent(t *testing.T) (calls string) {
	t.Helper()
	dir := t.TempDir()
	calls = filepath.Join(dir, "calls")
	script := `#!/bin/sh
echo "$*" >>` + calls + `
case "$1 $2" in
"passwd gosvnss" | "passwd 4242") echo "gosvnss:*:4242:4343:NSS user:/home/gosvnss:/bin/sh" ;;
"group gosvnssg" | "group 4343") echo "gosvnssg:*:4343:" ;;
"initgroups gosvnss") echo "gosvnss               4444 4343 4545" ;;
*) exit 2 ;;
esac
`
	if err := os.WriteFile(filepath.Join(dir, "getent"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	return calls
}

func getentCalls(t *testing.T, calls string) []string {
	t.Helper()
	data, err := os.ReadFile(calls)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(data)), "\n")
}

// TestLookupUserFromNSS: a command_user the files do not know is found
// through getent, with its groups from NSS too (a static build's os/user
// alone reads only /etc/passwd and /etc/group).
func TestLookupUserFromNSS(t *testing.T) {
	fakeGetent(t)
	for _, key := range []string{"gosvnss", "4242"} {
		a, err := lookupUser(key)
		if err != nil {
			t.Fatalf("lookupUser(%q): %v", key, err)
		}
		if a.Username != "gosvnss" || a.Uid != "4242" || a.Gid != "4343" || a.HomeDir != "/home/gosvnss" || !a.nss {
			t.Errorf("lookupUser(%q) = %+v, nss %v", key, *a.User, a.nss)
		}
		ids, err := groupIDs(a)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{4343, 4444, 4545}; !slices.Equal(ids, want) {
			t.Errorf("groupIDs = %v, want %v", ids, want)
		}
	}
	for _, key := range []string{"gosvnssg", "4343"} {
		g, err := lookupGroup(key)
		if err != nil || g.Name != "gosvnssg" || g.Gid != "4343" {
			t.Errorf("lookupGroup(%q) = %+v, %v", key, g, err)
		}
	}
	if err := checkUser(&Spec{User: "gosvnss", Group: "gosvnssg"}); err != nil {
		t.Errorf("checkUser: %v", err)
	}
	ec := &ExecConfig{User: "gosvnss"}
	c, err := ec.credentials()
	if err != nil || c.uid != 4242 || c.gid != 4343 || c.name != "gosvnss" || !slices.Equal(c.groups, []int{4343, 4444, 4545}) {
		t.Errorf("credentials = %+v, %v", c, err)
	}
}

// TestLookupUserUnknown: a name neither the files nor NSS know keeps
// os/user's error, and a key getent would read as an option is not asked.
func TestLookupUserUnknown(t *testing.T) {
	calls := fakeGetent(t)
	if _, err := lookupUser("gosvnobody"); err == nil || !strings.Contains(err.Error(), "gosvnobody") {
		t.Errorf("lookupUser(gosvnobody) error = %v", err)
	}
	if _, err := lookupGroup("gosvnogroup"); err == nil {
		t.Error("lookupGroup(gosvnogroup) found a group")
	}
	if err := checkUser(&Spec{User: "gosvnobody"}); err == nil || !strings.Contains(err.Error(), `unknown user "gosvnobody"`) {
		t.Errorf("checkUser error = %v", err)
	}
	if _, err := lookupUser("-s"); err == nil {
		t.Error(`lookupUser("-s") found a user`)
	}
	for _, c := range getentCalls(t, calls) {
		if strings.Contains(c, "-s") {
			t.Errorf("getent was run with %q", c)
		}
	}
}

// TestLookupUserLocalNoGetent: an account in the files costs no getent.
func TestLookupUserLocalNoGetent(t *testing.T) {
	calls := fakeGetent(t)
	a, err := lookupUser("root")
	if err != nil || a.Uid != "0" || a.nss {
		t.Fatalf("lookupUser(root) = %+v, %v", a, err)
	}
	if _, err := lookupGroup("0"); err != nil {
		t.Fatal(err)
	}
	if !groupsFromNSS("/etc/nsswitch.conf") {
		if _, err := groupIDs(a); err != nil {
			t.Fatal(err)
		}
	}
	if c := getentCalls(t, calls); c != nil {
		t.Errorf("getent ran for a local account: %q", c)
	}
}

func TestGroupsFromNSS(t *testing.T) {
	for conf, want := range map[string]bool{
		"":                                  false,
		"group: files\n":                    false,
		"group:          files systemd\n":   false,
		"passwd: files sss\ngroup: files\n": false,
		"group: files sss\n":                true,
		"# group: ldap\ngroup: files\n":     false,
		"group: files [NOTFOUND=return] ldap # x\n": true,
		"group: compat\n": true,
	} {
		p := filepath.Join(t.TempDir(), "nsswitch.conf")
		if err := os.WriteFile(p, []byte(conf), 0o644); err != nil {
			t.Fatal(err)
		}
		if got := groupsFromNSS(p); got != want {
			t.Errorf("groupsFromNSS(%q) = %v, want %v", conf, got, want)
		}
	}
	if groupsFromNSS(filepath.Join(t.TempDir(), "missing")) {
		t.Error("a missing nsswitch.conf means files")
	}
}

// TestGetentReal parses the real getent's answers (glibc's format), for
// an account every system has.
func TestGetentReal(t *testing.T) {
	if _, err := exec.LookPath("getent"); err != nil {
		t.Skip("no getent")
	}
	f, ok := getent("passwd", "root", 7)
	if !ok || f[0] != "root" || f[2] != "0" {
		t.Errorf("getent passwd root = %q, %v", f, ok)
	}
	f, ok = getent("group", "0", 4)
	if !ok || f[2] != "0" {
		t.Errorf("getent group 0 = %q, %v", f, ok)
	}
	f, ok = getentFields("initgroups", "root")
	if !ok || f[0] != "root" {
		t.Errorf("getent initgroups root = %q, %v", f, ok)
	}
	if _, ok := getent("passwd", "gosv-no-such-user", 7); ok {
		t.Error("getent found gosv-no-such-user")
	}
}
