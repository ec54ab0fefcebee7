package synstack

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// udpFragments builds an IPv4 UDP datagram from src to dst with payload
// and cuts it into fragments for an MTU of 1500.
func udpFragments(t *testing.T, src, dst netip.AddrPort, payload []byte) [][]byte {
	t.Helper()
	pkt := make([]byte, wire.IPv4HeaderLen+wire.UDPHeaderLen+len(payload))
	u := wire.UDP{SrcPort: src.Port(), DstPort: dst.Port()}
	dg := pkt[wire.IPv4HeaderLen:]
	copy(dg[wire.UDPHeaderLen:], payload)
	if _, err := u.Emit(dg, len(payload)); err != nil {
		t.Fatal(err)
	}
	wire.SetUDPChecksum(dg, src.Addr(), dst.Addr())
	ih := wire.IPv4{ID: 77, TTL: 64, Protocol: wire.ProtoUDP, Src: src.Addr(), Dst: dst.Addr()}
	if _, err := ih.Emit(pkt, len(dg)); err != nil {
		t.Fatal(err)
	}
	var frags [][]byte
	const step = 1480 // data per fragment at MTU 1500, a multiple of 8
	for off := 0; off < len(dg); off += step {
		end := min(off+step, len(dg))
		f := make([]byte, wire.IPv4HeaderLen+end-off)
		h := ih
		h.FragOffset = uint16(off)
		h.MoreFragments = end < len(dg)
		if _, err := h.Emit(f, end-off); err != nil {
			t.Fatal(err)
		}
		copy(f[wire.IPv4HeaderLen:], dg[off:end])
		frags = append(frags, f)
	}
	return frags
}

// TestReassemblyTimeout: a datagram whose last fragment never comes is
// dropped after 30 s and answered with ICMP time exceeded (fragment
// reassembly time exceeded) quoting its first fragment; the same
// fragments in any order make the datagram, delivered to its socket.
func TestReassemblyTimeout(t *testing.T) {
	n := newVnet(t, nil)
	src := netip.AddrPortFrom(addrA, 4000)
	dst := netip.AddrPortFrom(addrB, 5000)
	payload := make([]byte, 3000)
	for i := range payload {
		payload[i] = byte(i)
	}
	frags := udpFragments(t, src, dst, payload)
	if len(frags) != 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	var sent [][]byte
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "b>a" {
			sent = append(sent, append([]byte(nil), pkt...))
		}
		return true
	}
	n.b.DeliverPacket(frags[0])
	n.b.DeliverPacket(frags[1])
	n.clk.Advance(29 * time.Second)
	if st := n.b.Stats(); st.IpReasmReqds != 2 || st.IpReasmTimeout != 0 || len(sent) != 0 {
		t.Fatalf("before 30 s: %d fragments in, %d timeouts, %d packets sent", st.IpReasmReqds, st.IpReasmTimeout, len(sent))
	}
	n.clk.Advance(2 * time.Second)
	st := n.b.Stats()
	if st.IpReasmTimeout != 1 || st.IpReasmFails != 1 || st.IcmpOutTimeExcds != 1 || len(sent) != 1 {
		t.Fatalf("after 31 s: %d timeouts, %d fails, %d time exceeded, %d packets sent",
			st.IpReasmTimeout, st.IpReasmFails, st.IcmpOutTimeExcds, len(sent))
	}
	ih, body, err := wire.ParseIPv4(sent[0])
	if err != nil || ih.Protocol != wire.ProtoICMP || ih.Dst != addrA {
		t.Fatalf("sent %+v, %v", ih, err)
	}
	h, quote, err := wire.ParseICMPv4(body)
	if err != nil || h.Type != wire.ICMPv4TimeExceeded || h.Code != 1 || len(quote) < 28 ||
		string(quote[:28]) != string(frags[0][:28]) {
		t.Fatalf("ICMP %+v, %v: want time exceeded, code 1, quoting the first fragment", h, err)
	}

	// In another order, complete: the datagram reaches its socket whole.
	ss := n.b.Sockets()
	fd, err := ss.Socket(AF_INET, SOCK_DGRAM|SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := ss.Bind(fd, dst); err != nil {
		t.Fatal(err)
	}
	for _, i := range []int{2, 0, 1} {
		n.b.DeliverPacket(frags[i])
	}
	buf := make([]byte, 4000)
	got, from, err := ss.Recvfrom(fd, buf, 0)
	if err != nil || got != len(payload) || from != src || string(buf[:got]) != string(payload) {
		t.Fatalf("recvfrom: %d bytes from %v, %v", got, from, err)
	}
	if st := n.b.Stats(); st.IpReasmOKs != 1 || st.UdpInDatagrams != 1 {
		t.Errorf("%d reassembled, %d delivered: want 1 and 1", st.IpReasmOKs, st.UdpInDatagrams)
	}
}

// TestFragmentForAnotherAddress: the stack reassembles its own datagrams
// only; a fragment for another address is dropped and counted.
func TestFragmentForAnotherAddress(t *testing.T) {
	n := newVnet(t, nil)
	frags := udpFragments(t, netip.AddrPortFrom(addrA, 4000), netip.MustParseAddrPort("10.0.0.99:53"), make([]byte, 2000))
	n.b.DeliverPacket(frags[0])
	if st := n.b.Stats(); st.IpInAddrErrors != 1 || st.IpReasmReqds != 0 {
		t.Errorf("IpInAddrErrors %d, IpReasmReqds %d: want 1 and 0", st.IpInAddrErrors, st.IpReasmReqds)
	}
}

// TestUDPPathMTU: an ICMPv6 packet too big about a datagram we sent
// makes the next datagrams to that destination go in fragments that fit
// the path, for ten minutes, and tells the sockets that asked (connected
// there, or IPV6_RECVERR) EMSGSIZE with the MTU, as Linux does.
func TestUDPPathMTU(t *testing.T) {
	n := newVnet(t, nil)
	var sent [][]byte
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "b>a" {
			sent = append(sent, append([]byte(nil), pkt...))
		}
		return true
	}
	ss := n.b.Sockets()
	fd, err := ss.Socket(AF_INET6, SOCK_DGRAM, 0)
	if err != nil {
		t.Fatal(err)
	}
	dst := netip.AddrPortFrom(addr6A, 53)
	send := func() (largest int) {
		sent = nil
		if _, err := ss.Sendto(fd, make([]byte, 3000), 0, dst); err != nil {
			t.Fatal(err)
		}
		for _, p := range sent {
			largest = max(largest, len(p))
		}
		return largest
	}
	if l := send(); l <= 1280 || l > 1500 {
		t.Fatalf("first datagram: largest fragment %d bytes, want the link's MTU, 1500", l)
	}
	// A router says the path carries 1280 bytes, quoting the first
	// fragment.
	quote := sent[0][:min(len(sent[0]), 1000)]
	router := netip.MustParseAddr("fd00::99")
	icmp := make([]byte, wire.ICMPHeaderLen+len(quote))
	h := wire.ICMP{Type: wire.ICMPv6PacketTooBig, Rest: 1280}
	if _, err := h.EmitV6(icmp, icmp[wire.ICMPHeaderLen:], router, addr6B); err != nil {
		t.Fatal(err)
	}
	copy(icmp[wire.ICMPHeaderLen:], quote)
	h.EmitV6(icmp, icmp[wire.ICMPHeaderLen:], router, addr6B)
	pkt := make([]byte, wire.IPv6HeaderLen+len(icmp))
	ih := wire.IPv6{NextHeader: wire.ProtoICMPv6, HopLimit: 64, Src: router, Dst: addr6B}
	if _, err := ih.Emit(pkt, len(icmp)); err != nil {
		t.Fatal(err)
	}
	copy(pkt[wire.IPv6HeaderLen:], icmp)
	// A socket connected to the destination, and one with IPV6_RECVERR on
	// the port that sent, hear of it, as on Linux (path MTU discovery is
	// on by default): EMSGSIZE, with the MTU in the error queue's report.
	conn := mustFD(t)(ss.Socket(AF_INET6, SOCK_DGRAM, 0))
	must(t, ss.Connect(conn, dst))
	must(t, ss.SetsockoptInt(fd, IPPROTO_IPV6, IPV6_RECVERR, 1))
	sent = nil
	if _, err := ss.Send(conn, []byte("x"), 0); err != nil {
		t.Fatal(err)
	}
	connQuote := sent[0]
	n.b.DeliverPacket(pkt)
	m := &Msghdr{}
	if _, err := ss.Recvmsg(fd, m, MSG_ERRQUEUE); err != nil || len(m.Control) != 1 {
		t.Fatalf("error queue: %v, %d reports", err, len(m.Control))
	}
	if e := m.Control[0].(*ExtendedErr); e.Errno != uint32(syscall.EMSGSIZE) || e.Info != 1280 || e.Origin != SO_EE_ORIGIN_ICMP6 || e.Offender != router {
		t.Errorf("report %+v, want EMSGSIZE with MTU 1280 from %v", e, router)
	}
	// The connected socket's own datagram, quoted, gives it EMSGSIZE.
	copy(icmp[wire.ICMPHeaderLen:], connQuote)
	icmp = icmp[:wire.ICMPHeaderLen+len(connQuote)]
	h.EmitV6(icmp, icmp[wire.ICMPHeaderLen:], router, addr6B)
	pkt = pkt[:wire.IPv6HeaderLen+len(icmp)]
	ih.Emit(pkt, len(icmp))
	copy(pkt[wire.IPv6HeaderLen:], icmp)
	n.b.DeliverPacket(pkt)
	_, _, err = ss.Recvfrom(conn, make([]byte, 10), MSG_DONTWAIT)
	wantErr(t, "recvfrom on the connected socket after a packet too big", err, syscall.EMSGSIZE)
	if l := send(); l > 1280 || l < 1200 {
		t.Errorf("after a packet too big of 1280: largest fragment %d bytes", l)
	}
	n.clk.Advance(11 * time.Minute)
	if l := send(); l <= 1280 {
		t.Errorf("eleven minutes later: largest fragment %d bytes, want the link's MTU again", l)
	}
}
