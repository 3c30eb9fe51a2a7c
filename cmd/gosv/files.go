package main

import (
	"strings"

	"github.com/spf13/cobra"
)

// rootLong is gosv's own help: what the exit codes mean for every command.
const rootLong = `gosv supervises processes: one gosv svscan process supervises every
service directory of a scan directory, with s6's on-disk protocol (s6's
tools work on it), and supervisor=gosv plugs it into OpenRC. Each command
is also run when the binary is called gosv-COMMAND (gosv-svc is gosv svc).
The service directory's files are described in gosv-servicedir(5), the
init script variables gosv reads in gosv-openrc(5).

FILES
  /etc/rc.conf.d/gosv.conf          the OpenRC hook of supervisor=gosv
  /etc/init.d/gosv-svscan           the scanner's service (conf.d beside)
  /run/openrc/gosv-scan             its scan directory ($RC_SVCDIR/gosv-scan)
  /run/openrc/gosv-services         the service directories gosv openrc
                                    generates from init scripts

EXIT STATUS
  0    success
  1    false: not running, failed (see each command)
  99   a wait's timeout passed
  100  usage error
  101  a bug in gosv: please report
  111  system error`

// commandFiles is the FILES section of each command's help and man page,
// by command path below gosv, for the commands whose help does not write
// its own (svwait's explains more). withFiles puts it before EXIT STATUS.
var commandFiles = map[string]string{
	"svc": `  DIR/supervise/control    the FIFO the command letters are written to
  DIR/down                 created by -D and -Q, removed by -U
  DIR/event/, DIR/supervise/status
                           what -w subscribes to and reads`,
	"svstat": `  DIR/supervise/status     the state printed
  DIR/supervise/lock       held by the running supervisor
  DIR/down                 "normally down"
  DIR/supervise/gosv/policy, DIR/supervise/gosv/health
                           gosv's restart policy and health state`,
	"svok":      `  DIR/supervise/lock       held by the running supervisor`,
	"svscanctl": `  DIR/.s6-svscan/control   the FIFO the command letters are written to`,
	"svscan": `  SCANDIR/NAME/                 a service directory (gosv-servicedir(5))
  SCANDIR/.s6-svscan/lock       held by the running scanner
  SCANDIR/.s6-svscan/control    the FIFO gosv svscanctl writes to
  SCANDIR/.s6-svscan/finish, SCANDIR/.s6-svscan/SIGNAME
                                run at exit, and on signal SIGNAME
  SCANDIR/.s6-svscan/gosv-fdholder
                                the fd holder keeping log pipes
  SCANDIR/.gosv-events          the events log (gosv events)`,
	"supervise": `  DIR/                      the service directory (gosv-servicedir(5))
  DIR/supervise/lock        held while this supervisor runs
  DIR/supervise/control     the FIFO gosv svc writes to
  DIR/supervise/status      the state gosv svstat reads
  DIR/supervise/gosv/events the events log (gosv events --scandir DIR)`,
	"log": `  LOGDIR/current            the file being written
  LOGDIR/@TAI64N.s          rotated archives (.u: not completely written)
  LOGDIR/lock               held by the logger writing LOGDIR`,
	"logs": `  LOGDIR/current, LOGDIR/@TAI64N.s, LOGDIR/@TAI64N.u
                            the lines, read oldest first
  NAME/log-script, NAME/log/run
                            where a service's log directory is found
  /run/openrc/gosv-scan     the scan directory NAME is looked up in`,
	"events": `  SCANDIR/.gosv-events     the scanner's events log (rotated copies beside)
  DIR/supervise/gosv/events
                           gosv supervise DIR's events log
  /run/openrc/gosv-scan    the default scan directory`,
	"metrics": `  DIR/supervise/status, DIR/supervise/death_tally
                           state and recent deaths of each service
  DIR/supervise/gosv/policy, DIR/supervise/gosv/health
                           restart policy and health state
  /run/openrc/gosv-scan    the default scan directory`,
	"init": `  SCANDIR/                 the scan directory supervised in stage 2
  SCANDIR/.s6-svscan/control
                           the FIFO gosv svscanctl -t, -i, -q write to
  FILE                     the stage 1 (-1) and stage 3 (-3) programs`,
}

// openrcFiles is the FILES section of gosv openrc and its subcommands.
const openrcFiles = `  /etc/init.d/NAME, /etc/conf.d/NAME
                            the service's script and settings (gosv-openrc(5))
  /etc/rc.conf.d/gosv.conf  the hook that makes supervisor=gosv call gosv
  /etc/init.d/gosv-svscan, /etc/conf.d/gosv-svscan
                            the scanner's service
  $RC_SVCDIR/gosv-scan      the scan directory (RC_SVCDIR: /run/openrc)
  $RC_SVCDIR/gosv-services/NAME
                            the service directory generated for NAME`

// withFiles adds the FILES section, before EXIT STATUS, to the help of
// every command that has one in commandFiles (openrcFiles for gosv openrc
// and its subcommands), so that --help and the man page say the same.
func withFiles(root *cobra.Command) {
	for _, c := range root.Commands() {
		path := strings.TrimPrefix(c.CommandPath(), c.Root().Name()+" ")
		files, ok := commandFiles[path]
		if path == "openrc" || strings.HasPrefix(path, "openrc ") {
			files, ok = openrcFiles, true
		}
		if ok && !strings.Contains(c.Long, "\nFILES\n") {
			if before, after, found := strings.Cut(c.Long, "\nEXIT STATUS\n"); found {
				c.Long = before + "\nFILES\n" + files + "\n\nEXIT STATUS\n" + after
			}
		}
		withFiles(c)
	}
}
