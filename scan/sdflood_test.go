package scan

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/svwait"
)

// TestSdSenderCache (issue 9, defect 8): /proc is read once per sender,
// not once per datagram, and a sender that died is looked up again, so a
// recycled pid cannot inherit its verdict.
func TestSdSenderCache(t *testing.T) {
	l := &loop{}
	s := &service{}
	now := time.Now()
	self := os.Getpid()
	first := l.sdSender(s, self, now)
	if first == nil || first.sid != getsid(t) {
		t.Fatalf("sdSender(self) = %+v", first)
	}
	for range 1000 {
		if x := l.sdSender(s, self, now); x == nil || x.pidfd != first.pidfd {
			t.Fatalf("sdSender changed: %+v", x)
		}
	}
	if l.procReads != 1 {
		t.Errorf("%d /proc reads for 1001 datagrams of one sender, want 1", l.procReads)
	}
	// A sender that dies is forgotten at its next datagram.
	c := exec.Command(os.Args[0])
	c.Env = append(os.Environ(), "GOSV_TEST_ROLE=pause")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if x := l.sdSender(s, c.Process.Pid, now); x == nil {
		t.Fatal("sdSender(child) = nil")
	}
	c.Process.Kill()
	c.Wait()
	if x := l.sdSender(s, c.Process.Pid, now); x != nil {
		t.Errorf("dead sender still known: %+v", x)
	}
	// (its pid is free again: nothing to read, nothing remembered)
	if l.procReads != 2 || len(s.senders) != 1 {
		t.Errorf("procReads %d, senders %d; want 2, 1", l.procReads, len(s.senders))
	}
	// At most sdSendersMax senders (and pidfds) per service.
	var kids []*exec.Cmd
	for range sdSendersMax + 2 {
		k := exec.Command(os.Args[0])
		k.Env = append(os.Environ(), "GOSV_TEST_ROLE=pause")
		if err := k.Start(); err != nil {
			t.Fatal(err)
		}
		kids = append(kids, k)
		l.sdSender(s, k.Process.Pid, now)
	}
	for _, k := range kids {
		k.Process.Kill()
		k.Wait()
	}
	if len(s.senders) != sdSendersMax {
		t.Errorf("%d senders remembered, want %d", len(s.senders), sdSendersMax)
	}
	l.closeNotifySocket(s)
	if len(s.senders) != 0 {
		t.Errorf("senders left after close: %d", len(s.senders))
	}
}

// TestSdTokenBucket: a sender gets sdBurst datagrams at once, then sdRate a second.
func TestSdTokenBucket(t *testing.T) {
	t0 := time.Now()
	x := sdSender{tokens: sdBurst, filled: t0}
	n := 0
	for range 10 * sdBurst {
		if x.take(t0) {
			n++
		}
	}
	if n != sdBurst {
		t.Errorf("burst: %d datagrams taken, want %d", n, sdBurst)
	}
	n = 0
	for i := range 10 * sdRate { // 10 per 100 ms... over 1 s
		if x.take(t0.Add(time.Duration(i+1) * time.Second / (10 * sdRate))) {
			n++
		}
	}
	if n < sdRate-1 || n > sdRate+1 {
		t.Errorf("sustained: %d datagrams in 1 s, want about %d", n, sdRate)
	}
}

// TestCredentials: SCM_CREDENTIALS is found and SCM_RIGHTS fds closed,
// without allocating.
func TestCredentials(t *testing.T) {
	p := [2]int{}
	if err := unix.Pipe2(p[:], unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	defer unix.Close(p[1])
	oob := append(unix.UnixRights(p[0]), unix.UnixCredentials(&unix.Ucred{Pid: 4242})...)
	if got := credentials(oob); got != 4242 {
		t.Errorf("pid = %d, want 4242", got)
	}
	if _, err := unix.FcntlInt(uintptr(p[0]), unix.F_GETFD, 0); err != unix.EBADF {
		t.Errorf("passed fd not closed: %v", err)
	}
	creds := unix.UnixCredentials(&unix.Ucred{Pid: 1})
	if a := testing.AllocsPerRun(100, func() { credentials(creds) }); a != 0 {
		t.Errorf("%v allocations per datagram", a)
	}
	if got := credentials(creds[:5]); got != -1 {
		t.Errorf("truncated: pid %d", got)
	}
}

// TestSdNotifyFloodRateLimited: an outsider flooding a service's socket is
// rate-limited, reported once, and the service stays responsive.
func TestSdNotifyFloodRateLimited(t *testing.T) {
	scan := t.TempDir()
	_, w := startScannerWarnings(t, scan)
	svc := link(t, scan, mksvc(t, scan, "fl", pauseRun, map[string]string{"notification-socket": "main\n"}))
	waitFor(t, svc, svwait.Up)
	b, err := os.ReadFile(filepath.Join(svc, notifySocketRecord))
	if err != nil {
		t.Fatal(err)
	}
	sock := strings.TrimSpace(string(b))
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	to := &unix.SockaddrUnix{Name: sock}
	for range 5 * sdBurst {
		if err := unix.Sendto(fd, []byte("READY=1"), 0, to); err != nil {
			t.Fatal(err)
		}
	}
	// d goes through while the flood is read, and the flood made nobody ready.
	ctlWait(t, svc, "d", svwait.DownReady)
	w.sync(t, scan, 'Z')
	if n := w.count("dropping sd_notify datagrams", "fl"); n != 1 {
		t.Errorf("%d flood reports, want 1", n)
	}
	if n := w.count("warning"); n != 2 {
		t.Errorf("%d warnings, want the flood report and the marker", n)
	}
}

func getsid(t *testing.T) int {
	sid, err := unix.Getsid(0)
	if err != nil {
		t.Fatal(err)
	}
	return sid
}
