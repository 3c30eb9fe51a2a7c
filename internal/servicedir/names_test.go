package servicedir

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// notFileNames are the exported string constants of this package that are
// not file names.
var notFileNames = []string{"ControlLetters"}

// TestFileNamesComplete checks that fileNames, the set the literal test
// looks for, holds every exported string constant of the package (but
// notFileNames), so that a name added to names.go is guarded at once.
func TestFileNamesComplete(t *testing.T) {
	fset := token.NewFileSet()
	pkgs, err := parser.ParseDir(fset, ".", func(fi fs.FileInfo) bool { return !strings.HasSuffix(fi.Name(), "_test.go") }, 0)
	if err != nil {
		t.Fatal(err)
	}
	found := 0
	for _, f := range pkgs["servicedir"].Files {
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				for i, id := range vs.Names {
					if !id.IsExported() || i >= len(vs.Values) {
						continue
					}
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING || slices.Contains(notFileNames, id.Name) {
						continue
					}
					found++
					v, _ := strconv.Unquote(lit.Value)
					if !slices.Contains(fileNames, v) {
						t.Errorf("%s = %q is not in fileNames (names.go)", id.Name, v)
					}
				}
			}
		}
	}
	if found != len(fileNames) {
		t.Errorf("%d exported file-name constants, %d entries in fileNames", found, len(fileNames))
	}
}

// TestNoFileNameLiterals fails when a service-directory, supervise/ or
// scan-directory file name of this package is spelled as a string literal
// in production code elsewhere: the protocol has one owner, and a copy
// drifts (a renamed file, a changed size bound) without a compiler error.
//
// A literal counts when
//   - it equals a name that is not a plain word ("notification-fd",
//     "supervise/status", "openrc.json"), anywhere;
//   - it is "./" and a name ("./run": the way run and finish are spawned);
//   - it equals a name or a component of one ("run", "supervise", "pid")
//     and is a path element: an argument after the first of filepath.Join
//     or path.Join, or the right operand of a + whose left operand ends in
//     "/" (dir + "/" + "run") or the whole of "/"+name after a non-literal
//     (dir + "/run").
//
// Plain words elsewhere are not file names: "down" is a state, "check" and
// "finish" are gosv openrc subcommands, "status" a warning key, "gosv" a
// supervisor= value; flagging them would only teach people to dodge the
// test. A component joined to another kind of directory (a log
// directory's "lock") is flagged too: give it a constant of its own
// package.
//
// Exempt: tests (they build service directories on purpose, and a test
// that spells the name checks the protocol from outside), bench/ and
// tests/ (programs that drive real s6 and gosv trees as a user would),
// the names of command-line flags (--log-script is an option), and this
// package, the owner.
func TestNoFileNameLiterals(t *testing.T) {
	if testing.Short() {
		t.Skip("parses the module")
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	distinct, words := nameSets()
	checked := 0
	fset := token.NewFileSet()
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if d.IsDir() {
			switch rel {
			case "bench", "tests", filepath.Join("internal", "servicedir"):
				return filepath.SkipDir
			}
			if d.Name() == "testdata" || strings.HasPrefix(d.Name(), ".") && rel != "." {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		checked++
		for _, at := range fileNameLiterals(f, distinct, words) {
			t.Errorf("%s: %s spells a file name of internal/servicedir; use its constant", fset.Position(at.Pos()), at.Value)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 50 {
		t.Fatalf("checked %d files: the walk is broken", checked)
	}
}

// nameSets splits fileNames into the names flagged anywhere (distinct: not
// a plain word) and the names and components flagged as path elements.
func nameSets() (distinct, words map[string]bool) {
	distinct, words = map[string]bool{}, map[string]bool{}
	for _, n := range fileNames {
		if strings.ContainsAny(n, "-./_") {
			distinct[n] = true
		}
		words[n] = true
		for _, c := range strings.Split(n, "/") {
			words[c] = true
		}
	}
	return distinct, words
}

// fileNameLiterals returns the literals of f that spell a file name (see
// TestNoFileNameLiterals).
func fileNameLiterals(f *ast.File, distinct, words map[string]bool) []*ast.BasicLit {
	var out []*ast.BasicLit
	seen := map[*ast.BasicLit]bool{}
	flag := func(l *ast.BasicLit) {
		if !seen[l] {
			seen[l] = true
			out = append(out, l)
		}
	}
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if s, ok := stringLit(n); ok && !seen[n] {
				if distinct[s] || distinct[strings.TrimPrefix(s, "./")] ||
					strings.HasPrefix(s, "./") && words[s[2:]] {
					flag(n)
				}
			}
		case *ast.CallExpr:
			if isFlagDef(n.Fun) {
				// The name of a command-line option (--log-script) is
				// not a file name.
				for _, a := range n.Args {
					if l, ok := a.(*ast.BasicLit); ok {
						seen[l] = true
					}
				}
			}
			if isJoin(n.Fun) {
				for _, a := range n.Args[min(1, len(n.Args)):] {
					if l, ok := a.(*ast.BasicLit); ok {
						if s, ok := stringLit(l); ok && words[s] {
							flag(l)
						}
					}
				}
			}
		case *ast.BinaryExpr:
			if n.Op != token.ADD {
				break
			}
			r, ok := n.Y.(*ast.BasicLit)
			if !ok {
				break
			}
			s, ok := stringLit(r)
			if !ok {
				break
			}
			if l, ok := n.X.(*ast.BasicLit); ok {
				if ls, _ := stringLit(l); strings.HasSuffix(ls, "/") && words[s] {
					flag(r)
				}
			} else if bin, ok := n.X.(*ast.BinaryExpr); ok && bin.Op == token.ADD {
				if l, ok := bin.Y.(*ast.BasicLit); ok {
					if ls, _ := stringLit(l); strings.HasSuffix(ls, "/") && words[s] {
						flag(r)
					}
				}
			} else if strings.HasPrefix(s, "/") && words[s[1:]] {
				flag(r)
			}
		}
		return true
	})
	return out
}

func stringLit(l *ast.BasicLit) (string, bool) {
	if l.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(l.Value)
	return s, err == nil
}

// isFlagDef reports whether fun defines a command-line flag:
// x.Flags().StringVar(...), x.PersistentFlags().BoolP(...) and the like.
func isFlagDef(fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	call, ok := sel.X.(*ast.CallExpr)
	if !ok {
		return false
	}
	recv, ok := call.Fun.(*ast.SelectorExpr)
	return ok && (recv.Sel.Name == "Flags" || recv.Sel.Name == "PersistentFlags")
}

// isJoin reports whether fun is filepath.Join or path.Join.
func isJoin(fun ast.Expr) bool {
	sel, ok := fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Join" {
		return false
	}
	x, ok := sel.X.(*ast.Ident)
	return ok && (x.Name == "filepath" || x.Name == "path")
}

// TestFileNameLiteralsDetector checks the detector on the shapes it must
// catch and on the plain words it must leave alone.
func TestFileNameLiteralsDetector(t *testing.T) {
	src := `package p
var (
	caught1 = "notification-fd"
	caught2 = filepath.Join(dir, "supervise", "gosv", "pid")
	caught3 = dir + "/run"
	caught4 = "./finish"
	caught5 = dir + "/" + "down"
	caught6 = path.Join(dir, "log")
	caught7 = "supervise/status"
	free1   = "down"
	free2   = []string{"check", "finish"}
	free3   = filepath.Join("run", x)
	free4   = "/run"
	free5   = "gosv"
	free6   = c.Flags().StringVar(&o.Script, "log-script", "", "")
)`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	distinct, words := nameSets()
	var got []string
	for _, l := range fileNameLiterals(f, distinct, words) {
		got = append(got, l.Value)
	}
	want := []string{`"notification-fd"`, `"supervise"`, `"gosv"`, `"pid"`, `"/run"`, `"./finish"`, `"down"`, `"log"`, `"supervise/status"`}
	if !slices.Equal(got, want) {
		t.Errorf("flagged %v, want %v", got, want)
	}
}
