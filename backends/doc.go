// Package backends defines what the OpenRC side of gosv drives: a
// supervision backend that starts, stops, queries, signals and waits for
// one service. Its waits speak package svwait's goals (s6-svwait's
// letters), whatever the supervisor. The native backend, backends/gosv,
// runs services in a `gosv svscan` tree; a backend driving real s6 or
// runit would be one more package implementing [Backend], made by name in
// backends/registry, the only package that knows the concrete ones.
package backends
