//go:build integration

package tests

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
)

// userName is the unprivileged user the user-service and group-control
// tests create inside the namespace (in its /etc overlay).
const userName = "gosvuser"

// userSetup creates user in the namespace's /etc overlay, with its home
// in /var/lib (an overlay too) and a runtime directory /run/user/UID as
// pam_systemd or elogind would make it, and copies rchelper where the
// user can run it. It returns the user's uid.
func (e *RC) userSetup(t *testing.T, user string, groups ...string) string {
	t.Helper()
	args := "useradd -m -d /var/lib/" + user + " -U"
	if len(groups) > 0 {
		args += " -G " + strings.Join(groups, ",")
	}
	e.MustRun(t, "sh", "-c", args+" "+user)
	uid := strings.TrimSpace(e.MustRun(t, "id", "-u", user).Stdout)
	e.MustRun(t, "sh", "-c", "install -d -m 0700 -o "+user+" -g "+user+" /run/user/"+uid+
		" && install -m 0755 "+shellQuote(e.helper)+" /usr/local/bin/rchelper")
	return uid
}

// asUser runs a shell script as user, with the environment a login
// session gives (HOME, XDG_RUNTIME_DIR), and nothing of root's.
func (e *RC) asUser(t *testing.T, user, uid, script string) Result {
	t.Helper()
	return e.Run(t, "setpriv", "--reuid="+user, "--regid="+user, "--init-groups", "env", "-i", "-C", "/var/lib/"+user,
		"HOME=/var/lib/"+user, "USER="+user, "LOGNAME="+user, "XDG_RUNTIME_DIR=/run/user/"+uid,
		"PATH=/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin", "sh", "-c", script)
}

const userScript = `#!/sbin/openrc-run
# A user's gosv service: ready 300 ms after it starts.
supervisor=gosv
command=/usr/local/bin/rchelper
command_args="-ready-fd 3 -ready-after 300 -record $HOME/record"
notify=fd:3
`

// TestOpenRCUserServices: OpenRC 0.60+'s user services (`openrc --user`,
// `rc-service --user`) run by a user who is not root: a supervisor=gosv
// script in ~/.config/rc/init.d needs the user's gosv-svscan (from
// /etc/user/init.d), whose scan directory is under $XDG_RUNTIME_DIR; start
// blocks until the daemon is ready, status tells the truth, a crash is
// restarted, stop stops it. Debian's 0.45.2 has no user mode: rc-service
// refuses --user, and nothing is started.
// userRedis is a user's redis: a unix socket in the runtime directory,
// readiness by sd_notify (start returns once redis answers).
const userRedis = `#!/sbin/openrc-run
supervisor=gosv
command=/usr/bin/redis-server
command_args="--port 0 --unixsocket $XDG_RUNTIME_DIR/redis.sock --unixsocketperm 700 --dir $HOME --save '' --appendonly no --daemonize no --supervised systemd"
notify=socket:ready
`

func TestOpenRCUserServices(t *testing.T) { forEachRC(t, testOpenRCUserServices) }

func testOpenRCUserServices(t *testing.T, version string) {
	e := newRCv(t, true, version)
	uid := e.userSetup(t, userName)
	home, run := "/var/lib/"+userName, "/run/user/"+uid
	e.asUserMust(t, userName, uid, `mkdir -p ~/.config/rc/init.d && cat > ~/.config/rc/init.d/usvc <<'_EOF'
`+userScript+`_EOF
cat > ~/.config/rc/init.d/uredis <<'_EOF'
`+userRedis+`_EOF
chmod 0755 ~/.config/rc/init.d/usvc ~/.config/rc/init.d/uredis`)
	if version == rcVersions[0] {
		// 0.45.2: no --user in rc-service or openrc.
		r := e.asUser(t, userName, uid, "rc-service --user usvc start")
		if r.Code == 0 || !strings.Contains(r.Stderr, "user") {
			t.Errorf("0.45.2's rc-service --user: want a refusal naming the option: %s", r)
		}
		t.Logf("0.45.2: exit %d, %s", r.Code, r.Stderr)
		if ps := append(e.procs("gosv svscan"), e.procs("rchelper")...); len(ps) != 0 {
			t.Errorf("0.45.2 started gosv for the user: %v", ps)
		}
		return
	}
	// The session as openrc-user.sh starts it (what user.USER does).
	e.asUserMust(t, userName, uid, e.Libexec+"/sh/openrc-user.sh start")
	e.asUserMust(t, userName, uid, "rc-service --user usvc start")
	// start returned only once the daemon was ready.
	svc := run + "/openrc/gosv-services/usvc"
	if st := e.asUserMust(t, userName, uid, "gosv svstat "+svc).Stdout; !strings.Contains(st, "up (pid") || !strings.Contains(st, "ready") {
		t.Errorf("after start: %q, want up and ready", st)
	}
	scanners := e.procs("gosv svscan")
	if len(scanners) != 1 {
		t.Fatalf("scanners: %v, want the user's", scanners)
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", scanners[0].HostPid)); !strings.Contains(string(b), "\nUid:\t"+uid+"\t") ||
		!strings.Contains(scanners[0].Cmdline, run+"/openrc/gosv-scan") {
		t.Errorf("the user's scanner: %+v, want uid %s on %s/openrc/gosv-scan", scanners[0], uid, run)
	}
	// The user's gosv openrc ls, in a shell without OpenRC's variables,
	// finds the user's layout.
	if r := e.asUser(t, userName, uid, "gosv openrc ls"); !strings.Contains(r.Stdout, "usvc") {
		t.Errorf("the user's gosv openrc ls: %s", r)
	}
	if r := e.asUser(t, userName, uid, "rc-service --user usvc status"); r.Code != 0 || !strings.Contains(r.Stdout, "started") {
		t.Errorf("status: %s", r)
	}
	// A crash is restarted.
	rec := e.host(home + "/record")
	waitRecords(t, rec, 1)
	e.asUserMust(t, userName, uid, "kill -KILL "+strconv.Itoa(readPids(t, rec)[0]))
	waitRecords(t, rec, 2)
	if r := e.asUser(t, userName, uid, "rc-service --user usvc status"); r.Code != 0 {
		t.Errorf("status after the crash: %s", r)
	}
	// A real daemon: redis answers as soon as its start returned.
	requireTools(t, envRequireRC, "redis-server")
	e.asUserMust(t, userName, uid, "rc-service --user uredis start")
	if err := probeUnix(e, run+"/redis.sock", []byte("PING\r\n"), []byte("+PONG")); err != nil {
		t.Errorf("the user's redis after start: %v", err)
	}
	e.asUserMust(t, userName, uid, "rc-service --user uredis stop")
	// Another backend is one error for a user's service, not a start on a
	// system scanner.
	e.asUserMust(t, userName, uid, `printf '#!/sbin/openrc-run\nsupervisor=gosv\ngosv_backend=s6\ncommand=/bin/sleep\ncommand_args=1000\n' > ~/.config/rc/init.d/ubad && chmod 0755 ~/.config/rc/init.d/ubad`)
	if r := e.asUser(t, userName, uid, "rc-service --user ubad start"); r.Code == 0 ||
		!strings.Contains(r.Stdout+r.Stderr, "gosv_backend=s6: user services (rc-service --user) run on gosv's own tree only") {
		t.Errorf("a user service with gosv_backend=s6: %s, want a failed start naming gosv_backend", r)
	}
	if ps := e.procs("s6-svscan"); len(ps) != 0 {
		t.Errorf("a user service started s6-svscan: %v", ps)
	}
	e.asUserMust(t, userName, uid, "rc-service --user usvc stop")
	if r := e.asUser(t, userName, uid, "rc-service --user usvc status"); r.Code != 3 {
		t.Errorf("status after stop: %s, want 3 (stopped)", r)
	}
	if ps := append(e.procs("rchelper"), e.procs("redis-server")...); len(ps) != 0 {
		t.Errorf("a daemon outlived stop: %v", ps)
	}
	// The system's tree was never involved.
	if r := e.Sh(t, "ls /run/openrc/gosv-services 2>/dev/null"); strings.Contains(r.Stdout, "usvc") {
		t.Errorf("the user's service is in the system's tree: %s", r)
	}
	e.asUserMust(t, userName, uid, e.Libexec+"/sh/openrc-user.sh stop")
	if ps := e.procs("gosv svscan"); len(ps) != 0 {
		t.Errorf("the user's scanner outlived the session's stop: %v", ps)
	}
}

// asUserMust is asUser that fails the test unless the script exits 0.
func (e *RC) asUserMust(t *testing.T, user, uid, script string) Result {
	t.Helper()
	r := e.asUser(t, user, uid, script)
	if r.Code != 0 {
		t.Fatalf("as %s: %q: %s", user, script, r)
	}
	return r
}

// TestOpenRCControlGroup: gosv_control_group, per service (conf.d) or for
// every gosv service (conf.d/gosv-svscan), lets the group's members run
// gosv svc, svstat and svwait on the service without root; a user outside
// the group gets one line naming the file it may not open, and nothing in
// the service directory is world-writable.
func TestOpenRCControlGroup(t *testing.T) { forEachRC(t, testOpenRCControlGroup) }

func testOpenRCControlGroup(t *testing.T, version string) {
	e := newRCv(t, true, version)
	e.MustRun(t, "groupadd", "gosvctl")
	muid := e.userSetup(t, "gosvmember", "gosvctl")
	ouid := e.userSetup(t, "gosvoutsider")
	e.Sh(t, "echo gosv_control_group=gosvctl >> /etc/conf.d/gosv-slowready && echo gosv_control_group=gosvctl >> /etc/conf.d/gosv-svscan")
	for _, svc := range []string{"gosv-slowready", "gosv-plain"} {
		e.mustSvc(t, svc, "start")
		dir := rcServices + "/" + svc
		before := e.status(t, svc).Pid
		// A member restarts it, waits for it and reads its status.
		e.asUserMust(t, "gosvmember", muid, "gosv svc -wR -r "+dir)
		if after := e.status(t, svc).Pid; after == before || after == 0 {
			t.Errorf("%s: pid %d before svc -r, %d after", svc, before, after)
		}
		e.asUserMust(t, "gosvmember", muid, "gosv svwait -U -t 5000 "+dir)
		// s6's own tools work for the member too (s6-svperms' modes).
		e.asUserMust(t, "gosvmember", muid, "s6-svok "+dir+" && s6-svstat "+dir+" && s6-svc -h "+dir)
		if st := e.asUserMust(t, "gosvmember", muid, "gosv svstat "+dir).Stdout; !strings.Contains(st, "up (pid") {
			t.Errorf("%s: member's svstat: %q", svc, st)
		}
		// An outsider is refused, with the file named.
		for cmd, file := range map[string]string{"gosv svc -r ": "/supervise/control", "gosv svstat ": "/supervise/",
			"gosv svwait -U -t 2000 ": "/event/:"} {
			r := e.asUser(t, "gosvoutsider", ouid, cmd+dir)
			t.Logf("outsider: %s", r.Stderr)
			if r.Code == 0 || strings.Count(r.Stderr, "\n") != 1 || !strings.Contains(r.Stderr, dir+file) ||
				!strings.Contains(strings.ToLower(r.Stderr), "permission denied") {
				t.Errorf("%s: outsider's %q: %s, want one line naming the file and the refusal", svc, cmd, r)
			}
		}
		if r := e.Sh(t, "find "+dir+"/ -perm -o+w ! -type l"); r.Stdout != "" {
			t.Errorf("%s: world-writable: %s", svc, r.Stdout)
		}
		e.mustSvc(t, svc, "stop")
	}
}
