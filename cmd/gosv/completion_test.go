package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// completionScript writes `gosv completion SHELL` (what make install
// installs) into a temporary file.
func completionScript(t *testing.T, shell string) string {
	t.Helper()
	out, err := exec.Command(gosvBin, "completion", shell).Output()
	if err != nil {
		t.Fatalf("gosv completion %s: %v", shell, err)
	}
	path := filepath.Join(t.TempDir(), "gosv."+shell)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// needShell skips when the shell (or file) is missing, except under CI,
// where make test-deps installs it.
func needShell(t *testing.T, path string) {
	t.Helper()
	if _, err := os.Stat(path); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s missing (make test-deps installs it): %v", path, err)
		}
		t.Skipf("%s missing", path)
	}
}

// completionEnv puts the gosv under test first on PATH: the scripts run
// `gosv __complete` to ask the command tree.
func completionEnv() []string {
	return append(os.Environ(), "PATH="+filepath.Dir(gosvBin)+":/usr/bin:/bin")
}

// TestBashCompletion loads the bash completion as bash-completion does and
// completes `gosv sv`.
func TestBashCompletion(t *testing.T) {
	needShell(t, "/bin/bash")
	needShell(t, "/usr/share/bash-completion/bash_completion")
	script := completionScript(t, "bash")
	cmd := exec.Command("/bin/bash", "--norc", "--noprofile", "-c", `
. /usr/share/bash-completion/bash_completion
. "$1"
COMP_WORDS=(gosv sv) COMP_CWORD=1 COMP_LINE="gosv sv" COMP_POINT=7
__start_gosv gosv sv gosv
printf '%s\n' "${COMPREPLY[@]}"`, "bash", script)
	cmd.Env = completionEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bash: %v", err)
	}
	if got, want := strings.Fields(string(out)), []string{"svc", "svok", "svscan", "svscanctl", "svstat", "svwait"}; strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("gosv sv<TAB> = %q, want %q", got, want)
	}
}

// TestFishCompletion completes `gosv sv` with fish's own completer.
func TestFishCompletion(t *testing.T) {
	needShell(t, "/usr/bin/fish")
	script := completionScript(t, "fish")
	cmd := exec.Command("/usr/bin/fish", "--no-config", "-c", `source $argv[1]; complete -C "gosv sv"`, script)
	cmd.Env = completionEnv()
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("fish: %v", err)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, desc, _ := strings.Cut(l, "\t")
		got = append(got, name)
		if name == "svc" && desc != "Control a supervised service (s6-svc)" {
			t.Errorf("svc's description = %q", desc)
		}
	}
	if want := "svc svok svscan svscanctl svstat svwait"; strings.Join(got, " ") != want {
		t.Errorf("gosv sv<TAB> = %q, want %s", got, want)
	}
}

// TestZshCompletion loads the zsh completion after compinit: the function
// _gosv must be defined, with nothing on stderr.
func TestZshCompletion(t *testing.T) {
	needShell(t, "/usr/bin/zsh")
	script := completionScript(t, "zsh")
	cmd := exec.Command("/usr/bin/zsh", "-f", "-c", `autoload -Uz compinit && compinit -u -D && source $1 && print ${+functions[_gosv]}`, "zsh", script)
	cmd.Env = completionEnv()
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil || strings.TrimSpace(string(out)) != "1" || stderr.Len() > 0 {
		t.Errorf("zsh: %v, out %q, stderr %q", err, out, stderr.String())
	}
}
