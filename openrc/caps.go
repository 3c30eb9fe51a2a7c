package openrc

import (
	"fmt"
	"strconv"
	"strings"
)

// capNames are the Linux capabilities by number (linux/capability.h, 6.x).
var capNames = [...]string{
	"chown", "dac_override", "dac_read_search", "fowner", "fsetid", "kill", "setgid", "setuid",
	"setpcap", "linux_immutable", "net_bind_service", "net_broadcast", "net_admin", "net_raw",
	"ipc_lock", "ipc_owner", "sys_module", "sys_rawio", "sys_chroot", "sys_ptrace", "sys_pacct",
	"sys_admin", "sys_boot", "sys_nice", "sys_resource", "sys_time", "sys_tty_config", "mknod",
	"lease", "audit_write", "audit_control", "setfcap", "mac_override", "mac_admin", "syslog",
	"wake_alarm", "block_suspend", "audit_read", "perfmon", "bpf", "checkpoint_restore",
}

// IAB is a capability vector triple in libcap's IAB sense, as
// supervise-daemon's --capabilities sets it with cap_iab_set_proc: the
// inheritable set, the ambient set and the capabilities dropped from the
// bounding set. Bit n stands for capability n.
type IAB struct {
	Inh, Amb, Drop uint64
}

// ParseIAB reads libcap's IAB text (cap_iab_from_text): a comma-separated
// list of capability names (cap_net_bind_service, net_bind_service) or
// numbers, each with zero or more prefixes: '%' inheritable (the default
// without prefix), '^' ambient and inheritable, '!' dropped from the
// bounding set.
func ParseIAB(s string) (IAB, error) {
	var iab IAB
	for _, tok := range strings.Split(s, ",") {
		tok = strings.TrimSpace(tok)
		if tok == "" {
			return IAB{}, fmt.Errorf("empty capability in %q", s)
		}
		var inh, amb, drop bool
		for len(tok) > 0 && strings.ContainsRune("!^%", rune(tok[0])) {
			switch tok[0] {
			case '!':
				drop = true
			case '^':
				amb, inh = true, true
			case '%':
				inh = true
			}
			tok = tok[1:]
		}
		if !drop && !amb {
			inh = true
		}
		n, ok := capNumber(tok)
		if !ok {
			return IAB{}, fmt.Errorf("unknown capability %q", tok)
		}
		bit := uint64(1) << n
		if inh {
			iab.Inh |= bit
		}
		if amb {
			iab.Amb |= bit
		}
		if drop {
			iab.Drop |= bit
		}
	}
	return iab, nil
}

func capNumber(name string) (int, bool) {
	if n, err := strconv.Atoi(name); err == nil {
		return n, n >= 0 && n < 64
	}
	name = strings.TrimPrefix(strings.ToLower(name), "cap_")
	for i, c := range capNames {
		if c == name {
			return i, true
		}
	}
	return 0, false
}
