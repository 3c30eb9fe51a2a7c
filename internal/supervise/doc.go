// Package supervise holds the per-service supervision logic shared by the
// scanner (many services, one loop) and `gosv supervise` (one service): the
// pure state machine ([Step]), the reading of a service directory's
// configuration files, and the spawning of run and finish.
//
// It performs no waiting and owns no event loop: the loop lives in package
// scan, which feeds events to machines and executes their actions.
package supervise
