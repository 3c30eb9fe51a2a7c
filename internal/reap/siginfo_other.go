//go:build !(mips || mipsle || mips64 || mips64le)

package reap

// errnoCode is siginfo_t's si_errno, si_code pair.
type errnoCode struct {
	Errno int32
	Code  int32
}
