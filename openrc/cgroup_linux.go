package openrc

import (
	"bufio"
	"os"
	"path/filepath"
	"strings"
)

// ServiceCgroups returns the cgroup directories of the calling process
// that belong to service svc: OpenRC's openrc-run moves itself (and so the
// `gosv openrc start` it runs) into /sys/fs/cgroup[/unified]/<svc> for
// cgroup v2 and .../openrc_<svc> for v1 controllers before start() runs
// (rc-cgroup.sh). The exec helper joins them, so the daemon lives in its
// service's cgroups as with supervise-daemon, and rc_cgroup_* limits and
// rc_cgroup_cleanup keep working. Directories that do not exist are left out.
func ServiceCgroups(svc string) []string {
	mounts := cgroupMounts()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// hierarchy-ID:controller-list:path
		parts := strings.SplitN(sc.Text(), ":", 3)
		if len(parts) != 3 {
			continue
		}
		base := filepath.Base(parts[2])
		if base != svc && base != "openrc_"+svc {
			continue
		}
		mnt, ok := mounts[parts[1]]
		if !ok {
			continue
		}
		dir := filepath.Join(mnt, parts[2])
		if fi, err := os.Stat(dir); err == nil && fi.IsDir() {
			out = append(out, dir)
		}
	}
	return out
}

// cgroupMounts maps a controller list as /proc/self/cgroup writes it
// ("" for cgroup2, "cpu,cpuacct", "name=openrc") to its mount point.
func cgroupMounts() map[string]string {
	m := map[string]string{}
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return m
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// ... mountpoint(5th) ... - fstype source superoptions
		pre, post, ok := strings.Cut(sc.Text(), " - ")
		if !ok {
			continue
		}
		fields, tail := strings.Fields(pre), strings.Fields(post)
		if len(fields) < 5 || len(tail) < 3 {
			continue
		}
		switch tail[0] {
		case "cgroup2":
			if _, seen := m[""]; !seen {
				m[""] = fields[4]
			}
		case "cgroup":
			var ctrls []string
			for _, o := range strings.Split(tail[2], ",") {
				if o != "rw" && o != "ro" && !strings.Contains(o, "=") || strings.HasPrefix(o, "name=") {
					ctrls = append(ctrls, o)
				}
			}
			key := strings.Join(ctrls, ",")
			if _, seen := m[key]; !seen {
				m[key] = fields[4]
			}
		}
	}
	return m
}
