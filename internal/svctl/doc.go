// Package svctl implements the s6-compatible control clients behind
// `gosv svc`, `gosv svok` and `gosv svscanctl`.
//
// They speak s6 2.11.3.2's protocol through internal/servicedir and svwait,
// and classify failures the way s6-svc and s6-svscanctl do, so that callers
// such as OpenRC's sh/s6.sh see the same exit codes: a fifo without reader is
// "supervisor not listening" (100), a missing service directory is a system
// error (111).
package svctl
