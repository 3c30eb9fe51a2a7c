//go:build integration

package tests

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// Environment variables of the suite (see README.md).
const (
	envScanner      = "GOSV_TEST_SCANNER" // "gosv" (default) or "s6"
	envRequireS6    = "REQUIRE_S6"        // "1": a missing s6 (or root) fails instead of skipping
	envRequireRC    = "REQUIRE_OPENRC"    // "1": a missing OpenRC fails instead of skipping
	envRequireRunit = "REQUIRE_RUNIT"     // "1": a missing runit fails instead of skipping
	scannerGosv     = "gosv"
	scannerS6       = "s6"
	gosvInstallBin  = "/usr/bin/gosv" // where `make install PREFIX=/usr` puts it inside a namespace
)

// suite is set up once by TestMain and read-only afterwards.
var suite struct {
	repoRoot string // the checkout, visible in every namespace
	workDir  string // host temp dir bound into every namespace
	binDir   string // workDir/bin: testinit, svhelper (first in PATH)
	testinit string
	scanner  string // scannerGosv or scannerS6
	goTool   string // absolute path of the go command, for make inside
	// gosvErr says why bin/gosv is unusable (build failed, no svscan
	// subcommand); empty when it is usable. Only computed for scanner=gosv.
	gosvErr string
}

func TestMain(m *testing.M) {
	code, err := setupSuite()
	if err != nil {
		fmt.Fprintf(os.Stderr, "tests: fatal: %v\n", err)
		os.Exit(2)
	}
	if code == 0 {
		code = m.Run()
	}
	os.RemoveAll(suite.workDir)
	os.Exit(code)
}

func setupSuite() (int, error) {
	wd, err := os.Getwd()
	if err != nil {
		return 0, err
	}
	suite.repoRoot = filepath.Dir(wd) // go test runs in the package dir, tests/
	suite.goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	suite.scanner = os.Getenv(envScanner)
	switch suite.scanner {
	case "":
		suite.scanner = scannerGosv
	case scannerGosv, scannerS6:
	default:
		return 0, fmt.Errorf("%s=%q: want %q or %q", envScanner, suite.scanner, scannerGosv, scannerS6)
	}
	suite.workDir, err = os.MkdirTemp("", "gosv-it-")
	if err != nil {
		return 0, err
	}
	suite.binDir = filepath.Join(suite.workDir, "bin")
	suite.testinit = filepath.Join(suite.binDir, "testinit")
	build := exec.Command(suite.goTool, "build", "-o", suite.binDir+"/", "./tests/cmd/...")
	build.Dir = suite.repoRoot
	if out, err := build.CombinedOutput(); err != nil {
		return 0, fmt.Errorf("build test helpers: %v\n%s", err, out)
	}
	if suite.scanner == scannerGosv {
		suite.gosvErr = checkGosv()
	}
	return 0, nil
}

// checkGosv builds bin/gosv with the Makefile and checks that it has an
// svscan subcommand. It returns why gosv cannot be tested, or "".
func checkGosv() string {
	mk := exec.Command("make", "build", "GO="+suite.goTool)
	mk.Dir = suite.repoRoot
	if out, err := mk.CombinedOutput(); err != nil {
		return fmt.Sprintf("`make build` failed (%v):\n%s", err, out)
	}
	if !hasSubcommand(filepath.Join(suite.repoRoot, "bin", "gosv"), "svscan") {
		return "bin/gosv has no `svscan` subcommand yet"
	}
	return ""
}

// hasSubcommand reports whether the gosv binary knows sub: `gosv sub
// --help` must neither say "unknown command" nor fall back to the root's
// help (cobra does either for an unknown subcommand, depending on flags).
// NOTE: --help, so that an existing svscan never starts scanning on the
// host.
func hasSubcommand(gosv, sub string) bool {
	root, _ := exec.Command(gosv, "--help").CombinedOutput()
	out, _ := exec.Command(gosv, sub, "--help").CombinedOutput()
	return !strings.Contains(string(out), "unknown command") && string(out) != string(root)
}

// suiteEnv is the environment of every command run in a namespace: the
// caller's, with the helper binaries first in PATH.
func suiteEnv() []string {
	env := []string{"PATH=" + suite.binDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PATH=") {
			env = append(env, kv)
		}
	}
	return env
}

// requireRoot skips t unless the suite runs as root (namespaces and
// overlay mounts need it); with REQUIRE_S6=1 or REQUIRE_OPENRC=1 it fails.
func requireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv(envRequireS6) == "1" || os.Getenv(envRequireRC) == "1" {
		t.Fatal("integration tests need root (mount and PID namespaces, overlays)")
	}
	t.Skip("integration tests need root (mount and PID namespaces, overlays)")
}

// requireTools skips t when one of the host tools is missing, or fails it
// when the environment variable requireEnv is "1".
func requireTools(t testing.TB, requireEnv string, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv(requireEnv) == "1" {
				t.Fatalf("%s not found and %s=1: %v", tool, requireEnv, err)
			}
			t.Skipf("%s not found (set %s=1 to make this a failure)", tool, requireEnv)
		}
	}
}

// s6Tools are the s6 programs the suite runs.
var s6Tools = []string{"s6-svscan", "s6-supervise", "s6-svok", "s6-svstat", "s6-svc", "s6-svwait",
	"s6-svscanctl", "s6-svlink", "s6-svunlink", "s6-svlisten1", "s6-ftrigrd"}

func requireS6(t testing.TB) {
	t.Helper()
	requireTools(t, envRequireS6, s6Tools...)
}

// requireGosv skips a gosv-only test when the scanner under test is s6,
// and fails it when gosv cannot be tested: gosv is the product under test,
// so its absence is a failure, not a skip.
func requireGosv(t testing.TB) {
	t.Helper()
	if suite.scanner != scannerGosv {
		t.Skipf("gosv-only test (%s=%s)", envScanner, suite.scanner)
	}
	if suite.gosvErr != "" {
		t.Fatalf("gosv is not testable: %s", suite.gosvErr)
	}
}
