package openrc

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestOnlyTheBackendInterface: openrc drives a service through
// backends.Backend alone; which backend that is, is the registry's
// choice, so that another one joins without a change here.
func TestOnlyTheBackendInterface(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatalf("no Go files: %v", err)
	}
	const prefix = "github.com/gosv/gosv/backends/"
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			p, _ := strconv.Unquote(imp.Path.Value)
			if strings.HasPrefix(p, prefix) && p != prefix+"registry" {
				t.Errorf("%s imports the concrete backend %s: use backends.Backend from the registry", f, p)
			}
		}
	}
}
