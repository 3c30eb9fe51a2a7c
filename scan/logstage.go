package scan

import (
	"github.com/gosv/gosv/internal/logdir"
)

// Each in-process log has a stage (logdir.Stage, LOGDIR.md "Exactly
// once"): a memfd its logger splices the pipe into before writing, kept
// by the fd holder next to the pipe under "stage DEV:INO", so that a
// scanner SIGKILL neither loses nor repeats a line. A log whose stage
// cannot be kept by a holder runs without one: bytes spliced into a
// memfd only the scanner holds would die with it, while the pipe
// outlives it (the unstaged logger may write a batch twice instead).

func stageKey(id devIno) string { return "stage " + holderKey(id) }

// takeStage returns e's stage: the one the fd holder kept for the
// previous scanner, or a new one once the holder keeps it; nil if no
// holder can keep one. The stage stays e's until closeInProcessLog or
// dropIfIdle, even if its logger fails to open: a new one would replace
// it in the holder, and what it holds would be lost.
func (sc *scanner) takeStage(e *entry) *logdir.Stage {
	if e.stage != nil {
		return e.stage // kept from an attempt whose logger failed to open
	}
	key := stageKey(e.id)
	if fd, ok := sc.held[key]; ok {
		delete(sc.held, key)
		st, err := logdir.StageFrom(fd)
		if err == nil {
			return st
		}
		// A new stage replaces it in the holder: what it held is lost.
		sc.l.warn(nil, "logstage|"+e.name, "unable to take back the log stage of %s from the fd holder: %v (its unwritten lines are lost)", e.name, err)
	}
	st, err := logdir.NewStage()
	if err != nil {
		sc.l.warn(nil, "logstage|"+e.name, "unable to create the log stage of %s: %v (a scanner SIGKILL may write a batch of its lines twice)", e.name, err)
		return nil
	}
	if !sc.holdFd(e, key, st.Fd()) {
		st.Close()
		return nil
	}
	return st
}

// closeStage closes the scanner's copy of e's stage.
func closeStage(e *entry) {
	if e.stage != nil {
		e.stage.Close()
		e.stage = nil
	}
}
