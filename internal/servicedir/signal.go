package servicedir

import "golang.org/x/sys/unix"

// sigTable is skalibs_sigtable (skalibs src/libstddjb/sig_table.c) as it
// is compiled on Linux with glibc: the #ifdef'd entries SIGEMT, SIGINFO,
// SIGLOST and SIGUNUSED do not exist there (glibc 2.26 dropped SIGUNUSED).
// Order matters: names are looked up first match wins, so 6 is ABRT (not
// IOT), 17 CHLD (not CLD) and 29 POLL (not IO). Checked against the
// installed libskarnet 2.13.1.1: s6-svstat prints these names for every
// wstat 1..64 (TestSignalNamesMatchS6svstat), and execline's trap (which
// uses sig0_scan) rejects UNUSED, LOST, INFO and EMT.
var sigTable = [...]struct {
	sig  unix.Signal
	name string
}{
	{unix.SIGABRT, "ABRT"},
	{unix.SIGALRM, "ALRM"},
	{unix.SIGBUS, "BUS"},
	{unix.SIGCHLD, "CHLD"},
	{unix.SIGCONT, "CONT"},
	{unix.SIGFPE, "FPE"},
	{unix.SIGHUP, "HUP"},
	{unix.SIGILL, "ILL"},
	{unix.SIGINT, "INT"},
	{unix.SIGKILL, "KILL"},
	{unix.SIGPIPE, "PIPE"},
	{unix.SIGQUIT, "QUIT"},
	{unix.SIGSEGV, "SEGV"},
	{unix.SIGSTOP, "STOP"},
	{unix.SIGTERM, "TERM"},
	{unix.SIGTSTP, "TSTP"},
	{unix.SIGTTIN, "TTIN"},
	{unix.SIGTTOU, "TTOU"},
	{unix.SIGUSR1, "USR1"},
	{unix.SIGUSR2, "USR2"},
	{unix.SIGPOLL, "POLL"},
	{unix.SIGPROF, "PROF"},
	{unix.SIGSYS, "SYS"},
	{unix.SIGTRAP, "TRAP"},
	{unix.SIGURG, "URG"},
	{unix.SIGVTALRM, "VTALRM"},
	{unix.SIGXCPU, "XCPU"},
	{unix.SIGXFSZ, "XFSZ"},
	{unix.SIGIOT, "IOT"},
	{unix.SIGSTKFLT, "STKFLT"},
	{unix.SIGCLD, "CLD"},
	{unix.SIGWINCH, "WINCH"},
	{unix.SIGIO, "IO"},
	{unix.SIGPWR, "PWR"},
}

// ParseSignal parses a signal the way skalibs sig0_scan does: a name with or
// without "SIG", any case, or a decimal number.
//
// Like sig0_scan it accepts any number that fits in 32 bits, including 0
// ("SIG15" is accepted too); whether the kernel knows the signal is left to
// kill(2). The whole string must match: no blanks, no sign, no newline.
func ParseSignal(s string) (unix.Signal, bool) {
	if sig, ok := parseSignalNoPrefix(s); ok {
		return sig, true
	}
	if len(s) > 3 && asciiEqualFold(s[:3], "SIG") {
		return parseSignalNoPrefix(s[3:])
	}
	return 0, false
}

func parseSignalNoPrefix(s string) (unix.Signal, bool) {
	for _, e := range sigTable {
		if asciiEqualFold(s, e.name) {
			return e.sig, true
		}
	}
	n, ok := parseUint32(s)
	return unix.Signal(n), ok
}

// SignalName returns the skalibs name without "SIG" (first match in its table),
// or "???" for unknown numbers.
func SignalName(sig unix.Signal) string {
	for _, e := range sigTable {
		if e.sig == sig {
			return e.name
		}
	}
	return "???"
}

// asciiEqualFold is strcasecmp(3) == 0 in the C locale.
// NOTE: strings.EqualFold would also fold Unicode (the Kelvin sign matches
// "k"), accepting names skalibs rejects.
func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}
