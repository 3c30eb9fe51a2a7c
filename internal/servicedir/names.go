package servicedir

import "errors"

// File and directory names inside a service directory (s6 2.11 layout).
// Paths are relative to the service directory; PROTOCOL.md describes each one.
// No other package spells them: TestNoFileNameLiterals fails on a copy.
const (
	SuperviseDir   = "supervise"
	EventDir       = "event"
	ControlPath    = "supervise/control"
	LockPath       = "supervise/lock"
	StatusPath     = "supervise/status"
	DeathTallyPath = "supervise/death_tally"
	DownFile       = "down"
	RunFile        = "run"
	FinishFile     = "finish"
	LogDir         = "log"
	LogRunPath     = "log/run" // the run of the logger service

	// Optional config files that hold one number ("uint files") or a signal.
	NotificationFDFile = "notification-fd"
	LockFDFile         = "lock-fd"
	TimeoutKillFile    = "timeout-kill"
	TimeoutFinishFile  = "timeout-finish"
	MaxDeathTallyFile  = "max-death-tally"
	DownSignalFile     = "down-signal"

	// gosv-only service-directory files (PROTOCOL.md §9.1); s6 ignores them.
	NotificationSocketFile = "notification-socket" // sd_notify readiness: "main" or "all"
	TimeoutWatchdogFile    = "timeout-watchdog"    // uint file, ms: WATCHDOG_USEC
	CheckFile              = "check"               // runit-style readiness check
	TimeoutCheckFile       = "timeout-check"       // uint file, ms: limit of one check run
	LogScriptFile          = "log-script"          // one line: the in-process logger's s6-log script
	OnEventFile            = "on-event"            // executable: the event hook (docs/events-metrics.md)
	TimeoutOnEventFile     = "timeout-on-event"    // uint file, ms: limit of one hook run
	ControlGroupFile       = "control-group"       // a group name or gid: group-permitted control (§9.7)

	// gosv-only restart-policy files (PROTOCOL.md §9.6).
	RespawnDelayFile    = "respawn-delay"     // uint file, ms: the first respawn delay
	RespawnDelayMaxFile = "respawn-delay-max" // uint file, ms: doubling cap (turns backoff on)
	RespawnResetFile    = "respawn-reset"     // uint file, ms: a run this long resets the backoff
	RespawnMaxFile      = "respawn-max"       // uint file: give up after more deaths than this in respawn-period
	RespawnPeriodFile   = "respawn-period"    // uint file, ms: the give-up window
	RespawnOnFile       = "respawn-on"        // always, failure or never
	SuccessExitFile     = "success-exit"      // exit codes and signal names that count as a success
	// FinishWantedUpFile exists: finish runs only after a death while
	// wanted up, or one the restart policy gave up at (a stop skips it).
	FinishWantedUpFile = "finish-wanted-up"

	// Files of the service directories gosv openrc generates (PROTOCOL.md
	// §9.4), read only by gosv openrc.
	OpenRCExecFile   = "openrc.json"   // the exec helper's configuration
	OpenRCStartFile  = "openrc.start"  // when OpenRC last started the service
	OpenRCReasonFile = "openrc.reason" // why gosv last gave the service up

	// GosvStateDir holds gosv-only state; s6 tools never look inside it.
	GosvStateDir = "supervise/gosv"
	// PidRecordPath records "PID STARTTIME\n" of the run process at each spawn,
	// so that a restarted scanner can adopt a service that is still running.
	PidRecordPath = "supervise/gosv/pid"
	// SupervisorRecordPath records "PID STARTTIME\n" of the process that
	// supervises the directory (the scanner, or gosv supervise), written
	// when it takes the directory: OFD locks do not tell their holder's
	// pid, and waiters need it to notice a supervisor's death at once.
	SupervisorRecordPath = "supervise/gosv/supervisor"

	// Per-run readiness state (PROTOCOL.md §9.2), written by the supervisor.
	NotifySocketRecordPath = "supervise/gosv/notify-socket"  // path of the sd_notify socket
	StatusTextPath         = "supervise/gosv/status-text"    // last sd_notify STATUS=
	ReadyDeadlinePath      = "supervise/gosv/ready-deadline" // EXTEND_TIMEOUT_USEC, as TAI64N
	CheckOutputPath        = "supervise/gosv/check-output"   // output of the last failed ./check

	// ScanCtlDir is the scanner's control directory inside a scan directory.
	ScanCtlDir     = ".s6-svscan"
	ScanLockPath   = ".s6-svscan/lock"
	ScanCtlPath    = ".s6-svscan/control"
	ScanFinishPath = ".s6-svscan/finish" // run by the scanner when it exits
	// ScanFDHolderPath is the unix socket of the scan directory's fd
	// holder (gosv only, PROTOCOL.md §9.2), which keeps the pipes of
	// in-process logs open while no scanner runs.
	ScanFDHolderPath = ".s6-svscan/gosv-fdholder"
	// ScanReexecPath is the outcome of the latest in-place re-exec
	// (svscanctl -X, scan/REEXEC.md): "ok PID\n" written by the new
	// scanner once it accepts control, or "failed REASON\n" by the old one.
	ScanReexecPath = ".s6-svscan/gosv-reexec"

	// gosv-only entries of a scan directory (PROTOCOL.md §10); the leading
	// dot keeps the scanner from taking them for services.
	ScanNotifyDir      = ".gosv-notify"         // the services' sd_notify sockets
	ScanCatchAllRecord = ".gosv-catch-all"      // gosv-svscan: the catch-all log directory, one line
	ScanCatchAllFifo   = ".gosv-catch-all.fifo" // gosv-svscan: the fifo the catch-all logger reads
	ScanEventsDir      = ".gosv-events"         // the events log (JSON lines, rotated; internal/events)

	// EventsLogDir is the events log of a directory run by gosv supervise
	// (no scan directory): the same log as ScanEventsDir, for one service.
	EventsLogDir = "supervise/gosv/events"
)

// fileNames is every name above: the set TestNoFileNameLiterals looks for
// in the string literals of other packages. TestFileNamesComplete checks
// that it holds every exported string constant of this package but
// [ControlLetters].
var fileNames = []string{
	SuperviseDir, EventDir, ControlPath, LockPath, StatusPath, DeathTallyPath,
	DownFile, RunFile, FinishFile, LogDir, LogRunPath,
	NotificationFDFile, LockFDFile, TimeoutKillFile, TimeoutFinishFile, MaxDeathTallyFile, DownSignalFile,
	NotificationSocketFile, TimeoutWatchdogFile, CheckFile, TimeoutCheckFile, LogScriptFile, FinishWantedUpFile,
	RespawnDelayFile, RespawnDelayMaxFile, RespawnResetFile, RespawnMaxFile, RespawnPeriodFile, RespawnOnFile, SuccessExitFile,
	OpenRCExecFile, OpenRCStartFile, OpenRCReasonFile,
	GosvStateDir, PidRecordPath, SupervisorRecordPath,
	NotifySocketRecordPath, StatusTextPath, ReadyDeadlinePath, CheckOutputPath,
	ScanCtlDir, ScanLockPath, ScanCtlPath, ScanFinishPath, ScanFDHolderPath, ScanReexecPath,
	ScanNotifyDir, ScanCatchAllRecord, ScanCatchAllFifo,
	PidfileFile, TimeoutPidfileFile, LaunchErrorPath, LaunchRecordPath,
	PolicyStatePath, HealthStatePath,
	OnEventFile, TimeoutOnEventFile, ControlGroupFile, ScanEventsDir, EventsLogDir,
	HealthCheckFile, HealthUnhealthyFile, HealthTimerFile, HealthDelayFile, HealthTimeoutFile,
	HealthRetriesFile, HealthGraceFile,
	RunitDir, RunitOkPath, RunitDownHook, RunitNotifyFifo, RunitLogConfig, RunitPidPath, RunitControlDir,
}

// Sizes of the binary files (PROTOCOL.md §4, §5, §7).
const (
	StatusSize     = 35
	DeathTallySize = 14
	// EventFifoNameLen is the length of a listener fifo name: "ftrig1:@" + 24 hex + ":" + 6.
	EventFifoNameLen = 39
)

// ControlLetters are the command letters of supervise/control that
// s6-supervise 2.11 acts on (PROTOCOL.md §6), in s6-svc's option order;
// a supervisor ignores any other byte.
const ControlLetters = "abqhkti12pcyroduDUxOQ"

// Sentinel errors callers branch on.
var (
	ErrLocked       = errors.New("lock held by another supervisor") // Lock: somebody holds it
	ErrNotListening = errors.New("supervisor not listening")        // WriteControl: ENXIO/ENOENT on the fifo
	ErrShortStatus  = errors.New("status file too short")           // ReadStatus/UnpackStatus: < 35 bytes
	// ErrBadValue is wrapped by the errors of the config-file and pid-record
	// parsers; s6-supervise warns and falls back to the default in that case.
	ErrBadValue = errors.New("invalid value")
	// ErrBadDeathTally reports a death_tally whose size is not a multiple of
	// 14 bytes. s6 truncates such a file; AppendDeath starts it over.
	ErrBadDeathTally = errors.New("size is not a multiple of 14")
)

// tmpSuffix is the suffix of the temporary files renamed into place, as in
// skalibs openwritenclose_suffix (supervise/status.new, death_tally.new).
const tmpSuffix = ".new"
