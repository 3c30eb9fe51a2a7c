package reap

import (
	"go/ast"
	"go/types"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"golang.org/x/tools/go/packages"
)

// waitMethods are the methods that wait for a child: on *exec.Cmd (Run,
// Output and CombinedOutput wait too) and on *os.Process.
var waitMethods = map[string][]string{
	"os/exec.Cmd": {"Wait", "Run", "Output", "CombinedOutput"},
	"os.Process":  {"Wait"},
}

// waitFuncs are the functions that wait for a child.
var waitFuncs = map[string]bool{
	"golang.org/x/sys/unix.Wait4": true, "golang.org/x/sys/unix.Waitid": true,
	"syscall.Wait4": true,
}

// TestOnlyReapWaits type-checks every production package of the module and
// fails on any call that waits for a child outside this package: two
// waiters for the same children lose exit statuses. It resolves methods by
// type, so cmd.Run() is caught whatever the variable is called and a
// Run method of another type is not.
func TestOnlyReapWaits(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks the whole module")
	}
	_, self, _, _ := runtime.Caller(0)
	root := filepath.Join(filepath.Dir(self), "..", "..")
	cfg := &packages.Config{
		Mode: packages.NeedName | packages.NeedFiles | packages.NeedSyntax |
			packages.NeedTypes | packages.NeedTypesInfo,
		Dir: root,
	}
	pkgs, err := packages.Load(cfg, "./...")
	if err != nil {
		t.Fatal(err)
	}
	if len(pkgs) < 10 {
		t.Fatalf("loaded %d packages: the walk is broken", len(pkgs))
	}
	checked := 0
	for _, p := range pkgs {
		for _, e := range p.Errors {
			t.Errorf("%s: %v", p.PkgPath, e)
		}
		if p.PkgPath == "github.com/gosv/gosv/internal/reap" || strings.Contains(p.PkgPath, "/bench/") ||
			strings.HasPrefix(p.PkgPath, "github.com/gosv/gosv/tests") {
			continue
		}
		for _, f := range p.Syntax {
			checked++
			ast.Inspect(f, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				if what := waiter(p.TypesInfo, call); what != "" {
					t.Errorf("%s: %s outside internal/reap", p.Fset.Position(call.Pos()), what)
				}
				return true
			})
		}
	}
	if checked == 0 {
		t.Fatal("no file checked")
	}
}

// waiter names the waiting function or method call calls, or "".
func waiter(info *types.Info, call *ast.CallExpr) string {
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok {
		return ""
	}
	obj := info.Uses[sel.Sel]
	fn, ok := obj.(*types.Func)
	if !ok || fn.Pkg() == nil {
		return ""
	}
	full := fn.Pkg().Path() + "." + fn.Name()
	if waitFuncs[full] {
		return full
	}
	sig, _ := fn.Type().(*types.Signature)
	if sig == nil || sig.Recv() == nil {
		return ""
	}
	rt := sig.Recv().Type()
	if p, ok := rt.(*types.Pointer); ok {
		rt = p.Elem()
	}
	named, ok := rt.(*types.Named)
	if !ok || named.Obj().Pkg() == nil {
		return ""
	}
	recv := named.Obj().Pkg().Path() + "." + named.Obj().Name()
	for _, m := range waitMethods[recv] {
		if m == fn.Name() {
			return recv + "." + m
		}
	}
	return ""
}
