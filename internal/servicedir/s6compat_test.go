package servicedir

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// requireS6 returns the path of the real s6 tool name, skipping the test
// when s6 is not installed unless REQUIRE_S6=1 (then it fails).
func requireS6(t *testing.T, name string) string {
	t.Helper()
	p := filepath.Join("/usr/bin", name)
	if _, err := exec.LookPath(p); err != nil {
		if os.Getenv("REQUIRE_S6") == "1" {
			t.Fatalf("REQUIRE_S6=1 but %s is missing: %v", p, err)
		}
		t.Skipf("%s not installed: %v", p, err)
	}
	return p
}
