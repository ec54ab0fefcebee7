package script

import (
	"strconv"
	"strings"
	"time"
)

// command runs a shell command line: sysctls the stack has a setting for,
// and packetdrill's defaults script, which matches the stack's defaults.
func (r *runner) command(e *event) error {
	for _, part := range splitCommands(e.command) {
		if part == "" || part == "true" || part == ":" {
			continue
		}
		if strings.HasSuffix(strings.Fields(part)[0], "defaults.sh") {
			r.warnf(e.line, "ignored shell command `%s`: the stack starts with Linux's defaults (and its Fast Open settings)", part)
			if err := r.fastOpenDefaults(e.line); err != nil {
				return err
			}
			continue
		}
		f := strings.Fields(part)
		if f[0] == "sysctl" {
			if err := r.sysctl(e.line, f[1:]); err != nil {
				return err
			}
			continue
		}
		if strings.HasSuffix(f[0], "set_sysctls.py") {
			// The kernel selftests' and packetdrill's helper: each
			// argument is /proc/sys/PATH=VALUE.
			var args []string
			for _, a := range f[1:] {
				args = append(args, strings.TrimPrefix(a, "/proc/sys/"))
			}
			if err := r.sysctl(e.line, args); err != nil {
				return err
			}
			continue
		}
		if strings.HasPrefix(f[0], "/tmp/sysctl_restore_") {
			r.warnf(e.line, "ignored shell command `%s`: it restores the sysctls a script changed, and each script gets a fresh stack", part)
			continue
		}
		if err := r.unsupported(e.line, "shell command `%s`", part); err != nil {
			return err
		}
	}
	return nil
}

// splitCommands splits a shell line on ;, && and newlines.
func splitCommands(s string) []string {
	s = strings.ReplaceAll(s, "\\\n", " ") // a line continued with a backslash
	s = strings.ReplaceAll(s, "&&", ";")
	s = strings.ReplaceAll(s, "\n", ";")
	var out []string
	for _, p := range strings.Split(s, ";") {
		if i := strings.Index(p, "#"); i >= 0 && (i == 0 || p[i-1] == ' ' || p[i-1] == '\t') {
			p = p[:i] // a shell comment
		}
		out = append(out, strings.TrimSpace(p))
	}
	return out
}

// sysctl applies "sysctl [-q] [-w] name=value ..." to the stack's TCP
// defaults (before the stack starts).
func (r *runner) sysctl(line int, args []string) error {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		name, value, ok := strings.Cut(a, "=")
		if !ok {
			if err := r.unsupported(line, "sysctl %s (reading a sysctl)", a); err != nil {
				return err
			}
			continue
		}
		name = strings.ReplaceAll(name, "/", ".")
		if ok, err := r.fastOpenSysctl(line, name, value); ok {
			if err != nil {
				return err
			}
			continue
		}
		v, err := strconv.Atoi(strings.TrimSpace(value))
		if err != nil {
			if err := r.unsupported(line, "sysctl %s=%s", name, value); err != nil {
				return err
			}
			continue
		}
		if err := r.applySysctl(line, name, v); err != nil {
			return err
		}
	}
	return nil
}

// applySysctl maps one sysctl to tcp.Config.
func (r *runner) applySysctl(line int, name string, v int) error {
	c := &r.tcpCfg
	secs := time.Duration(v) * time.Second
	changed := false
	setBool := func(p *bool, x bool) { changed = *p != x; *p = x }
	setInt := func(p *int, x int) { changed = *p != x; *p = x }
	setDur := func(p *time.Duration, x time.Duration) { changed = *p != x; *p = x }
	old := *c
	switch name {
	case "net.ipv4.tcp_timestamps":
		setBool(&c.NoTimestamps, v == 0)
	case "net.ipv4.tcp_sack":
		setBool(&c.NoSACK, v == 0)
	case "net.ipv4.tcp_window_scaling":
		setBool(&c.NoWindowScale, v == 0)
	case "net.ipv4.tcp_syn_retries":
		setInt(&c.SynRetries, v)
	case "net.ipv4.tcp_synack_retries":
		setInt(&c.SynAckRetries, v)
	case "net.ipv4.tcp_retries2":
		setInt(&c.Retries2, v)
	case "net.ipv4.tcp_fin_timeout":
		setDur(&c.FinTimeout, secs)
	case "net.ipv4.tcp_keepalive_time":
		setDur(&c.KeepIdle, secs)
	case "net.ipv4.tcp_keepalive_intvl":
		setDur(&c.KeepIntvl, secs)
	case "net.ipv4.tcp_keepalive_probes":
		setInt(&c.KeepCnt, v)
	case "net.ipv4.tcp_min_tso_segs", "net.ipv4.tcp_tso_win_divisor":
		// TSO sizing: the stack sends MSS-sized segments and the runner
		// joins them into the super-segment a line expects.
		r.warnf(line, "ignored sysctl %s=%d: synstack has no TSO (the runner aggregates segments as packetdrill does)", name, v)
		return nil
	case "net.ipv4.tcp_ecn":
		if v == 0 || v == 2 {
			// The stack negotiates no ECN, as Linux with 0; as a
			// server with 2 it only answers ECN SYNs, which the
			// runner's scripts cannot send (ECN marks are refused).
			return nil
		}
		return r.unsupported(line, "sysctl %s=%d (ECN)", name, v)
	default:
		return r.unsupported(line, "sysctl %s", name)
	}
	if r.st != nil && changed {
		*c = old
		return r.unsupported(line, "sysctl %s after the stack started (put it before the first event)", name)
	}
	return nil
}
