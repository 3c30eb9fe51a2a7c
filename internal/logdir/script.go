package logdir

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"regexp"
	"strconv"
	"time"
)

// Defaults and limits of the script language, as s6-log 2.11.3.2 has them
// (s6-log.c script_secondpass; checked against the binary).
const (
	DefaultMaxSize   = 99999     // s: bytes of current before a rotation
	MinMaxSize       = 4096      // s below this is raised to it
	MaxMaxSize       = 268435455 // s above this is lowered to it
	DefaultArchives  = 10        // n: archives kept
	DefaultTolerance = 2000      // l: accepted and checked, see SCRIPT.md
	DefaultRetry     = 2 * time.Second
	// MaxRetry caps the r directive: a blocked log directory is retried at
	// least this often, so a freed disk is noticed within 10 s.
	MaxRetry      = 10 * time.Second
	maxAlertBytes = 200 // E: default length of a 2 (alert) line
	maxActions    = 64  // the per-line selection is a uint64 bit set
)

// ErrScript is wrapped by every error [ParseScript] returns.
var ErrScript = errors.New("bad logging script")

// ScriptError is a directive ParseScript cannot accept.
type ScriptError struct {
	Directive string
	Reason    string // "unrecognized directive", "syntax error at directive", ...
	whole     bool   // about the whole script: no directive to name
}

func (e *ScriptError) Error() string {
	if e.whole {
		return e.Reason
	}
	return e.Reason + ": " + e.Directive
}

func (e *ScriptError) Unwrap() error { return ErrScript }

// Script is a compiled logging script: a list of elements, each a run of
// selection directives followed by a run of actions. It is immutable and
// may be shared by loggers in different goroutines.
type Script struct {
	elems   []element
	dirs    []DirConfig // the directory actions, in script order
	nacts   int
	selects bool // some element has a selection: lines must be matched
	// wholeLines: lines are handled only once complete (selections need the
	// whole line, alerts are cut to E bytes); otherwise an incomplete line
	// is written as it comes.
	wholeLines bool
	stampTAI   bool // some action asks for t (the batch stamp is formatted once)
	stampISO   bool // some action asks for T
}

// DirConfig is the rotation policy of one log directory, as set by the
// control directives that precede it in the script.
type DirConfig struct {
	Path      string        // as written in the script, relative to the logger's cwd
	MaxSize   int64         // s
	Archives  int           // n
	MaxTotal  int64         // S: total size of the archives, 0 = no limit
	Tolerance int           // l: s6-log's rotation slack, checked but unused (SCRIPT.md)
	Retry     time.Duration // r: how long a blocked directory waits before a retry
}

type element struct {
	sels []selection
	acts []action
}

type selKind uint8

const (
	selDefault selKind = iota // f: lines no earlier element acted on
	selPlus                   // +re: select matching lines
	selMinus                  // -re: deselect matching lines
)

type selection struct {
	kind selKind
	re   *regexp.Regexp
}

type actKind uint8

const (
	actDir    actKind = iota // . or /: a log directory
	actStdout                // 1
	actStderr                // 2: "PROG: alert: line", cut to E bytes
)

type action struct {
	kind     actKind
	id       int // bit in the per-line selection set; for actDir also the index in dirs
	dir      int
	tai, iso bool   // t, T
	prefix   string // p, with its trailing space; "" for none
	alertMax int    // E, for actStderr
}

// Dirs returns the log directories of the script, in order.
func (s *Script) Dirs() []DirConfig { return append([]DirConfig(nil), s.dirs...) }

// ParseScript compiles an s6-log logging script, one directive per
// argument: ParseScript([]string{"t", "s1048576", "n10", "/var/log/foo"}).
// The supported directives and their differences from s6-log and svlogd
// are listed in SCRIPT.md. Errors wrap [ErrScript] and are
// [*ScriptError]s.
func ParseScript(args []string) (*Script, error) {
	p := scriptParser{s: &Script{}, cur: DirConfig{
		MaxSize: DefaultMaxSize, Archives: DefaultArchives,
		Tolerance: DefaultTolerance, Retry: DefaultRetry,
	}, alertMax: maxAlertBytes}
	for _, a := range args {
		if err := p.directive(a); err != nil {
			return nil, err
		}
	}
	if p.acted {
		p.s.elems = append(p.s.elems, p.elem)
	} else if len(p.s.elems) == 0 {
		return nil, &ScriptError{Reason: "no action directive specified", whole: true}
	}
	return p.s, nil
}

// ParseScriptAt is ParseScript with relative directory actions taken
// relative to base rather than to the process's working directory: for a
// service directory's log-script file, base is the service directory.
func ParseScriptAt(base string, args []string) (*Script, error) {
	s, err := ParseScript(args)
	if err != nil {
		return nil, err
	}
	for i, d := range s.dirs {
		if !filepath.IsAbs(d.Path) {
			s.dirs[i].Path = filepath.Join(base, d.Path)
		}
	}
	return s, nil
}

type scriptParser struct {
	s        *Script
	elem     element
	acted    bool // the current element has an action: a selection starts a new one
	cur      DirConfig
	tai, iso bool
	prefix   string
	alertMax int
}

func (p *scriptParser) directive(a string) error {
	if a == "" {
		return &ScriptError{Directive: a, Reason: "unrecognized directive"}
	}
	rest := a[1:]
	switch a[0] {
	case 'f', '+', '-':
		return p.selection(a)
	case 'n':
		n, ok := scanUint(rest, 32)
		if !ok {
			return unrecognized(a)
		}
		p.cur.Archives = int(n)
	case 's':
		n, ok := scanUint(rest, 32)
		if !ok {
			return unrecognized(a)
		}
		p.cur.MaxSize = min(max(int64(n), MinMaxSize), MaxMaxSize)
	case 'S':
		n, ok := scanUint(rest, 64)
		if !ok {
			return unrecognized(a)
		}
		p.cur.MaxTotal = int64(min(n, math.MaxInt64))
	case 'l':
		n, ok := scanUint(rest, 32)
		if !ok {
			return unrecognized(a)
		}
		if int64(n) > p.cur.MaxSize>>1 {
			return &ScriptError{Directive: a, Reason: "conflicts with previous s directive"}
		}
		p.cur.Tolerance = int(n)
	case 'r':
		n, ok := scanUint(rest, 32)
		if !ok {
			return unrecognized(a)
		}
		p.cur.Retry = min(time.Duration(n)*time.Millisecond, MaxRetry)
	case 'E':
		n, ok := scanUint(rest, 31)
		if !ok {
			return unrecognized(a)
		}
		p.alertMax = int(n)
	case '^':
		if _, ok := scanUint(rest, 31); !ok {
			return unrecognized(a)
		}
	case '!':
		if rest != "" {
			return &ScriptError{Directive: a, Reason: "processors are not supported"}
		}
	case 'p':
		p.prefix = ""
		if rest != "" {
			p.prefix = rest + " "
		}
	case 't', 'T':
		if rest != "" {
			return syntaxError(a)
		}
		if a[0] == 't' {
			p.tai = true
		} else {
			p.iso = true
		}
	case '1', '2':
		if rest != "" {
			return syntaxError(a)
		}
		kind := actStdout
		if a[0] == '2' {
			kind = actStderr
		}
		return p.action(action{kind: kind, alertMax: p.alertMax})
	case '=':
		if rest == "" {
			return syntaxError(a)
		}
		return &ScriptError{Directive: a, Reason: "status files are not supported"}
	case '.', '/':
		p.cur.Path = a
		p.s.dirs = append(p.s.dirs, p.cur)
		return p.action(action{kind: actDir, dir: len(p.s.dirs) - 1})
	default:
		return unrecognized(a)
	}
	return nil
}

func (p *scriptParser) selection(a string) error {
	sel := selection{kind: selDefault}
	if a[0] == 'f' {
		if len(a) > 1 {
			return syntaxError(a)
		}
	} else {
		re, err := compileERE(a[1:])
		if err != nil {
			return &ScriptError{Directive: a, Reason: "unrecognized directive (" + err.Error() + ")"}
		}
		sel = selection{kind: selPlus, re: re}
		if a[0] == '-' {
			sel.kind = selMinus
		}
	}
	if p.acted {
		p.s.elems = append(p.s.elems, p.elem)
		p.elem, p.acted = element{}, false
	}
	p.elem.sels = append(p.elem.sels, sel)
	p.s.selects, p.s.wholeLines = true, true
	return nil
}

func (p *scriptParser) action(act action) error {
	if p.s.nacts >= maxActions {
		return &ScriptError{Reason: fmt.Sprintf("more than %d actions", maxActions), whole: true}
	}
	act.id = p.s.nacts
	act.tai, act.iso, act.prefix = p.tai, p.iso, p.prefix
	p.s.wholeLines = p.s.wholeLines || act.kind == actStderr
	p.s.stampTAI = p.s.stampTAI || p.tai
	p.s.stampISO = p.s.stampISO || p.iso
	p.tai, p.iso = false, false // t and T apply to one action; p stays (as s6-log)
	p.s.nacts++
	p.elem.acts = append(p.elem.acts, act)
	p.acted = true
	return nil
}

// compileERE compiles a POSIX extended regular expression with Go's RE2
// syntax. The differences (SCRIPT.md) do not matter for the usual log
// filters: RE2 accepts every ERE construct except back-references (which
// ERE does not have either), collating elements [[.x.]] and equivalence
// classes [[=x=]]; it adds \d, \w, (?i) and friends.
func compileERE(expr string) (*regexp.Regexp, error) {
	return regexp.Compile(expr)
}

// scanUint parses a whole string of decimal digits that fits in bits bits,
// as skalibs' uint320_scan/uint640_scan: no sign, no blanks, no empty string.
func scanUint(s string, bits int) (uint64, bool) {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, bits)
	return n, err == nil
}

func unrecognized(a string) error {
	return &ScriptError{Directive: a, Reason: "unrecognized directive"}
}

func syntaxError(a string) error {
	return &ScriptError{Directive: a, Reason: "syntax error at directive"}
}

// selectLine evaluates the script's selections for one line (without its
// newline) and returns the set of actions that receive it, as s6-log's
// script_run: the selected flag starts true and carries from one element
// to the next; f resets it to "no earlier element acted".
func (s *Script) selectLine(line []byte) uint64 {
	var set uint64
	selected, acted := true, false
	for i := range s.elems {
		e := &s.elems[i]
		for _, sel := range e.sels {
			switch sel.kind {
			case selDefault:
				selected = !acted
			case selPlus:
				if !selected && sel.re.Match(line) {
					selected = true
				}
			case selMinus:
				if selected && sel.re.Match(line) {
					selected = false
				}
			}
		}
		if selected {
			acted = true
			for _, a := range e.acts {
				set |= 1 << a.id
			}
		}
	}
	return set
}
