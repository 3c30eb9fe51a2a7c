package servicedir

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// Read limits of s6-supervise's config readers (s6-supervise.c read_uint,
// read_downsig). Bytes beyond them are never looked at, so a 12-digit
// timeout-kill is read as its first 11 digits, exactly as s6 does.
const (
	uintFileMaxBytes   = 11 // UINT_FMT: the digits of a 32-bit unsigned int, plus one
	downSignalMaxBytes = 15
)

// ReadUintFile reads an s6 "uint file" dir/name: at most 11 bytes, cut at the first
// newline, decimal digits only. present is false when the file does not exist;
// err is non-nil (naming the file and the value) when the content is invalid.
//
// Invalid content gives an *os.PathError with Op "parse" wrapping
// [ErrBadValue], e.g. `parse svc/notification-fd: invalid value "0x3"`;
// s6-supervise warns and uses the default then. Values above 2^32-1 are
// invalid, as for skalibs uint0_scan.
func ReadUintFile(dir, name string) (v uint64, present bool, err error) {
	p := filepath.Join(dir, name)
	var buf [uintFileMaxBytes]byte
	n, err := readAtMost(p, buf[:])
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, err
	}
	v, text, ok := parseUintFile(buf[:n])
	if !ok {
		return 0, true, badValue(p, text)
	}
	return v, true, nil
}

// parseUintFile parses the content b of a uint file as s6-supervise does:
// only the first 11 bytes count, cut at the first newline (or NUL), then
// [parseUint32]. text is what was parsed, for error messages.
func parseUintFile(b []byte) (v uint64, text string, ok bool) {
	text = cutLine(b[:min(len(b), uintFileMaxBytes)])
	v, ok = parseUint32(text)
	return v, text, ok
}

// ReadDownSignal reads dir/down-signal (SIGTERM when absent; error when invalid).
// On error it still returns SIGTERM, the signal s6-supervise falls back to.
// The file is read like a uint file but up to 15 bytes, and parsed with
// [ParseSignal].
func ReadDownSignal(dir string) (unix.Signal, error) {
	p := filepath.Join(dir, DownSignalFile)
	var buf [downSignalMaxBytes]byte
	n, err := readAtMost(p, buf[:])
	if errors.Is(err, fs.ErrNotExist) {
		return unix.SIGTERM, nil
	}
	if err != nil {
		return unix.SIGTERM, err
	}
	text := cutLine(buf[:n])
	sig, ok := ParseSignal(text)
	if !ok {
		return unix.SIGTERM, badValue(p, text)
	}
	return sig, nil
}

// cutLine returns b up to its first newline, and also up to its first NUL:
// s6 hands the buffer to C string functions, which stop there.
func cutLine(b []byte) string {
	s := string(b)
	if i := strings.IndexAny(s, "\n\x00"); i >= 0 {
		s = s[:i]
	}
	return s
}

func badValue(path, text string) error {
	return &os.PathError{Op: "parse", Path: path, Err: fmt.Errorf("%w %q", ErrBadValue, text)}
}

// parseUint32 is skalibs uint0_scan: one or more decimal digits, the whole
// string, and a value that fits in 32 bits.
func parseUint32(s string) (uint64, bool) {
	if s == "" {
		return 0, false
	}
	var v uint64
	for i := range len(s) {
		c := s[i]
		if c < '0' || c > '9' {
			return 0, false
		}
		v = v*10 + uint64(c-'0')
		if v > 1<<32-1 {
			return 0, false
		}
	}
	return v, true
}
