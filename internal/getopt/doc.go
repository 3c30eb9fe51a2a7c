// Package getopt is an order-preserving POSIX getopt for the s6-compatible
// commands.
//
// The s6 tools parse their options with skalibs' subgetopt: short options
// only, clustered (-ud), arguments attached or separate (-T500, -T 500), "--"
// as an end marker, and parsing stops at the first operand (no permutation).
// Order matters to them: s6-svc sends its command letters in command-line
// order and s6-svstat prints fields in the order given. cobra/pflag permute
// and merge options, so cmd/gosv turns flag parsing off for these commands
// and walks the arguments with this package instead.
package getopt
