// Package svstat formats a service's state the way s6-svstat 2.11.3.2 does.
//
// `gosv svstat` prints exactly what s6-svstat prints, byte for byte, for
// scripts that parse it: the legacy line ("up (pid 123) 5 seconds, ready 5
// seconds"), the field mode (-o up,pid,… and the short options), and,
// gosv-only, a versioned JSON object. The formatting functions are pure
// functions of the decoded status, the current time and whether the service
// is normally up; [Print] adds the reads (lock probe, status file, down
// file) in s6-svstat's order.
package svstat
