// Package tests holds gosv's integration suite: real scanners (gosv or
// s6-svscan) driven by the real s6 tools inside private mount and PID
// namespaces. The tests are built only with -tags integration; see
// README.md.
package tests
