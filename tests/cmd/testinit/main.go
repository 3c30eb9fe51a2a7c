// Command testinit is PID 1 of an integration test's private mount and PID
// namespace. It builds the namespace's filesystem view, tells the test it is
// ready, and then reaps zombies until it is killed.
//
// Usage (started by tests/ns_linux_test.go, never by hand):
//
//	testinit -overlay-base DIR [-keep PATH]... [-ro-root] [-exec PROG [ARG...]]
//
// The test starts it with CLONE_NEWNS|CLONE_NEWPID and an inherited pipe as
// fd 3. testinit then:
//
//   - makes / private recursively, so nothing it mounts reaches the host;
//   - mounts a fresh /proc for the new PID namespace;
//   - mounts overlays on /etc, /usr and /var (lower = the host directory,
//     upper and work under DIR/<name>/, which must be on a real disk, not on
//     an overlay);
//   - mounts a tmpfs on /run holding an empty /run/openrc/softlevel, and a
//     tmpfs on /tmp;
//   - binds every -keep PATH back at the same path (they would otherwise be
//     hidden by the tmpfs mounts: the test's work directory lives in /tmp);
//   - writes "ready\n" to fd 3 and closes it.
//
// With -ro-root, every mount but /run, /tmp and the kept paths is made
// read-only (recursively) before those are mounted: a read-only root
// as containers run with. With -exec, testinit then executes PROG in its
// place, still PID 1, with fd 3 left open after the "ready" line (`gosv
// init -d 3` writes its own readiness there): the test's PID 1 is PROG.
//
// Any setup failure is written to fd 3 as "error: ...\n" and testinit exits
// 1. After setup it never exits on its own: the test tears the namespace
// down by sending SIGKILL to it, which makes the kernel kill every process
// inside.
package main

import (
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// overlaid are the host directories that get a writable copy-on-write layer.
var overlaid = []string{"/etc", "/usr", "/var"}

func main() {
	ready := os.NewFile(3, "ready")
	args, prog := os.Args[1:], []string(nil)
	for i, a := range args {
		if a == "-exec" {
			args, prog = args[:i], args[i+1:]
			break
		}
	}
	if err := setup(args); err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		os.Exit(1)
	}
	if len(prog) > 0 {
		fmt.Fprintln(ready, "ready")
		err := unix.Exec(prog[0], prog, os.Environ())
		fmt.Fprintf(ready, "error: exec %s: %v\n", prog[0], err)
		os.Exit(1)
	}
	// Subscribe before signalling readiness: a command started by the test
	// may fork an orphan at once.
	sigc := make(chan os.Signal, 1)
	signal.Notify(sigc, unix.SIGCHLD)
	fmt.Fprintln(ready, "ready")
	ready.Close()
	for {
		reap()
		<-sigc
	}
}

// reap waits for every child that has exited, until none is left
// (tini's reap_zombies). SIGCHLD notifications coalesce, so one signal may
// stand for many exits.
func reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err == unix.EINTR {
			continue
		}
		// NOTE: ECHILD (no children at all) is the normal idle state of an
		// init whose processes are all started by nsenter from outside.
		if pid <= 0 || err != nil {
			return
		}
		// Tests wait for this line (NS.WaitReaped): a process that has
		// exited is a zombie, alive to kill(pid, 0), until here.
		fmt.Printf("reaped %d\n", pid)
	}
}

func setup(args []string) error {
	var base string
	var keep []string
	roRoot := false
	for i := 0; i < len(args); i++ {
		switch {
		case args[i] == "-ro-root":
			roRoot = true
		case args[i] == "-overlay-base" && i+1 < len(args):
			i++
			base = args[i]
		case args[i] == "-keep" && i+1 < len(args):
			i++
			keep = append(keep, args[i])
		default:
			return fmt.Errorf("usage: testinit -overlay-base DIR [-keep PATH]... [-ro-root] [-exec PROG [ARG...]]")
		}
	}
	if base == "" || os.Getpid() != 1 {
		return fmt.Errorf("must run as PID 1 of a new namespace with -overlay-base")
	}
	// First thing: without this, a shared / would propagate every mount
	// below to the host.
	if err := mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	if err := mount("proc", "/proc", "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return err
	}
	for _, dir := range overlaid {
		if err := overlay(base, dir); err != nil {
			return err
		}
	}
	// Open the kept paths before /tmp and /run are covered, then bind them
	// back through /proc/self/fd.
	keepFds, err := openPaths(keep)
	if err != nil {
		return err
	}
	if roRoot {
		attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY}
		if err := unix.MountSetattr(-1, "/", unix.AT_RECURSIVE, &attr); err != nil {
			return &os.PathError{Op: "mount_setattr MOUNT_ATTR_RDONLY", Path: "/", Err: err}
		}
	}
	if err := mount("tmpfs", "/run", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0755"); err != nil {
		return err
	}
	if err := os.MkdirAll("/run/openrc", 0o755); err != nil {
		return err
	}
	if err := os.WriteFile("/run/openrc/softlevel", nil, 0o644); err != nil {
		return err
	}
	if err := mount("tmpfs", "/tmp", "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=1777"); err != nil {
		return err
	}
	for i, p := range keep {
		if err := os.MkdirAll(p, 0o755); err != nil {
			return err
		}
		src := fmt.Sprintf("/proc/self/fd/%d", keepFds[i])
		if err := mount(src, p, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if roRoot {
			// A bind mount copies its source's flags: writable again.
			attr := unix.MountAttr{Attr_clr: unix.MOUNT_ATTR_RDONLY}
			if err := unix.MountSetattr(-1, p, unix.AT_RECURSIVE, &attr); err != nil {
				return &os.PathError{Op: "mount_setattr", Path: p, Err: err}
			}
		}
		unix.Close(keepFds[i])
	}
	return nil
}

// overlay mounts an overlay on dir whose lower layer is dir itself.
func overlay(base, dir string) error {
	name := strings.Trim(filepath.Base(dir), "/")
	upper := filepath.Join(base, name, "upper")
	work := filepath.Join(base, name, "work")
	for _, d := range []string{upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", dir, upper, work)
	return mount("overlay", dir, "overlay", 0, opts)
}

func openPaths(paths []string) ([]int, error) {
	fds := make([]int, len(paths))
	for i, p := range paths {
		if !filepath.IsAbs(p) {
			return nil, fmt.Errorf("keep path %q is not absolute", p)
		}
		fd, err := unix.Open(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return nil, &os.PathError{Op: "open", Path: p, Err: err}
		}
		fds[i] = fd
	}
	return fds, nil
}

func mount(src, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(src, target, fstype, flags, data); err != nil {
		return &os.PathError{Op: "mount " + fstype, Path: target, Err: err}
	}
	return nil
}
