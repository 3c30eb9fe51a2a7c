package openrc

import (
	"fmt"

	"mvdan.cc/sh/v3/syntax"
)

// Pos is a position in a named file; Line and Col start at 1. The zero Pos
// means "not from a file" (a live value, a default).
type Pos struct {
	File      string
	Line, Col uint
}

func posOf(file string, p syntax.Pos) Pos {
	if !p.IsValid() {
		return Pos{File: file}
	}
	return Pos{File: file, Line: p.Line(), Col: p.Col()}
}

// IsValid reports whether p names a place in a file.
func (p Pos) IsValid() bool { return p.File != "" }

// String formats p as file:line:col (file alone when there is no line).
func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// ParseError is a syntax error in an init script or configuration file,
// printed as file:line:col: msg.
type ParseError struct {
	Pos
	Msg string
}

func (e *ParseError) Error() string { return e.Pos.String() + ": " + e.Msg }

// Severity ranks a [Problem].
type Severity int

const (
	Warning Severity = iota // the service works, maybe not as meant
	Error                   // the service cannot start as written
	Note                    // what gosv will do (check only; start does not print it)
)

func (s Severity) String() string {
	switch s {
	case Error:
		return "error"
	case Note:
		return "note"
	}
	return "warning"
}

// Problem is one finding about a service's configuration: a lint of
// `gosv openrc check`, or a reason why [Service.Spec] refuses a value.
type Problem struct {
	Pos      Pos
	Severity Severity
	Msg      string
}

// String formats the problem as "file:line:col: severity: msg", or
// "severity: msg" when it has no position.
func (p Problem) String() string {
	if !p.Pos.IsValid() {
		return p.Severity.String() + ": " + p.Msg
	}
	return p.Pos.String() + ": " + p.Severity.String() + ": " + p.Msg
}
