package scan

import (
	"container/heap"
	"time"
)

// Every deadline the loop keeps lives in one binary heap, so that a loop
// turn finds the next wakeup in O(1) and arms, moves, fires or cancels a
// deadline in O(log n): the cost of a wakeup does not grow with the number
// of services (nitro keeps its earliest deadline the same way). Walking
// every service for its deadlines on every turn, as the scanner once did,
// made each restart and each in-process log line pay for the whole tree.
//
// A deadline is a timer value embedded in its owner (a service, an entry
// of the scan directory, the scanner); the heap holds pointers to them and
// each timer knows its position, so cancelling needs no search.

// timerKind says whose deadline a timer is, and so what its expiry does.
type timerKind uint8

const (
	tmMachine  timerKind = iota + 1 // svc's machine: its Deadline (spawn, kill, check, watchdog)
	tmRecreate                      // e: take it again after RecreateDelay
	tmLogRetry                      // e: call its in-process logger again
	tmRescan                        // the scanner: periodic or retried rescan
	tmSdResume                      // svc: read its flooded sd_notify socket again
	tmHook                          // svc: its event hook ran too long (events.go)
	tmInit                          // gosv init's one deadline (Config.Init)
)

// timer is one deadline. The zero value is not armed.
type timer struct {
	at   time.Time
	seq  uint64 // arming order: equal deadlines expire first armed, first fired
	idx  int    // 1 + position in the heap; 0 when not armed
	kind timerKind
	svc  *service // tmMachine, tmSdResume
	e    *entry   // tmRecreate, tmLogRetry
}

func (t *timer) armed() bool { return t.idx > 0 }

// timerHeap is the loop's set of armed timers, earliest first.
type timerHeap struct {
	ts  []*timer
	seq uint64
	// visits counts the timers looked at (comparisons and expiries), so
	// that tests can prove a wakeup does not touch unrelated services.
	visits int
}

// heap.Interface; use set, next and expire instead.

func (h *timerHeap) Len() int { return len(h.ts) }
func (h *timerHeap) Less(i, j int) bool {
	h.visits += 2
	a, b := h.ts[i], h.ts[j]
	if a.at.Equal(b.at) {
		return a.seq < b.seq
	}
	return a.at.Before(b.at)
}
func (h *timerHeap) Swap(i, j int) {
	h.ts[i], h.ts[j] = h.ts[j], h.ts[i]
	h.ts[i].idx, h.ts[j].idx = i+1, j+1
}
func (h *timerHeap) Push(x any) {
	t := x.(*timer)
	h.ts = append(h.ts, t)
	t.idx = len(h.ts)
}
func (h *timerHeap) Pop() any {
	n := len(h.ts) - 1
	t := h.ts[n]
	h.ts[n] = nil
	h.ts = h.ts[:n]
	t.idx = 0
	return t
}

// set arms t for at, moving it if it was armed; a zero at disarms it.
// Setting the deadline t already has keeps its place among equals.
func (h *timerHeap) set(t *timer, at time.Time) {
	switch {
	case at.IsZero():
		h.stop(t)
	case t.armed() && t.at.Equal(at):
	case t.armed():
		t.at, t.seq = at, h.seq
		h.seq++
		heap.Fix(h, t.idx-1)
	default:
		t.at, t.seq = at, h.seq
		h.seq++
		heap.Push(h, t)
	}
}

// stop disarms t; stopping a timer that is not armed does nothing.
func (h *timerHeap) stop(t *timer) {
	if t.armed() {
		heap.Remove(h, t.idx-1)
	}
	t.at = time.Time{}
}

// next is the earliest armed deadline, or zero when nothing is armed.
func (h *timerHeap) next() time.Time {
	if len(h.ts) == 0 {
		return time.Time{}
	}
	return h.ts[0].at
}

// expire disarms every timer due at now and appends them to buf in
// deadline order. Taking them all out before any fires means that a
// handler which re-arms its own timer in the past fires again on the next
// turn, not in an endless loop within this one.
func (h *timerHeap) expire(now time.Time, buf []*timer) []*timer {
	for len(h.ts) > 0 && !h.ts[0].at.After(now) {
		h.visits++
		buf = append(buf, heap.Pop(h).(*timer))
	}
	return buf
}
