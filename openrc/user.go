package openrc

import (
	"os"
	"path/filepath"
	"slices"
)

// userModeVersion is the first OpenRC with user services.
var userModeVersion = Version{0, 60, 0}

// UserLayout is OpenRC 0.60+'s layout for user services (`openrc --user`,
// `rc-service --user`), as librc's rc_set_user and openrc-run.sh make it:
// scripts in $XDG_CONFIG_HOME/rc/init.d (~/.config/rc without
// XDG_CONFIG_HOME), then /usr/local/etc/user/init.d and /etc/user/init.d;
// RC_SVCDIR is $XDG_RUNTIME_DIR/openrc; openrc-run.sh sources the system's
// rc.conf and rc.conf.d (so the gosv hook applies), then the user's. The
// gosv-wide defaults ([Layout.DefaultsFile]) are the user's
// conf.d/gosv-svscan.
//
// User mode is RC_USER_SERVICES=yes (what openrc-run exports), or, for
// what runs without OpenRC's RC_ variables, a process that is not root
// and has XDG_RUNTIME_DIR but no RC_SVCDIR: supervise-daemon strips every
// RC_ variable from the scanner's environment but keeps XDG_RUNTIME_DIR
// and HOME, and a user's `gosv openrc ls` in a shell means their own
// services (on an OpenRC with user mode: 0.45's users keep the system
// layout). ok is false for the system layout, or when neither
// XDG_RUNTIME_DIR nor a configuration directory can be found.
func UserLayout(getenv func(string) string) (l Layout, ok bool) {
	libexec := LibexecDir(getenv)
	user := yesno(getenv("RC_USER_SERVICES")) ||
		(getenv("RC_SVCDIR") == "" && os.Geteuid() != 0 && getenv("XDG_RUNTIME_DIR") != "" &&
			ReadVersion(libexec).AtLeast(userModeVersion))
	if !user {
		return Layout{}, false
	}
	conf := userConfDir(getenv)
	run := getenv("XDG_RUNTIME_DIR")
	if conf == "" || (run == "" && getenv("RC_SVCDIR") == "") {
		return Layout{}, false
	}
	l = Layout{
		RCConf: "/etc/rc.conf", RCConfD: "/etc/rc.conf.d", ConfD: filepath.Join(conf, "conf.d"),
		LibexecDir: libexec, SvcDir: filepath.Join(run, "openrc"), UserConf: conf,
		InitDirs: []string{filepath.Join(conf, "init.d"), "/usr/local/etc/user/init.d", "/etc/user/init.d"},
		Runlevel: getenv("RC_RUNLEVEL"),
	}
	if v := getenv("RC_SVCDIR"); v != "" {
		l.SvcDir = v
	}
	return l, true
}

// userConfDir is the user's OpenRC configuration directory, or "".
func userConfDir(getenv func(string) string) string {
	if v := getenv("XDG_CONFIG_HOME"); v != "" {
		return filepath.Join(v, "rc")
	}
	if v := getenv("HOME"); v != "" {
		return filepath.Join(v, ".config", "rc")
	}
	return ""
}

// userConfs are the user's rc.conf and rc.conf.d/*.conf in user mode,
// which openrc-run.sh sources after the system's.
func (l Layout) userConfs() []string {
	if l.UserConf == "" {
		return nil
	}
	var out []string
	if _, err := os.Stat(filepath.Join(l.UserConf, "rc.conf")); err == nil {
		out = append(out, filepath.Join(l.UserConf, "rc.conf"))
	}
	m, _ := filepath.Glob(filepath.Join(l.UserConf, "rc.conf.d", "*.conf"))
	slices.Sort(m)
	return append(out, m...)
}
