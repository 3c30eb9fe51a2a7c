package fdwait

import (
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestReadable(t *testing.T) {
	var p [2]int
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[0])
	defer unix.Close(p[1])
	// Empty pipe: the wait ends at the deadline, not before.
	dl := time.Now().Add(20 * time.Millisecond)
	if Readable(p[0], dl) {
		t.Fatal("empty pipe readable")
	}
	if now := time.Now(); now.Before(dl) {
		t.Errorf("returned %v before the deadline", dl.Sub(now))
	}
	// A passed deadline still looks once.
	if Readable(p[0], time.Now().Add(-time.Second)) {
		t.Fatal("empty pipe readable (passed deadline)")
	}
	unix.Write(p[1], []byte("x"))
	if !Readable(p[0], time.Now().Add(-time.Second)) {
		t.Error("full pipe not readable (passed deadline)")
	}
	if !Readable(p[0], time.Time{}) {
		t.Error("full pipe not readable (no deadline)")
	}
	if Readable(-1, time.Now().Add(time.Millisecond)) {
		t.Error("fd -1 readable")
	}
}
