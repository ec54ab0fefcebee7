package link

import (
	"encoding/binary"
	"net/netip"
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

// seedPackets are well-formed and malformed packets of every kind FlowQueue
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

// FuzzFlowQueue checks that FlowQueue never panics and always answers a
// queue in range, the same one for the same packet; its seeds, run by
// plain go test, cover short, malformed, fragmented and IPv6 packets.
func FuzzFlowQueue(f *testing.F) {
	for _, p := range seedPackets() {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, pkt []byte) {
		for n := 0; n <= 8; n++ {
			q := FlowQueue(pkt, n)
			if n <= 1 && q != 0 || n > 1 && (q < 0 || q >= n) {
				t.Fatalf("FlowQueue(%x, %d) = %d", pkt, n, q)
			}
			if q2 := FlowQueue(pkt, n); q2 != q {
				t.Fatalf("FlowQueue(%x, %d) = %d, then %d", pkt, n, q, q2)
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
		h, ok := FlowHash(p)
		if !ok {
			t.Fatalf("FlowHash(%x) not ok", p)
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
		if _, ok := FlowHash(p); ok {
			t.Errorf("FlowHash(%x) ok", p)
		}
		if q := FlowQueue(p, 4); q != 0 {
			t.Errorf("FlowQueue(%x) = %d, want 0", p, q)
		}
	}
}

// TestQueueOfSpread checks that many flows between two hosts, differing
// only in the source port as a client's connections do, are spread about
// evenly over the queues.
func TestFlowQueueSpread(t *testing.T) {
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
				count[FlowQueue(p, n)]++
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

// BenchmarkFlowQueue measures steering one packet to one of four queues.
func BenchmarkFlowQueue(b *testing.B) {
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
				q += FlowQueue(bc.pkt, 4)
			}
			sink = q
		})
	}
}

var sink int

// flowPacket is ipv4Packet or ipv6Packet from src to dst, with payload
// bytes.
func flowPacket(src, dst netip.Addr, proto byte, sport, dport uint16, payload int) []byte {
	if src.Is4() {
		return ipv4Packet(src.As4(), dst.As4(), proto, sport, dport, make([]byte, payload))
	}
	return ipv6Packet(src.As16(), dst.As16(), proto, sport, dport, make([]byte, payload))
}

var (
	flowA4 = netip.MustParseAddr("10.99.0.2")
	flowB4 = netip.MustParseAddr("10.99.0.1")
	flowA6 = netip.MustParseAddr("fd00::2")
	flowB6 = netip.MustParseAddr("fd00::1")
)

// TestFlowQueueHosts: what a TUN device's queues need of the steering
// function, between the stack's and the kernel's addresses.
func TestFlowQueueHosts(t *testing.T) {
	for _, n := range []int{2, 3, 4, 8} {
		for _, fam := range []struct {
			name string
			a, b netip.Addr
		}{{"v4", flowA4, flowB4}, {"v6", flowA6, flowB6}} {
			for _, proto := range []byte{6, 17} {
				// A flow's packets share a queue whatever their payload;
				// many flows use every queue.
				used := make([]int, n)
				for port := uint16(40000); port < 40256; port++ {
					q := FlowQueue(flowPacket(fam.a, fam.b, proto, 7, port, 0), n)
					if q < 0 || q >= n {
						t.Fatalf("%s proto %d, %d queues: queue %d", fam.name, proto, n, q)
					}
					for _, size := range []int{1, 100, 1400} {
						if q2 := FlowQueue(flowPacket(fam.a, fam.b, proto, 7, port, size), n); q2 != q {
							t.Fatalf("%s proto %d port %d: queue %d with no payload, %d with %d bytes", fam.name, proto, port, q, q2, size)
						}
					}
					used[q]++
				}
				for q, c := range used {
					// 256 flows: each of up to 8 queues expects 32.
					if c < 256/n/3 {
						t.Errorf("%s proto %d, %d queues: queue %d has %d of 256 flows: %v", fam.name, proto, n, q, c, used)
					}
				}
			}
		}
	}

	// Ports count for TCP and UDP only; other protocols hash by
	// addresses, so all their packets between two hosts share a queue,
	// as do all the fragments of a datagram.
	icmp := FlowQueue(flowPacket(flowA4, flowB4, 1, 1, 2, 10), 8)
	for port := range uint16(64) {
		if q := FlowQueue(flowPacket(flowA4, flowB4, 1, port, port, 10), 8); q != icmp {
			t.Fatalf("ICMP packets of one pair of hosts on queues %d and %d", icmp, q)
		}
	}
	frags := map[int]bool{}
	for port := range uint16(64) {
		p := flowPacket(flowA4, flowB4, 17, port, 53, 10)
		binary.BigEndian.PutUint16(p[6:], 0x2000) // MF: a first fragment
		frags[FlowQueue(p, 8)] = true
		binary.BigEndian.PutUint16(p[6:], 100) // a later fragment
		frags[FlowQueue(p, 8)] = true
	}
	if len(frags) != 1 {
		t.Errorf("fragments of one pair of hosts on queues %v", frags)
	}

	// Packets too short for their ports hash by addresses; those too short
	// for their addresses, or not IP, go to queue 0, as does everything
	// with one queue.
	full := flowPacket(flowA4, flowB4, 6, 7, 40000, 0)
	if a, b := FlowQueue(full[:21], 8), FlowQueue(flowPacket(flowA4, flowB4, 1, 0, 0, 0), 8); a != b {
		t.Errorf("IPv4 TCP packet cut in its ports: queue %d, want the addresses' %d", a, b)
	}
	full6 := flowPacket(flowA6, flowB6, 6, 7, 40000, 0)
	bad := map[string][]byte{
		"empty":          nil,
		"v4 short":       full[:19],
		"v4 ihl<5":       append([]byte{0x44}, full[1:]...),
		"v6 short":       full6[:39],
		"version 0":      make([]byte, 60),
		"version 5":      append([]byte{0x50}, full[1:]...),
		"one byte v4":    {0x45},
		"one byte v6":    {0x60},
		"ethernet-ish":   {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 1, 2, 3, 4, 5, 8, 0},
		"v4 ihl too big": append([]byte{0x4f}, full[1:]...),
	}
	for name, p := range bad {
		q := FlowQueue(p, 8)
		if q < 0 || q >= 8 {
			t.Errorf("%s: queue %d", name, q)
		}
		if name != "v4 ihl too big" && q != 0 {
			t.Errorf("%s: queue %d, want 0", name, q)
		}
	}
	for _, n := range []int{-1, 0, 1} {
		if q := FlowQueue(full, n); q != 0 {
			t.Errorf("%d queues: queue %d", n, q)
		}
	}
}

// FuzzFlowQueueTail: whatever the bytes, the queue is in range and the same each
// time; bytes after the transport ports do not change it. The seeds run
// with plain go test.
func FuzzFlowQueueTail(f *testing.F) {
	f.Add(flowPacket(flowA4, flowB4, 6, 7, 40000, 0), uint8(2))
	f.Add(flowPacket(flowA4, flowB4, 17, 53, 1234, 20), uint8(3))
	f.Add(flowPacket(flowA6, flowB6, 6, 80, 50000, 10), uint8(8))
	f.Add(flowPacket(flowA6, flowB6, 58, 0, 0, 4), uint8(4))
	f.Add([]byte{0x46, 0, 0, 24}, uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, p []byte, nq uint8) {
		n := int(nq)
		q := FlowQueue(p, n)
		if q < 0 || (n > 0 && q >= n) || (n <= 1 && q != 0) {
			t.Fatalf("%d queues: queue %d", n, q)
		}
		if q2 := FlowQueue(p, n); q2 != q {
			t.Fatalf("queue %d then %d", q, q2)
		}
		if q2 := FlowQueue(append(p[:len(p):len(p)], 1, 2, 3, 4, 5, 6, 7, 8), n); len(p) >= 64 && q2 != q {
			t.Fatalf("%d bytes: queue %d, %d with more bytes after", len(p), q, q2)
		}
	})
}
