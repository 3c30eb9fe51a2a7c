// Command latency measures how long a supervisor takes to restart a killed
// service.
//
// Each supervised service's run script appends one line "PID EPOCHREALTIME"
// to its own file in a stamp directory, without forking, then execs a
// sleeper. latency waits until a service has been up longer than -min-up
// (s6-supervise and runsv delay restarts of services that lived less than a
// second), reads CLOCK_REALTIME, sends SIGKILL to the PID, and waits on
// inotify for the new line. The sample is new stamp − kill time. Services
// are killed round-robin, oldest first, so that K services give K samples
// per -min-up period.
//
// Nothing in the measuring path sleeps: it blocks in poll(2) on the inotify
// descriptor with a deadline.
package main
