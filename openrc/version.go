package openrc

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Version is an OpenRC release number, e.g. 0.45.2.
type Version struct{ Major, Minor, Patch int }

// ParseVersion reads "0.45.2" (trailing text after the numbers is ignored).
func ParseVersion(s string) (Version, bool) {
	var v Version
	parts := strings.SplitN(strings.TrimSpace(s), ".", 3)
	dst := []*int{&v.Major, &v.Minor, &v.Patch}
	for i, p := range parts {
		end := 0
		for end < len(p) && p[end] >= '0' && p[end] <= '9' {
			end++
		}
		n, err := strconv.Atoi(p[:end])
		if err != nil {
			return Version{}, i > 1 && v != Version{}
		}
		*dst[i] = n
	}
	return v, len(parts) >= 2
}

// libexecDirs are the places OpenRC installs RC_LIBEXECDIR: upstream's
// meson default (0.63: /usr/libexec/rc) and the older /lib/rc that Debian
// (0.45) still uses.
var libexecDirs = []string{"/usr/libexec/rc", "/lib/rc"}

// LibexecDir returns OpenRC's RC_LIBEXECDIR: getenv's when openrc-run set
// it, else the installed OpenRC's (see [DetectLibexecDir]). Every gosv
// command that needs it, openrc-run's or a shell's, asks this function.
func LibexecDir(getenv func(string) string) string {
	if v := getenv("RC_LIBEXECDIR"); v != "" {
		return v
	}
	return DetectLibexecDir("/")
}

// DetectLibexecDir finds RC_LIBEXECDIR under root: the candidate that
// holds sh/openrc-run.sh, the newer one by its version file when both do
// (an upgrade from a distribution's OpenRC to upstream's may leave the old
// directory behind). /lib/rc when none does.
func DetectLibexecDir(root string) string {
	best, bestV := "", Version{}
	for _, d := range libexecDirs {
		if _, err := os.Stat(filepath.Join(root, d, "sh", "openrc-run.sh")); err != nil {
			continue
		}
		if v := ReadVersion(filepath.Join(root, d)); best == "" || !bestV.AtLeast(v) {
			best, bestV = d, v
		}
	}
	if best == "" {
		return libexecDirs[len(libexecDirs)-1]
	}
	return best
}

// ReadVersion reads $RC_LIBEXECDIR/version; the zero Version if unknown.
func ReadVersion(libexec string) Version {
	b, err := os.ReadFile(filepath.Join(libexec, "version"))
	if err != nil {
		return Version{}
	}
	v, _ := ParseVersion(string(b))
	return v
}

func (v Version) IsZero() bool { return v == Version{} }

func (v Version) String() string { return fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch) }

// AtLeast reports whether v is o or later.
func (v Version) AtLeast(o Version) bool {
	if v.Major != o.Major {
		return v.Major > o.Major
	}
	if v.Minor != o.Minor {
		return v.Minor > o.Minor
	}
	return v.Patch >= o.Patch
}

// HasDefaultReload reports whether openrc-run.sh defines default_reload
// and lists reload for every service (0.63.1, commit e93d2f4f). Unknown
// versions are taken as old, the conservative answer for lints.
func (v Version) HasDefaultReload() bool { return v.AtLeast(Version{0, 63, 1}) }
