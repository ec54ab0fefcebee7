package script

import (
	"reflect"
	"strings"
	"testing"

	"github.com/synstack/synstack/tcp"
)

func TestShellWords(t *testing.T) {
	for _, tc := range []struct {
		in    string
		words []string
		redir string
	}{
		{`sysctl -q net.ipv4.tcp_wmem="4096 50000 4194304"`, []string{"sysctl", "-q", "net.ipv4.tcp_wmem=4096 50000 4194304"}, ""},
		{`echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect`, []string{"echo", "3"}, "/sys/module/tcp_cubic/parameters/hystart_detect"},
		{`nstat | grep TcpExtOutOfWindowIcmps > /dev/null`, []string{"nstat", "|", "grep", "TcpExtOutOfWindowIcmps"}, "/dev/null"},
		{`tc qdisc delete dev tun0 root 2>/dev/null`, []string{"tc", "qdisc", "delete", "dev", "tun0", "root"}, ""},
		{`sysctl -q a=1 &> /dev/null`, []string{"sysctl", "-q", "a=1"}, "/dev/null"},
		{`ip tcp_metrics flush all > /dev/null 2>&1`, []string{"ip", "tcp_metrics", "flush", "all"}, "/dev/null"},
		{`echo 'a b'>/tmp/x`, []string{"echo", "a b"}, "/tmp/x"},
	} {
		w, r := shellWords(tc.in)
		if !reflect.DeepEqual(w, tc.words) || r != tc.redir {
			t.Errorf("shellWords(%q) = %q, %q; want %q, %q", tc.in, w, r, tc.words, tc.redir)
		}
	}
	got := splitCommands("../common/defaults.sh\nset_sysctls.py a=1 \\\n   b=2\nsysctl -q x=1 &> /dev/null ||\\\n ip tcp_metrics flush all # done")
	want := []string{"../common/defaults.sh", "set_sysctls.py a=1     b=2", "sysctl -q x=1 &> /dev/null ||  ip tcp_metrics flush all"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("splitCommands = %q, want %q", got, want)
	}
}

// command runs one shell line on a fresh runner.
func command(t *testing.T, opts Options, line string) (*runner, error) {
	t.Helper()
	res := &Result{}
	r := newRunner("t.pkt", opts, res)
	return r, r.command(&event{line: 1, command: line})
}

func TestShellDefaultsApplied(t *testing.T) {
	r, err := command(t, Options{}, "../../common/defaults.sh")
	if err != nil {
		t.Fatal(err)
	}
	c := r.tcpCfg
	if c.RcvBuf != 540000 || c.RcvBufMax != 15728640 || c.WScale != 8 || c.SndBuf != 262144 ||
		c.SndBufMax != 4194304 || c.Congestion != "cubic" || c.SynRetries != 5 || c.SynAckRetries != 5 || c.NoTimestamps || c.NoSACK {
		t.Errorf("after defaults.sh: %+v", c)
	}
	// What the stack lacks is said, not hidden.
	for _, w := range r.res.Warnings {
		if !strings.Contains(w, "defaults.sh: not applied:") && !strings.Contains(w, "ignored sysctl net.ipv4.tcp_tso_win_divisor") {
			t.Errorf("warning %q", w)
		}
	}
}

func TestShellSysctls(t *testing.T) {
	r, err := command(t, Options{}, `sysctl -q net.ipv4.tcp_rmem="4096 131072 6291456" net/ipv4/tcp_wmem="4096 16384 65536"; sysctl net.ipv4.tcp_sack`)
	if err != nil {
		t.Fatal(err)
	}
	if c := r.tcpCfg; c.RcvBuf != 131072 || c.WScale != 7 || c.SndBuf != 16384 || c.SndBufMax != 65536 {
		t.Errorf("config %+v", c)
	}
	for _, tc := range []struct{ line, err string }{
		{"sysctl -q net.ipv4.tcp_reordering=3", ""},
		{"echo 0 > /proc/sys/net/ipv4/tcp_frto", ""},
		{"echo 2 > /proc/sys/net/ipv4/tcp_frto", "synstack's behaviour is fixed at 0"},
		{"sysctl -q net.ipv4.tcp_reordering=10", "unsupported: sysctl net.ipv4.tcp_reordering=10 (synstack's behaviour is fixed at 3)"},
		{"sysctl -q net.ipv4.tcp_slow_start_after_idle=0", ""},
		{"sysctl -q net.ipv4.tcp_slow_start_after_idle=1", ""},
		{"sysctl -q net.ipv4.tcp_ecn=1", ""},
		{"sysctl -q net.ipv4.tcp_ecn=3", "unsupported: sysctl net.ipv4.tcp_ecn=3"},
		{"sysctl -q net.ipv4.tcp_synstack_hystart_plus_plus=0", ""},
		{"echo 1 > /proc/sys/net/ipv4/tcp_synstack_hystart_plus_plus", ""},
		{"sysctl -q net.ipv4.tcp_synstack_hystart_plus_plus=2", "unsupported: sysctl net.ipv4.tcp_synstack_hystart_plus_plus=2 (0: Linux's HyStart, 1: RFC 9406's HyStart++)"},
		{"sysctl net.ipv4.tcp_no_such", "unsupported: sysctl net.ipv4.tcp_no_such (reading a sysctl the runner does not know)"},
		{`sysctl -q net.ipv4.tcp_wmem="1 2"`, "expected three numbers"},
		{"echo 717 > /sys/module/tcp_cubic/parameters/beta", ""},
		{"echo 512 > /sys/module/tcp_cubic/parameters/beta", "synstack's CUBIC has beta fixed at 717"},
		{"echo 3 > /sys/module/tcp_cubic/parameters/hystart_detect", ""},
		{"echo 1 > /sys/module/tcp_cubic/parameters/hystart_detect", "synstack's CUBIC has hystart_detect fixed at 3"},
		{"/bin/rm -f /tmp/testfile", ""},
		{"/bin/rm -f /etc/passwd", "removes only files under /tmp"},
		{"tc qdisc add dev tun0 root pfifo", ""},
		{"tc qdisc replace dev tun0 root fq", ""},
		{"tc qdisc replace dev tun0 root pfifo limit 10", "unsupported: shell command `tc qdisc replace dev tun0 root pfifo limit 10` (qdisc pfifo limit 10)"},
		{"ethtool -K tun0 tso off gso off", ""},
		{"ethtool -K tun0 gro off", "ethtool feature gro off"},
		{"dd if=/dev/zero", "unsupported: shell command `dd if=/dev/zero`"},
	} {
		_, err := command(t, Options{}, tc.line)
		if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%s: error %v, want %q", tc.line, err, tc.err)
		}
	}
	r, _ = command(t, Options{}, "sysctl -q net.ipv4.tcp_congestion_control=bbr; tc qdisc replace dev tun0 root fq; ethtool -K tun0 tso off")
	if r.tcpCfg.Congestion != "bbr" || !r.tcpCfg.Pacing || !r.strictSegments {
		t.Errorf("bbr+fq, tso off: %q %v %v", r.tcpCfg.Congestion, r.tcpCfg.Pacing, r.strictSegments)
	}
}

func TestShellNstat(t *testing.T) {
	run(t, handshake+`
+0  `+"`nstat > /dev/null`"+`
+.1 < P. 1:11(10) ack 1 win 257
+0  > . 1:1(0) ack 11
+0  `+"`nstat | grep TcpInSegs > /dev/null`"+`
`, true)
	res := run(t, handshake+`
+0  `+"`nstat > /dev/null`"+`
+0  `+"`nstat | grep TcpExtOutOfWindowIcmps > /dev/null`"+`
`, false)
	wantErr(t, res, "TcpExtOutOfWindowIcmps did not change (it is 0)")
	res = run(t, handshake+"+0 `nstat | grep TcpNoSuchCounter`\n", false)
	wantErr(t, res, "synstack has no counter TcpNoSuchCounter")
}

func TestDefinesAndFlags(t *testing.T) {
	src := handshake + `
+0  write(4, ..., LEN) = LEN
+0  > P. 1:11(10) ack 1
+0  ` + "`echo ${LEN} > /dev/null`" + `
`
	res := Run("t.pkt", []byte(src), Options{Strict: true, Defines: map[string]string{"LEN": "10"}})
	if !res.Passed {
		t.Errorf("-D LEN=10: %v", res.Err)
	}
	res = Run("t.pkt", []byte("--define=LEN=10\n--tcp_ts_ecr_scaled\n"+src), Options{Strict: true})
	if !res.Passed {
		t.Errorf("--define=LEN=10: %v", res.Err)
	}
	res = Run("t.pkt", []byte(src), Options{Strict: true, Defines: map[string]string{"LEN": "10"},
		Flags: []string{"--ip_version=ipv4-mapped-ipv6", "--local_ip=192.168.7.1", "--remote_ip=10.0.0.2"}})
	if !res.Passed {
		t.Errorf("flags: %v", res.Err)
	}
	res = Run("t.pkt", []byte(src), Options{Flags: []string{"ip_version=ipv6"}})
	wantErr(t, res, `bad option "ip_version=ipv6"`)
	res = Run("t.pkt", []byte(src), Options{Flags: []string{"--remote_ip=2001:db8::1"}, Defines: map[string]string{"LEN": "10"}})
	wantErr(t, res, "must be IPv4 addresses")
	// As in packetdrill, the command line wins over the script's header.
	res = Run("t.pkt", []byte("--remote_ip=2001:db8::1\n"+src), Options{Strict: true,
		Flags: []string{"--remote_ip=10.0.0.2"}, Defines: map[string]string{"LEN": "10"}})
	if !res.Passed {
		t.Errorf("a flag over the header's option: %v", res.Err)
	}
}

func TestPythonAssignment(t *testing.T) {
	run(t, handshake+`
+0 %{
TCP_INFINITE_SSTHRESH = 0x7fffffff
assert tcpi_snd_ssthresh == TCP_INFINITE_SSTHRESH
}%
+0 %{ assert TCP_INFINITE_SSTHRESH > 0 }%
`, true)
}

// tcp_slow_start_after_idle, tcp_ecn and the runner's own
// tcp_synstack_hystart_plus_plus set the stack's switches, and read back
// as set.
func TestShellCongestionSysctls(t *testing.T) {
	r, err := command(t, Options{}, "sysctl -q net.ipv4.tcp_slow_start_after_idle=0 net.ipv4.tcp_ecn=1 net.ipv4.tcp_synstack_hystart_plus_plus=1")
	if err != nil {
		t.Fatal(err)
	}
	if c := r.tcpCfg; !c.NoSlowStartAfterIdle || c.ECN != tcp.ECNOn || !c.HyStartPlusPlus {
		t.Fatalf("NoSlowStartAfterIdle %v, ECN %d, HyStartPlusPlus %v; want true, ECNOn, true", c.NoSlowStartAfterIdle, c.ECN, c.HyStartPlusPlus)
	}
	for name, want := range map[string]string{"net.ipv4.tcp_slow_start_after_idle": "0", "net.ipv4.tcp_ecn": "1", "net.ipv4.tcp_synstack_hystart_plus_plus": "1"} {
		if v, ok := r.sysctlValue(name); !ok || v != want {
			t.Errorf("%s reads %q, want %q", name, v, want)
		}
	}
}
