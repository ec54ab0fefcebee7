package synstack

// Bad fragments, each in a test of its own, IPv4 and IPv6, written by hand
// into a stack of a vnet (virtual clock, synchronous delivery): overlapping
// fragments, tiny ones (RFC 1858), datagrams that would pass 65,535 bytes,
// a flood of first fragments never completed, duplicates. In each, a UDP
// socket receives only whole, correct datagrams, and the counters account
// for every fragment: held and then reassembled, dropped, or discarded
// with its datagram (at once, or when the 30 s are up).

import (
	"bytes"
	"fmt"
	"net/netip"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/internal/frag"
	"github.com/synstack/synstack/wire"
)

// fragBench is a vnet whose stack b has a UDP socket on port 5000 of each
// of its addresses, for fragments a test writes into b from a's addresses.
type fragBench struct {
	t    *testing.T
	n    *vnet
	v6   bool
	src  netip.AddrPort // a's, the fragments' source
	dst  netip.AddrPort // b's socket
	fd   int
	sent [][]byte // what b sent (ICMP errors), not delivered to a
}

func newFragBench(t *testing.T, v6 bool) *fragBench {
	t.Helper()
	fb := &fragBench{t: t, n: newVnet(t, nil), v6: v6,
		src: netip.AddrPortFrom(addrA, 4000), dst: netip.AddrPortFrom(addrB, 5000)}
	fam := AF_INET
	if v6 {
		fb.src, fb.dst, fam = netip.AddrPortFrom(addr6A, 4000), netip.AddrPortFrom(addr6B, 5000), AF_INET6
	}
	fb.n.drop = func(dir string, pkt []byte) bool {
		if dir == "b>a" && len(fb.sent) < 1000 {
			fb.sent = append(fb.sent, bytes.Clone(pkt))
		}
		return true
	}
	ss := fb.n.b.Sockets()
	fd, err := ss.Socket(fam, SOCK_DGRAM|SOCK_NONBLOCK, 0)
	must(t, err)
	must(t, ss.Bind(fd, fb.dst))
	fb.fd = fd
	return fb
}

// datagram is a UDP datagram (header and payload, checksummed) from the
// bench's source to port dstPort of its destination, to be cut by hand.
func (fb *fragBench) datagram(dstPort uint16, payload []byte) []byte {
	dg := make([]byte, wire.UDPHeaderLen+len(payload))
	copy(dg[wire.UDPHeaderLen:], payload)
	h := wire.UDP{SrcPort: fb.src.Port(), DstPort: dstPort}
	if _, err := h.Emit(dg, len(payload)); err != nil {
		fb.t.Fatal(err)
	}
	wire.SetUDPChecksum(dg, fb.src.Addr(), fb.dst.Addr())
	return dg
}

// frag is an IP fragment from the bench's source to its destination:
// identification id, data at offset off of the datagram's data, more
// fragments to come if more. IPv6 fragments carry a Fragment header
// naming next (UDP, unless a test says otherwise).
func (fb *fragBench) frag(id uint32, off int, more bool, data []byte) []byte {
	return fb.fragNext(id, off, more, data, wire.ProtoUDP)
}

func (fb *fragBench) fragNext(id uint32, off int, more bool, data []byte, next uint8) []byte {
	if !fb.v6 {
		p := make([]byte, wire.IPv4HeaderLen+len(data))
		h := wire.IPv4{ID: uint16(id), TTL: 64, Protocol: next, Src: fb.src.Addr(), Dst: fb.dst.Addr(),
			FragOffset: uint16(off), MoreFragments: more}
		if _, err := h.Emit(p, len(data)); err != nil {
			fb.t.Fatal(err)
		}
		copy(p[wire.IPv4HeaderLen:], data)
		return p
	}
	p := make([]byte, wire.IPv6HeaderLen+wire.IPv6FragmentLen+len(data))
	h := wire.IPv6{NextHeader: wire.ProtoFragment, HopLimit: 64, Src: fb.src.Addr(), Dst: fb.dst.Addr()}
	if _, err := h.Emit(p, wire.IPv6FragmentLen+len(data)); err != nil {
		fb.t.Fatal(err)
	}
	fh := wire.IPv6Fragment{NextHeader: next, FragOffset: uint16(off), MoreFragments: more, ID: id}
	if _, err := fh.Emit(p[wire.IPv6HeaderLen:]); err != nil {
		fb.t.Fatal(err)
	}
	copy(p[wire.IPv6HeaderLen+wire.IPv6FragmentLen:], data)
	return p
}

// cut cuts dg into fragments of id carrying step bytes each (the last
// fewer), in order.
func (fb *fragBench) cut(id uint32, dg []byte, step int) [][]byte {
	var frags [][]byte
	for off := 0; off < len(dg); off += step {
		end := min(off+step, len(dg))
		frags = append(frags, fb.frag(id, off, end < len(dg), dg[off:end]))
	}
	return frags
}

// resum4 sets the checksum of p's IPv4 header (20 bytes) after a change.
func resum4(p []byte) {
	p[10], p[11] = 0, 0
	sum := wire.FoldChecksum(wire.Checksum(p[:wire.IPv4HeaderLen], 0))
	p[10], p[11] = byte(sum>>8), byte(sum)
}

// deliver writes pkts into stack b, in order.
func (fb *fragBench) deliver(pkts ...[]byte) {
	for _, p := range pkts {
		fb.n.b.DeliverPacket(p)
	}
}

// received drains the socket of fd and returns the datagrams it held,
// checking that each came from the bench's source.
func (fb *fragBench) received(fd int) [][]byte {
	fb.t.Helper()
	var got [][]byte
	buf := make([]byte, 1<<17)
	for {
		n, from, err := fb.n.b.Sockets().Recvfrom(fd, buf, 0)
		if err == syscall.EAGAIN {
			return got
		}
		if err != nil {
			fb.t.Fatalf("recvfrom: %v", err)
		}
		if from != fb.src {
			fb.t.Errorf("a datagram from %v, want %v", from, fb.src)
		}
		got = append(got, bytes.Clone(buf[:n]))
	}
}

// wantReceived checks that the socket holds exactly the payloads want.
func (fb *fragBench) wantReceived(want ...[]byte) {
	fb.t.Helper()
	got := fb.received(fb.fd)
	if len(got) != len(want) {
		fb.t.Fatalf("the socket received %d datagrams, want %d", len(got), len(want))
	}
	for i := range got {
		if !bytes.Equal(got[i], want[i]) {
			fb.t.Fatalf("datagram %d: %d bytes that differ from the %d sent", i, len(got[i]), len(want[i]))
		}
	}
}

// reasmCounters is one family's reassembly counters, and the UDP socket's.
type reasmCounters struct {
	Reqds, OKs, Fails, Timeout, Overlaps, HdrErrors, InDatagrams uint64
}

// counters returns stack b's counters of the bench's family.
func (fb *fragBench) counters() reasmCounters {
	st := fb.n.b.Stats()
	if fb.v6 {
		return reasmCounters{st.Ip6ReasmReqds, st.Ip6ReasmOKs, st.Ip6ReasmFails, st.Ip6ReasmTimeout, 0, st.Ip6InHdrErrors, st.Udp6InDatagrams}
	}
	return reasmCounters{st.IpReasmReqds, st.IpReasmOKs, st.IpReasmFails, st.IpReasmTimeout, st.IpExtReasmOverlaps, st.IpInHdrErrors, st.UdpInDatagrams}
}

// wantCounters checks b's counters of the bench's family against want
// (Overlaps only for IPv4: nstat has no IPv6 overlap counter).
func (fb *fragBench) wantCounters(what string, want reasmCounters) {
	fb.t.Helper()
	if fb.v6 {
		want.Overlaps = 0
	}
	if got := fb.counters(); got != want {
		fb.t.Errorf("%s: counters %+v, want %+v", what, got, want)
	}
}

// expire moves the clock past the reassembly timeout (30 s), so that every
// datagram still in reassembly is dropped.
func (fb *fragBench) expire() { fb.n.advance(frag.DefaultTimeout + time.Second) }

// fragPayload is n bytes, different for each seed.
func fragPayload(n int, seed byte) []byte {
	p := make([]byte, n)
	for i := range p {
		p[i] = byte(i*7) + seed
	}
	return p
}

// forFamilies runs f for IPv4 and IPv6, each in a subtest with a bench of
// its own.
func forFamilies(t *testing.T, f func(t *testing.T, fb *fragBench)) {
	for _, v6 := range []bool{false, true} {
		name := map[bool]string{false: "ipv4", true: "ipv6"}[v6]
		t.Run(name, func(t *testing.T) { f(t, newFragBench(t, v6)) })
	}
}

// TestFragOverlapping: a fragment that overlaps data held without lying
// within it discards the whole datagram (RFC 5722 for IPv6; Linux since
// its 2018 FragmentSmack fixes for IPv4), even when the overlap would
// rewrite the UDP header; the fragments after it start a datagram of
// their own that never completes and expires. Nothing is delivered; a
// clean datagram afterwards is.
func TestFragOverlapping(t *testing.T) {
	forFamilies(t, func(t *testing.T, fb *fragBench) {
		good := fb.datagram(5000, fragPayload(3000, 1)) // 3,008 bytes
		evil := fb.datagram(5000, fragPayload(3000, 2))
		fb.deliver(
			fb.frag(1, 0, true, good[:1480]),
			fb.frag(1, 1472, true, evil[1472:2960]), // 8 bytes over the first
			fb.frag(1, 2960, false, good[2960:]),
		)
		fb.wantReceived()
		fb.wantCounters("overlap at the first fragment's end", reasmCounters{Reqds: 3, Fails: 1, Overlaps: 1})
		// An overlap reaching back over the UDP header (RFC 1858's
		// attack, at offset 8 of a first fragment of 16 bytes).
		fb.deliver(
			fb.frag(2, 0, true, good[:16]),
			fb.frag(2, 8, true, evil[8:1480]),
		)
		fb.wantReceived()
		fb.wantCounters("overlap over the header", reasmCounters{Reqds: 5, Fails: 2, Overlaps: 2})
		// What is left of either (datagram 1's last fragment) expires,
		// with no time exceeded (its first fragment never came).
		fb.expire()
		fb.wantReceived()
		fb.wantCounters("after 30 s", reasmCounters{Reqds: 5, Fails: 3, Timeout: 1, Overlaps: 2})
		if len(fb.sent) != 0 {
			t.Errorf("the stack sent %d packets, want none", len(fb.sent))
		}
		fb.deliver(fb.cut(3, good, 1480)...)
		fb.wantReceived(good[wire.UDPHeaderLen:])
		fb.wantCounters("a clean datagram", reasmCounters{Reqds: 8, OKs: 1, Fails: 3, Timeout: 1, Overlaps: 2, InDatagrams: 1})
	})
}

// TestFragTiny: tiny fragments (RFC 1858). A first fragment of 8 bytes,
// the UDP header alone, is lawful: the datagram is delivered whole. An
// IPv4 fragment with MF set and fewer than 8 bytes of data holds nothing
// once cut to a multiple of 8 (as Linux cuts it) and discards its
// datagram; an IPv6 one (M set, a length no multiple of 8) discards its
// datagram with a Parameter Problem (Ip6InHdrErrors). An IPv6 first
// fragment without the UDP header (RFC 7112: here it ends inside a
// Destination Options header) is dropped before any datagram is looked
// up, counted in Ip6InHdrErrors alone.
func TestFragTiny(t *testing.T) {
	forFamilies(t, func(t *testing.T, fb *fragBench) {
		dg := fb.datagram(5000, fragPayload(2000, 3))
		frags := [][]byte{fb.frag(1, 0, true, dg[:8])}
		frags = append(frags, fb.frag(1, 8, true, dg[8:1008]), fb.frag(1, 1008, false, dg[1008:]))
		fb.deliver(frags...)
		fb.wantReceived(dg[wire.UDPHeaderLen:])
		fb.wantCounters("a first fragment of 8 bytes", reasmCounters{Reqds: 3, OKs: 1, InDatagrams: 1})

		// Fewer than 8 bytes with more to come.
		fb.deliver(fb.frag(2, 0, true, dg[:1000]), fb.frag(2, 1000, true, dg[1000:1004]), fb.frag(2, 1000, false, dg[1000:]))
		fb.wantReceived()
		want := reasmCounters{Reqds: 6, OKs: 1, Fails: 1, InDatagrams: 1}
		if fb.v6 {
			want.HdrErrors = 1
		}
		fb.wantCounters("4 bytes with more to come", want)
		// The datagram's first fragment went with it; its last one waits
		// alone, and expires.
		fb.expire()
		want.Fails++
		want.Timeout++
		fb.wantCounters("after 30 s", want)
		fb.wantReceived()

		if !fb.v6 {
			return
		}
		// A first fragment that ends inside its extension headers: a
		// Destination Options header of 16 bytes, cut after 8.
		ext := append([]byte{wire.ProtoUDP, 1, 1, 12}, make([]byte, 12)...) // PadN over the rest
		whole := append(ext, dg...)
		fb.deliver(fb.fragNext(3, 0, true, whole[:8], 60), fb.fragNext(3, 8, false, whole[8:], 60))
		fb.wantReceived()
		want.Reqds += 2
		want.HdrErrors++
		fb.wantCounters("a first fragment without the UDP header", want)
		fb.expire() // the second fragment, alone
		want.Fails++
		want.Timeout++
		fb.wantCounters("after 30 s", want)
		fb.wantReceived()
	})
}

// TestFragTooLarge: fragments that reach past 65,535 bytes (the "ping of
// death", here in UDP) discard their datagram as soon as they arrive; an
// IPv6 one asks for a Parameter Problem (Ip6InHdrErrors). Nothing is
// delivered, and nothing is left to expire.
func TestFragTooLarge(t *testing.T) {
	forFamilies(t, func(t *testing.T, fb *fragBench) {
		dg := fb.datagram(5000, fragPayload(65000, 4))
		// Whole 1,480-byte pieces up to offset 63,640, then a last
		// fragment at 63,640 of 2,000 bytes: its end, 65,640, passes
		// 65,535 (the IPv4 header counts too, 20 bytes more).
		var frags [][]byte
		for off := 0; off < 63640; off += 1480 {
			frags = append(frags, fb.frag(1, off, true, dg[off:off+1480]))
		}
		big := append(bytes.Clone(dg[63640:]), make([]byte, 2000-len(dg[63640:]))...)
		frags = append(frags, fb.frag(1, 63640, false, big))
		fb.deliver(frags...)
		fb.wantReceived()
		want := reasmCounters{Reqds: uint64(len(frags)), Fails: 1}
		if fb.v6 {
			want.HdrErrors = 1
		}
		fb.wantCounters("a datagram of 65,640 bytes", want)
		// A lone fragment at the highest offset the field holds.
		fb.deliver(fb.frag(2, 65528, false, make([]byte, 16)))
		want.Reqds++
		want.Fails++
		if fb.v6 {
			want.HdrErrors++
		}
		fb.wantCounters("16 bytes at offset 65,528", want)
		fb.expire()
		fb.wantCounters("after 30 s: nothing held", want)
		fb.wantReceived()
	})
}

// TestFragDuplicates: a fragment that lies within data held is dropped
// and the datagram kept (Linux's IPFRAG_DUP), even when its bytes differ
// (here it would send the datagram to another port): the datagram is
// delivered once, with the bytes that came first. A duplicate arriving
// after the datagram is complete starts a datagram of its own, which
// expires; nothing more is delivered.
func TestFragDuplicates(t *testing.T) {
	forFamilies(t, func(t *testing.T, fb *fragBench) {
		ss := fb.n.b.Sockets()
		fam := AF_INET
		if fb.v6 {
			fam = AF_INET6
		}
		other, err := ss.Socket(fam, SOCK_DGRAM|SOCK_NONBLOCK, 0)
		must(t, err)
		must(t, ss.Bind(other, netip.AddrPortFrom(fb.dst.Addr(), 5001)))
		good := fb.datagram(5000, fragPayload(4000, 5))
		evil := fb.datagram(5001, fragPayload(4000, 6))
		frags := fb.cut(1, good, 1480) // 3
		fb.deliver(
			frags[0], frags[0],
			fb.frag(1, 0, true, evil[:1480]), // within the first: a duplicate
			frags[1],
			fb.frag(1, 1480, true, evil[1480:2000]), // within the second
			frags[1],
			frags[2],
		)
		fb.wantReceived(good[wire.UDPHeaderLen:])
		if got := fb.received(other); len(got) != 0 {
			t.Errorf("port 5001 received %d datagrams", len(got))
		}
		fb.wantCounters("duplicates", reasmCounters{Reqds: 7, OKs: 1, InDatagrams: 1})
		fb.deliver(frags[2])
		fb.expire()
		fb.wantReceived()
		fb.wantCounters("a duplicate after the datagram, 30 s on", reasmCounters{Reqds: 8, OKs: 1, Fails: 1, Timeout: 1, InDatagrams: 1})
	})
}

// TestFragFlood: a flood of first fragments never completed, full-sized
// and tiny. Reassembly holds what its bounds allow (4 MiB, 4,096
// datagrams) and drops the rest, counting each; the Go heap grows by no
// more than the bound; when the 30 s are up, on the virtual clock, every
// datagram expires and the heap is back where it was; a datagram then
// reassembles as before.
func TestFragFlood(t *testing.T) {
	for _, size := range []int{1480, 8} {
		t.Run(fmt.Sprintf("%d-bytes", size), func(t *testing.T) { floodFirsts(t, size) })
	}
}

// floodFirsts is TestFragFlood with fragments of size bytes of data.
func floodFirsts(t *testing.T, size int) {
	const n = 10000
	forFamilies(t, func(t *testing.T, fb *fragBench) {
		heap := func() uint64 {
			runtime.GC()
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			return ms.HeapAlloc
		}
		data := fragPayload(size, 7)
		pkt := fb.frag(0, 0, true, data)
		// Warm up the stack's and the reassembler's paths.
		fb.deliver(fb.cut(60000, fb.datagram(5000, fragPayload(3000, 8)), 1480)...)
		fb.wantReceived(fragPayload(3000, 8))
		base := fb.counters()
		before := heap()
		for id := range uint32(n) {
			// The same packet with a new ID each time: the
			// flood itself costs the test no memory.
			if fb.v6 {
				pkt[wire.IPv6HeaderLen+4], pkt[wire.IPv6HeaderLen+5] = byte(id>>24), byte(id>>16)
				pkt[wire.IPv6HeaderLen+6], pkt[wire.IPv6HeaderLen+7] = byte(id>>8), byte(id)
			} else {
				pkt[4], pkt[5] = byte(id>>8), byte(id)
				resum4(pkt)
			}
			fb.deliver(pkt)
		}
		during := heap()
		c := fb.counters()
		held := n - (c.Fails - base.Fails)
		t.Logf("%d first fragments of %d bytes: %d held, %d dropped; heap %+d KiB", n, size, held, n-held, (int64(during)-int64(before))>>10)
		if c.Reqds-base.Reqds != n || c.OKs != base.OKs || c.InDatagrams != base.InDatagrams {
			t.Errorf("counters %+v after %+v: want %d more fragments, nothing reassembled or delivered", c, base, n)
		}
		// Each held fragment is charged at least its data's
		// buffer (2,048 bytes for 1,480 of data, 256 for 8).
		charge := 2048
		if size == 8 {
			charge = 256
		}
		if maxHeld := uint64(min(frag.DefaultHighThresh/charge, frag.DefaultMaxDatagrams)); held == 0 || held > maxHeld || held < maxHeld/2 {
			t.Errorf("%d datagrams held: want up to the bound, %d at most", held, maxHeld)
		}
		if grew := int64(during) - int64(before); grew > frag.DefaultHighThresh+2<<20 {
			t.Errorf("the heap grew by %d KiB, past the reassembler's bound (%d KiB)", grew>>10, frag.DefaultHighThresh>>10)
		}
		fb.expire()
		after := heap()
		c = fb.counters()
		if c.Timeout-base.Timeout != held || c.Fails-base.Fails != n {
			t.Errorf("after 30 s: %d expired, %d failed in all; want %d and %d", c.Timeout-base.Timeout, c.Fails-base.Fails, held, n)
		}
		t.Logf("after 30 s: heap %+d KiB from before the flood", (int64(after)-int64(before))>>10)
		if grew := int64(after) - int64(before); grew > 2<<20 {
			t.Errorf("after every datagram expired the heap is %d KiB above where it was", grew>>10)
		}
		dg := fb.datagram(5000, fragPayload(3000, 9))
		fb.deliver(fb.cut(60001, dg, 1480)...)
		fb.wantReceived(dg[wire.UDPHeaderLen:])
		fb.wantReceived()
	})
}

// TestFragECNMix: fragments of one datagram that mix CE with Not-ECT
// (RFC 3168 5.3, Linux's ip_frag_ecn_table) discard it; CE with ECT makes
// a datagram that is delivered.
func TestFragECNMix(t *testing.T) {
	forFamilies(t, func(t *testing.T, fb *fragBench) {
		setECN := func(p []byte, ecn byte) []byte {
			if fb.v6 {
				p[1] = p[1]&^0x30 | ecn<<4 // the traffic class's low bits
				return p
			}
			p[1] = p[1]&^3 | ecn
			resum4(p)
			return p
		}
		dg := fb.datagram(5000, fragPayload(2500, 12))
		mixed := fb.cut(1, dg, 1480)
		fb.deliver(setECN(mixed[0], 3), mixed[1]) // CE, then Not-ECT
		fb.wantReceived()
		fb.wantCounters("CE with Not-ECT", reasmCounters{Reqds: 2, Fails: 1})
		ok := fb.cut(2, dg, 1480)
		fb.deliver(setECN(ok[0], 3), setECN(ok[1], 2)) // CE, then ECT(0)
		fb.wantReceived(dg[wire.UDPHeaderLen:])
		fb.wantCounters("CE with ECT(0)", reasmCounters{Reqds: 4, OKs: 1, Fails: 1, InDatagrams: 1})
	})
}

// TestFragAtomic: an IPv6 atomic fragment (offset 0, M clear) is a whole
// packet, delivered at once and apart from a datagram in reassembly with
// the same ID (RFC 6946), which completes on its own.
func TestFragAtomic(t *testing.T) {
	fb := newFragBench(t, true)
	dg := fb.datagram(5000, fragPayload(2000, 13))
	small := fb.datagram(5000, fragPayload(100, 14))
	frags := fb.cut(1, dg, 1480)
	fb.deliver(frags[0], fb.frag(1, 0, false, small), frags[1])
	fb.wantReceived(small[wire.UDPHeaderLen:], dg[wire.UDPHeaderLen:])
	fb.wantCounters("an atomic fragment", reasmCounters{Reqds: 3, OKs: 2, InDatagrams: 2})
}

// TestFragParamProblemSent: an IPv6 fragment that reassembly refuses with
// a Parameter Problem (RFC 8200 4.5: a fragment with M set whose length
// is no multiple of 8, code 0 pointing at the Payload Length; one that
// would take the payload past 65,535 bytes, code 0 pointing at the
// Fragment Offset; RFC 7112: a first fragment without the whole header
// chain, code 3) is answered with that Parameter Problem, as Linux's
// ipv6_frag_rcv answers it, quoting the fragment.
func TestFragParamProblemSent(t *testing.T) {
	fb := newFragBench(t, true)
	dg := fb.datagram(5000, fragPayload(100, 10))
	ext := append([]byte{wire.ProtoUDP, 1, 1, 12}, make([]byte, 12)...)
	for _, c := range []struct {
		what    string
		pkt     []byte
		code    uint8
		pointer uint32
	}{
		{"12 bytes with M set", fb.frag(1, 0, true, dg[:12]), 0, 4},
		{"past 65,535 bytes", fb.frag(2, 65528, false, make([]byte, 16)), 0, wire.IPv6HeaderLen + 2},
		{"no UDP header in the first fragment", fb.fragNext(3, 0, true, append(ext, dg...)[:8], 60), 3, 0},
	} {
		fb.sent = nil
		fb.deliver(c.pkt)
		if len(fb.sent) != 1 {
			t.Errorf("%s: the stack sent %d packets, want one Parameter Problem", c.what, len(fb.sent))
			continue
		}
		ih, body, err := wire.ParseIPv6(fb.sent[0])
		if err != nil || ih.NextHeader != wire.ProtoICMPv6 || ih.Dst != fb.src.Addr() {
			t.Errorf("%s: sent %+v, %v", c.what, ih, err)
			continue
		}
		h, quote, err := wire.ParseICMPv6(body, ih.Src, ih.Dst)
		if err != nil || h.Type != wire.ICMPv6ParamProblem || h.Code != c.code || h.Rest != c.pointer ||
			!bytes.HasPrefix(c.pkt, quote[:min(len(quote), len(c.pkt))]) || len(quote) == 0 {
			t.Errorf("%s: ICMPv6 %+v, %v: want Parameter Problem, code %d, pointer %d, quoting the fragment", c.what, h, err, c.code, c.pointer)
		}
	}
}

// TestFragInReceivesPerPacket: IpInReceives counts the packets that came
// from the link, each fragment once, as Linux's ip_rcv does; the datagram
// they make is no packet received (Linux delivers it from ip_defrag
// without passing ip_rcv again). IpInDelivers counts it once.
func TestFragInReceivesPerPacket(t *testing.T) {
	forFamilies(t, func(t *testing.T, fb *fragBench) {
		before := fb.n.b.Stats()
		dg := fb.datagram(5000, fragPayload(3000, 11))
		frags := fb.cut(1, dg, 1480)
		fb.deliver(frags...)
		fb.wantReceived(dg[wire.UDPHeaderLen:])
		after := fb.n.b.Stats()
		if in, del := after.IpInReceives-before.IpInReceives, after.IpInDelivers-before.IpInDelivers; in != uint64(len(frags)) || del != 1 {
			t.Errorf("IpInReceives +%d, IpInDelivers +%d: want +%d (the fragments) and +1", in, del, len(frags))
		}
	})
}
