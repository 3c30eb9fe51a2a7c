package servicedir

import (
	"encoding/binary"

	"golang.org/x/sys/unix"
)

// Present is the set of a service directory's top-level names that one
// listing found, among the names of [fileNames] (anything else is not
// tracked and always counts as present). The zero value knows nothing:
// Has says true for every name, so a caller without a listing reads
// every file as before.
//
// NOTE: a listing replaces, for the optional files that do not exist,
// one failing open(2) each by one getdents(2) for the whole directory:
// s6-supervise re-reads about twenty optional files at each spawn and
// death, most of them absent, and on a disk file system those failing
// lookups were most of a bring-up's metadata work. The listing is only
// as fresh as the read point that made it: callers list again at each
// point where s6 re-reads its files, so a file created in between is
// seen at the next read point, as without a listing.
type Present struct {
	known bool
	bits  [2]uint64
}

// presentIndex numbers the top-level names of fileNames (those without
// a slash): the bit of each in Present.bits. Read-only after init.
var presentIndex = func() map[string]int {
	m := make(map[string]int)
	for _, n := range fileNames {
		if _, ok := m[n]; ok || containsSlash(n) {
			continue
		}
		m[n] = len(m)
	}
	if len(m) > 128 {
		panic("servicedir: Present holds at most 128 names")
	}
	return m
}()

func containsSlash(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			return true
		}
	}
	return false
}

// Has reports whether name may exist: false only when the listing
// covered it and did not find it.
func (p *Present) Has(name string) bool {
	if !p.known {
		return true
	}
	i, ok := presentIndex[name]
	return !ok || p.bits[i/64]&(1<<(i%64)) != 0
}

// ListPresent lists the service directory dir once (getdents on a
// directory fd; no allocation but the fd's). On error it returns the
// zero Present, which has every name: the caller then reads each file
// and meets the error, or the file, there.
func ListPresent(dir string) (Present, error) {
	fd, err := openatRetry(unix.AT_FDCWD, dir, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return Present{}, err
	}
	defer unix.Close(fd)
	var p Present
	var buf [4096]byte
	for {
		n, err := unix.ReadDirent(fd, buf[:])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return Present{}, err
		}
		if n <= 0 {
			break
		}
		p.add(buf[:n])
	}
	p.known = true
	return p, nil
}

// add sets the bits of the names in b, a run of linux_dirent64 records:
// ino u64, off s64, reclen u16, type u8, then the NUL-terminated name.
func (p *Present) add(b []byte) {
	const nameOff = 19
	for len(b) >= nameOff {
		reclen := int(binary.NativeEndian.Uint16(b[16:18]))
		if reclen < nameOff || reclen > len(b) {
			return
		}
		name := b[nameOff:reclen]
		for i, c := range name {
			if c == 0 {
				name = name[:i]
				break
			}
		}
		if i, ok := presentIndex[string(name)]; ok { // no allocation: map index by string(bytes)
			p.bits[i/64] |= 1 << (i % 64)
		}
		b = b[reclen:]
	}
}
