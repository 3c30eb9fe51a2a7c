package svstat

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/servicedir"
)

// now is the fixed clock of the pure tests; ago(s) is a stamp s seconds and
// a quarter before it, so that whole seconds are unambiguous.
var now = time.Date(2027, 3, 1, 12, 0, 0, 500_000_000, time.UTC)

func ago(s int) time.Time {
	return now.Add(-time.Duration(s)*time.Second - 250*time.Millisecond)
}

// sv builds a status from the stamps' ages (seconds) and the rest.
func sv(up, ready int, pid int, wstat uint16, flags string) servicedir.Status {
	st := servicedir.Status{Stamp: ago(up), ReadyStamp: ago(ready), Pid: pid, Wstat: wstat}
	for _, f := range flags {
		switch f {
		case 'p':
			st.Paused = true
		case 'f':
			st.Finishing = true
		case 'w':
			st.WantUp = true
		case 'r':
			st.Ready = true
		}
	}
	return st
}

// The rows of s6-protocol.md §6.1, observed with the real s6-svstat.
func TestLegacy(t *testing.T) {
	tests := []struct {
		st         servicedir.Status
		normallyUp bool
		numeric    bool
		want       string
	}{
		{sv(0, 0, 13683, 0, "w"), true, false, "up (pid 13683) 0 seconds"},
		{sv(2, 0, 13683, 0, "wr"), true, false, "up (pid 13683) 2 seconds, ready 0 seconds"},
		{sv(10, 8, 13683, 0, "pwr"), true, false, "up (pid 13683) 10 seconds, paused, ready 8 seconds"},
		{sv(0, 8, 14194, 15, "f"), true, false, "down (signal SIGTERM) 0 seconds, normally up"},
		{sv(4, 1, 0, 15, "r"), true, false, "down (signal SIGTERM) 4 seconds, normally up, ready 1 seconds"},
		{sv(4, 1, 0, 15, "r"), true, true, "down (signal 15) 4 seconds, normally up, ready 1 seconds"},
		{sv(0, 8, 14194, 15, "fw"), true, false, "down (signal SIGTERM) 0 seconds, normally up, want up"},
		{sv(0, 0, 0, 0x300, "wr"), true, false, "down (exitcode 3) 0 seconds, normally up, want up, ready 0 seconds"},
		{sv(1, 1, 0, 0x300, "r"), true, false, "down (exitcode 3) 1 seconds, normally up, ready 1 seconds"},
		{sv(1, 1, 0, 0, "r"), false, false, "down (exitcode 0) 1 seconds, ready 1 seconds"},
		{sv(0, 1, 16090, 0, "w"), false, false, "up (pid 16090) 0 seconds, normally down"},
		{sv(0, 2, 16090, 0, ""), false, false, "up (pid 16090) 0 seconds, normally down, want down"},
		{sv(1, 1, 27407, 0, ""), true, false, "up (pid 27407) 1 seconds, want down"},
		{sv(0, 2, 14200, 9, "f"), true, false, "down (signal SIGKILL) 0 seconds, normally up"},
		{sv(0, 0, 0, 0, "wr"), true, false, "down (exitcode 0) 0 seconds, normally up, want up, ready 0 seconds"},
		// Paused and want-up only show on the side they make sense on.
		{sv(3, 3, 0, 0, "pw"), false, false, "down (exitcode 0) 3 seconds, want up"},
		// Signal names from the skalibs table; unknown numbers are "???".
		{sv(5, 5, 0, 6, ""), true, false, "down (signal SIGABRT) 5 seconds, normally up"},
		{sv(5, 5, 0, 17, ""), true, false, "down (signal SIGCHLD) 5 seconds, normally up"},
		{sv(5, 5, 0, 29, ""), true, false, "down (signal SIGPOLL) 5 seconds, normally up"},
		{sv(5, 5, 0, 34, ""), true, false, "down (signal SIG???) 5 seconds, normally up"},
		{sv(5, 5, 0, 0x8b, ""), true, false, "down (signal SIGSEGV) 5 seconds, normally up"}, // core dumped
		{sv(5, 5, 0, 0x8b, ""), true, true, "down (signal 11) 5 seconds, normally up"},
		// A stamp in the future is clamped, a ready stamp is not.
		{sv(-100, 3, 0, 0, "r"), true, false, "down (exitcode 0) 0 seconds, normally up, ready 3 seconds"},
		{sv(3, -2, 42, 0, "wr"), true, false, "up (pid 42) 3 seconds, ready 18446744073709551614 seconds"},
	}
	for _, tt := range tests {
		if got := Legacy(tt.st, now, tt.normallyUp, tt.numeric); got != tt.want {
			t.Errorf("Legacy(%+v, normallyUp=%v, numeric=%v)\n got %q\nwant %q", tt.st, tt.normallyUp, tt.numeric, got, tt.want)
		}
	}
}

// The rows of s6-protocol.md §6.2.
func TestFields(t *testing.T) {
	all := []Field{Up, WantedUp, NormallyUp, Ready, Paused, Pid, ExitCode, Signal, Signum, UpdownFor, ReadyFor}
	tests := []struct {
		st         servicedir.Status
		normallyUp bool
		fields     []Field
		want       string
	}{
		{sv(0, 0, 13683, 0, "w"), true, all, "true true true false false 13683 -1 NA -1 0 0"},
		{sv(2, 0, 13683, 0, "wr"), true, all, "true true true true false 13683 -1 NA -1 2 0"},
		{sv(10, 8, 13683, 0, "pwr"), true, all, "true true true true true 13683 -1 NA -1 10 8"},
		{sv(0, 8, 14194, 15, "f"), true, all, "false false true false false -1 -1 SIGTERM 15 0 8"},
		{sv(4, 1, 0, 15, "r"), true, all, "false false true false false -1 -1 SIGTERM 15 4 1"},
		{sv(0, 0, 0, 0x300, "wr"), true, all, "false true true false false -1 3 NA -1 0 0"},
		{sv(1, 1, 0, 0, "r"), false, all, "false false false false false -1 0 NA -1 1 1"},
		{sv(0, 1, 16090, 0, "w"), false, all, "true true false false false 16090 -1 NA -1 0 1"},
		{sv(0, 2, 16090, 0, ""), false, all, "true false false false false 16090 -1 NA -1 0 2"},
		{sv(0, 2, 14200, 9, "f"), true, all, "false false true false false -1 -1 SIGKILL 9 0 2"},
		{sv(0, 0, 14200, 0x200, "f"), true, []Field{Up, Pid, ExitCode, Ready}, "false -1 2 false"},
		{sv(5, 5, 0, 34, ""), true, []Field{Signal, Signum, ExitCode}, "SIG??? 34 -1"},
		{sv(-100, -2, 42, 0, "r"), true, []Field{UpdownFor, ReadyFor, Ready}, "0 18446744073709551614 true"},
		{servicedir.Status{
			Stamp:      time.Unix(0x6b0246ad-37, 0x1e723ec3),
			ReadyStamp: time.Unix(0x6b0246af-37, 0x1f3251e8),
		}, true, []Field{UpdownSince, ReadySince}, "@400000006b0246ad1e723ec3 @400000006b0246af1f3251e8"},
		{sv(1, 1, 7, 0, ""), true, []Field{Pid, Pid}, "7 7"},
	}
	for _, tt := range tests {
		if got := Fields(tt.st, now, tt.normallyUp, tt.fields); got != tt.want {
			t.Errorf("Fields(%+v, %v)\n got %q\nwant %q", tt.st, tt.fields, got, tt.want)
		}
	}
}

func TestAppendFields(t *testing.T) {
	tests := []struct {
		spec string
		want []Field
		err  string
	}{
		{"", nil, ""},
		{"up,pid", []Field{Up, Pid}, ""},
		{"up,", []Field{Up}, ""},
		{"n,sig,updowns,r,p,e,readyf,readys,u", []Field{NormallyUp, Signal, UpdownSince, Ready, Paused, ExitCode, ReadyFor, ReadySince, Up}, ""},
		{"signum,w,updownf", []Field{Signum, WantedUp, UpdownFor}, ""},
		{",", nil, "invalid null option field"},
		{"up,,pid", nil, "invalid null option field"},
		{"foo", nil, "invalid option field: foo"},
		{"upx", nil, "invalid option field: upx"},
		{"up,up,up,up,up,up,up,up,up,up,up,up,up,up,up,up", make([]Field, 16), ""},
		{"up,up,up,up,up,up,up,up,up,up,up,up,up,up,up,up,up", nil, "too many option fields"},
	}
	for _, tt := range tests {
		got, err := AppendFields(nil, tt.spec)
		if tt.err != "" {
			if err == nil || err.Error() != tt.err {
				t.Errorf("AppendFields(%q) error = %v, want %q", tt.spec, err, tt.err)
			}
			continue
		}
		if err != nil || len(got) != len(tt.want) {
			t.Errorf("AppendFields(%q) = %v, %v; want %v", tt.spec, got, err, tt.want)
			continue
		}
		for i := range got {
			if got[i] != tt.want[i] {
				t.Errorf("AppendFields(%q) = %v, want %v", tt.spec, got, tt.want)
				break
			}
		}
	}
	// -u thrice then -o with 14 fields: the limit counts both kinds.
	fs := []Field{Up, Up, Up}
	if _, err := AppendFields(fs, "up,up,up,up,up,up,up,up,up,up,up,up,up,up"); !errors.Is(err, ErrTooManyFields) {
		t.Errorf("17 fields across options: %v", err)
	}
}

func TestJSON(t *testing.T) {
	tests := []struct {
		st         servicedir.Status
		normallyUp bool
		want       string
	}{
		{sv(2, 1, 13683, 0x300, "wr"), true,
			`{"version":1,"dir":"/run/svc/a","up":true,"pid":13683,"ready":true,"want_up":true,"normally_up":true,"paused":false,"finishing":false,` +
				`"since":"2027-03-01T11:59:58.25Z","ready_since":"2027-03-01T11:59:59.25Z","exit_code":null,"signal":null,"updown_seconds":2,"status_text":null,"check_output":null}`},
		{sv(0, 8, 14194, 15, "f"), false,
			`{"version":1,"dir":"/run/svc/a","up":false,"pid":null,"ready":false,"want_up":false,"normally_up":false,"paused":false,"finishing":true,` +
				`"since":"2027-03-01T12:00:00.25Z","ready_since":"2027-03-01T11:59:52.25Z","exit_code":null,"signal":"SIGTERM","updown_seconds":0,"status_text":null,"check_output":null}`},
		{sv(4, 1, 0, 0x300, "r"), true,
			`{"version":1,"dir":"/run/svc/a","up":false,"pid":null,"ready":false,"want_up":false,"normally_up":true,"paused":false,"finishing":false,` +
				`"since":"2027-03-01T11:59:56.25Z","ready_since":"2027-03-01T11:59:59.25Z","exit_code":3,"signal":null,"updown_seconds":4,"status_text":null,"check_output":null}`},
	}
	for _, tt := range tests {
		if got := string(JSON("/run/svc/a", tt.st, now, tt.normallyUp)); got != tt.want {
			t.Errorf("JSON(%+v)\n got %s\nwant %s", tt.st, got, tt.want)
		}
	}
}

func TestJSONExtras(t *testing.T) {
	st := servicedir.Status{Pid: 7, WantUp: true}
	got := string(JSONWith("d", st, st.Stamp, true, Extras{StatusText: "serving", CheckOutput: "refused\n(./check exited 1)"}))
	for _, want := range []string{`"status_text":"serving"`, `"check_output":"refused\n(./check exited 1)"`} {
		if !strings.Contains(got, want) {
			t.Errorf("JSON %s lacks %s", got, want)
		}
	}
}
