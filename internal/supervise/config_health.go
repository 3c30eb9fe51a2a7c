package supervise

import (
	"github.com/gosv/gosv/internal/servicedir"
)

// readHealth reads the health check files of dir into c (PROTOCOL.md
// §9.1). An invalid health-check turns checks off and adds to warns: a
// check that cannot be run must not restart the service.
func readHealth(dir string, p *servicedir.Present, c *Config, warns []error) []error {
	c.Readiness = (p.Has(servicedir.NotificationFDFile) || p.Has(servicedir.NotificationSocketFile) ||
		p.Has(servicedir.CheckFile)) && hasReadiness(dir)
	if !p.Has(servicedir.HealthCheckFile) {
		return warns
	}
	_, ok, err := servicedir.ReadHealthCheck(dir)
	if err != nil {
		return append(warns, err)
	}
	if !ok {
		return warns
	}
	h := HealthConfig{On: true}
	warns = readMillis(dir, p, servicedir.HealthTimerFile, &h.Every, warns)
	warns = readMillis(dir, p, servicedir.HealthDelayFile, &h.Delay, warns)
	warns = readMillis(dir, p, servicedir.HealthTimeoutFile, &h.Timeout, warns)
	warns = readMillis(dir, p, servicedir.HealthGraceFile, &h.Grace, warns)
	if !p.Has(servicedir.HealthRetriesFile) {
		// the default
	} else if v, ok, err := servicedir.ReadUintFile(dir, servicedir.HealthRetriesFile); err != nil {
		warns = append(warns, err)
	} else if ok {
		h.Retries = int(min(v, 1<<20))
	}
	if !p.Has(servicedir.HealthUnhealthyFile) {
		// no hook
	} else if _, ok, err := servicedir.ReadHealthUnhealthy(dir); err != nil {
		warns = append(warns, err)
	} else {
		h.Hook = ok
	}
	c.Health = normHealth(h)
	return warns
}

func hasReadiness(dir string) bool {
	ok, _ := servicedir.HasReadiness(dir)
	return ok
}
