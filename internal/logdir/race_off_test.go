//go:build !race

package logdir

const raceEnabled = false
