package servicedir

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Health check files (PROTOCOL.md §9.1): gosv-only, s6 ignores them.
// health-check holds one line, the check ([HealthCheck]); the others are
// uint files (milliseconds, or a count) like timeout-check.
const (
	HealthCheckFile     = "health-check"     // one line: tcp:, http://, https:// or exec:
	HealthUnhealthyFile = "health-unhealthy" // one line: the command run when the service turns unhealthy
	HealthTimerFile     = "health-timer"     // uint file, ms: from the end of a check to the next
	HealthDelayFile     = "health-delay"     // uint file, ms: from up (or ready) to the first check
	HealthTimeoutFile   = "health-timeout"   // uint file, ms: limit of one check and of the hook
	HealthRetriesFile   = "health-retries"   // uint file: consecutive failures that make it unhealthy
	HealthGraceFile     = "health-grace"     // uint file, ms: failures this soon after up do not count
)

// HealthKind says how a check probes.
type HealthKind uint8

const (
	HealthTCP   HealthKind = iota + 1 // connect to Addr
	HealthHTTP                        // GET Path from Addr, expect the status range
	HealthHTTPS                       // the same over TLS (the certificate is not verified)
	HealthExec                        // run Command: exit 0 passes
)

// maxHealthLine bounds health-check and health-unhealthy.
const maxHealthLine = 4096

// HealthCheck is a parsed health-check line:
//
//	tcp:HOST:PORT
//	http://HOST[:PORT][/PATH] [STATUS]
//	https://HOST[:PORT][/PATH] [STATUS]
//	exec:COMMAND [ARGS...]
//
// HOST is an IP address (IPv6 in brackets) or localhost: the supervisor's
// loop does no DNS lookups. STATUS is a code (200) or a class (2xx, the
// default). COMMAND is split at blanks and executed directly, unless it
// holds a shell metacharacter, in which case /bin/sh -c runs it.
type HealthCheck struct {
	Kind HealthKind
	Host string         // as written (the HTTP Host header), without brackets
	Addr netip.AddrPort // resolved (localhost is 127.0.0.1)
	Path string         // HTTP: starts with /
	// StatusLo..StatusHi is the accepted range; Status is how it was
	// written ("" = the default 2xx).
	StatusLo, StatusHi int
	Status             string
	Command            string // exec: the command line
}

// shellMeta are the characters that make an exec: command a shell command.
const shellMeta = "'\"\\$;&|<>()*?[]{}#~`=!\n"

// CommandArgv is an exec: check's (or a hook's) argv: the command split at
// blanks, or /bin/sh -c COMMAND when it needs a shell.
func CommandArgv(command string) []string {
	if strings.ContainsAny(command, shellMeta) {
		return []string{"/bin/sh", "-c", command}
	}
	return strings.Fields(command)
}

// String is the check as written in health-check (without the default
// status), and as named in supervise/gosv/health.
func (c *HealthCheck) String() string {
	switch c.Kind {
	case HealthTCP:
		return "tcp:" + hostPort(c.Host, c.Addr.Port())
	case HealthHTTP, HealthHTTPS:
		s := "http://"
		if c.Kind == HealthHTTPS {
			s = "https://"
		}
		s += hostPort(c.Host, c.Addr.Port()) + c.Path
		if c.Status != "" {
			s += " " + c.Status
		}
		return s
	case HealthExec:
		return "exec:" + c.Command
	}
	return ""
}

func hostPort(host string, port uint16) string {
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return host + ":" + strconv.Itoa(int(port))
}

// ParseHealthCheck parses one health-check line (surrounding blanks and a
// final newline are ignored). Errors wrap [ErrBadValue] and say what is wrong.
func ParseHealthCheck(line string) (HealthCheck, error) {
	var c HealthCheck
	s := strings.TrimSpace(line)
	if len(s) > maxHealthLine || strings.ContainsAny(s, "\n\x00") {
		return c, fmt.Errorf("%w: one line of at most %d bytes expected", ErrBadValue, maxHealthLine)
	}
	switch {
	case strings.HasPrefix(s, "tcp:"):
		c.Kind = HealthTCP
		hp := s[len("tcp:"):]
		if strings.ContainsAny(hp, " \t") {
			return c, fmt.Errorf("%w: tcp:HOST:PORT has no blanks: %q", ErrBadValue, s)
		}
		return c, c.setHostPort(hp, 0)
	case strings.HasPrefix(s, "http://"), strings.HasPrefix(s, "https://"):
		return c, c.parseHTTP(s)
	case strings.HasPrefix(s, "exec:"):
		c.Kind = HealthExec
		c.Command = strings.TrimSpace(s[len("exec:"):])
		if len(CommandArgv(c.Command)) == 0 {
			return c, fmt.Errorf("%w: exec: without a command", ErrBadValue)
		}
		return c, nil
	}
	return c, fmt.Errorf("%w: %q: want tcp:HOST:PORT, http://HOST:PORT/PATH [STATUS], https://… or exec:COMMAND", ErrBadValue, s)
}

func (c *HealthCheck) parseHTTP(s string) error {
	c.Kind, s = HealthHTTP, strings.TrimPrefix(s, "http://")
	port := uint16(80)
	if rest, ok := strings.CutPrefix(s, "https://"); ok {
		c.Kind, s, port = HealthHTTPS, rest, 443
	}
	url, status, _ := strings.Cut(strings.ReplaceAll(s, "\t", " "), " ")
	if url == "" || url[0] == '/' {
		return fmt.Errorf("%w: URL without a host", ErrBadValue)
	}
	if status = strings.TrimSpace(status); status != "" {
		lo, hi, ok := parseStatus(status)
		if !ok {
			return fmt.Errorf("%w: expected status %q: want a code (200) or a class (2xx)", ErrBadValue, status)
		}
		c.StatusLo, c.StatusHi, c.Status = lo, hi, status
	} else {
		c.StatusLo, c.StatusHi = 200, 299
	}
	hp, path := url, "/"
	if i := strings.IndexByte(url, '/'); i >= 0 {
		hp, path = url[:i], url[i:]
	}
	for _, r := range path {
		if r <= ' ' || r == 0x7f {
			return fmt.Errorf("%w: control character or blank in the path %q", ErrBadValue, path)
		}
	}
	c.Path = path
	return c.setHostPort(hp, port)
}

// parseStatus reads an expected status: a code (200) or a class (2xx).
func parseStatus(s string) (lo, hi int, ok bool) {
	if len(s) != 3 || s[0] < '1' || s[0] > '5' {
		return 0, 0, false
	}
	if s[1:] == "xx" {
		base := int(s[0]-'0') * 100
		return base, base + 99, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return 0, 0, false
	}
	return n, n, true
}

// setHostPort parses HOST:PORT (PORT optional when def is not 0).
func (c *HealthCheck) setHostPort(hp string, def uint16) error {
	host, port := hp, ""
	if strings.HasPrefix(hp, "[") {
		i := strings.IndexByte(hp, ']')
		if i < 0 {
			return fmt.Errorf("%w: unclosed [ in %q", ErrBadValue, hp)
		}
		host, port = hp[1:i], hp[i+1:]
		if port != "" && port[0] != ':' {
			return fmt.Errorf("%w: %q: want [ADDRESS]:PORT", ErrBadValue, hp)
		}
		port = strings.TrimPrefix(port, ":")
	} else if i := strings.LastIndexByte(hp, ':'); i >= 0 {
		host, port = hp[:i], hp[i+1:]
	}
	p := def
	if port != "" || def == 0 {
		n, err := strconv.ParseUint(port, 10, 16)
		if err != nil || n == 0 {
			return fmt.Errorf("%w: port %q in %q: want 1-65535", ErrBadValue, port, hp)
		}
		p = uint16(n)
	}
	var addr netip.Addr
	if host == "localhost" {
		addr = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	} else {
		a, err := netip.ParseAddr(host)
		if err != nil || a.Zone() != "" {
			return fmt.Errorf("%w: host %q: want an IP address or localhost (the supervisor does no DNS lookups)", ErrBadValue, host)
		}
		addr = a.Unmap()
	}
	c.Host, c.Addr = host, netip.AddrPortFrom(addr, p)
	return nil
}

// ReadHealthCheck reads dir/health-check; ok is false when it is absent.
// An invalid file gives an *os.PathError naming it.
func ReadHealthCheck(dir string) (c HealthCheck, ok bool, err error) {
	b, ok, err := readHealthLine(dir, HealthCheckFile)
	if !ok || err != nil {
		return c, ok, err
	}
	if c, err = ParseHealthCheck(string(b)); err != nil {
		return c, true, &os.PathError{Op: "parse", Path: filepath.Join(dir, HealthCheckFile), Err: err}
	}
	return c, true, nil
}

// ReadHealthUnhealthy reads dir/health-unhealthy: the hook's command line
// (an exec: prefix is allowed); ok is false when it is absent.
func ReadHealthUnhealthy(dir string) (command string, ok bool, err error) {
	b, ok, err := readHealthLine(dir, HealthUnhealthyFile)
	if !ok || err != nil {
		return "", ok, err
	}
	command = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(string(b)), "exec:"))
	if len(CommandArgv(command)) == 0 || strings.ContainsAny(command, "\n\x00") {
		return "", true, &os.PathError{Op: "parse", Path: filepath.Join(dir, HealthUnhealthyFile),
			Err: fmt.Errorf("%w: want one command line", ErrBadValue)}
	}
	return command, true, nil
}

func readHealthLine(dir, name string) ([]byte, bool, error) {
	p := filepath.Join(dir, name)
	b := make([]byte, maxHealthLine+2)
	n, err := readAtMost(p, b)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, true, err
	}
	b = bytes.TrimRight(b[:n], "\n")
	if n > maxHealthLine+1 {
		return nil, true, &os.PathError{Op: "parse", Path: p, Err: fmt.Errorf("%w: longer than %d bytes", ErrBadValue, maxHealthLine)}
	}
	return b, true, nil
}
