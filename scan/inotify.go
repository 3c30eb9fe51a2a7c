package scan

import (
	"bytes"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
	"github.com/gosv/gosv/internal/supervise"
)

// The loop's one inotify instance serves three kinds of watch: the scan
// directory (new and removed entries), service directories waiting for
// ./run, and pidfile directories of forking launches. readInotify drains
// it and routes each event to its watcher.

// readInotify reads every queued inotify event.
func (l *loop) readInotify() {
	for {
		n, err := unix.Read(l.ino, l.buf[:])
		if err != nil || n <= 0 {
			return
		}
		for off := 0; off+unix.SizeofInotifyEvent <= n; {
			ev := (*unix.InotifyEvent)(unsafe.Pointer(&l.buf[off]))
			nameb := l.buf[off+unix.SizeofInotifyEvent : off+unix.SizeofInotifyEvent+int(ev.Len)]
			off += unix.SizeofInotifyEvent + int(ev.Len)
			if i := bytes.IndexByte(nameb, 0); i >= 0 {
				nameb = nameb[:i]
			}
			l.inotifyEvent(ev.Wd, ev.Mask, nameb)
		}
	}
}

// inotifyEvent routes one event on watch wd about entry name.
func (l *loop) inotifyEvent(wd int32, mask uint32, name []byte) {
	if mask&unix.IN_Q_OVERFLOW != 0 {
		l.recheckPidfiles() // their events may be among the lost
		if l.sc != nil {
			l.sc.rescan()
		}
		return
	}
	if l.sc != nil && wd == l.sc.wd {
		l.sc.inotify(mask, string(name))
		return
	}
	if s, ok := l.wds[wd]; ok && string(name) == servicedir.RunFile {
		l.feed(s, supervise.Event{Kind: supervise.EvRunChanged})
	}
	if _, ok := l.pidWatch[wd]; ok && len(name) > 0 {
		l.pidfileChanged(wd, string(name))
	}
}
