package scan

// spawnerArgv0 runs the scanner's own binary as the spawn helper
// (internal/spawner): cmd/gosv maps it to `gosv spawner`.
const spawnerArgv0 = "gosv-spawner"

// spawnerExe is the scanner's binary (see holderExe).
const spawnerExe = holderExe
