package scan

import (
	"strings"

	"github.com/gosv/gosv/internal/servicedir"
)

// grantGroup applies s's control-group file (PROTOCOL.md §9.7) when the
// directory is taken: supervise/, its control FIFO, supervise/gosv/ and
// event/ become usable by that group. Without the file nothing is changed
// (modes set by s6-svperms stay). A bad file, or a chown the scanner may
// not make (a user's scanner and a group it is not in), is a warning: the
// service runs, its files keep their modes.
func (l *loop) grantGroup(s *service) {
	gid, err := servicedir.ReadControlGroup(s.dir)
	if err == nil && gid >= 0 {
		err = servicedir.GrantGroup(s.dir, s.ctl, gid)
	}
	if err != nil {
		l.warn(s, "groupperms", "%s", strings.ReplaceAll(err.Error(), s.dir, s.path))
	}
}
