package openrc

import (
	"os"
	"path/filepath"
)

// Status codes of `gosv openrc status` for a service OpenRC does not
// think is started: supervise_status's (OpenRC's supervise-daemon.sh),
// which the hook's gosv_status returns as they are.
const (
	StatusStopped  = 3
	StatusStopping = 4
	StatusStarting = 8
	StatusInactive = 16
)

// librcStates are the state directories librc's rc_service_state looks
// at, in its order (rc_service_state_names in OpenRC's misc.h, the same
// in 0.45 and 0.63): the last one that holds the service wins.
var librcStates = []State{Started, Starting, Stopping, Inactive}

// LibrcState is the service's base state as librc's rc_service_state
// computes it, which is what OpenRC's service_started, service_stopping,
// service_starting and service_inactive answer: the last state directory
// of librcStates whose entry for svc exists (following its symlink, as
// faccessat F_OK does), else stopped. It lets `gosv openrc status` answer
// for all four with no helper process.
func (rc RC) LibrcState(svc string) State {
	st := Stopped
	for _, s := range librcStates {
		if _, err := os.Stat(filepath.Join(rc.SvcDir, string(s), svc)); err == nil {
			st = s
		}
	}
	return st
}

// stateStatus maps a base state other than started to its status code.
func stateStatus(st State) int {
	switch st {
	case Stopping:
		return StatusStopping
	case Starting:
		return StatusStarting
	case Inactive:
		return StatusInactive
	}
	return StatusStopped
}
