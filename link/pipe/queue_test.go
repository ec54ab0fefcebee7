package pipe

import (
	"encoding/binary"
	"testing"
)

// ipv4Packet builds an IPv4 packet (20-byte header, no options) of protocol
// proto from src to dst, whose transport header starts with the two ports,
// followed by 16 more transport-header bytes and payload.
func ipv4Packet(src, dst [4]byte, proto byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 20+20+len(payload))
	p[0] = 0x45
	binary.BigEndian.PutUint16(p[2:4], uint16(len(p)))
	p[8] = 64
	p[9] = proto
	copy(p[12:16], src[:])
	copy(p[16:20], dst[:])
	binary.BigEndian.PutUint16(p[20:22], sport)
	binary.BigEndian.PutUint16(p[22:24], dport)
	copy(p[40:], payload)
	return p
}

// ipv6Packet is ipv4Packet for IPv6 (40-byte header, next header proto).
func ipv6Packet(src, dst [16]byte, proto byte, sport, dport uint16, payload []byte) []byte {
	p := make([]byte, 40+20+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:6], uint16(len(p)-40))
	p[6] = proto
	p[7] = 64
	copy(p[8:24], src[:])
	copy(p[24:40], dst[:])
	binary.BigEndian.PutUint16(p[40:42], sport)
	binary.BigEndian.PutUint16(p[42:44], dport)
	copy(p[60:], payload)
	return p
}

var (
	v4a = [4]byte{10, 0, 0, 1}
	v4b = [4]byte{10, 0, 0, 2}
	v6a = [16]byte{0: 0xfd, 15: 1}
	v6b = [16]byte{0: 0xfd, 15: 2}
)

// seedPackets are well-formed and malformed packets of every kind queueOf
// distinguishes.
func seedPackets() [][]byte {
	tcp4 := ipv4Packet(v4a, v4b, protoTCP, 1234, 80, []byte("data"))
	mf := ipv4Packet(v4a, v4b, protoUDP, 1234, 53, nil)
	mf[6] = 0x20 // more fragments
	off := ipv4Packet(v4a, v4b, protoUDP, 1234, 53, nil)
	off[7] = 0x10 // fragment offset 16*8
	opts := append(ipv4Packet(v4a, v4b, protoTCP, 1, 2, nil), 0, 0, 0, 0)
	opts[0] = 0x46 // IHL 6: ports now read 4 bytes further on
	badIHL := ipv4Packet(v4a, v4b, protoTCP, 1, 2, nil)
	badIHL[0] = 0x43
	bigIHL := ipv4Packet(v4a, v4b, protoTCP, 1, 2, nil)[:24]
	bigIHL[0] = 0x4f // 60-byte header in a 24-byte packet
	udp6 := ipv6Packet(v6a, v6b, protoUDP, 5353, 53, []byte("q"))
	ext6 := ipv6Packet(v6a, v6b, 0, 1, 2, nil) // hop-by-hop options: not walked
	return [][]byte{
		nil,
		{0x45},
		{0x60, 0, 0},
		{0x00, 1, 2, 3},
		tcp4,
		tcp4[:20], // addresses, no ports
		tcp4[:23], // one byte short of the ports
		tcp4[:24],
		ipv4Packet(v4a, v4b, 1, 0, 0, nil), // ICMP
		mf, off, opts, badIHL, bigIHL,
		udp6,
		udp6[:39],
		udp6[:40],
		udp6[:43],
		ipv6Packet(v6a, v6b, protoTCP, 1, 2, nil),
		ext6,
	}
}

// FuzzQueueOf checks that queueOf never panics and always answers a
// queue in range, the same one for the same packet; its seeds, run by
// plain go test, cover short, malformed, fragmented and IPv6 packets.
func FuzzQueueOf(f *testing.F) {
	for _, p := range seedPackets() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for n := 0; n <= 8; n++ {
			q := queueOf(pkt, n)
			if n <= 1 && q != 0 || n > 1 && (q < 0 || q >= n) {
				t.Fatalf("queueOf(%x, %d) = %d", pkt, n, q)
			}
			if q2 := queueOf(pkt, n); q2 != q {
				t.Fatalf("queueOf(%x, %d) = %d, then %d", pkt, n, q, q2)
			}
		}
	})
}

// TestFlowHashFields checks which bytes the hash reads: the 5-tuple of a
// TCP or UDP packet that is not a fragment, the addresses alone for any
// other packet, and nothing that follows.
func TestFlowHashFields(t *testing.T) {
	hash := func(p []byte) uint64 {
		t.Helper()
		h, ok := flowHash(p)
		if !ok {
			t.Fatalf("flowHash(%x) not ok", p)
		}
		return h
	}
	tcp := ipv4Packet(v4a, v4b, protoTCP, 1000, 80, []byte("one"))
	if hash(tcp) != hash(ipv4Packet(v4a, v4b, protoTCP, 1000, 80, []byte("two, longer"))) {
		t.Error("IPv4: the payload changed the hash")
	}
	if hash(tcp) == hash(ipv4Packet(v4a, v4b, protoTCP, 1001, 80, nil)) {
		t.Error("IPv4: the source port did not change the hash")
	}
	if hash(tcp) == hash(ipv4Packet(v4a, v4b, protoUDP, 1000, 80, nil)) {
		t.Error("IPv4: the protocol did not change the hash")
	}
	if hash(tcp) == hash(ipv4Packet(v4a, [4]byte{10, 0, 0, 3}, protoTCP, 1000, 80, nil)) {
		t.Error("IPv4: the destination address did not change the hash")
	}
	addrs := hash(tcp[:20])
	for _, p := range [][]byte{
		tcp[:23],
		ipv4Packet(v4a, v4b, 1, 7, 7, nil),
		ipv4Packet(v4a, v4b, 47, 9, 9, nil),
	} {
		if hash(p) != addrs {
			t.Errorf("IPv4 %x: not hashed on addresses only", p)
		}
	}
	// All fragments of a datagram hash alike, whatever they carry.
	first := ipv4Packet(v4a, v4b, protoUDP, 1000, 53, nil)
	first[6] = 0x20
	later := ipv4Packet(v4a, v4b, protoUDP, 0xdead, 0xbeef, nil)
	later[7] = 0xb9
	if hash(first) != addrs || hash(later) != addrs {
		t.Error("IPv4 fragments not hashed on addresses only")
	}
	// With options the ports are found after them.
	opts := ipv4Packet(v4a, v4b, protoTCP, 0, 0, nil)
	opts[0] = 0x46
	binary.BigEndian.PutUint16(opts[24:26], 1000)
	binary.BigEndian.PutUint16(opts[26:28], 80)
	if hash(opts) != hash(tcp) {
		t.Error("IPv4 options: ports not read after them")
	}

	udp := ipv6Packet(v6a, v6b, protoUDP, 5353, 53, []byte("x"))
	if hash(udp) != hash(ipv6Packet(v6a, v6b, protoUDP, 5353, 53, []byte("yy"))) {
		t.Error("IPv6: the payload changed the hash")
	}
	if hash(udp) == hash(ipv6Packet(v6a, v6b, protoUDP, 5353, 54, nil)) {
		t.Error("IPv6: the destination port did not change the hash")
	}
	if hash(udp) == hash(ipv6Packet([16]byte{0: 0xfd, 8: 1, 15: 1}, v6b, protoUDP, 5353, 53, nil)) {
		t.Error("IPv6: the source address did not change the hash")
	}
	addrs6 := hash(udp[:40])
	if hash(udp[:43]) != addrs6 || hash(ipv6Packet(v6a, v6b, 44, 1, 2, nil)) != addrs6 {
		t.Error("IPv6: short or fragment-header packet not hashed on addresses only")
	}
	for _, p := range [][]byte{nil, {0x45}, tcp[:19], udp[:39], {0x70, 0, 0, 0}} {
		if _, ok := flowHash(p); ok {
			t.Errorf("flowHash(%x) ok", p)
		}
		if q := queueOf(p, 4); q != 0 {
			t.Errorf("queueOf(%x) = %d, want 0", p, q)
		}
	}
}

// TestQueueOfSpread checks that many flows between two hosts, differing
// only in the source port as a client's connections do, are spread about
// evenly over the queues.
func TestQueueOfSpread(t *testing.T) {
	for _, n := range []int{2, 3, 4, 8} {
		for _, v6 := range []bool{false, true} {
			const flows = 4096
			count := make([]int, n)
			for i := range flows {
				var p []byte
				if v6 {
					p = ipv6Packet(v6a, v6b, protoTCP, uint16(32768+i), 443, nil)
				} else {
					p = ipv4Packet(v4a, v4b, protoTCP, uint16(32768+i), 443, nil)
				}
				count[queueOf(p, n)]++
			}
			for q, c := range count {
				if want := flows / n; c < want*3/4 || c > want*5/4 {
					t.Errorf("n=%d v6=%v: queue %d got %d of %d flows: %v", n, v6, q, c, flows, count)
					break
				}
			}
		}
	}
}

// BenchmarkQueueHash measures steering one packet to one of four queues.
func BenchmarkQueueHash(b *testing.B) {
	for _, bc := range []struct {
		name string
		pkt  []byte
	}{
		{"ipv4-tcp", ipv4Packet(v4a, v4b, protoTCP, 40000, 443, make([]byte, 1400))},
		{"ipv6-udp", ipv6Packet(v6a, v6b, protoUDP, 40000, 443, make([]byte, 1400))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			q := 0
			for b.Loop() {
				q += queueOf(bc.pkt, 4)
			}
			sink = q
		})
	}
}

var sink int
