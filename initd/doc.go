// Package initd is gosv as PID 1 (`gosv init`), in a container or as the
// machine's init, in runit's three stages around the scanner of package
// scan, which it reuses whole (adoption, loggers, control letters).
//
// # State model
//
// One pure machine ([Step], machine.go) decides; the executor (run.go)
// only carries its actions out. Before and after the scanner's loop the
// executor waits itself (signals, SIGCHLD and one deadline); during the
// loop, the loop calls it (scan.Init), so one goroutine owns everything
// and package reap stays the only waiter.
//
//	Stage1   -1 FILE runs, no service yet. Its exit 0 → Stage2; another
//	         code → a message, that code, Stage3 (no service ever starts).
//	         A shutdown request meanwhile is passed to stage 1's process
//	         group and taken up when it ends.
//	Stage2   the scanner supervises SCANDIR; once it took the directory
//	         the main command starts. A shutdown request (signal or letter,
//	         table below), the end of the main command or of the scanner
//	         → the scanner exits with t (or q): every service's process
//	         group gets its down-signal (s6's d), the main command gets the
//	         signal → Stopping, deadline -t.
//	Stopping services and main command stop; both gone → Stage3. At -t:
//	         SIGKILL to every service's group and the main command's
//	         → Killing, deadline KillGrace.
//	Killing  both gone → Stage3. At KillGrace the loop is abandoned.
//	Stage3   -3 FILE runs, deadline -t (then SIGKILL). Its end, or no
//	         -3 → Final.
//	Final    SIGTERM (and SIGCONT) to every process left → ECHILD from
//	         wait4 → Done; at FinalGrace SIGKILL to all → Last.
//	Last     ECHILD, or FinalGrace again → Done.
//	Done     exit with the code (a container, or not PID 1), or sync and
//	         reboot(2) with How (the machine's real PID 1).
//
// The exit code is the main command's (128+signal when killed), else
// stage 1's failure code, else 0.
//
// # Signals
//
// PID 1 gets no default signal action from the kernel, and the Go
// runtime's default for an uncaught SIGTERM, SIGHUP, SIGSEGV sent by
// kill… is to exit: gosv init catches every signal but SIGKILL, SIGSTOP
// (uncatchable), SIGURG and SIGPROF (the runtime's, harmless), so that no
// signal ever ends it.
//
//	signal          with a main command running     without   on the machine's PID 1, ends with
//	SIGTERM         stage 3; main gets SIGTERM      stage 3   reboot
//	SIGINT          stage 3; main gets SIGINT       stage 3   reboot (ctrl-alt-del: CAD is turned off)
//	SIGPWR          stage 3; main gets SIGTERM      stage 3   poweroff
//	SIGUSR1         forwarded                        scanner   halt (stage 3)
//	SIGUSR2         forwarded                        scanner   poweroff (stage 3)
//	SIGCHLD         reap                             reap
//	SIGPIPE         ignored                          ignored
//	any other       forwarded to the main command    scanner: SIGHUP rescans (h), SIGQUIT is q,
//	                                                 SIGALRM is a, SIGABRT is b (refused), a
//	                                                 .s6-svscan/SIGNAME script if any, else ignored
//
// Letters of .s6-svscan/control (gosv svscanctl, s6-svscanctl): t stage
// 3 then poweroff, i stage 3 then reboot, q stage 3 (loggers stopped too)
// then halt; in a container all three exit. b, which would leave the
// services behind, is refused with a warning.
package initd
