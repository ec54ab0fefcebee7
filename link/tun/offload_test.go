package tun

import (
	"bytes"
	"encoding/binary"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/synstack/synstack/wire"
)

var (
	src4 = netip.MustParseAddr("10.99.0.2")
	dst4 = netip.MustParseAddr("10.99.0.1")
	src6 = netip.MustParseAddr("2001:db8:99::2")
	dst6 = netip.MustParseAddr("2001:db8:99::1")
)

// seg describes a segment to build.
type seg struct {
	v6       bool
	srcPort  uint16
	seq, ack uint32
	flags    wire.TCPFlags
	tsval    uint32
	payload  []byte
	id       uint16
}

// build returns the IP packet, with valid checksums.
func (s seg) build(t *testing.T) []byte {
	t.Helper()
	src, dst := src4, dst4
	ipLen := wire.IPv4HeaderLen
	if s.v6 {
		src, dst, ipLen = src6, dst6, wire.IPv6HeaderLen
	}
	port := s.srcPort
	if port == 0 {
		port = 80
	}
	th := wire.TCP{SrcPort: port, DstPort: 40000, Seq: s.seq, Ack: s.ack, Flags: s.flags, Window: 501,
		Options: wire.TCPOptions{HasTimestamp: true, TSVal: s.tsval, TSEcr: 7}}
	b := make([]byte, ipLen+th.HeaderLen()+len(s.payload))
	n, err := th.Emit(b[ipLen:])
	if err != nil {
		t.Fatal(err)
	}
	copy(b[ipLen+n:], s.payload)
	wire.SetTCPChecksum(b[ipLen:], src, dst)
	if s.v6 {
		h := wire.IPv6{NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src, Dst: dst}
		_, err = h.Emit(b, len(b)-ipLen)
	} else {
		h := wire.IPv4{ID: s.id, DontFragment: true, TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		_, err = h.Emit(b, len(b)-ipLen)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// stream returns n segments of one flow: mss bytes each but the last,
// which has last bytes, flagged ACK (and PSH on the last).
func stream(t *testing.T, v6 bool, port uint16, n, mss, last int, r *rand.Rand) [][]byte {
	var pkts [][]byte
	seq := uint32(1000)
	for i := range n {
		size := mss
		f := wire.FlagACK
		if i == n-1 {
			size = last
			f |= wire.FlagPSH
		}
		p := make([]byte, size)
		for j := range p {
			p[j] = byte(r.Uint32())
		}
		pkts = append(pkts, seg{v6: v6, srcPort: port, seq: seq, ack: 5, flags: f, tsval: 99, payload: p, id: uint16(100 + i)}.build(t))
		seq += uint32(size)
	}
	return pkts
}

// kernelSplit does to a written GSO packet what the kernel does: it
// completes the checksum (checking it) and cuts it into gso_size segments.
func kernelSplit(t *testing.T, b []byte, mtu int) [][]byte {
	t.Helper()
	var h vnetHdr
	h.decode(b)
	p := append([]byte(nil), b[vnetHdrLen:]...)
	if ok, _ := fixIncoming(p, &h, false); !ok {
		t.Fatalf("written packet not usable: %+v", h)
	}
	tp, ok := parseTCPPacket(p)
	if !ok {
		t.Fatal("written packet is not TCP")
	}
	src, dst := tp.addrs(p)
	if !wire.TCPChecksumValid(p[tp.ipLen:], src, dst) {
		t.Fatal("written packet's checksum, completed, is wrong")
	}
	if h.gsoType == vnetGSONone {
		return [][]byte{p}
	}
	if int(h.hdrLen) != tp.ipLen+tp.tcpLen || int(h.csumStart) != tp.ipLen || h.csumOffset != 16 {
		t.Fatalf("GSO header %+v for headers of %d+%d bytes", h, tp.ipLen, tp.tcpLen)
	}
	var out [][]byte
	scratch := make([]byte, maxIPPacket)
	splitTCP(p, tp, int(h.gsoSize), scratch, func(s []byte) { out = append(out, append([]byte(nil), s...)) })
	for _, s := range out {
		if len(s) > mtu {
			t.Fatalf("segment of %d bytes, MTU %d", len(s), mtu)
		}
	}
	return out
}

// The segments a stack writes in a burst are coalesced into GSO packets
// that the kernel cuts back into the very same segments.
func TestCoalesceRoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, v6 := range []bool{false, true} {
		const mtu = 1500
		mss := mtu - 40 - 32
		if v6 {
			mss -= 20
		}
		for _, n := range []int{1, 2, 5, 44, 64} {
			pkts := stream(t, v6, 80, n, mss, 100, r)
			var b gsoBatch
			items := b.plan(pkts, maxIPPacket)
			var got [][]byte
			for i := range items {
				it := &items[i]
				var w []byte
				if it.n > 1 {
					w = b.build(make([]byte, vnetHdrLen+maxIPPacket), pkts, it)
				} else {
					w = make([]byte, vnetHdrLen+len(pkts[it.head]))
					copy(w[vnetHdrLen:], pkts[it.head])
					tp, _ := parseTCPPacket(w[vnetHdrLen:])
					var h vnetHdr
					tp.setPartialChecksum(w[vnetHdrLen:], &h)
					h.encode(w)
				}
				got = append(got, kernelSplit(t, w, mtu)...)
			}
			if len(got) != len(pkts) {
				t.Fatalf("v6 %v n %d: %d segments back, want %d", v6, n, len(got), len(pkts))
			}
			for i := range pkts {
				if !bytes.Equal(got[i], pkts[i]) {
					t.Fatalf("v6 %v n %d: segment %d differs:\n got %x\nwant %x", v6, n, i, got[i][:60], pkts[i][:60])
				}
			}
			// 64 KiB holds 44 full IPv4 segments of 1428 bytes.
			wantItems := (n + 43) / 44
			if v6 {
				wantItems = (n + 44) / 45
			}
			if n > 1 && len(items) != wantItems {
				t.Errorf("v6 %v: %d segments in %d packets, want %d", v6, n, len(items), wantItems)
			}
		}
	}
}

// Two flows interleaved coalesce each on its own, in order; segments that
// do not continue their flow exactly start a new packet.
func TestCoalesceRules(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	a := stream(t, false, 80, 6, 1000, 1000, r)
	b := stream(t, false, 81, 6, 1000, 1000, r)
	var pkts [][]byte
	for i := range a {
		pkts = append(pkts, a[i], b[i])
	}
	var g gsoBatch
	items := g.plan(pkts, maxIPPacket)
	if len(items) != 2 || items[0].n != 6 || items[1].n != 6 {
		t.Fatalf("two interleaved flows of 6: items %+v", items)
	}

	p := func(s seg) []byte { s.ack = 5; s.tsval = 99; return s.build(t) }
	data := bytes.Repeat([]byte{1}, 1000)
	for _, tc := range []struct {
		name  string
		pkts  [][]byte
		items int
	}{
		{"contiguous", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data}), p(seg{seq: 1000, flags: wire.FlagACK, payload: data})}, 1},
		{"gap", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data}), p(seg{seq: 2000, flags: wire.FlagACK, payload: data})}, 2},
		{"PSH first", [][]byte{p(seg{seq: 0, flags: wire.FlagACK | wire.FlagPSH, payload: data}), p(seg{seq: 1000, flags: wire.FlagACK, payload: data})}, 2},
		{"PSH last", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data}), p(seg{seq: 1000, flags: wire.FlagACK | wire.FlagPSH, payload: data})}, 1},
		{"FIN", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data}), p(seg{seq: 1000, flags: wire.FlagACK | wire.FlagFIN, payload: data})}, 2},
		{"short first", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data[:500]}), p(seg{seq: 500, flags: wire.FlagACK, payload: data})}, 2},
		{"longer second", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data[:500]}), p(seg{seq: 500, flags: wire.FlagACK, payload: data[:600]})}, 2},
		{"pure ACK", [][]byte{p(seg{seq: 0, flags: wire.FlagACK}), p(seg{seq: 0, flags: wire.FlagACK})}, 2},
		{"other ack", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data}), seg{seq: 1000, ack: 6, tsval: 99, flags: wire.FlagACK, payload: data}.build(t)}, 2},
		{"other TSval", [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data}), seg{seq: 1000, ack: 5, tsval: 100, flags: wire.FlagACK, payload: data}.build(t)}, 2},
		{"not TCP", [][]byte{{0x45, 0, 0, 20}, p(seg{seq: 0, flags: wire.FlagACK, payload: data})}, 2},
	} {
		if got := len(g.plan(tc.pkts, maxIPPacket)); got != tc.items {
			t.Errorf("%s: %d packets, want %d", tc.name, got, tc.items)
		}
	}
	// The size bound holds.
	pk := [][]byte{p(seg{seq: 0, flags: wire.FlagACK, payload: data}), p(seg{seq: 1000, flags: wire.FlagACK, payload: data})}
	if got := len(g.plan(pk, 1500)); got != 2 {
		t.Errorf("coalesced beyond maxSize: %d packets", got)
	}
}

// A packet the kernel leaves with a partial checksum (and, if large, an
// IP length to fix) comes out whole.
func TestFixIncoming(t *testing.T) {
	for _, v6 := range []bool{false, true} {
		pkt := seg{v6: v6, seq: 1, ack: 2, flags: wire.FlagACK, tsval: 3, payload: bytes.Repeat([]byte("abc"), 5000)}.build(t)
		tp, _ := parseTCPPacket(pkt)
		var h vnetHdr
		tp.setPartialChecksum(pkt, &h)
		h.gsoType, h.gsoSize, h.hdrLen = vnetGSOTCPv4, 1448, uint16(tp.ipLen+tp.tcpLen)
		if v6 {
			h.gsoType = vnetGSOTCPv6
			binary.BigEndian.PutUint16(pkt[4:], 0)
		} else {
			binary.BigEndian.PutUint16(pkt[2:], 0)
		}
		var raw [vnetHdrLen]byte
		h.encode(raw[:])
		var h2 vnetHdr
		h2.decode(raw[:])
		if h2 != h {
			t.Fatalf("header round trip: %+v != %+v", h2, h)
		}
		ok, gso := fixIncoming(pkt, &h2, false)
		if !ok || !gso {
			t.Fatalf("v6 %v: ok %v gso %v", v6, ok, gso)
		}
		src, dst := tp.addrs(pkt)
		if !wire.TCPChecksumValid(pkt[tp.ipLen:], src, dst) {
			t.Errorf("v6 %v: checksum not completed", v6)
		}
		if v6 {
			if _, _, err := wire.ParseIPv6(pkt); err != nil {
				t.Errorf("IPv6 header: %v", err)
			}
		} else if _, _, err := wire.ParseIPv4(pkt); err != nil {
			t.Errorf("IPv4 header: %v", err)
		}
	}
	// Bad offsets are refused, not a panic.
	pkt := seg{seq: 1, flags: wire.FlagACK}.build(t)
	if ok, _ := fixIncoming(pkt, &vnetHdr{flags: vnetFlagNeedsCsum, csumStart: 50, csumOffset: 16}, false); ok {
		t.Error("checksum offset past the end accepted")
	}
	if ok, _ := fixIncoming(pkt, &vnetHdr{gsoType: 3}, false); ok {
		t.Error("UDP fragmentation offload accepted")
	}
}

// Cutting a large segment keeps FIN and PSH on the last piece, CWR on the
// first, and counts IPv4 IDs up.
func TestSplitFlags(t *testing.T) {
	pkt := seg{seq: 100, ack: 1, flags: wire.FlagACK | wire.FlagPSH | wire.FlagFIN | wire.FlagCWR, tsval: 1, id: 7,
		payload: bytes.Repeat([]byte{9}, 2500)}.build(t)
	tp, _ := parseTCPPacket(pkt)
	var got [][]byte
	splitTCP(pkt, tp, 1000, make([]byte, 1500), func(s []byte) { got = append(got, append([]byte(nil), s...)) })
	if len(got) != 3 {
		t.Fatalf("%d segments, want 3", len(got))
	}
	for i, s := range got {
		ih, payload, err := wire.ParseIPv4(s)
		if err != nil {
			t.Fatal(err)
		}
		th, data, err := wire.ParseTCP(payload)
		if err != nil {
			t.Fatal(err)
		}
		if !wire.TCPChecksumValid(payload, ih.Src, ih.Dst) {
			t.Errorf("segment %d: bad checksum", i)
		}
		wantFlags := wire.FlagACK
		if i == 0 {
			wantFlags |= wire.FlagCWR
		}
		if i == 2 {
			wantFlags |= wire.FlagPSH | wire.FlagFIN
		}
		if th.Flags != wantFlags || th.Seq != uint32(100+1000*i) || ih.ID != uint16(7+i) || len(data) != min(1000, 2500-1000*i) {
			t.Errorf("segment %d: flags %v seq %d id %d len %d", i, th.Flags, th.Seq, ih.ID, len(data))
		}
	}
}

// Malformed packets are not for offloading, and never a panic.
func FuzzParseTCPPacket(f *testing.F) {
	f.Add([]byte{0x45, 0, 0, 40})
	f.Add(make([]byte, 60))
	f.Fuzz(func(t *testing.T, b []byte) {
		tp, ok := parseTCPPacket(b)
		if ok && tp.ipLen+tp.tcpLen+tp.payload != len(b) {
			t.Fatalf("lengths %+v for %d bytes", tp, len(b))
		}
		var g gsoBatch
		g.plan([][]byte{b, b}, maxIPPacket)
		h := vnetHdr{flags: vnetFlagNeedsCsum, csumStart: uint16(len(b) / 2), csumOffset: 16, gsoType: vnetGSOTCPv4}
		fixIncoming(append([]byte(nil), b...), &h, false)
	})
}
