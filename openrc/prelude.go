package openrc

// prelude defines what openrc-run.sh and functions.sh define before the
// configuration is sourced, as far as a static resolution needs it: the
// pure helpers really, the output helpers as no-ops, and the dependency
// functions recording into Depend.
const prelude = `
yesno() {
	[ -z "$1" ] && return 1
	case "$1" in
	[Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;;
	[Nn][Oo]|[Ff][Aa][Ll][Ss][Ee]|[Oo][Ff][Ff]|0) return 1 ;;
	esac
	eval _gosv_v=\$$1
	case "$_gosv_v" in
	[Yy][Ee][Ss]|[Tt][Rr][Uu][Ee]|[Oo][Nn]|1) return 0 ;;
	esac
	return 1
}
ebegin() { :; }
einfo() { :; }
einfon() { :; }
ewarn() { :; }
ewarnn() { :; }
eerror() { :; }
eerrorn() { :; }
veinfo() { :; }
vewarn() { :; }
vebegin() { :; }
eindent() { :; }
eoutdent() { :; }
veindent() { :; }
veoutdent() { :; }
eend() { return ${1:-0}; }
ewend() { return ${1:-0}; }
veend() { return ${1:-0}; }
vewend() { return ${1:-0}; }
config() { _gosv_dep config "$@"; }
need() { _gosv_dep need "$@"; }
use() { _gosv_dep use "$@"; }
want() { _gosv_dep want "$@"; }
before() { _gosv_dep before "$@"; }
after() { _gosv_dep after "$@"; }
provide() { _gosv_dep provide "$@"; }
keyword() { _gosv_dep keyword "$@"; }
`

// preludeFuncs are the prelude's functions, which are not the service's.
var preludeFuncs = map[string]bool{
	"yesno": true, "ebegin": true, "einfo": true, "einfon": true, "ewarn": true, "ewarnn": true,
	"eerror": true, "eerrorn": true, "veinfo": true, "vewarn": true, "vebegin": true, "eindent": true,
	"eoutdent": true, "veindent": true, "veoutdent": true, "eend": true, "ewend": true, "veend": true,
	"vewend": true, "config": true, "need": true, "use": true, "want": true, "before": true,
	"after": true, "provide": true, "keyword": true,
}
