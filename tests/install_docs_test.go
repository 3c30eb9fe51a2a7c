//go:build integration

package tests

import (
	"strings"
	"testing"
)

// TestInstallManAndCompletions installs gosv as a package would (make
// install PREFIX=/usr, in a namespace) and uses what it put beside the
// binary the way an admin would: man finds and renders every page, bash
// (through bash-completion's loader, as for a <TAB>), fish and zsh find
// the completions in their standard places and complete `gosv sv`, the
// hook's client gosv-openrc hands what it does not run to gosv; make
// uninstall then removes them all.
func TestInstallManAndCompletions(t *testing.T) {
	requireGosv(t)
	e := &Env{NS: NewNS(t), kind: scannerGosv}
	e.installGosv(t)

	for _, page := range []string{"gosv", "gosv-svc", "gosv-openrc-start", "gosv-servicedir", "gosv-openrc"} {
		r := e.MustRun(t, "man", "-w", page)
		if !strings.HasPrefix(r.Stdout, "/usr/share/man/man") {
			t.Errorf("man -w %s = %q, want a page under /usr/share/man", page, r.Stdout)
		}
		r = e.MustRun(t, "env", "MANWIDTH=80", "MANPAGER=cat", "man", "--warnings", page)
		if r.Stderr != "" || !strings.Contains(r.Stdout, "NAME") {
			t.Errorf("man %s: stderr %q, stdout %d bytes", page, r.Stderr, len(r.Stdout))
		}
	}

	want := "svc svok svscan svscanctl svstat svwait"
	r := e.MustRun(t, "bash", "--norc", "--noprofile", "-c", `
. /usr/share/bash-completion/bash_completion
_completion_loader gosv
COMP_WORDS=(gosv sv) COMP_CWORD=1 COMP_LINE="gosv sv" COMP_POINT=7
__start_gosv gosv sv gosv
printf '%s\n' "${COMPREPLY[@]}"`)
	if got := strings.Join(strings.Fields(r.Stdout), " "); got != want {
		t.Errorf("bash: gosv sv<TAB> = %q, want %q", got, want)
	}
	// Not --no-config, which empties fish_complete_path: a HOME of the
	// test's own keeps the host's user configuration out.
	r = e.MustRun(t, "env", "HOME="+e.Dir, "fish", "-c", `complete -C "gosv sv"`)
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(r.Stdout), "\n") {
		name, _, _ := strings.Cut(l, "\t")
		got = append(got, name)
	}
	if strings.Join(got, " ") != want {
		t.Errorf("fish: gosv sv<TAB> = %q, want %q", got, want)
	}
	// Debian's zsh looks in /usr/share/zsh/vendor-completions, not in
	// upstream's site-functions (ZSHCOMPDIR= moves it): add it to fpath.
	r = e.MustRun(t, "zsh", "-f", "-c", `fpath=(/usr/share/zsh/site-functions $fpath); autoload -Uz compinit && compinit -u -D && print $_comps[gosv]`)
	if strings.TrimSpace(r.Stdout) != "_gosv" || r.Stderr != "" {
		t.Errorf("zsh: compinit did not register _gosv for gosv: %s", r)
	}

	// The hook's lean client beside gosv: what it does not run itself
	// (here --help) is gosv openrc's.
	client := e.Run(t, "/usr/bin/gosv-openrc", "--help")
	full := e.Run(t, "/usr/bin/gosv", "openrc", "--help")
	if client.Code != 0 || client.Stdout != full.Stdout || !strings.Contains(client.Stdout, "EXIT STATUS") {
		t.Errorf("gosv-openrc --help is not gosv openrc --help:\n%s\nwant:\n%s", client, full)
	}

	e.MustRun(t, "make", "-C", suite.repoRoot, "uninstall", "DESTDIR=", "PREFIX=/usr")
	r = e.Run(t, "sh", "-c", "ls /usr/bin/gosv /usr/bin/gosv-openrc /usr/share/man/man8/gosv* /usr/share/man/man5/gosv* /usr/share/bash-completion/completions/gosv /usr/share/fish/vendor_completions.d/gosv.fish /usr/share/zsh/site-functions/_gosv 2>/dev/null")
	if r.Stdout != "" {
		t.Errorf("left after make uninstall:\n%s", r.Stdout)
	}
}
