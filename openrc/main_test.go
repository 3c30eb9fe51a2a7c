package openrc

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// TestMain makes the test binary a resolver child when [Resolve] re-executes
// it (`openrc.test openrc resolve`), as gosv is.
func TestMain(m *testing.M) {
	if slices.Equal(os.Args[1:], resolveCommand()) {
		os.Exit(testResolver())
	}
	os.Exit(m.Run())
}

// blockedOpen is the init script name that makes the test resolver block
// in open(2) on the FIFO "fifo" beside the script before it resolves: a
// stand-in for an open that O_NONBLOCK cannot help (a hung FUSE or NFS
// mount), which only the parent's kill ends.
const blockedOpen = "blocked-open"

func testResolver() int {
	req, err := io.ReadAll(os.Stdin)
	if err != nil {
		return 111
	}
	var r resolveRequest
	if json.Unmarshal(req, &r) == nil && len(r.Scripts) > 0 && filepath.Base(r.Scripts[0]) == blockedOpen {
		os.Open(filepath.Join(filepath.Dir(r.Scripts[0]), "fifo")) // blocks: no writer
	}
	if err := ServeResolve(context.Background(), bytes.NewReader(req), os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "resolve:", err)
		return 111
	}
	return 0
}
