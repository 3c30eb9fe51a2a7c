package openrc

import (
	"bytes"
	"errors"
	"strings"

	"mvdan.cc/sh/v3/syntax"
)

// Parse parses an init script or configuration file. A syntax error is
// returned as a *ParseError naming the file, line and column.
//
// NOTE: it parses bash, a superset of what /bin/sh (dash on Debian) runs,
// because the interpreter only implements export, local and readonly as
// bash declarations; [PosixProblems] reports what dash would reject.
func Parse(name string, src []byte) (*syntax.File, error) {
	return parse(name, src, syntax.LangBash)
}

// PosixProblems reports the constructs of src that a POSIX /bin/sh
// rejects ([[ ]], arrays, function, $'...'), as warnings: on systems whose
// /bin/sh is dash, openrc-run cannot run them.
func PosixProblems(name string, src []byte) []Problem {
	_, err := parse(name, src, syntax.LangPOSIX)
	var pe *ParseError
	if errors.As(err, &pe) {
		return []Problem{{Pos: pe.Pos, Severity: Warning, Msg: pe.Msg + " (not POSIX: /bin/sh may reject it)"}}
	}
	return nil
}

func parse(name string, src []byte, lang syntax.LangVariant) (*syntax.File, error) {
	f, err := syntax.NewParser(syntax.Variant(lang)).Parse(bytes.NewReader(src), name)
	if err == nil {
		return f, nil
	}
	var pe syntax.ParseError
	if errors.As(err, &pe) {
		return nil, &ParseError{Pos: posOf(name, pe.Pos), Msg: pe.Text}
	}
	var le syntax.LangError
	if errors.As(err, &le) {
		msg := le.Error()
		if i := strings.Index(msg, le.Pos.String()+": "); i >= 0 {
			msg = msg[i+len(le.Pos.String())+2:]
		}
		return nil, &ParseError{Pos: posOf(name, le.Pos), Msg: msg}
	}
	return nil, &ParseError{Pos: Pos{File: name}, Msg: err.Error()}
}

// Print formats a parsed file back to shell source.
func Print(f *syntax.File) string {
	var b strings.Builder
	syntax.NewPrinter().Print(&b, f)
	return b.String()
}
