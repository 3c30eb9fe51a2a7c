package scan

import "github.com/gosv/gosv/internal/spawner"

// spawnerArgv0 runs the scanner's own binary as the spawn helper
// (internal/spawner): cmd/gosv maps it to `gosv spawner`.
const spawnerArgv0 = "gosv-spawner"

// spawnerExe is the scanner's binary (see holderExe).
const spawnerExe = holderExe

// DefaultSpawnerMin is where the helper starts to pay: a fork from the
// loop costs about 0.08 µs more per descriptor the scanner holds (~4 per
// service), a fork through the helper 0.2 ms more than a fork from a
// small process on a quiet machine (two more wake-ups; up to a time slice
// each on a loaded one), and the helper costs ~2 MiB. Measured
// (bench/README.md, "scale"): no gain at 1000 services under load, a
// large one at 4000. So the loop forks itself below ~2000 services (the
// loop watches about one descriptor per service), and through the helper
// above.
const DefaultSpawnerMin = 2000

// via returns the spawn helper for supervise.Proc.Via, starting it once
// the loop watches Config.SpawnerMin descriptors; nil: fork directly.
// NOTE: started late, its exec still leaves it only fds 0-3: every other
// descriptor of the scanner is close-on-exec.
func (l *loop) via() *spawner.Client {
	if l.spawner == nil && l.cfg.Spawner && l.sc != nil && len(l.fds) >= l.cfg.SpawnerMin {
		l.spawner = spawner.NewClient(spawnerExe, spawnerArgv0, func(format string, args ...any) {
			l.warn(nil, "spawner", format, args...)
		})
		l.spawner.Known = l.knownChild
	}
	return l.spawner
}

// knownChild: pid is a child the loop started and still knows (a run or
// finish, a check, a hook): never taken for a run a lost helper left.
func (l *loop) knownChild(pid int) bool {
	_, run := l.byPid[pid]
	_, check := l.checks[pid]
	_, hook := l.hooks[pid]
	_, health := l.healthPids[pid]
	return run || check || hook || health
}
