package synstack

import (
	"net/netip"
	"testing"

	"github.com/synstack/synstack/wire"
)

// packet builds an IPv4 TCP packet from src to dst.
func packet(t *testing.T, src, dst netip.AddrPort, h wire.TCP, payload []byte) []byte {
	t.Helper()
	h.SrcPort, h.DstPort = src.Port(), dst.Port()
	buf := make([]byte, 20+h.HeaderLen()+len(payload))
	n, err := h.Emit(buf[20:])
	must(t, err)
	copy(buf[20+n:], payload)
	wire.SetTCPChecksum(buf[20:], src.Addr(), dst.Addr())
	ih := wire.IPv4{TTL: 64, Protocol: wire.ProtoTCP, Src: src.Addr(), Dst: dst.Addr()}
	_, err = ih.Emit(buf, len(buf)-20)
	must(t, err)
	return buf
}

// sentBy collects the TCP headers a stack sends.
func sentBy(n *vnet) *[]wire.TCP {
	var out []wire.TCP
	n.drop = func(dir string, pkt []byte) bool {
		ih, p, err := wire.ParseIPv4(pkt)
		if err != nil || ih.TTL != 64 || !ih.DontFragment {
			n.t.Errorf("bad IP header %+v %v", ih, err)
		}
		h, _, err := wire.ParseTCP(p)
		if err != nil || !wire.TCPChecksumValid(p, ih.Src, ih.Dst) {
			n.t.Errorf("bad TCP segment %v", err)
		}
		out = append(out, h)
		return true
	}
	return &out
}

func TestResetForNoSocket(t *testing.T) {
	n := newVnet(t, nil)
	out := sentBy(n)
	peer := netip.AddrPortFrom(addrA, 40000)
	dst := netip.AddrPortFrom(addrB, 9999)
	// SYN: <SEQ=0><ACK=SEG.SEQ+SEG.LEN><CTL=RST,ACK>.
	n.b.DeliverPacket(packet(t, peer, dst, wire.TCP{Seq: 1000, Flags: wire.FlagSYN, Window: 100}, nil))
	// Data with ACK: <SEQ=SEG.ACK><CTL=RST>.
	n.b.DeliverPacket(packet(t, peer, dst, wire.TCP{Seq: 5, Ack: 777, Flags: wire.FlagACK, Window: 100}, []byte("abc")))
	// Data with FIN and no ACK: ACK = SEQ + len + 1.
	n.b.DeliverPacket(packet(t, peer, dst, wire.TCP{Seq: 5, Flags: wire.FlagFIN, Window: 100}, []byte("abc")))
	// RST: no answer.
	n.b.DeliverPacket(packet(t, peer, dst, wire.TCP{Seq: 5, Flags: wire.FlagRST}, nil))
	want := []wire.TCP{
		{SrcPort: 9999, DstPort: 40000, Seq: 0, Ack: 1001, Flags: wire.FlagRST | wire.FlagACK},
		{SrcPort: 9999, DstPort: 40000, Seq: 777, Ack: 0, Flags: wire.FlagRST},
		{SrcPort: 9999, DstPort: 40000, Seq: 0, Ack: 9, Flags: wire.FlagRST | wire.FlagACK},
	}
	if len(*out) != len(want) {
		t.Fatalf("sent %d segments, want %d", len(*out), len(want))
	}
	for i, h := range *out {
		w := want[i]
		if h.SrcPort != w.SrcPort || h.DstPort != w.DstPort || h.Seq != w.Seq || h.Ack != w.Ack || h.Flags != w.Flags || h.Window != 0 {
			t.Errorf("reply %d: %+v, want %+v", i, h, w)
		}
	}
	if st := n.b.Stats(); st.SynstackNoSocket != 4 || st.TcpOutRsts != 3 || st.TcpInSegs != 4 {
		t.Errorf("stats %+v", st)
	}
}

func TestListenerAnswersACKWithReset(t *testing.T) {
	n := newVnet(t, nil)
	listenOn(t, n.b, srvAddr, 5, true)
	out := sentBy(n)
	peer := netip.AddrPortFrom(addrA, 40000)
	n.b.DeliverPacket(packet(t, peer, srvAddr, wire.TCP{Seq: 5, Ack: 42, Flags: wire.FlagACK}, nil))
	n.b.DeliverPacket(packet(t, peer, srvAddr, wire.TCP{Seq: 5, Flags: wire.FlagRST}, nil))
	n.b.DeliverPacket(packet(t, peer, srvAddr, wire.TCP{Seq: 5, Flags: wire.FlagFIN}, nil))
	if len(*out) != 1 || (*out)[0].Flags != wire.FlagRST || (*out)[0].Seq != 42 {
		t.Errorf("replies %+v", *out)
	}
	// A SYN gets a SYN,ACK.
	n.b.DeliverPacket(packet(t, peer, srvAddr, wire.TCP{Seq: 5, Flags: wire.FlagSYN, Window: 1000,
		Options: wire.TCPOptions{MSS: 1000}}, nil))
	if len(*out) != 2 || (*out)[1].Flags != wire.FlagSYN|wire.FlagACK || (*out)[1].Ack != 6 {
		t.Errorf("replies %+v", *out)
	}
}

func TestBadPacketsDropped(t *testing.T) {
	n := newVnet(t, nil)
	listenOn(t, n.b, srvAddr, 5, true)
	out := sentBy(n)
	peer := netip.AddrPortFrom(addrA, 40000)
	good := packet(t, peer, srvAddr, wire.TCP{Seq: 5, Flags: wire.FlagSYN}, nil)

	badSum := append([]byte(nil), good...)
	badSum[len(badSum)-1] ^= 0xff // the TCP header's last byte
	other := packet(t, peer, netip.AddrPortFrom(netip.MustParseAddr("10.0.0.99"), 8080), wire.TCP{Flags: wire.FlagSYN}, nil)
	sctp := append([]byte(nil), good...) // a protocol the stack does not speak
	ih, _, _ := wire.ParseIPv4(good)
	ih.Protocol = 132
	ih.Emit(sctp, len(sctp)-20)

	inputs := [][]byte{nil, {0x45}, {0x00, 1, 2}, good[:30], badSum, other, sctp, make([]byte, 60)}
	for _, p := range inputs {
		n.b.DeliverPacket(p)
	}
	if len(*out) != 0 {
		t.Errorf("answered a bad packet: %+v", *out)
	}
	st := n.b.Stats()
	if st.TcpInCsumErrors != 1 || st.IpInAddrErrors != 1 || st.IpInUnknownProtos != 1 || st.IpInHdrErrors != 5 {
		t.Errorf("stats %+v", st)
	}
	if st.IpInReceives != uint64(len(inputs)) || st.TcpInSegs != 0 {
		t.Errorf("stats %+v", st)
	}
}

func FuzzDeliverPacket(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 20})
	f.Fuzz(func(t *testing.T, pkt []byte) {
		n := newVnet(t, nil)
		listenOn(t, n.b, srvAddr, 5, true)
		n.b.DeliverPacket(pkt)
		n.pump()
	})
}
