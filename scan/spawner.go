package scan

import "github.com/gosv/gosv/internal/spawner"

// spawnerArgv0 runs the scanner's own binary as the spawn helper
// (internal/spawner): cmd/gosv maps it to `gosv spawner`.
const spawnerArgv0 = "gosv-spawner"

// spawnerExe is the scanner's binary (see holderExe).
const spawnerExe = holderExe

// DefaultSpawnerMin is where the helper starts to pay: a fork from the
// loop costs about 0.08 µs more per descriptor the scanner holds (~4 per
// service), a fork through the helper about 0.2 ms more than a fork from
// a small process (two more wake-ups), and the helper costs ~2 MiB. So
// below ~500 services the loop forks itself, and above, through the
// helper (bench/README.md, "scale").
const DefaultSpawnerMin = 500

// via returns the spawn helper for supervise.Proc.Via, starting it once
// the loop watches Config.SpawnerMin descriptors; nil: fork directly.
// NOTE: started late, its exec still leaves it only fds 0-3: every other
// descriptor of the scanner is close-on-exec.
func (l *loop) via() *spawner.Client {
	if l.spawner == nil && l.cfg.Spawner && l.sc != nil && len(l.fds) >= l.cfg.SpawnerMin {
		l.spawner = spawner.NewClient(spawnerExe, spawnerArgv0, func(format string, args ...any) {
			l.warn(nil, "spawner", format, args...)
		})
	}
	return l.spawner
}
