package logdir

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

func TestTailAcrossArchives(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	l := mustOpen(t, mustScript(t, "s4096", "n100", dir), Options{})
	writeAllT(t, p[1], seqLines(0, 500, 60))
	consumeAll(t, l, p[0], testScratch(t))
	l.Close()
	for _, n := range []int{1, 3, 100, 499, 500, 1000} {
		lines, err := Tail(dir, n)
		if err != nil {
			t.Fatal(err)
		}
		want := seqLines(max(0, 500-n), min(n, 500), 60)
		if got := bytes.Join(lines, nil); !bytes.Equal(got, want) || len(lines) != min(n, 500) {
			t.Errorf("Tail(%d): %d lines", n, len(lines))
		}
	}
}

func TestLocalize(t *testing.T) {
	at := time.Unix(1_800_000_000, 5)
	stamp := servicedir.TAI64NFromTime(at).String()
	local := at.Local().Format(isoLayout)
	for in, want := range map[string]string{
		stamp + " hello\n": local + " hello\n",
		stamp + "\n":       stamp + "\n", // no blank after the stamp: not a stamp
		"@40000000zz hi\n": "@40000000zz hi\n",
		"plain\n":          "plain\n",
	} {
		if got := string(Localize(nil, []byte(in))); got != want {
			t.Errorf("Localize(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestShowFollow follows a log directory across rotations; each written
// line shows up once, in order, localized.
func TestShowFollow(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "log")
	p := testPipe(t)
	sc := testScratch(t)
	l := mustOpen(t, mustScript(t, "t", "s4096", "n100", dir), Options{})
	defer l.Close()
	writeAllT(t, p[1], seqLines(0, 10, 60))
	consumeAll(t, l, p[0], sc)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Show(ctx, dir, 2, true, w); w.Close() }()
	r.SetReadDeadline(time.Now().Add(30 * time.Second))
	var got bytes.Buffer
	buf := make([]byte, 4096)
	for bytes.Count(got.Bytes(), []byte("\n")) < 2 { // the tail: Show follows from now on
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("reading the tail: %v", err)
		}
		got.Write(buf[:n])
	}
	for i := 10; i < 500; i += 50 { // crosses several rotations
		writeAllT(t, p[1], seqLines(i, 50, 60))
		consumeAll(t, l, p[0], sc)
	}
	writeAllT(t, p[1], []byte("the end\n"))
	consumeAll(t, l, p[0], sc)
	for !bytes.HasSuffix(got.Bytes(), []byte("the end\n")) {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("after %d bytes: %v", got.Len(), err)
		}
		got.Write(buf[:n])
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := string(seqLines(8, 502, 60)) + "the end\n"
	if s := stripLocal(got.String()); s != want {
		t.Errorf("followed text differs:\n%s", diffLines(s, want))
	}
}

// stripLocal removes the local-time stamps Localize wrote.
func stripLocal(s string) string {
	lines := strings.SplitAfter(s, "\n")
	for i, ln := range lines {
		if len(ln) > len(isoLayout) && ln[4] == '-' && ln[len(isoLayout)] == ' ' {
			lines[i] = ln[len(isoLayout)+1:]
		}
	}
	return strings.Join(lines, "")
}

func TestResolve(t *testing.T) {
	scan := t.TempDir()
	mk := func(rel, content string) {
		p := filepath.Join(scan, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	mk("a/log-script", "t s4096 n3 /var/log/a\n")
	mk("b/log-script", "t ./rel -x /abs/b\n")
	mk("c/log/run", "#!/bin/sh\nexec s6-setuidgid log s6-log -b -- t \"s100000\" ./main\n")
	mk("d/log/run", "#!/bin/execlineb -P\ns6-log -d3 n20 s1000000 T /var/log/d\n")
	mk("e/log/run", "#!/bin/sh\n# exec s6-log ./old\nexec svlogd -tt ./x ./y\n")
	mk("f/log/run", "#!/bin/sh\nexec gosv log -B 4096 t ./main\n")
	mk("g/log/run", "#!/bin/sh\nexec cat > /dev/null\n")
	mk("h/run", "#!/bin/sh\n")
	mk("logdir/current", "")
	tests := []struct {
		arg  string
		want []string
	}{
		{"a", []string{"/var/log/a"}},
		{"b", []string{filepath.Join(scan, "b/rel"), "/abs/b"}},
		{"c", []string{filepath.Join(scan, "c/log/main")}},
		{"d", []string{"/var/log/d"}},
		{"e", []string{filepath.Join(scan, "e/log/x"), filepath.Join(scan, "e/log/y")}},
		{"f", []string{filepath.Join(scan, "f/log/main")}},
		{filepath.Join(scan, "a"), []string{"/var/log/a"}},
		{filepath.Join(scan, "logdir"), []string{filepath.Join(scan, "logdir")}},
		{"g", nil},
		{"h", nil},
	}
	for _, tt := range tests {
		got, err := Resolve(scan, tt.arg)
		if tt.want == nil {
			if !errors.Is(err, ErrNoLog) {
				t.Errorf("Resolve(%q) = %v, %v; want ErrNoLog", tt.arg, got, err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("Resolve(%q) = %v, %v; want %v", tt.arg, got, err, tt.want)
		}
	}
	if _, err := Resolve(scan, "nosuch"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing service: %v", err)
	}
}
