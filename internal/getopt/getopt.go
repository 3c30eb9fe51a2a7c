package getopt

import (
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"
)

// End is returned by [Parser.Next] when there are no more options.
const End rune = -1

// Sentinel errors wrapped by [*Error], for callers that branch on the kind.
var (
	ErrUnknownOption = errors.New("unknown option")
	ErrMissingArg    = errors.New("missing argument")
)

// Error reports a bad option. Opt is the offending option character.
type Error struct {
	Opt rune
	Err error // ErrUnknownOption or ErrMissingArg
}

func (e *Error) Error() string {
	if e.Err == ErrMissingArg {
		return fmt.Sprintf("option -%c requires an argument", e.Opt)
	}
	return fmt.Sprintf("%v -%c", e.Err, e.Opt)
}

func (e *Error) Unwrap() error { return e.Err }

// Parser walks an argument list, one option at a time.
// It is not safe for concurrent use.
type Parser struct {
	args []string
	opts string
	ind  int // index in args of the word being parsed
	pos  int // byte offset inside args[ind] of the next option char; 0 = start a new word
	done bool
}

// New returns a parser over args (without the program name). optstring lists
// the accepted option characters; a character followed by ':' takes an
// argument, as in POSIX getopt(3).
func New(args []string, optstring string) *Parser {
	return &Parser{args: args, opts: optstring}
}

// Next returns the next option and its argument (empty for options without
// one). It returns End when it reaches the first operand, a lone "-", "--"
// (which is consumed) or the end of args; [Parser.Index] then gives the
// index of the first operand. After an error, parsing should stop.
func (p *Parser) Next() (opt rune, arg string, err error) {
	if p.done {
		return End, "", nil
	}
	if p.pos == 0 {
		if p.ind >= len(p.args) {
			p.done = true
			return End, "", nil
		}
		w := p.args[p.ind]
		if w == "--" {
			p.ind++
			p.done = true
			return End, "", nil
		}
		if len(w) < 2 || w[0] != '-' {
			p.done = true
			return End, "", nil
		}
		p.pos = 1
	}
	w := p.args[p.ind]
	opt, size := utf8.DecodeRuneInString(w[p.pos:])
	p.pos += size
	takesArg, known := p.lookup(opt)
	switch {
	case !known:
		p.advanceIfWordDone()
		return opt, "", &Error{Opt: opt, Err: ErrUnknownOption}
	case !takesArg:
		p.advanceIfWordDone()
		return opt, "", nil
	case p.pos < len(w): // -T500
		arg = w[p.pos:]
		p.ind++
		p.pos = 0
		return opt, arg, nil
	case p.ind+1 < len(p.args): // -T 500
		arg = p.args[p.ind+1]
		p.ind += 2
		p.pos = 0
		return opt, arg, nil
	default:
		p.ind++
		p.pos = 0
		p.done = true
		return opt, "", &Error{Opt: opt, Err: ErrMissingArg}
	}
}

// Index returns the index in args of the first operand once Next has
// returned End (len(args) when there is none).
func (p *Parser) Index() int { return p.ind }

func (p *Parser) advanceIfWordDone() {
	if p.pos >= len(p.args[p.ind]) {
		p.ind++
		p.pos = 0
	}
}

// lookup reports whether opt is in the optstring and whether it takes an
// argument. ':' itself is never an option.
func (p *Parser) lookup(opt rune) (takesArg, known bool) {
	if opt == ':' || opt == utf8.RuneError {
		return false, false
	}
	i := strings.IndexRune(p.opts, opt)
	if i < 0 {
		return false, false
	}
	return strings.HasPrefix(p.opts[i+utf8.RuneLen(opt):], ":"), true
}
