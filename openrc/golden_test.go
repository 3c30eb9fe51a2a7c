package openrc

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the want section of testdata/*.txtar")

// archive is a txtar archive: a comment, then "-- name --" files.
type archive struct {
	comment string
	files   []archiveFile
}

type archiveFile struct {
	name string
	data string
}

func parseArchive(b string) archive {
	var a archive
	cur := -1
	for _, line := range strings.SplitAfter(b, "\n") {
		if name, ok := strings.CutPrefix(strings.TrimRight(line, "\n"), "-- "); ok && strings.HasSuffix(name, " --") {
			a.files = append(a.files, archiveFile{name: strings.TrimSuffix(name, " --")})
			cur = len(a.files) - 1
			continue
		}
		if cur < 0 {
			a.comment += line
		} else {
			a.files[cur].data += line
		}
	}
	return a
}

func (a archive) format() string {
	var b strings.Builder
	b.WriteString(a.comment)
	for _, f := range a.files {
		fmt.Fprintf(&b, "-- %s --\n%s", f.name, f.data)
	}
	return b.String()
}

// TestGolden resolves, lints and generates each testdata/*.txtar service:
// the archive holds a root file system (etc/init.d/NAME, etc/conf.d/...,
// etc/rc.conf, lib/rc/version...) and a "want" file with the expected
// report. go test ./openrc -update rewrites want.
func TestGolden(t *testing.T) {
	paths, _ := filepath.Glob("testdata/*.txtar")
	if len(paths) == 0 {
		t.Fatal("no testdata")
	}
	for _, p := range paths {
		t.Run(strings.TrimSuffix(filepath.Base(p), ".txtar"), func(t *testing.T) {
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatal(err)
			}
			a := parseArchive(string(b))
			root := t.TempDir()
			wantIdx := -1
			var script string
			for i, f := range a.files {
				if f.name == "want" {
					wantIdx = i
					continue
				}
				dst := filepath.Join(root, f.name)
				os.MkdirAll(filepath.Dir(dst), 0o755)
				mode := os.FileMode(0o644)
				if strings.Contains(f.name, "init.d/") || strings.HasSuffix(f.name, "/run") {
					mode = 0o755
				}
				if err := os.WriteFile(dst, []byte(f.data), mode); err != nil {
					t.Fatal(err)
				}
				if strings.HasPrefix(f.name, "etc/init.d/") && script == "" {
					script = dst
				}
			}
			got := report(t, root, script)
			if *update {
				if wantIdx < 0 {
					a.files = append(a.files, archiveFile{name: "want"})
					wantIdx = len(a.files) - 1
				}
				a.files[wantIdx].data = got
				if err := os.WriteFile(p, []byte(a.format()), 0o644); err != nil {
					t.Fatal(err)
				}
				return
			}
			if wantIdx < 0 {
				t.Fatalf("%s has no want file (run with -update)", p)
			}
			if want := a.files[wantIdx].data; got != want {
				t.Errorf("report differs (go test ./openrc -update):\n--- got\n%s--- want\n%s", got, want)
			}
		})
	}
}

// report renders everything the package derives from a service.
func report(t *testing.T, root, script string) string {
	l := Layout{RCConf: root + "/etc/rc.conf", RCConfD: root + "/etc/rc.conf.d", ConfD: root + "/etc/conf.d", LibexecDir: root + "/lib/rc",
		SvcDir: root + "/run/openrc", Runlevel: "default"}
	var b strings.Builder
	rel := func(s string) string { return strings.ReplaceAll(s, root, "") }
	s, err := Resolve(l, script)
	if err != nil {
		fmt.Fprintf(&b, "error: %s\n", rel(err.Error()))
		return b.String()
	}
	b.WriteString("# sources\n")
	for _, f := range s.Files {
		fmt.Fprintln(&b, rel(f))
	}
	b.WriteString("# vars\n")
	for _, name := range Vars {
		v := s.Vars[name]
		switch {
		case v.Unresolved.IsValid():
			fmt.Fprintf(&b, "%s: unresolved (%s at %s)\n", name, v.Cmd, rel(v.Unresolved.String()))
		case v.Set:
			fmt.Fprintf(&b, "%s=%q %s\n", name, rel(v.Text), rel(v.Pos.String()))
		}
	}
	fmt.Fprintf(&b, "# argv\n%q\n", s.Argv)
	b.WriteString("# env\n")
	for _, kv := range s.Env {
		fmt.Fprintln(&b, rel(kv))
	}
	b.WriteString("# funcs\n")
	names := make([]string, 0, len(s.Funcs))
	for n := range s.Funcs {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(&b, "%s %s calls %s\n", n, rel(s.Funcs[n].Pos.String()), strings.Join(s.Funcs[n].Calls, " "))
	}
	b.WriteString("# depend\n")
	for _, k := range []string{"need", "use", "want", "after", "before", "provide", "keyword", "config"} {
		if d := s.Depend[k]; len(d) > 0 {
			fmt.Fprintf(&b, "%s %s\n", k, strings.Join(d, " "))
		}
	}
	b.WriteString("# problems\n")
	for _, p := range s.Lint() {
		fmt.Fprintln(&b, rel(p.String()))
	}
	sp, _ := s.Spec()
	if sp.StartWait != 0 {
		fmt.Fprintf(&b, "# start_wait\n%v\n", sp.StartWait)
	}
	if sp.Declarative && len(sp.Argv) > 0 {
		files, err := Files(sp, GenConfig{Gosv: "/usr/bin/gosv", RCSvcDir: "/run/openrc", LibexecDir: "/lib/rc"})
		if err != nil {
			t.Fatal(err)
		}
		for _, name := range generated {
			if c, ok := files[name]; ok {
				fmt.Fprintf(&b, "# file %s\n%s", name, rel(c))
			}
		}
	} else if !sp.Declarative {
		fmt.Fprintf(&b, "# service directory %s\n", rel(sp.ServiceDir))
	}
	return b.String()
}

// TestArchiveRoundTrip keeps the txtar reader honest.
func TestArchiveRoundTrip(t *testing.T) {
	in := "comment\n-- a --\nx\n-- b/c --\ny\nz\n"
	if got := parseArchive(in).format(); got != in {
		t.Errorf("round trip: %q", got)
	}
	if !bytes.Equal([]byte(parseArchive(in).files[1].data), []byte("y\nz\n")) {
		t.Error("file content")
	}
}
