package openrc

import (
	"slices"

	"mvdan.cc/sh/v3/interp"
	"mvdan.cc/sh/v3/syntax"
)

// Static walks of the parsed files: what the interpreter cannot tell.

// lastAssigns finds the last top-level assignment of each variable in
// sourcing order (function bodies are skipped: they run later, if ever).
// A default assigned by expansion, ${var:=value} or ${var=value} (how
// distribution scripts default command_user and friends), counts only
// for a variable not assigned before it: after an assignment it keeps
// the value, as it does in conf.d's usual override.
func lastAssigns(files []*syntax.File) map[string]Pos {
	out := map[string]Pos{}
	for _, f := range files {
		syntax.Walk(f, func(n syntax.Node) bool {
			switch n := n.(type) {
			case *syntax.FuncDecl:
				return false
			case *syntax.ParamExp:
				if n.Param == nil || n.Exp == nil || (n.Exp.Op != syntax.AssignUnset && n.Exp.Op != syntax.AssignUnsetOrNull) {
					break
				}
				if _, ok := out[n.Param.Value]; !ok {
					out[n.Param.Value] = posOf(f.Name, n.Pos())
				}
			case *syntax.Assign:
				if n.Name != nil {
					out[n.Name.Value] = posOf(f.Name, n.Pos())
				}
			case *syntax.DeclClause:
				for _, a := range n.Args {
					if a.Name != nil {
						out[a.Name.Value] = posOf(f.Name, a.Pos())
					}
				}
			}
			return true
		})
	}
	return out
}

func funcPos(files []*syntax.File, name string) Pos {
	var p Pos
	for _, f := range files {
		syntax.Walk(f, func(n syntax.Node) bool {
			if fd, ok := n.(*syntax.FuncDecl); ok && fd.Name != nil && fd.Name.Value == name {
				p = posOf(f.Name, fd.Pos())
			}
			return true
		})
	}
	return p
}

// callsIn lists the literal command names called in a function body.
func callsIn(st *syntax.Stmt) []string {
	var out []string
	syntax.Walk(st, func(n syntax.Node) bool {
		if c, ok := n.(*syntax.CallExpr); ok && len(c.Args) > 0 {
			if name := c.Args[0].Lit(); name != "" && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
		return true
	})
	return out
}

// condInfo is an external command some assignment depends on through
// control flow.
type condInfo struct {
	pos Pos
	cmd string
}

// conditional finds variables assigned under a condition that runs an
// external command (if, while, until, && and ||, case on a command's
// output): the sandbox cannot know which way such a condition goes.
func conditional(files []*syntax.File, funcs map[string]*syntax.Stmt) map[string]condInfo {
	out := map[string]condInfo{}
	for _, f := range files {
		var walk func(n syntax.Node, under *condInfo) bool
		mark := func(n syntax.Node, c *condInfo) {
			syntax.Walk(n, func(m syntax.Node) bool { return walk(m, c) })
		}
		walk = func(n syntax.Node, under *condInfo) bool {
			switch n := n.(type) {
			case *syntax.FuncDecl:
				return false
			case *syntax.Assign:
				if under != nil && n.Name != nil {
					if _, seen := out[n.Name.Value]; !seen {
						out[n.Name.Value] = *under
					}
				}
			case *syntax.IfClause:
				if c := externalIn(f.Name, n.Cond, funcs); c != nil && under == nil {
					mark(&syntax.Block{Stmts: n.Then}, c)
					if n.Else != nil {
						mark(n.Else, c)
					}
					return false
				}
			case *syntax.WhileClause:
				if c := externalIn(f.Name, n.Cond, funcs); c != nil && under == nil {
					mark(&syntax.Block{Stmts: n.Do}, c)
					return false
				}
			case *syntax.BinaryCmd:
				if n.Op == syntax.AndStmt || n.Op == syntax.OrStmt {
					if c := externalIn(f.Name, []*syntax.Stmt{n.X}, funcs); c != nil && under == nil {
						mark(n.Y, c)
						return false
					}
				}
			case *syntax.CaseClause:
				if c := externalIn(f.Name, n.Word, funcs); c != nil && under == nil {
					for _, it := range n.Items {
						mark(&syntax.Block{Stmts: it.Stmts}, c)
					}
					return false
				}
			}
			return true
		}
		syntax.Walk(f, func(n syntax.Node) bool { return walk(n, nil) })
	}
	return out
}

// externalIn returns the first external command run by node: a call that
// is neither a builtin nor a known function, or a command substitution.
func externalIn(file string, nodes any, funcs map[string]*syntax.Stmt) *condInfo {
	var c *condInfo
	check := func(n syntax.Node) bool {
		if c != nil {
			return false
		}
		switch n := n.(type) {
		case *syntax.CallExpr:
			if len(n.Args) == 0 {
				return true
			}
			name := n.Args[0].Lit()
			if name == "" || (!interp.IsBuiltin(name) && funcs[name] == nil) {
				c = &condInfo{pos: posOf(file, n.Pos()), cmd: name}
			}
		}
		return true
	}
	walkAny(nodes, check)
	return c
}

func walkAny(n any, f func(syntax.Node) bool) {
	switch n := n.(type) {
	case []*syntax.Stmt:
		for _, s := range n {
			syntax.Walk(s, f)
		}
	case syntax.Node:
		if n != nil {
			syntax.Walk(n, f)
		}
	}
}
