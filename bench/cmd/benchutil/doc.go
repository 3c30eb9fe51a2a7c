// Command benchutil holds the small measuring tools bench/run.sh needs:
//
//	benchutil waitsize -file F -bytes N -timeout D
//	    block on inotify until F is at least N bytes long (services append
//	    "x\n" to a marker file when they start)
//	benchutil bringup -marker F -n N [-from SRC -to DST] [-spawn DIR] [-timeout D] [-- CMD...]
//	    take a timestamp, symlink every entry of SRC into DST, start CMD (a
//	    trigger such as "s6-svscanctl -a"), and report the time until the
//	    N-th service appended its marker; -spawn starts every DIR/*/run
//	    itself instead (the no-supervisor baseline)
//	benchutil procs -comm a,b [-pss] [-ctxsw]
//	    sum PSS (smaps_rollup) and context switches (all threads) of every
//	    process in /proc whose comm is in the list
//	benchutil report -raw FILE -machine FILE
//	    turn the raw result lines into markdown tables
//	benchutil logcpu -pidfile F -current LOG -scanner PID [-n N]
//	    write N lines into an in-process logged service's pipe, each after
//	    the previous one is in LOG, and report gosv svscan's CPU per line
//
// The processes are chosen by comm because every benchmark runs in its own
// PID namespace with its own /proc: the only processes visible are the ones
// the benchmark started.
package main
