package openrc

import (
	"testing"

	"github.com/gosv/gosv/backends/runit"
)

// The runit backend's check services run `GOSV notifyoncheck`: under the
// hook's lean client the running executable is gosv-openrc, which has no
// such command, so the backend must get the gosv binary of the request.
func TestBackendGetsGosv(t *testing.T) {
	req := &Request{Gosv: "/opt/x/bin/gosv", Layout: Layout{SvcDir: t.TempDir()}}
	b, ok := req.backend(&Spec{Backend: "runit"}).(*runit.Backend)
	if !ok {
		t.Fatalf("backend(runit) is not the runit backend")
	}
	if b.Gosv != req.Gosv {
		t.Errorf("runit backend's Gosv = %q, want %q", b.Gosv, req.Gosv)
	}
}
