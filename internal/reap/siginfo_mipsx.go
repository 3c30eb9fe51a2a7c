//go:build mips || mipsle || mips64 || mips64le

package reap

// errnoCode is siginfo_t's si_errno, si_code pair, swapped on MIPS.
type errnoCode struct {
	Code  int32
	Errno int32
}
