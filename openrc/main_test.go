package openrc

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
)

// TestMain makes the test binary a resolver child when [Resolve] re-executes
// it (`openrc.test openrc resolve`), as gosv is.
func TestMain(m *testing.M) {
	if slices.Equal(os.Args[1:], ResolveCommand) {
		if err := ServeResolve(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "resolve:", err)
			os.Exit(111)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}
