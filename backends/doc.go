// Package backends defines what the OpenRC side of gosv drives: a
// supervision backend that starts, stops, queries, signals and waits for
// one service. The native backend, backends/gosv, runs services in a
// `gosv svscan` tree; a backend driving real s6 or runit would be one more
// package implementing [Backend], chosen by the same OpenRC glue.
package backends
