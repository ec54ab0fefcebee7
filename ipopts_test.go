package synstack

import (
	"testing"

	"github.com/synstack/synstack/wire"
)

// TestIPTOSAndDontFragment: a TCP connection's IPv4 segments carry DF
// under IP_PMTUDISC_WANT (the default) and _DO only, as Linux 6.18 sends
// them, and the TOS byte IP_TOS sets, its ECN bits left to TCP; both
// follow a change on an open connection.
func TestIPTOSAndDontFragment(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, _ := n.connect(srvAddr, lfd)
	ca := n.a.Sockets()
	var df []bool
	var tos []uint8
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "a>b" && tcpPayloadLen(t, pkt) > 0 {
			df = append(df, pkt[6]&0x40 != 0)
			tos = append(tos, pkt[1])
		}
		return false
	}
	send := func() (bool, uint8) {
		t.Helper()
		df, tos = nil, nil
		if _, err := ca.Write(cfd, []byte("x")); err != nil {
			t.Fatal(err)
		}
		n.pump()
		if len(df) != 1 {
			t.Fatalf("%d segments sent", len(df))
		}
		return df[0], tos[0]
	}
	if d, s := send(); !d || s != 0 {
		t.Errorf("default: DF %v, TOS %#x; want DF, 0", d, s)
	}
	for mode, wantDF := range []bool{false, true, true, false, false, false} {
		must(t, ca.SetsockoptInt(cfd, IPPROTO_IP, IP_MTU_DISCOVER, mode))
		must(t, ca.SetsockoptInt(cfd, IPPROTO_IP, IP_TOS, 0x28|mode&3))
		if d, s := send(); d != wantDF || s != 0x28 {
			t.Errorf("mode %d: DF %v, TOS %#x; want DF %v, TOS 0x28", mode, d, s, wantDF)
		}
		if v, err := ca.GetsockoptInt(cfd, IPPROTO_IP, IP_TOS); v != 0x28 || err != nil {
			t.Errorf("mode %d: IP_TOS reads %#x, %v; want 0x28", mode, v, err)
		}
	}
}

// TestPMTUDiscDontIgnoresFragNeeded: under IP_PMTUDISC_DONT (and _INTERFACE,
// _OMIT) an ICMP "fragmentation needed" leaves the MSS alone, as Linux's
// tcp_v4_mtu_reduced; under _PROBE it lowers it as by default.
func TestPMTUDiscDontIgnoresFragNeeded(t *testing.T) {
	for _, tc := range []struct {
		mode, wantMSS int
	}{
		{IP_PMTUDISC_DONT, 1460}, {IP_PMTUDISC_INTERFACE, 1460}, {IP_PMTUDISC_OMIT, 1460},
		{IP_PMTUDISC_PROBE, 1000 - 40 - 12}, {IP_PMTUDISC_WANT, 1000 - 40 - 12},
	} {
		n := newVnet(t, nil)
		lfd := listenOn(t, n.b, srvAddr, 5, true)
		cfd, _ := n.connect(srvAddr, lfd)
		ca := n.a.Sockets()
		must(t, ca.SetsockoptInt(cfd, IPPROTO_IP, IP_MTU_DISCOVER, tc.mode))
		before, err := ca.GetsockoptInt(cfd, IPPROTO_TCP, TCP_MAXSEG)
		must(t, err)
		var lost []byte
		n.drop = func(dir string, pkt []byte) bool {
			if dir == "a>b" && tcpPayloadLen(t, pkt) > 0 && lost == nil {
				lost = append([]byte(nil), pkt...)
				return true
			}
			return false
		}
		if _, err := ca.Write(cfd, make([]byte, 3000)); err != nil {
			t.Fatal(err)
		}
		n.a.DeliverPacket(icmpPacket(t, router, addrA, wire.ICMPv4DestUnreachable, wire.ICMPv4FragNeeded, 1000, quote(lost)))
		mss, err := ca.GetsockoptInt(cfd, IPPROTO_TCP, TCP_MAXSEG)
		if err != nil || mss != min(tc.wantMSS, before) {
			t.Errorf("mode %d: MSS %d (was %d), %v; want %d", tc.mode, mss, before, err, min(tc.wantMSS, before))
		}
	}
}
