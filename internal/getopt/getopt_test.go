package getopt

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// walk runs the parser to the end and renders what it saw as
// "u d T=500 | 2" (options, then the first operand's index), or the error.
func walk(args []string, optstring string) string {
	p := New(args, optstring)
	var out []string
	for {
		opt, arg, err := p.Next()
		if err != nil {
			return strings.Join(append(out, "error: "+err.Error()), " ")
		}
		if opt == End {
			break
		}
		if arg != "" {
			out = append(out, fmt.Sprintf("%c=%s", opt, arg))
		} else {
			out = append(out, string(opt))
		}
	}
	return strings.Join(append(out, "|", fmt.Sprint(p.Index())), " ")
}

func TestNext(t *testing.T) {
	const svc = "abqhkti12pcyroduDUxOQT:w:"
	tests := []struct {
		args []string
		opts string
		want string
	}{
		{nil, svc, "| 0"},
		{[]string{"dir"}, svc, "| 0"},
		{[]string{"-u", "dir"}, svc, "u | 1"},
		{[]string{"-ud", "dir"}, svc, "u d | 1"},
		{[]string{"-d", "-u", "-d", "dir"}, svc, "d u d | 3"},
		{[]string{"-T500", "dir"}, svc, "T=500 | 1"},
		{[]string{"-T", "500", "dir"}, svc, "T=500 | 2"},
		{[]string{"-uT500", "dir"}, svc, "u T=500 | 1"},
		{[]string{"-uT", "500", "-d", "dir"}, svc, "u T=500 d | 3"},
		{[]string{"-wU", "-u", "dir"}, svc, "w=U u | 2"},
		{[]string{"-T", "-u", "dir"}, svc, "T=-u | 2"}, // an argument may start with '-'
		{[]string{"-T", "--", "dir"}, svc, "T=-- | 2"}, // even "--"
		{[]string{"--", "-u"}, svc, "| 1"},             // "--" is consumed
		{[]string{"-u", "--", "--"}, svc, "u | 2"},     // only the first
		{[]string{"-", "-u"}, svc, "| 0"},              // lone "-" is an operand
		{[]string{"dir", "-u"}, svc, "| 0"},            // no permutation
		{[]string{"-u", "dir", "-d"}, svc, "u | 1"},    // stops at first operand
		{[]string{"-u", ""}, svc, "u | 1"},             // empty operand
		{[]string{"-X", "dir"}, svc, "error: unknown option -X"},
		{[]string{"-uX"}, svc, "u error: unknown option -X"},
		{[]string{"-:"}, "a:", "error: unknown option -:"},
		{[]string{"-T"}, svc, "error: option -T requires an argument"},
		{[]string{"-uT"}, svc, "u error: option -T requires an argument"},
		{[]string{"-o", "up,pid", "-n", "d"}, "no:uwNrpest", "o=up,pid n | 3"},
		{[]string{"-o", "", "d"}, "no:", "o | 2"}, // empty argument is still an argument
		{[]string{"-é"}, "é", "é | 1"},
		{[]string{"-\xff"}, "a", "error: unknown option -\uFFFD"},
	}
	for _, tt := range tests {
		if got := walk(tt.args, tt.opts); got != tt.want {
			t.Errorf("walk(%q, %q) = %q, want %q", tt.args, tt.opts, got, tt.want)
		}
	}
}

func TestErrorKinds(t *testing.T) {
	_, _, err := New([]string{"-z"}, "a").Next()
	var e *Error
	if !errors.As(err, &e) || e.Opt != 'z' || !errors.Is(err, ErrUnknownOption) {
		t.Errorf("unknown option: got %#v", err)
	}
	_, _, err = New([]string{"-a"}, "a:").Next()
	if !errors.As(err, &e) || e.Opt != 'a' || !errors.Is(err, ErrMissingArg) {
		t.Errorf("missing argument: got %#v", err)
	}
}

// TestEndIsSticky checks that Next keeps returning End and Index stays put.
func TestEndIsSticky(t *testing.T) {
	p := New([]string{"-u", "--", "-d"}, "ud")
	for range 2 {
		p.Next()
	}
	for range 3 {
		if opt, _, err := p.Next(); opt != End || err != nil {
			t.Fatalf("Next after End = %q, %v", opt, err)
		}
	}
	if p.Index() != 2 {
		t.Errorf("Index = %d, want 2", p.Index())
	}
}

func FuzzNext(f *testing.F) {
	f.Add("-ud\x00-T\x00500\x00dir", "udT:")
	f.Add("--\x00-x", "x")
	f.Add("-T", "T:")
	f.Add("-\xff\x00-", "a:b")
	f.Fuzz(func(t *testing.T, joined, optstring string) {
		args := strings.Split(joined, "\x00")
		p := New(args, optstring)
		for n := 0; ; n++ {
			if n > len(joined)+1 {
				t.Fatalf("no End after %d calls", n)
			}
			opt, _, err := p.Next()
			if err != nil || opt == End {
				break
			}
			if opt == ':' || !strings.ContainsRune(optstring, opt) {
				t.Fatalf("Next returned %q, not in %q", opt, optstring)
			}
		}
		if i := p.Index(); i < 0 || i > len(args) {
			t.Fatalf("Index %d out of [0,%d]", i, len(args))
		}
	})
}
