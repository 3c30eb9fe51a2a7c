package main

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cpuguy83/go-md2man/v2/md2man"
	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/gosv/gosv/openrc"
)

// manDir holds the man pages: generated section 8 pages, one per command,
// from the commands themselves, and the section 5 pages rendered from
// their hand-written markdown (NAME.5.md). They are committed, so that
// packaging needs no generator and a help change shows its page's change
// in review; TestManPages fails when one is stale, and `go test ./cmd/gosv
// -run TestManPages -update` (make man) rewrites them.
var manDir = filepath.Join("..", "..", "man")

// manHeading is a section heading of a command's help: a line of capitals.
var manHeading = regexp.MustCompile(`^[A-Z][A-Z ]+[A-Z]$`)

// manSections splits a command's help into its description and its
// headed sections (FILES, EXIT STATUS, READINESS...), in order.
func manSections(long string) (desc string, heads, bodies []string) {
	lines := strings.Split(long, "\n")
	var cur []string
	flush := func() {
		if heads == nil {
			desc = strings.TrimSpace(strings.Join(cur, "\n"))
		} else {
			bodies = append(bodies, strings.Trim(strings.Join(cur, "\n"), "\n"))
		}
		cur = nil
	}
	for i, l := range lines {
		if manHeading.MatchString(l) && (i == 0 || lines[i-1] == "") {
			flush()
			heads = append(heads, l)
			continue
		}
		cur = append(cur, l)
	}
	flush()
	if heads == nil {
		desc = strings.TrimSpace(long)
	}
	return desc, heads, bodies
}

// manMarkdown turns plain help text into markdown: prose is escaped,
// indented lines (tables, examples) become preformatted blocks.
func manMarkdown(text string) string {
	var b strings.Builder
	inCode := false
	for _, l := range strings.Split(text, "\n") {
		code := strings.HasPrefix(l, "  ") || (inCode && strings.HasPrefix(l, " "))
		switch {
		case code && !inCode:
			b.WriteString("\n```\n")
		case !code && inCode:
			b.WriteString("```\n\n")
		}
		inCode = code
		if code {
			b.WriteString(l + "\n")
			continue
		}
		b.WriteString(manEscape.Replace(l) + "\n")
	}
	if inCode {
		b.WriteString("```\n")
	}
	return b.String()
}

var manEscape = strings.NewReplacer(`\`, `\\`, "*", `\*`, "_", `\_`, "`", "\\`",
	"[", `\[`, "]", `\]`, "<", `\<`, ">", `\>`, "#", `\#`, "|", `\|`)

// genManPages renders every visible command's page (and the hand-written
// pages' markdown) into name → content.
func genManPages(t *testing.T) map[string][]byte {
	t.Helper()
	root := newRootCmd(&env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }, Now: time.Now})
	pages := map[string][]byte{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		if c.HasParent() && (!c.IsAvailableCommand() || c.Name() == "completion") {
			return
		}
		for _, sub := range c.Commands() {
			walk(sub)
		}
		pages[strings.ReplaceAll(c.CommandPath(), " ", "-")+".8"] = genManPage(t, c)
	}
	walk(root)
	hand, err := filepath.Glob(filepath.Join(manDir, "*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range hand {
		md, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		pages[strings.TrimSuffix(filepath.Base(src), ".md")] = manASCII(string(md2man.Render(md)))
	}
	return pages
}

// genManPage is cobra/doc's page for c, with the help's FILES and EXIT
// STATUS sections moved after OPTIONS, where man-pages(7) puts them, and
// no date: the page changes only when the command does.
func genManPage(t *testing.T, c *cobra.Command) []byte {
	desc, heads, bodies := manSections(c.Long)
	var md, tail strings.Builder
	md.WriteString(manMarkdown(desc))
	for i, h := range heads {
		w := &md
		if h == "FILES" || h == "EXIT STATUS" {
			w = &tail
		}
		w.WriteString("\n# " + h + "\n" + manMarkdown(bodies[i]))
	}
	if !slices.Contains(heads, "FILES") || !slices.Contains(heads, "EXIT STATUS") {
		t.Errorf("%s: its help has no FILES or no EXIT STATUS section", c.CommandPath())
	}
	saved := c.Long
	defer func() { c.Long = saved }()
	c.Long = md.String()
	c.DisableAutoGenTag = true
	var page bytes.Buffer
	epoch := time.Unix(0, 0)
	if err := doc.GenMan(c, &doc.GenManHeader{Section: "8", Date: &epoch, Source: "gosv", Manual: "gosv Manual"}, &page); err != nil {
		t.Fatal(err)
	}
	out := strings.Replace(page.String(), `"Jan 1970" `, `"" `, 1)
	// Rendered on its own, the tail's first heading would be the title:
	// give it one, and keep what follows.
	_, extra, _ := strings.Cut(string(md2man.Render([]byte("# T\n"+tail.String()))), "\n.SH ")
	extra = ".SH " + extra
	if before, after, ok := strings.Cut(out, ".SH SEE ALSO\n"); ok {
		out = before + extra + ".SH SEE ALSO\n" + after
	} else {
		out += extra + ".SH SEE ALSO\n"
	}
	// The section 5 pages: the files a command works on.
	see := `\fBgosv-servicedir(5)\fP`
	switch {
	case !c.HasParent():
		see += `, \fBgosv-openrc(5)\fP`
	case strings.HasPrefix(c.CommandPath(), "gosv openrc"):
		see = `\fBgosv-openrc(5)\fP, ` + see
	}
	out = strings.TrimSuffix(out, "\n") + ", " + see + "\n"
	return manASCII(out)
}

// manASCII writes the characters beyond ASCII (…, →) as groff's \[uXXXX]
// escapes, which every groff device renders without a preprocessor.
func manASCII(page string) []byte {
	var b strings.Builder
	for _, r := range page {
		if r < 0x80 {
			b.WriteRune(r)
		} else {
			fmt.Fprintf(&b, `\[u%04X]`, r)
		}
	}
	return []byte(b.String())
}

// TestManPages fails when a committed man page differs from what the
// commands (or the hand-written markdown) give now; -update rewrites them.
func TestManPages(t *testing.T) {
	pages := genManPages(t)
	if *updateScripts {
		if err := os.MkdirAll(manDir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	old, err := filepath.Glob(filepath.Join(manDir, "*.[0-9]"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range old {
		if _, ok := pages[filepath.Base(f)]; !ok {
			if *updateScripts {
				os.Remove(f)
				continue
			}
			t.Errorf("%s: no command or markdown gives this page any more: run go test ./cmd/gosv -run TestManPages -update", f)
		}
	}
	for name, want := range pages {
		path := filepath.Join(manDir, name)
		if *updateScripts {
			if err := os.WriteFile(path, want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s is stale (or missing): run go test ./cmd/gosv -run TestManPages -update", path)
		}
	}
}

// TestManPagesRender renders every page as man(1) does and with all of
// groff's warnings on: a page that warns, or renders nothing, fails.
func TestManPagesRender(t *testing.T) {
	for _, tool := range []string{"man", "groff"} {
		if _, err := exec.LookPath(tool); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s not installed (make test-deps installs man-db)", tool)
			}
			t.Skipf("%s not installed", tool)
		}
	}
	pages, err := filepath.Glob(filepath.Join(manDir, "*.[0-9]"))
	if err != nil || len(pages) == 0 {
		t.Fatalf("no man pages in %s (%v)", manDir, err)
	}
	for _, page := range pages {
		for _, argv := range [][]string{
			{"man", "--warnings", "-l", page},
			{"groff", "-ww", "-man", "-Tutf8", "-P-cbou", page},
		} {
			cmd := exec.Command(argv[0], argv[1:]...)
			cmd.Env = append(os.Environ(), "MANWIDTH=80", "MAN_KEEP_FORMATTING=", "MANPAGER=cat", "PAGER=cat", "LANG=C.UTF-8")
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if err != nil || stderr.Len() > 0 {
				t.Errorf("%s: %v\n%s", strings.Join(argv, " "), err, stderr.String())
			}
			want := []string{"NAME"}
			if strings.HasSuffix(page, ".8") {
				want = append(want, "\nFILES\n", "\nEXIT STATUS\n")
			}
			for _, w := range want {
				if !bytes.Contains(stdout.Bytes(), []byte(w)) {
					t.Errorf("%s: no %q in the rendered page", strings.Join(argv, " "), w)
				}
			}
		}
	}
}

// TestManOpenRCVariables fails when gosv reads an init script variable
// that gosv-openrc(5) does not describe.
func TestManOpenRCVariables(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(manDir, "gosv-openrc.5.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range openrc.Vars {
		if !bytes.Contains(md, []byte("**"+strings.ReplaceAll(v, "_", `\_`)+"**")) {
			t.Errorf("gosv-openrc(5) does not describe %s", v)
		}
	}
}

// TestManServiceDirFiles fails when PROTOCOL.md's tables of service
// directory files (§1 and §9.1) name a file gosv-servicedir(5) does not.
func TestManServiceDirFiles(t *testing.T) {
	md, err := os.ReadFile(filepath.Join(manDir, "gosv-servicedir.5.md"))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := os.ReadFile(filepath.Join("..", "..", "internal", "servicedir", "PROTOCOL.md"))
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("^\\| `([a-z][a-z0-9./-]*)`")
	table, n := false, 0
	for _, l := range strings.Split(string(spec), "\n") {
		if strings.HasPrefix(l, "#") {
			table = strings.HasPrefix(l, "## 1.") || strings.HasPrefix(l, "### 9.1")
			continue
		}
		m := row.FindStringSubmatch(l)
		if !table || m == nil {
			continue
		}
		n++
		name := strings.ReplaceAll(m[1], "_", `\_`)
		if !bytes.Contains(md, []byte("**"+name+"**")) {
			t.Errorf("gosv-servicedir(5) does not describe %s", m[1])
		}
	}
	if n < 20 {
		t.Fatalf("found %d files in PROTOCOL.md's tables: has its layout changed?", n)
	}
}

// TestExitStatusTables: every command's EXIT STATUS (the --help section the
// man page copies) is a table of codes, "  CODE  meaning" with
// continuation lines indented under the meaning, so that the page and
// --help read the same and a code is never buried in prose.
func TestExitStatusTables(t *testing.T) {
	row := regexp.MustCompile(`^  (\d+(-\d+)?|N) +\S`)
	cont := regexp.MustCompile(`^ {5,}\S`)
	root := newRootCmd(&env{Stdout: io.Discard, Stderr: io.Discard, Getenv: func(string) string { return "" }, Now: time.Now})
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		if c.Name() == "help" || c.Name() == "completion" {
			return
		}
		_, heads, bodies := manSections(c.Long)
		i := slices.Index(heads, "EXIT STATUS")
		if i < 0 {
			t.Errorf("%s: no EXIT STATUS section", c.CommandPath())
			return
		}
		for j, l := range strings.Split(bodies[i], "\n") {
			if !row.MatchString(l) && (j == 0 || !cont.MatchString(l)) {
				t.Errorf("%s: EXIT STATUS line %q is not a table row", c.CommandPath(), l)
			}
		}
	}
	walk(root)
}
