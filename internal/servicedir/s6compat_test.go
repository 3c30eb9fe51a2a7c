package servicedir

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireS6 returns the path of the real s6 tool name, skipping the test
// when s6 is not installed unless REQUIRE_S6=1 (then it fails).
func requireS6(t *testing.T, name string) string {
	t.Helper()
	p := optionalS6(t, name)
	if p == "" {
		t.Skipf("/usr/bin/%s not installed", name)
	}
	return p
}

// optionalS6 is requireS6 for tests that only add a cross-check when s6
// is there: "" when it is missing (a failure under REQUIRE_S6=1).
func optionalS6(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("/usr/bin", name)
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv("REQUIRE_S6") == "1" {
			t.Fatalf("REQUIRE_S6=1 but %s is missing: %v", p, err)
		}
		return ""
	}
	return p
}

// exitCode runs cmd and returns its exit status (fatal if it cannot run).
func exitCode(t *testing.T, cmd *exec.Cmd) int {
	t.Helper()
	err := cmd.Run()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	return 0
}
