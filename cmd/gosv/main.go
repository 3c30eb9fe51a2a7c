// Command gosv is the gosv supervision suite's multi-call binary: `gosv svc`,
// `gosv svstat`… or, installed under a name like gosv-svc, that command.
package main

import "os"

func main() { os.Exit(run(os.Args)) }
