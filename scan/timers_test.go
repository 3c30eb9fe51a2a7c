package scan

import (
	"cmp"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"math/bits"
	"math/rand/v2"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gosv/gosv/internal/supervise"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func at(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }

// checkHeap fails unless h is a valid heap whose timers know their places.
func checkHeap(t *testing.T, h *timerHeap) {
	t.Helper()
	for i, tm := range h.ts {
		if tm.idx != i+1 {
			t.Fatalf("timer at position %d has idx %d", i, tm.idx)
		}
		if i > 0 && h.Less(i, (i-1)/2) {
			t.Fatalf("heap order broken at position %d", i)
		}
	}
}

// expireAll expires everything due at now and returns the timers' names.
func expireAll(h *timerHeap, now time.Time, names map[*timer]string) []string {
	var got []string
	for _, tm := range h.expire(now, nil) {
		got = append(got, names[tm])
	}
	return got
}

func TestTimerHeapOrder(t *testing.T) {
	var h timerHeap
	ts := map[string]*timer{}
	names := map[*timer]string{}
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		ts[n] = &timer{}
		names[ts[n]] = n
	}
	steps := []struct {
		op   string // set, stop, expire
		name string
		ms   int
		want []string // expire: names in firing order
	}{
		{op: "set", name: "a", ms: 30},
		{op: "set", name: "b", ms: 10},
		{op: "set", name: "c", ms: 20},
		{op: "set", name: "d", ms: 20}, // equal to c, armed later: fires after c
		{op: "set", name: "e", ms: 50},
		{op: "set", name: "f", ms: 40},
		{op: "expire", ms: 5, want: nil},
		{op: "expire", ms: 10, want: []string{"b"}},
		{op: "set", name: "a", ms: 15},  // moved earlier
		{op: "set", name: "c", ms: 20},  // same deadline: keeps its place before d
		{op: "set", name: "f", ms: 100}, // moved later
		{op: "stop", name: "e"},
		{op: "stop", name: "e"}, // stopping twice is harmless
		{op: "expire", ms: 20, want: []string{"a", "c", "d"}},
		{op: "set", name: "b", ms: 60},
		{op: "set", name: "c", ms: 60},
		{op: "set", name: "d", ms: 60},
		{op: "set", name: "b", ms: 60}, // same deadline again: stays first
		{op: "set", name: "c", ms: 70},
		{op: "set", name: "c", ms: 60}, // re-armed: now after d
		{op: "set", name: "f", ms: -1}, // zero disarms
		{op: "expire", ms: 99, want: []string{"b", "d", "c"}},
		{op: "expire", ms: 1000, want: nil},
		{op: "expire", ms: 5000, want: nil},
	}
	for i, s := range steps {
		switch s.op {
		case "set":
			d := at(s.ms)
			if s.ms < 0 {
				d = time.Time{}
			}
			h.set(ts[s.name], d)
		case "stop":
			h.stop(ts[s.name])
		case "expire":
			got := expireAll(&h, at(s.ms), names)
			if !slices.Equal(got, s.want) {
				t.Fatalf("step %d: expire at %d ms fired %v, want %v", i, s.ms, got, s.want)
			}
			for _, n := range got {
				if ts[n].armed() {
					t.Fatalf("step %d: %s still armed after it expired", i, n)
				}
			}
		}
		checkHeap(t, &h)
	}
	if h.Len() != 0 || !h.next().IsZero() {
		t.Fatalf("heap not empty at the end: %d timers, next %v", h.Len(), h.next())
	}
}

func TestTimerHeapNext(t *testing.T) {
	var h timerHeap
	if !h.next().IsZero() {
		t.Fatal("empty heap has a deadline")
	}
	a, b := &timer{}, &timer{}
	h.set(a, at(20))
	h.set(b, at(10))
	if got := h.next(); !got.Equal(at(10)) {
		t.Fatalf("next = %v, want %v", got, at(10))
	}
	h.stop(b)
	if got := h.next(); !got.Equal(at(20)) {
		t.Fatalf("next after stop = %v, want %v", got, at(20))
	}
}

// TestTimerHeapModel drives the heap and a sorted-slice model with the same
// random (seeded) operations on 5000 timers and compares every expiry.
func TestTimerHeapModel(t *testing.T) {
	const n = 5000
	rng := rand.New(rand.NewPCG(1, 2))
	var h timerHeap
	ts := make([]*timer, n)
	for i := range ts {
		ts[i] = &timer{}
	}
	type armed struct {
		at  time.Time
		seq int
	}
	model := map[*timer]armed{}
	seq := 0
	now := 0
	for round := 0; round < 200; round++ {
		for k := 0; k < 100; k++ {
			tm := ts[rng.IntN(n)]
			switch rng.IntN(4) {
			case 0:
				h.stop(tm)
				delete(model, tm)
			default:
				// Few distinct deadlines, so that many are equal.
				d := at(now + rng.IntN(50))
				if old, ok := model[tm]; !ok || !old.at.Equal(d) {
					model[tm] = armed{d, seq}
					seq++
				}
				h.set(tm, d)
			}
		}
		now += rng.IntN(10)
		var want []*timer
		for tm, a := range model {
			if !a.at.After(at(now)) {
				want = append(want, tm)
			}
		}
		slices.SortFunc(want, func(x, y *timer) int {
			if c := model[x].at.Compare(model[y].at); c != 0 {
				return c
			}
			return cmp.Compare(model[x].seq, model[y].seq)
		})
		got := h.expire(at(now), nil)
		if !slices.Equal(got, want) {
			t.Fatalf("round %d: expired %d timers, model says %d (or another order)", round, len(got), len(want))
		}
		for _, tm := range got {
			delete(model, tm)
		}
		if h.Len() != len(model) {
			t.Fatalf("round %d: heap holds %d timers, model %d", round, h.Len(), len(model))
		}
		checkHeap(t, &h)
	}
}

// newTestLoop is a loop with a scanner and no file descriptors: enough for
// timer handling, which must do no I/O for entries that are not due.
func newTestLoop() *loop {
	l := &loop{cfg: Config{Prog: "test", Stderr: io.Discard}, ep: -1, evfd: -1, ino: -1,
		fds: map[int32]fdOwner{}, byPid: map[int]*service{}, wds: map[int32]*service{},
		checks: map[int]*service{}, devnull: -1, trace: -1, sys: kernel{}}
	l.sc = &scanner{l: l, ctl: -1, byName: map[string]*entry{}, byID: map[devIno]*entry{}}
	l.sc.rescanAt.kind = tmRescan
	return l
}

// addIdle adds an entry whose service is up and idle, with a watchdog
// deadline an hour away: a timer in the heap that must not be touched.
func addIdle(l *loop, i int, now time.Time) *entry {
	e := &entry{name: fmt.Sprintf("svc%04d", i), id: devIno{1, uint64(i)}, active: true, pipe: [2]int{-1, -1}}
	e.recreate = timer{kind: tmRecreate, e: e}
	e.logRetry = timer{kind: tmLogRetry, e: e}
	s := &service{name: e.name, entry: e, ctl: -1, notify: -1, pidfd: -1, wd: -1, sdfd: -1, checkFd: -1}
	s.m.State, s.m.Pid, s.m.WatchdogAt = supervise.Up, 1<<30+i, now.Add(time.Hour+time.Duration(i)*time.Millisecond)
	e.svc = s
	l.sc.byID[e.id] = e
	l.rearm(s)
	return e
}

// TestFireTimersVisitsOnlyDue: with 1000 idle services whose machines hold
// deadlines, a loop turn that fires one due timer looks at O(log n) timers
// and feeds no other service.
func TestFireTimersVisitsOnlyDue(t *testing.T) {
	for _, n := range []int{10, 1000} {
		l := newTestLoop()
		now := time.Now()
		idle := make([]*entry, n)
		for i := range idle {
			idle[i] = addIdle(l, i, now)
		}
		// One entry left the scan directory after its machine exited: its
		// recreate deadline has passed, and its expiry forgets it.
		gone := &entry{name: "gone", id: devIno{2, 1}, pipe: [2]int{-1, -1}}
		gone.recreate = timer{kind: tmRecreate, e: gone}
		gone.logRetry = timer{kind: tmLogRetry, e: gone}
		l.sc.byID[gone.id] = gone
		l.timers.set(&gone.recreate, now.Add(-time.Millisecond))
		before := make([]supervise.Machine, n)
		for i, e := range idle {
			before[i] = e.svc.m
		}

		l.timers.visits = 0
		if d := l.nextDeadline(); !d.Equal(gone.recreate.at) {
			t.Fatalf("n=%d: next deadline %v, want the due recreate %v", n, d, gone.recreate.at)
		}
		l.fireTimers()
		visits := l.timers.visits

		if _, ok := l.sc.byID[gone.id]; ok {
			t.Fatalf("n=%d: the due recreate did not fire (entry still known)", n)
		}
		for i, e := range idle {
			if e.svc.m != before[i] || !e.svc.tm.armed() {
				t.Fatalf("n=%d: idle service %d was touched", n, i)
			}
		}
		if l.timers.Len() != n {
			t.Fatalf("n=%d: %d timers armed, want %d", n, l.timers.Len(), n)
		}
		checkHeap(t, &l.timers)
		// One expiry, then a sift-down of at most log2(n) levels of two
		// comparisons each (Less counts two timers per comparison).
		bound := 1 + 4*bits.Len(uint(n+1))
		t.Logf("n=%d: %d timer visits (bound %d)", n, visits, bound)
		if visits > bound {
			t.Fatalf("n=%d: firing one timer visited %d timers, more than %d", n, visits, bound)
		}
	}
}

// TestRearmExitedLeavesHeap: an exited machine keeps no timer even if its
// fields still hold a deadline, and a dropped entry keeps none either.
func TestRearmExitedLeavesHeap(t *testing.T) {
	l := newTestLoop()
	now := time.Now()
	e := addIdle(l, 0, now)
	s := e.svc
	if !s.tm.armed() {
		t.Fatal("an up machine with a watchdog deadline is not armed")
	}
	s.m.State = supervise.Exited // WatchdogAt is left as it was
	l.rearm(s)
	if s.tm.armed() {
		t.Fatal("an exited machine is still in the heap")
	}
	e.svc = nil
	e.active = false
	l.timers.set(&e.recreate, now.Add(time.Hour))
	l.timers.set(&e.logRetry, now.Add(time.Hour))
	l.sc.dropIfIdle(e)
	if e.recreate.armed() || e.logRetry.armed() || l.timers.Len() != 0 {
		t.Fatalf("a dropped entry left %d timers armed", l.timers.Len())
	}
}

// TestStepAppliedOnlyInFeed: the machine's deadline can only change in a
// Step, and feed, which re-arms the timer after every Step, must be the
// only caller, so that no path can change a deadline and forget the heap.
func TestStepAppliedOnlyInFeed(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var callers []string
	feedRearms := false
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(fset, f, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				sel, ok := n.(*ast.SelectorExpr)
				if !ok {
					return true
				}
				if x, ok := sel.X.(*ast.Ident); ok && x.Name == "supervise" && sel.Sel.Name == "Step" {
					callers = append(callers, fd.Name.Name)
				}
				if fd.Name.Name == "feed" && sel.Sel.Name == "rearm" {
					feedRearms = true
				}
				return true
			})
		}
	}
	if !slices.Equal(callers, []string{"feed"}) {
		t.Errorf("supervise.Step is used in %v; only feed may apply a step", callers)
	}
	if !feedRearms {
		t.Error("feed does not call rearm")
	}
}

// BenchmarkTimerTurn is the timer share of one loop turn that fires one
// due deadline (as an in-process log retry does) among n idle services
// holding deadlines: it must not grow with n beyond log n.
//
//	go test -run '^$' -bench TimerTurn ./scan
func BenchmarkTimerTurn(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 5000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l := newTestLoop()
			now := time.Now()
			for i := 0; i < n; i++ {
				addIdle(l, i, now)
			}
			e := addIdle(l, n, now) // no logger: its retry fires and does nothing
			past := now.Add(-time.Second)
			b.ReportAllocs()
			for b.Loop() {
				l.timers.set(&e.logRetry, past)
				l.nextDeadline()
				l.fireTimers()
			}
		})
	}
}
