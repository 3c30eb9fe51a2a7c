//go:build race

package logdir

// raceEnabled: the race detector allocates, so allocation counts are off.
const raceEnabled = true
