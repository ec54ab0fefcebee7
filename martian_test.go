package synstack

import (
	"bytes"
	"net/netip"
	"testing"

	"github.com/synstack/synstack/wire"
)

// tcpPacketAny builds a TCP packet from src to dst in either family.
func tcpPacketAny(t *testing.T, src, dst netip.AddrPort, h wire.TCP) []byte {
	t.Helper()
	if src.Addr().Is4() && dst.Addr().Is4() {
		return packet(t, src, dst, h, nil)
	}
	h.SrcPort, h.DstPort = src.Port(), dst.Port()
	buf := make([]byte, wire.IPv6HeaderLen+h.HeaderLen())
	_, err := h.Emit(buf[wire.IPv6HeaderLen:])
	must(t, err)
	wire.SetTCPChecksum(buf[wire.IPv6HeaderLen:], src.Addr(), dst.Addr())
	ih := wire.IPv6{NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src.Addr(), Dst: dst.Addr()}
	_, err = ih.Emit(buf, len(buf)-wire.IPv6HeaderLen)
	must(t, err)
	return buf
}

// TestMartiansGetNoAnswer is issue 14's sixth finding: SYN,ACKs and echo
// replies went to the subnet broadcast, 127.0.0.0/8, the stack's own
// address, ::1 and IPv4-mapped sources. Each martian, source or
// destination, is now dropped before TCP or ICMP sees it, counted, and
// answered with nothing; an ordinary peer still gets its SYN,ACK and its
// echo reply.
func TestMartiansGetNoAnswer(t *testing.T) {
	n := newVnet(t, nil)
	listenOn(t, n.b, srvAddr, 16, true)
	listenOn(t, n.b, netip.AddrPortFrom(addr6B, srvAddr.Port()), 16, true)
	var out [][]byte
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "b>a" {
			out = append(out, bytes.Clone(pkt))
		}
		return true
	}
	syn := wire.TCP{Seq: 100, Flags: wire.FlagSYN, Window: 1000, Options: wire.TCPOptions{MSS: 1000}}
	ap := func(s string) netip.AddrPort { return netip.AddrPortFrom(netip.MustParseAddr(s), 40000) }
	sources := []string{
		"10.0.0.255",      // the subnet broadcast of 10.0.0.2/24
		"255.255.255.255", // the limited broadcast
		"224.0.0.1",       // multicast
		"127.0.0.1",       // loopback
		"127.3.4.5",
		"0.0.0.0", // unspecified, and 0.0.0.0/8
		"0.1.2.3",
		"10.0.0.2", // the stack's own address (a LAND attack)
		"::1",
		"::",
		"ff02::1",
		"::ffff:10.0.0.1", // IPv4-mapped in an IPv6 header
		"fd00::2",         // the stack's own IPv6 address
	}
	for _, s := range sources {
		src := ap(s)
		dst := srvAddr
		if src.Addr().Is6() {
			dst = netip.AddrPortFrom(addr6B, srvAddr.Port())
		}
		n.b.DeliverPacket(tcpPacketAny(t, src, dst, syn))
		n.b.DeliverPacket(icmpPacket(t, src.Addr(), dst.Addr(), echoType(dst.Addr()), 0, 0x1234_0001, []byte("ping")))
	}
	destinations := []string{"10.0.0.255", "255.255.255.255", "224.0.0.1", "127.0.0.1", "0.0.0.0", "ff02::1", "::1", "::ffff:10.0.0.2"}
	for _, d := range destinations {
		dst := netip.AddrPortFrom(netip.MustParseAddr(d), srvAddr.Port())
		src := netip.AddrPortFrom(addrA, 40000)
		if dst.Addr().Is6() {
			src = netip.AddrPortFrom(addr6A, 40000)
		}
		n.b.DeliverPacket(tcpPacketAny(t, src, dst, syn))
		n.b.DeliverPacket(icmpPacket(t, src.Addr(), dst.Addr(), echoType(dst.Addr()), 0, 0x1234_0001, []byte("ping")))
	}
	if len(out) != 0 {
		src, dst, proto, _ := parseIP(t, out[0])
		t.Fatalf("%d answers to martians, the first %v -> %v protocol %d", len(out), src, dst, proto)
	}
	st := n.b.Stats()
	if st.SynstackInMartianSources != uint64(2*len(sources)) || st.SynstackInMartianDestinations != uint64(2*len(destinations)) {
		t.Fatalf("martians counted: %d sources (want %d), %d destinations (want %d)",
			st.SynstackInMartianSources, 2*len(sources), st.SynstackInMartianDestinations, 2*len(destinations))
	}
	if st.TcpInSegs != 0 || st.IcmpInMsgs+st.Icmp6InMsgs != 0 || st.TcpOutRsts != 0 {
		t.Fatalf("martians reached TCP or ICMP: %+v", st)
	}
	// An ordinary peer is answered.
	n.b.DeliverPacket(packet(t, netip.AddrPortFrom(addrA, 40000), srvAddr, syn, nil))
	n.b.DeliverPacket(icmpPacket(t, addrA, addrB, wire.ICMPv4EchoRequest, 0, 0x1234_0001, []byte("ping")))
	if len(out) != 2 {
		t.Fatalf("%d answers to an ordinary SYN and ping, want 2", len(out))
	}
}

// echoType is the echo request type of a's family.
func echoType(a netip.Addr) uint8 {
	if a.Is4() {
		return wire.ICMPv4EchoRequest
	}
	return wire.ICMPv6EchoRequest
}

// TestLoopbackStackTakesLoopback: a stack that has a loopback address (a
// link standing in for lo) accepts loopback peers, as Linux does on lo.
func TestLoopbackStackTakesLoopback(t *testing.T) {
	n := newVnet(t, func(a, b *Config) {
		a.Addrs = []netip.Prefix{netip.MustParsePrefix("127.0.0.1/8")}
		b.Addrs = []netip.Prefix{netip.MustParsePrefix("127.0.0.2/8")}
	})
	lfd := listenOn(t, n.b, netip.MustParseAddrPort("127.0.0.2:80"), 4, true)
	cfd, sfd := n.connect(netip.MustParseAddrPort("127.0.0.2:80"), lfd)
	if cfd < 0 || sfd < 0 {
		t.Fatal("no connection")
	}
	if st := n.b.Stats(); st.SynstackInMartianSources != 0 {
		t.Fatalf("%d loopback sources taken for martians", st.SynstackInMartianSources)
	}
}
