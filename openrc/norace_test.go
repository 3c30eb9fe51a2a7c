//go:build !race

package openrc

const raceEnabled = false
