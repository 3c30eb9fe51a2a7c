package servicedir

import (
	"errors"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadUintFile(t *testing.T) {
	const absent = "\x00absent"
	for _, tt := range []struct {
		content string
		want    uint64
		bad     string // quoted value expected in the error; "" means valid
	}{
		{absent, 0, ""},
		{"3\n", 3, ""},
		{"3", 3, ""},
		{"0", 0, ""},
		{"003", 3, ""},
		{"3\nxyz", 3, ""},
		{"4294967295", 1<<32 - 1, ""},
		{"000000000012", 1, ""}, // only 11 bytes are read, as by s6
		{"5\x00junk", 5, ""},    // C string: stops at the NUL
		{" 3", 0, `" 3"`},
		{"3 ", 0, `"3 "`},
		{"0x3", 0, `"0x3"`},
		{"", 0, `""`},
		{"\n", 0, `""`},
		{"3\r\n", 0, `"3\r"`},
		{"-1", 0, `"-1"`},
		{"+1", 0, `"+1"`},
		{"4294967296", 0, `"4294967296"`},
		{"123456789012", 0, `"12345678901"`},
	} {
		dir := t.TempDir()
		p := filepath.Join(dir, NotificationFDFile)
		if tt.content != absent {
			writeFile(t, p, []byte(tt.content))
		}
		v, present, err := ReadUintFile(dir, NotificationFDFile)
		if present != (tt.content != absent) {
			t.Errorf("%q: present = %v", tt.content, present)
		}
		if tt.bad == "" {
			if err != nil || v != tt.want {
				t.Errorf("%q: ReadUintFile = %d, %v; want %d", tt.content, v, err, tt.want)
			}
			continue
		}
		want := "parse " + p + ": invalid value " + tt.bad
		if err == nil || err.Error() != want || !errors.Is(err, ErrBadValue) {
			t.Errorf("%q: error = %v, want %s", tt.content, err, want)
		}
	}
}

func TestReadUintFileErrors(t *testing.T) {
	dir := t.TempDir()
	mkdir(t, filepath.Join(dir, TimeoutKillFile))
	_, present, err := ReadUintFile(dir, TimeoutKillFile)
	assertPathError(t, err, filepath.Join(dir, TimeoutKillFile), unix.EISDIR)
	if !present {
		t.Errorf("present = false for an existing directory")
	}
	// A fifo must not hang the reader (non-blocking open, as s6).
	fifo := filepath.Join(dir, LockFDFile)
	if err := unix.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ReadUintFile(dir, LockFDFile); !errors.Is(err, ErrBadValue) {
		t.Errorf("empty fifo: %v, want ErrBadValue", err)
	}
}

func TestReadDownSignal(t *testing.T) {
	const absent = "\x00absent"
	for _, tt := range []struct {
		content string
		want    unix.Signal
		bad     bool
	}{
		{absent, unix.SIGTERM, false},
		{"HUP\n", unix.SIGHUP, false},
		{"sighup", unix.SIGHUP, false},
		{"SIGHUP\n", unix.SIGHUP, false},
		{"1", unix.SIGHUP, false},
		{"SIGKILL\nrest", unix.SIGKILL, false},
		{"SIGWINCH", unix.SIGWINCH, false},
		{"HUP\nand a long tail", unix.SIGHUP, false},
		{"TERMINATE", unix.SIGTERM, true},
		{"SIGRTMIN", unix.SIGTERM, true},
		{"SIGHUP         X", unix.SIGTERM, true}, // 15 bytes read: trailing blanks
		{"", unix.SIGTERM, true},
	} {
		dir := t.TempDir()
		if tt.content != absent {
			writeFile(t, filepath.Join(dir, DownSignalFile), []byte(tt.content))
		}
		sig, err := ReadDownSignal(dir)
		if sig != tt.want || (err != nil) != tt.bad || (tt.bad && !errors.Is(err, ErrBadValue)) {
			t.Errorf("%q: ReadDownSignal = %v, %v; want %v (error %v)", tt.content, sig, err, tt.want, tt.bad)
		}
	}
}

// signalCases mirror what execline's trap (skalibs sig0_scan, libskarnet
// 2.13.1.1) accepted and rejected on this machine.
var signalCases = []struct {
	in   string
	want unix.Signal
	ok   bool
}{
	{"HUP", 1, true},
	{"hup", 1, true},
	{"SiGhUp", 1, true},
	{"SIGHUP", 1, true},
	{"1", 1, true},
	{"01", 1, true},
	{"SIG1", 1, true},
	{"sig15", 15, true},
	{"0", 0, true},
	{"64", 64, true},
	{"65", 65, true},
	{"4294967295", 1<<32 - 1, true},
	{"IOT", 6, true},
	{"CLD", 17, true},
	{"STKFLT", 16, true},
	{"SIGIO", 29, true},
	{"POLL", 29, true},
	{"PWR", 30, true},
	{"4294967296", 0, false},
	{" 1", 0, false},
	{"1 ", 0, false},
	{"+1", 0, false},
	{"-1", 0, false},
	{"", 0, false},
	{"SIG", 0, false},
	{"SIGSIGHUP", 0, false},
	{"UNUSED", 0, false},
	{"LOST", 0, false},
	{"INFO", 0, false},
	{"EMT", 0, false},
	{"RTMIN", 0, false},
	{"HUP\n", 0, false},
	{"\u212aILL", 0, false}, // Kelvin sign: strcasecmp does not fold it
}

func TestParseSignal(t *testing.T) {
	for _, tt := range signalCases {
		sig, ok := ParseSignal(tt.in)
		if ok != tt.ok || (ok && sig != tt.want) {
			t.Errorf("ParseSignal(%q) = %d, %v; want %d, %v", tt.in, sig, ok, tt.want, tt.ok)
		}
	}
}

func TestSignalName(t *testing.T) {
	for _, tt := range []struct {
		sig  unix.Signal
		want string
	}{
		{1, "HUP"}, {6, "ABRT"}, {9, "KILL"}, {15, "TERM"}, {16, "STKFLT"},
		{17, "CHLD"}, {29, "POLL"}, {30, "PWR"}, {31, "SYS"},
		{0, "???"}, {32, "???"}, {34, "???"}, {-1, "???"},
	} {
		if got := SignalName(tt.sig); got != tt.want {
			t.Errorf("SignalName(%d) = %q, want %q", tt.sig, got, tt.want)
		}
	}
}

// TestParseSignalMatchesExeclineTrap feeds the plain-word cases to
// execline's trap, which parses its directives with sig0_scan: "unrecognized
// directive" means sig0_scan failed; success or "cannot be trapped" means
// it parsed. Numbers above 65 are skipped: trap indexes an array with them.
func TestParseSignalMatchesExeclineTrap(t *testing.T) {
	requireS6(t, "s6-svc") // the REQUIRE_S6 gate; execline comes with s6
	execlineb, err := exec.LookPath("execlineb")
	if err != nil {
		t.Skip("execlineb not installed")
	}
	word := regexp.MustCompile(`^[A-Za-z0-9]+$`)
	var names []string
	for _, e := range sigTable {
		names = append(names, e.name, "sig"+strings.ToLower(e.name))
	}
	for _, tt := range signalCases {
		names = append(names, tt.in)
	}
	for _, in := range names {
		if n, err := strconv.ParseUint(in, 10, 64); !word.MatchString(in) || (err == nil && n > 65) {
			continue
		}
		out, _ := exec.Command(execlineb, "-c", "trap { "+in+" { exit 0 } } exit 0").CombinedOutput()
		parsed := !strings.Contains(string(out), "unrecognized directive")
		if _, ok := ParseSignal(in); ok != parsed {
			t.Errorf("ParseSignal(%q) ok = %v, trap said %q", in, ok, out)
		}
	}
}

// FuzzParseSignal compares ParseSignal with a model written differently
// and checks that every known name round-trips through SignalName.
func FuzzParseSignal(f *testing.F) {
	for _, tt := range signalCases {
		f.Add(tt.in)
	}
	byName := map[string]unix.Signal{}
	for i := len(sigTable) - 1; i >= 0; i-- {
		byName[sigTable[i].name] = sigTable[i].sig
	}
	model := func(s string) (unix.Signal, bool) {
		try := func(s string) (unix.Signal, bool) {
			if sig, ok := byName[asciiUpper(s)]; ok {
				return sig, true
			}
			if strings.Trim(s, "0123456789") != "" {
				return 0, false
			}
			n, err := strconv.ParseUint(s, 10, 32)
			return unix.Signal(n), err == nil
		}
		if sig, ok := try(s); ok {
			return sig, true
		}
		if len(s) > 3 && asciiUpper(s[:3]) == "SIG" {
			return try(s[3:])
		}
		return 0, false
	}
	f.Fuzz(func(t *testing.T, s string) {
		sig, ok := ParseSignal(s)
		wsig, wok := model(s)
		if ok != wok || sig != wsig {
			t.Fatalf("ParseSignal(%q) = %d, %v; model says %d, %v", s, sig, ok, wsig, wok)
		}
		if name := SignalName(sig); ok && name != "???" {
			if back, ok := ParseSignal("SIG" + name); !ok || back != sig {
				t.Fatalf("ParseSignal(SIG%s) = %d, %v; want %d", name, back, ok, sig)
			}
		}
	})
}

// asciiUpper upper-cases ASCII letters only, like toupper in the C locale.
func asciiUpper(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
	}
	return string(b)
}

// FuzzReadUint compares the uint-file parser with a strconv model: only
// the first 11 bytes count, the text stops at the first newline or NUL,
// and must be all decimal digits with a value below 2^32.
func FuzzReadUint(f *testing.F) {
	for _, s := range []string{"3\n", " 3", "3 ", "0x3", "", "4294967295", "4294967296",
		"000000000012", "5\x00x", "\n3", "99999999999999"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		v, text, ok := parseUintFile(b)
		head := string(b[:min(len(b), 11)])
		head, _, _ = strings.Cut(head, "\n")
		head, _, _ = strings.Cut(head, "\x00")
		n, err := strconv.ParseUint(head, 10, 32)
		wok := err == nil && strings.Trim(head, "0123456789") == ""
		if text != head || ok != wok || (ok && v != n) {
			t.Fatalf("parseUintFile(%q) = %d, %q, %v; model %d, %q, %v", b, v, text, ok, n, head, wok)
		}
	})
}
