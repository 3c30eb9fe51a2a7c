package openrc

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"strings"

	"github.com/gosv/gosv/internal/reap"
)

// Users and groups (command_user) are looked up here and nowhere else.
//
// gosv is built without cgo (a static binary starts ~0.8 ms faster, and
// every rc-service and every respawn starts one), so os/user reads only
// /etc/passwd and /etc/group. Accounts that come from NSS modules (LDAP,
// sssd, winbind, systemd's dynamic users) are then asked of getent(1),
// which goes through the C library's NSS exactly as a cgo build would:
// only when the files do not know the name, so a local account costs no
// extra process.

// account is a user and where it was found.
type account struct {
	*user.User
	// nss is set when the files did not know the user and getent did:
	// its groups must come from NSS too.
	nss bool
}

// lookupUser finds a user by name, else by numeric id, in /etc/passwd and
// then through NSS. The error is os/user's when neither knows it.
func lookupUser(name string) (account, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return account{User: u}, nil
	}
	if _, perr := strconv.ParseUint(name, 10, 32); perr == nil {
		if u, ierr := user.LookupId(name); ierr == nil {
			return account{User: u}, nil
		}
	}
	f, ok := getent("passwd", name, 7)
	if !ok {
		return account{}, err
	}
	return account{User: &user.User{Username: f[0], Uid: f[2], Gid: f[3], Name: f[4], HomeDir: f[5]}, nss: true}, nil
}

// lookupGroup finds a group by name, else by numeric id, in /etc/group and
// then through NSS.
func lookupGroup(name string) (*user.Group, error) {
	g, err := user.LookupGroup(name)
	if err == nil {
		return g, nil
	}
	if _, perr := strconv.ParseUint(name, 10, 32); perr == nil {
		if g, ierr := user.LookupGroupId(name); ierr == nil {
			return g, nil
		}
	}
	f, ok := getent("group", name, 4)
	if !ok {
		return nil, err
	}
	return &user.Group{Name: f[0], Gid: f[2]}, nil
}

// groupIDs returns the user's groups, its primary group first, as
// initgroups(3) would set them. The files answer unless the user came from
// NSS or nsswitch.conf lists a group source other than files (and
// systemd, whose groups belong to its own dynamic users): then `getent
// initgroups`, so that LDAP or sssd group memberships of local users are
// kept as with a cgo build.
func groupIDs(a account) ([]int, error) {
	var ids []string
	if a.nss || groupsFromNSS("/etc/nsswitch.conf") {
		f, ok := getentFields("initgroups", a.Username)
		if !ok {
			return nil, fmt.Errorf("getent initgroups %s: no answer", a.Username)
		}
		ids = append([]string{a.Gid}, f[1:]...)
	} else {
		var err error
		if ids, err = a.GroupIds(); err != nil {
			return nil, err
		}
	}
	out := make([]int, 0, len(ids))
	seen := map[int]bool{}
	for _, id := range ids {
		n, err := strconv.Atoi(id)
		if err != nil || seen[n] {
			continue
		}
		seen[n] = true
		out = append(out, n)
	}
	return out, nil
}

// groupsFromNSS reports whether path's group line names a source the
// files cannot answer for.
func groupsFromNSS(path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		line, _, _ := strings.Cut(sc.Text(), "#")
		db, srcs, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(db) != "group" {
			continue
		}
		for _, s := range strings.Fields(srcs) {
			if strings.HasPrefix(s, "[") {
				continue // an action such as [NOTFOUND=return]
			}
			if s != "files" && s != "systemd" {
				return true
			}
		}
	}
	return false
}

// getent returns the first line of `getent DB KEY` split at colons, when
// it has n fields.
func getent(db, key string, n int) ([]string, bool) {
	out, ok := runGetent(db, key)
	if !ok {
		return nil, false
	}
	f := strings.Split(out, ":")
	if len(f) != n {
		return nil, false
	}
	return f, true
}

// getentFields returns the first line of `getent DB KEY` split at blanks.
func getentFields(db, key string) ([]string, bool) {
	out, ok := runGetent(db, key)
	f := strings.Fields(out)
	return f, ok && len(f) > 0
}

// runGetent runs getent, found in PATH or in /usr/bin or /bin (the exec
// helper may run with an empty PATH), and returns its first line. A key
// that getent would take for an option is never looked up.
func runGetent(db, key string) (string, bool) {
	if key == "" || strings.HasPrefix(key, "-") || strings.ContainsAny(key, ":\n") {
		return "", false
	}
	prog, err := exec.LookPath("getent")
	if err != nil {
		for _, p := range []string{"/usr/bin/getent", "/bin/getent"} {
			if unixExecutable(p) {
				prog = p
				break
			}
		}
	}
	if prog == "" {
		return "", false
	}
	var stdout bytes.Buffer
	cmd := exec.Command(prog, db, key)
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		return "", false
	}
	if err := reap.Wait(cmd); err != nil {
		return "", false
	}
	line, _, _ := strings.Cut(stdout.String(), "\n")
	return line, true
}

// unixExecutable reports whether path is a regular executable file.
func unixExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}
