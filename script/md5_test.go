package script

import (
	"net/netip"
	"strings"
	"testing"

	synstack "github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
)

// TestMD5OptionSyntax: "md5 HEX" is read as packetdrill writes it, and a
// digest that is not hex, or longer than 16 bytes, is a parse error.
func TestMD5OptionSyntax(t *testing.T) {
	run(t, handshake+`
+0  < . 1:1(0) ack 1 win 257 <md5 000102030405060708090a0b0c0d0e0f,nop,nop>
`, true)
	res := run(t, handshake+`
+0  < . 1:1(0) ack 1 win 257 <md5 zz,nop,nop>
`, false)
	wantErr(t, res, "bad md5 digest 'zz'")
	res = run(t, handshake+`
+0  < . 1:1(0) ack 1 win 257 <md5 000102030405060708090a0b0c0d0e0f10,nop,nop>
`, false)
	wantErr(t, res, "bad md5 digest")
}

// TestProcGrep: a grep pipeline over /proc/net/tcp succeeds when it
// selects a line, fails when it selects none, and other files or
// commands in the pipeline are refused by name.
func TestProcGrep(t *testing.T) {
	run(t, listen+`
+0  `+"`"+`grep " 0A " /proc/net/tcp /proc/net/tcp6 | grep ":1F90"`+"`"+`
`, true)
	res := run(t, listen+`
+0  `+"`"+`grep " 01 " /proc/net/tcp | grep -q ":1F90"`+"`"+`
`, false)
	wantErr(t, res, "no line selected")
	res = run(t, listen+`
+0  `+"`"+`grep " 0A " /proc/net/udp`+"`"+`
`, false)
	wantErr(t, res, "unsupported")
	res = run(t, listen+`
+0  `+"`"+`grep " 0A " /proc/net/tcp | wc -l`+"`"+`
`, false)
	wantErr(t, res, "only greps")
}

// TestProcLine: the line of a listener on 192.0.2.1:8080 and of an
// IPv6 connection, as Linux prints them.
func TestProcLine(t *testing.T) {
	l := procLine(0, synstack.ConnInfo{Local: netip.MustParseAddrPort("192.0.2.1:8080"), Listening: true,
		Info: tcp.Info{State: tcp.Listen}})
	if want := "   0: 010200C0:1F90 00000000:0000 0A 00000000:00000000 "; !strings.HasPrefix(l, want) {
		t.Errorf("%q\nwant it to start %q", l, want)
	}
	c := procLine(1, synstack.ConnInfo{Local: netip.MustParseAddrPort("[fd00::1]:80"),
		Remote: netip.MustParseAddrPort("[fd00::2]:1024"), Info: tcp.Info{State: tcp.Established}, RecvQ: 5})
	if want := "   1: 000000FD000000000000000001000000:0050 000000FD000000000000000002000000:0400 01 00000000:00000005 "; !strings.HasPrefix(c, want) {
		t.Errorf("%q\nwant it to start %q", c, want)
	}
}
