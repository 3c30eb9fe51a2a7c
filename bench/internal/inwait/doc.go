// Package inwait blocks on inotify events with a deadline, for the benchmark
// helpers: they must measure without polling or sleeping, so every wait is a
// poll(2) on the inotify descriptor bounded by an absolute deadline.
package inwait
