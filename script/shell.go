package script

import (
	"math"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/synstack/synstack/nstat"
	"github.com/synstack/synstack/tcp"
)

// command runs a shell command line. Each command in it (split on ;, &&,
// || and newlines; a backslash-newline continues a line) is mapped to the
// stack's configuration or refused by name: sysctls the stack has a
// setting for, packetdrill's defaults.sh (whose settings it applies), nstat
// checks against the stack's counters, the qdisc and offload commands where
// they change nothing the stack models, writes of CUBIC's module
// parameters that match what the stack does, and removing a file.
func (r *runner) command(e *event) error {
	for _, part := range splitCommands(e.command) {
		if part == "" || part == "true" || part == ":" {
			continue
		}
		if err := r.shellAlternatives(e.line, part); err != nil {
			return err
		}
	}
	return nil
}

// shellAlternatives runs "a || b || ...": b only when a fails, as a
// shell does; a command the runner cannot run (a sysctl Linux lacks, so
// that the script falls back to b on Linux too) counts as failing.
func (r *runner) shellAlternatives(line int, part string) error {
	first, rest, alt := strings.Cut(part, "||")
	err := r.shellCommand(line, strings.TrimSpace(first))
	if err == nil || !alt {
		return err
	}
	r.verbosef("`%s` failed (%v): running what follows its ||", strings.TrimSpace(first), err)
	return r.shellAlternatives(line, strings.TrimSpace(rest))
}

// shellCommand runs one simple command (or pipeline) of a shell line.
func (r *runner) shellCommand(line int, part string) error {
	words, redir := shellWords(r.expandDefines(part))
	if len(words) == 0 {
		return nil
	}
	cmd := words[0]
	switch {
	case strings.HasSuffix(cmd, "defaults.sh"):
		return r.applyDefaults(line)
	case cmd == "sysctl":
		return r.sysctl(line, words[1:], redir)
	case strings.HasSuffix(cmd, "set_sysctls.py"):
		// The kernel selftests' and packetdrill's helper: each
		// argument is /proc/sys/PATH=VALUE.
		var args []string
		for _, a := range words[1:] {
			args = append(args, strings.TrimPrefix(a, "/proc/sys/"))
		}
		return r.sysctl(line, args, redir)
	case strings.HasPrefix(cmd, "/tmp/sysctl_restore_"):
		r.warnf(line, "ignored shell command `%s`: it restores the sysctls a script changed, and each script gets a fresh stack", part)
		return nil
	case cmd == "nstat":
		return r.nstat(line, part, words[1:])
	case cmd == "tc":
		return r.qdisc(line, part, words[1:])
	case cmd == "ethtool":
		return r.ethtool(line, part, words[1:])
	case cmd == "ip" && len(words) >= 3 && words[1] == "tcp_metrics" && words[2] == "flush":
		// Of Linux's per-destination metrics the stack keeps only
		// the Fast Open cookies (and each script has a fresh stack).
		if r.st != nil {
			r.st.flushFastOpenCache()
		}
		return nil
	case cmd == "echo" && redir != "":
		return r.writeFile(line, part, words[1:], redir)
	case (cmd == "/bin/rm" || cmd == "rm") && len(words) >= 2 && words[1] == "-f":
		// Removing a scratch file the script made for itself: the
		// runner's are in memory (files.go).
		for _, f := range words[2:] {
			if !strings.HasPrefix(f, "/tmp/") {
				return r.unsupported(line, "shell command `%s` (the runner removes only files under /tmp)", part)
			}
			delete(r.files, f)
		}
		return nil
	case cmd == "/bin/dd" || cmd == "dd":
		return r.dd(line, part, words[1:])
	case cmd == "grep":
		return r.procGrep(line, part, words)
	}
	return r.unsupported(line, "shell command `%s`", part)
}

// splitCommands splits a shell line on ;, && and newlines, after
// joining backslash-continued lines; "a || b" stays one part
// (shellAlternatives).
func splitCommands(s string) []string {
	s = strings.ReplaceAll(s, "\\\n", " ")
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if i := strings.Index(line, "#"); i >= 0 && (i == 0 || line[i-1] == ' ' || line[i-1] == '\t') {
			line = line[:i] // a shell comment
		}
		line = strings.ReplaceAll(line, "&&", ";")
		for _, p := range strings.Split(line, ";") {
			out = append(out, strings.TrimSpace(p))
		}
	}
	return out
}

// shellWords splits a command into words as a shell does for the commands
// the runner knows: quotes ('...' and "...") group, a backslash escapes,
// and redirections are taken out. It returns the words and the file the
// command's standard output is redirected to ("" when none; /dev/null
// counts as a redirection).
func shellWords(s string) (words []string, redirect string) {
	var cur strings.Builder
	inWord := false
	flush := func() {
		if inWord {
			words = append(words, cur.String())
			cur.Reset()
			inWord = false
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == ' ' || c == '\t':
			flush()
		case c == '>':
			// A redirection starts a word, unless it follows its
			// descriptor ("2>", "&>").
			if strings.Trim(cur.String(), "0123456789&") != "" {
				flush()
			}
			cur.WriteByte(c)
			inWord = true
		case c == '\'' || c == '"':
			j := strings.IndexByte(s[i+1:], c)
			if j < 0 {
				j = len(s) - i - 1
			}
			cur.WriteString(s[i+1 : i+1+j])
			inWord = true
			i += j + 1
		case c == '\\' && i+1 < len(s):
			cur.WriteByte(s[i+1])
			inWord = true
			i++
		default:
			cur.WriteByte(c)
			inWord = true
		}
	}
	flush()
	// Redirections: "> F", ">F", "2>F", "&> F", "2>&1".
	var out []string
	for i := 0; i < len(words); i++ {
		w := words[i]
		op := strings.TrimLeft(w, "0123456789&")
		if !strings.HasPrefix(op, ">") {
			out = append(out, w)
			continue
		}
		target := strings.TrimLeft(op, ">")
		if target == "" && i+1 < len(words) {
			i++
			target = words[i]
		}
		if strings.HasPrefix(target, "&") {
			continue // 2>&1
		}
		if !strings.HasPrefix(w, "2") {
			redirect = target
		}
	}
	return out, redirect
}

// defaultsSh is what packetdrill's gtests/net/common/defaults.sh sets, in
// its order. The runner applies each: sysctls the stack has a setting for
// set it; the others must name the value the stack's fixed behaviour
// already has (fixedSysctls), or a warning says what was left out.
var defaultsSh = [][2]string{
	{"net.ipv4.tcp_rmem", "4096 540000 15728640"},
	{"net.ipv4.tcp_wmem", "4096 262144 4194304"},
	{"net.ipv4.tcp_timestamps", "1"},
	{"net.ipv4.tcp_syn_retries", "5"},
	{"net.ipv4.tcp_synack_retries", "5"},
	{"net.ipv4.tcp_frto", "2"},
	{"net.ipv4.tcp_sack", "1"},
	{"net.ipv4.tcp_dsack", "1"},
	{"net.ipv4.tcp_fack", "0"},
	{"net.ipv4.tcp_reordering", "3"},
	{"net.ipv4.tcp_congestion_control", "cubic"},
	{"net.ipv4.tcp_slow_start_after_idle", "0"},
	{"net.ipv4.tcp_early_retrans", "4"},
	{"net.ipv4.tcp_recovery", "1"},
	{"net.ipv4.tcp_tso_win_divisor", "3"},
	{"net.ipv4.tcp_ecn", "0"},
	{"net.ipv4.tcp_ecn_option", "2"},
	{"net.ipv4.tcp_pacing_ss_ratio", "200"},
	{"net.ipv4.tcp_pacing_ca_ratio", "120"},
	{"net.ipv4.tcp_notsent_lowat", "4294967295"},
	{"net.ipv4.tcp_fastopen", "0x70403"},
	{"net.ipv4.tcp_fastopen_key", "a1a1a1a1-b2b2b2b2-c3c3c3c3-d4d4d4d4"},
	{"net.ipv4.tcp_syncookies", "1"},
}

// fixedSysctls are sysctls whose setting is built into the stack: a script
// may set them to that value (defaults.sh does), and any other value is
// refused by name.
var fixedSysctls = map[string]int{
	"net.ipv4.tcp_frto":            0,   // no F-RTO (RFC 5682): after an RTO the stack retransmits in slow start
	"net.ipv4.tcp_dsack":           1,   // D-SACK (RFC 2883) sent and understood
	"net.ipv4.tcp_fack":            0,   // no FACK (gone from Linux since 4.15)
	"net.ipv4.tcp_reordering":      3,   // the initial duplicate-ACK threshold
	"net.ipv4.tcp_early_retrans":   4,   // tail loss probes (RFC 8985)
	"net.ipv4.tcp_recovery":        1,   // RACK loss detection (RFC 8985)
	"net.ipv4.tcp_ecn_option":      2,   // AccECN option: only with AccECN, which is never negotiated
	"net.ipv4.tcp_pacing_ss_ratio": 200, // the pacing rate in slow start (PacingRate)
	"net.ipv4.tcp_pacing_ca_ratio": 120, // and in congestion avoidance
	"net.ipv4.tcp_syncookies":      1,   // SYN cookies when the SYN queue overflows
}

// applyDefaults applies packetdrill's defaults.sh (see defaultsSh).
func (r *runner) applyDefaults(line int) error {
	for _, d := range defaultsSh {
		if d[0] == "net.ipv4.tcp_congestion_control" {
			r.tcpCfg.Congestion = d[1]
			continue
		}
		skip := r.opts.SkipUnknown
		r.opts.SkipUnknown = true // a setting the stack lacks is a warning here
		n := len(r.res.Warnings)
		err := r.setSysctl(line, d[0], d[1])
		r.opts.SkipUnknown = skip
		if err != nil {
			return err
		}
		if len(r.res.Warnings) > n {
			r.res.Warnings[n] = strings.Replace(r.res.Warnings[n], "skipped:", "defaults.sh: not applied:", 1)
		}
	}
	return nil
}

// sysctl applies "sysctl [-q] [-w] [-e] name=value ..." to the stack's TCP
// defaults (before the stack starts), and reads one ("sysctl [-n] name"):
// a read succeeds for a sysctl the runner knows, whose value is only
// written to the script's redirection, which the runner has nowhere to
// show.
func (r *runner) sysctl(line int, args []string, redirect string) error {
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			continue
		}
		name, value, ok := strings.Cut(a, "=")
		name = strings.ReplaceAll(name, "/", ".")
		if !ok {
			if _, known := r.sysctlValue(name); !known {
				if err := r.unsupported(line, "sysctl %s (reading a sysctl the runner does not know)", name); err != nil {
					return err
				}
			}
			continue
		}
		if err := r.setSysctl(line, name, value); err != nil {
			return err
		}
	}
	return nil
}

// sysctlValue reads a sysctl from the stack's configuration.
func (r *runner) sysctlValue(name string) (string, bool) {
	c := r.tcpCfg
	switch name {
	case "net.ipv4.tcp_congestion_control":
		if c.Congestion == "" {
			return "cubic", true
		}
		return c.Congestion, true
	case "net.ipv4.tcp_timestamps":
		return strconv.Itoa(boolInt(!c.NoTimestamps)), true
	case "net.ipv4.tcp_sack":
		return strconv.Itoa(boolInt(!c.NoSACK)), true
	case "net.ipv4.tcp_window_scaling":
		return strconv.Itoa(boolInt(!c.NoWindowScale)), true
	case "net.ipv4.tcp_slow_start_after_idle":
		return strconv.Itoa(boolInt(!c.NoSlowStartAfterIdle)), true
	case "net.ipv4.tcp_ecn":
		return strconv.Itoa(map[tcp.ECNMode]int{tcp.ECNOff: 0, tcp.ECNOn: 1, tcp.ECNPassive: 2}[c.ECN]), true
	case sysctlHyStartPP:
		return strconv.Itoa(boolInt(c.HyStartPlusPlus)), true
	}
	if v, ok := fixedSysctls[name]; ok {
		return strconv.Itoa(v), true
	}
	return "", false
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// setSysctl applies name=value: the sysctls whose value is a vector or a
// name, then the integer ones (applySysctl).
func (r *runner) setSysctl(line int, name, value string) error {
	if ok, err := r.fastOpenSysctl(line, name, value); ok {
		return err
	}
	value = strings.TrimSpace(value)
	switch name {
	case "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem":
		return r.setBufSysctl(line, name, value)
	case "net.ipv4.tcp_congestion_control":
		old := r.tcpCfg
		r.tcpCfg.Congestion = value
		if r.st != nil {
			r.st.updateTCP(changedFields(old, r.tcpCfg)) // for connections made from now on
		}
		return nil
	}
	v, err := strconv.ParseInt(value, 0, 64)
	if err != nil {
		return r.unsupported(line, "sysctl %s=%s", name, value)
	}
	if want, ok := fixedSysctls[name]; ok {
		if int(v) != want {
			return r.unsupported(line, "sysctl %s=%d (synstack's behaviour is fixed at %d)", name, v, want)
		}
		return nil
	}
	return r.applySysctl(line, name, int(v))
}

// setBufSysctl applies tcp_rmem or tcp_wmem ("MIN DEFAULT MAX"): the
// default is the buffer a connection starts with, the maximum bounds its
// autotuning, and tcp_rmem's maximum picks the window scale offered (as
// Linux's tcp_select_initial_window: the smallest shift that fits the
// largest window in 16 bits).
func (r *runner) setBufSysctl(line int, name, value string) error {
	f := strings.Fields(value)
	var v [3]int
	if len(f) != 3 {
		return r.errf(line, "sysctl %s=%q: expected three numbers (min, default, max)", name, value)
	}
	for i, s := range f {
		n, err := strconv.Atoi(s)
		if err != nil || n <= 0 {
			return r.errf(line, "sysctl %s=%q: bad number %q", name, value, s)
		}
		v[i] = n
	}
	if v[0] > v[1] || v[1] > v[2] {
		return r.errf(line, "sysctl %s=%q: expected min <= default <= max", name, value)
	}
	if r.st != nil {
		return r.unsupported(line, "sysctl %s after the stack started (put it before the first event)", name)
	}
	c := &r.tcpCfg
	if name == "net.ipv4.tcp_rmem" {
		c.RcvBuf, c.RcvBufMax = v[1], v[2]
		ws := uint8(0)
		for space := v[2]; space > 0xffff && ws < 14; space >>= 1 {
			ws++
		}
		c.WScale = ws
	} else {
		c.SndBuf, c.SndBufMax = v[1], v[2]
	}
	return nil
}

// nstat: "nstat" (or "nstat -n", output to /dev/null) takes a snapshot of
// the stack's counters, as nstat keeps its history file; "nstat | grep
// NAME" succeeds if the counter NAME grew since, as the grep finds only
// counters nstat prints, those that changed.
func (r *runner) nstat(line int, part string, args []string) error {
	pipe := -1
	for i, a := range args {
		if a == "|" || strings.HasPrefix(a, "|") {
			pipe = i
			break
		}
	}
	if pipe < 0 {
		for _, a := range args {
			if a != "-n" && a != "-a" && a != "-z" {
				return r.unsupported(line, "shell command `%s` (nstat option %s)", part, a)
			}
		}
		if err := r.startStack(line); err != nil {
			return err
		}
		snap := r.st.stats()
		r.nstatBase = &snap
		return nil
	}
	grep := args[pipe:]
	if grep[0] == "|" {
		grep = grep[1:]
	} else {
		grep[0] = strings.TrimPrefix(grep[0], "|")
	}
	if len(grep) != 2 || grep[0] != "grep" {
		return r.unsupported(line, "shell command `%s` (nstat's output is checked only by `| grep COUNTER`)", part)
	}
	if err := r.startStack(line); err != nil {
		return err
	}
	cur := r.st.stats()
	now, ok := counterByName(&cur, grep[1])
	if !ok {
		return r.unsupported(line, "shell command `%s` (synstack has no counter %s)", part, grep[1])
	}
	var was uint64
	if r.nstatBase != nil {
		was, _ = counterByName(r.nstatBase, grep[1])
	}
	r.nstatBase = &cur
	if now == was {
		return r.errf(line, "`%s` failed: %s did not change (it is %d)", part, grep[1], now)
	}
	return nil
}

// counterByName reads the counter named as nstat names it.
func counterByName(c *nstat.Counters, name string) (uint64, bool) {
	f := reflect.ValueOf(c).Elem().FieldByName(name)
	if !f.IsValid() || f.Kind() != reflect.Uint64 {
		return 0, false
	}
	return f.Uint(), true
}

// qdisc maps "tc qdisc ... dev tun0 root QDISC": pfifo, the default
// queue, changes nothing; fq paces every congestion control
// (tcp.Config.Pacing); "pfifo limit 0" is a queue that takes nothing, as
// Linux scripts use it to make every transmit fail in the host
// (testLink.setFull); other queues that drop or hold packets are refused.
func (r *runner) qdisc(line int, part string, args []string) error {
	if len(args) < 1 || args[0] != "qdisc" {
		return r.unsupported(line, "shell command `%s`", part)
	}
	if len(args) >= 2 && (args[1] == "delete" || args[1] == "del") {
		return r.setQueueFull(line, part, false) // back to the default queue
	}
	root := -1
	for i, a := range args {
		if a == "root" {
			root = i
		}
	}
	if root < 0 || root+1 >= len(args) {
		return r.unsupported(line, "shell command `%s`", part)
	}
	kind, rest := args[root+1], args[root+2:]
	switch {
	case kind == "pfifo" && len(rest) == 0, kind == "pfifo_fast" && len(rest) == 0:
		return r.setQueueFull(line, part, false)
	case kind == "pfifo" && strings.Join(rest, " ") == "limit 0":
		return r.setQueueFull(line, part, true)
	case kind == "fq" && len(rest) == 0:
		if r.st != nil {
			return r.unsupported(line, "shell command `%s` after the stack started (put it before the first event)", part)
		}
		r.tcpCfg.Pacing = true
		return nil
	}
	return r.unsupported(line, "shell command `%s` (qdisc %s %s)", part, kind, strings.Join(rest, " "))
}

// setQueueFull starts or ends the link's queue that takes nothing.
func (r *runner) setQueueFull(line int, part string, full bool) error {
	if r.lnk == nil {
		r.queueFull = full // before the stack: startStack applies it
		return nil
	}
	if err := r.lnk.setFull(full); err != nil {
		return r.errf(line, "%s: %v", part, err)
	}
	return nil
}

// ethtool maps "ethtool -K DEV tso off gso off ...": the stack sends
// MSS-sized segments (no TSO nor GSO), which the runner joins into the
// super-segment a line expects; with offloads off a script expects each
// segment on its own line, which the runner then checks segment by
// segment (as --strict_segments).
func (r *runner) ethtool(line int, part string, args []string) error {
	if len(args) < 2 || args[0] != "-K" || len(args)%2 != 0 {
		return r.unsupported(line, "shell command `%s`", part)
	}
	for i := 2; i < len(args); i += 2 {
		feat, val := args[i], args[i+1]
		switch {
		case (feat == "tso" || feat == "gso") && val == "off":
			r.strictSegments = true
		case (feat == "tso" || feat == "gso") && val == "on":
			r.strictSegments = false
		default:
			return r.unsupported(line, "shell command `%s` (ethtool feature %s %s)", part, feat, val)
		}
	}
	return nil
}

// cubicParams are CUBIC's module parameters and the value the stack's
// CUBIC has for each (RFC 9438's C = 0.4 is bic_scale 41, beta 0.7 is 717
// of 1024; HyStart is Linux's, with both detectors, tcp/hystart.go):
// writing that value is accepted, any other refused.
var cubicParams = map[string]string{
	"hystart":              "1",
	"hystart_detect":       "3",
	"hystart_low_window":   "16",
	"hystart_ack_delta_us": "2000",
	"fast_convergence":     "1",
	"beta":                 "717",
	"tcp_friendliness":     "1",
	"initial_ssthresh":     "0",
	"bic_scale":            "41",
}

// writeFile maps "echo VALUE > FILE": CUBIC's module parameters
// (/sys/module/tcp_cubic/parameters/NAME) and sysctls (/proc/sys/PATH).
func (r *runner) writeFile(line int, part string, args []string, file string) error {
	value := strings.Join(args, " ")
	if name, ok := strings.CutPrefix(file, "/proc/sys/"); ok {
		return r.setSysctl(line, strings.ReplaceAll(name, "/", "."), value)
	}
	if name, ok := strings.CutPrefix(file, "/sys/module/tcp_cubic/parameters/"); ok {
		want, known := cubicParams[name]
		switch {
		case !known:
			return r.unsupported(line, "shell command `%s` (no CUBIC parameter %s)", part, name)
		case value != want:
			return r.unsupported(line, "shell command `%s` (synstack's CUBIC has %s fixed at %s)", part, name, want)
		}
		return nil
	}
	if file == "/dev/null" {
		return nil
	}
	return r.unsupported(line, "shell command `%s`", part)
}

// expandDefines replaces ${NAME} and $NAME of the script's definitions
// (-D NAME=VALUE) in a shell command, as packetdrill passes them in the
// environment.
func (r *runner) expandDefines(s string) string {
	if len(r.opts.Defines) == 0 || !strings.Contains(s, "$") {
		return s
	}
	return os.Expand(s, func(name string) string {
		if v, ok := r.opts.Defines[name]; ok {
			return v
		}
		return "${" + name + "}"
	})
}

// sysctlHyStartPP is the runner's own sysctl, which Linux has not (its
// CUBIC has no HyStart++): 1 has CUBIC leave its first slow start by RFC
// 9406's HyStart++ (tcp.Config.HyStartPlusPlus) instead of Linux's HyStart,
// for the sockets made after it; 0, the default, is Linux's HyStart. The
// name says whose it is: under real packetdrill the sysctl fails, naming
// the file /proc/sys lacks.
const sysctlHyStartPP = "net.ipv4.tcp_synstack_hystart_plus_plus"

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
	case "net.ipv4.tcp_min_tso_segs":
		// The GSO packet's size: which segments leave as one packet
		// and so where PSH lands.
		if v == 2 {
			v = 0 // Linux's default
		}
		setInt(&c.MinTSOSegs, v)
	case "net.ipv4.tcp_tso_win_divisor":
		// TSO sizing: the stack sends MSS-sized segments and the runner
		// joins them into the super-segment a line expects.
		r.warnf(line, "ignored sysctl %s=%d: synstack has no TSO (the runner aggregates segments as packetdrill does)", name, v)
		return nil
	case "net.ipv4.tcp_notsent_lowat":
		// UINT_MAX, Linux's default, and anything past INT_MAX: no
		// bound (0 in tcp.Config).
		if v < 0 || v >= math.MaxInt32 {
			v = 0
		}
		setInt(&c.NotSentLowat, v)
	case "net.ipv4.tcp_slow_start_after_idle":
		setBool(&c.NoSlowStartAfterIdle, v == 0)
	case "net.ipv4.tcp_ecn":
		modes := map[int]tcp.ECNMode{0: tcp.ECNOff, 1: tcp.ECNOn, 2: tcp.ECNPassive}
		m, ok := modes[v]
		if !ok {
			return r.unsupported(line, "sysctl %s=%d (the modes are 0, 1 and 2)", name, v)
		}
		changed = c.ECN != m
		c.ECN = m
	case sysctlHyStartPP:
		if v != 0 && v != 1 {
			return r.unsupported(line, "sysctl %s=%d (0: Linux's HyStart, 1: RFC 9406's HyStart++)", name, v)
		}
		setBool(&c.HyStartPlusPlus, v == 1)
	default:
		return r.unsupported(line, "sysctl %s", name)
	}
	if r.st != nil && changed {
		r.st.updateTCP(changedFields(old, *c))
	}
	return nil
}

// changedFields returns a function that sets, in a stack's tcp defaults,
// the fields in which now differs from was: a sysctl written after the
// stack started applies to the connections made after it, as Linux's.
func changedFields(was, now tcp.Config) func(d *tcp.Config) {
	return func(d *tcp.Config) {
		w, n, dv := reflect.ValueOf(was), reflect.ValueOf(now), reflect.ValueOf(d).Elem()
		for i := range n.NumField() {
			if dv.Field(i).CanSet() && !reflect.DeepEqual(w.Field(i).Interface(), n.Field(i).Interface()) {
				dv.Field(i).Set(n.Field(i))
			}
		}
	}
}
