//go:build race

package openrc

const raceEnabled = true
