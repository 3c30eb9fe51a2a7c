package scan

import (
	"crypto/tls"
	"fmt"
	"net"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/gosv/gosv/internal/servicedir"
)

// https:// checks: one shared pool of goroutines for all services (see
// health.go). The loop hands a job over without blocking; a worker dials,
// sends the request and reads the status line within the check's cut,
// then queues the result and wakes the loop (pendSig bit 0, which no
// signal uses).
const (
	healthTLSWorkers = 4    // the pool's size, whatever the number of services
	healthTLSQueue   = 1024 // jobs waiting for a worker; beyond, a check fails at once
)

type tlsJob struct {
	s     *service
	gen   uint32
	check servicedir.HealthCheck
	until time.Time
}

type tlsResult struct {
	s   *service
	gen uint32
	ok  bool
	msg string
}

type tlsPool struct {
	jobs chan tlsJob
	mu   sync.Mutex
	done []tlsResult
}

// tlsCheck queues an https check of s.
func (l *loop) tlsCheck(s *service, h *healthRun) {
	if l.tls == nil {
		l.tls = &tlsPool{jobs: make(chan tlsJob, healthTLSQueue)}
		for range healthTLSWorkers {
			go l.tls.work(l)
		}
	}
	select {
	case l.tls.jobs <- tlsJob{s: s, gen: h.gen, check: h.check, until: s.m.HealthCutAt}:
	default:
		l.healthDone(s, false, "too many https checks in flight")
	}
}

func (p *tlsPool) work(l *loop) {
	one := []byte{1, 0, 0, 0, 0, 0, 0, 0}
	for j := range p.jobs {
		ok, msg := tlsProbe(&j.check, j.until)
		p.mu.Lock()
		p.done = append(p.done, tlsResult{s: j.s, gen: j.gen, ok: ok, msg: msg})
		p.mu.Unlock()
		l.pendSig.Or(1)
		unix.Write(l.evfd, one)
	}
}

// tlsProbe runs one https check. NOTE: the certificate is not verified:
// the check asks whether the service answers, and services on loopback
// often have self-signed certificates.
func tlsProbe(c *servicedir.HealthCheck, until time.Time) (bool, string) {
	d := &net.Dialer{Deadline: until}
	conn, err := tls.DialWithDialer(d, "tcp", c.Addr.String(), &tls.Config{InsecureSkipVerify: true, ServerName: c.Host})
	if err != nil {
		return false, errText(err) // "connection refused", as the loop's own checks say
	}
	defer conn.Close()
	conn.SetDeadline(until)
	if _, err := fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nHost: %s\r\nUser-Agent: gosv-health\r\nConnection: close\r\n\r\n", c.Path, hostHeader(c)); err != nil {
		return false, err.Error()
	}
	var resp [healthRespMax]byte
	n := 0
	for {
		m, err := conn.Read(resp[n:])
		n += m
		if ok, msg, done := statusResult(c, resp[:n], err != nil); done {
			return ok, msg
		}
		if err != nil {
			return false, err.Error()
		}
	}
}

// takeTLSResults feeds the finished https checks to their machines; a
// result whose check was cut or replaced meanwhile is dropped.
func (l *loop) takeTLSResults() {
	if l.tls == nil {
		return
	}
	l.tls.mu.Lock()
	done := l.tls.done
	l.tls.done = nil
	l.tls.mu.Unlock()
	for _, r := range done {
		if h := r.s.health; h != nil && h.gen == r.gen && r.s.dirfd >= 0 {
			h.gen++
			l.feedHealth(r.s, r.ok, r.msg)
		}
	}
}
