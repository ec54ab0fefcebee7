package tun

import (
	"encoding/binary"
	"net/netip"
	"testing"
)

// flowPacket builds an IP packet of the flow src:sport -> dst:dport over
// proto, with payload bytes after an 8-byte transport header (ports
// first).
func flowPacket(src, dst netip.Addr, proto byte, sport, dport uint16, payload int) []byte {
	var p []byte
	if src.Is4() {
		p = make([]byte, 20+8+payload)
		p[0] = 0x45
		binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
		p[8], p[9] = 64, proto
		copy(p[12:16], src.AsSlice())
		copy(p[16:20], dst.AsSlice())
		binary.BigEndian.PutUint16(p[20:], sport)
		binary.BigEndian.PutUint16(p[22:], dport)
		return p
	}
	p = make([]byte, 40+8+payload)
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(8+payload))
	p[6], p[7] = proto, 64
	copy(p[8:24], src.AsSlice())
	copy(p[24:40], dst.AsSlice())
	binary.BigEndian.PutUint16(p[40:], sport)
	binary.BigEndian.PutUint16(p[42:], dport)
	return p
}

var (
	flowA4 = netip.MustParseAddr("10.99.0.2")
	flowB4 = netip.MustParseAddr("10.99.0.1")
	flowA6 = netip.MustParseAddr("fd00::2")
	flowB6 = netip.MustParseAddr("fd00::1")
)

func TestQueueOf(t *testing.T) {
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
					q := queueOf(flowPacket(fam.a, fam.b, proto, 7, port, 0), n)
					if q < 0 || q >= n {
						t.Fatalf("%s proto %d, %d queues: queue %d", fam.name, proto, n, q)
					}
					for _, size := range []int{1, 100, 1400} {
						if q2 := queueOf(flowPacket(fam.a, fam.b, proto, 7, port, size), n); q2 != q {
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
	icmp := queueOf(flowPacket(flowA4, flowB4, 1, 1, 2, 10), 8)
	for port := range uint16(64) {
		if q := queueOf(flowPacket(flowA4, flowB4, 1, port, port, 10), 8); q != icmp {
			t.Fatalf("ICMP packets of one pair of hosts on queues %d and %d", icmp, q)
		}
	}
	frags := map[int]bool{}
	for port := range uint16(64) {
		p := flowPacket(flowA4, flowB4, 17, port, 53, 10)
		binary.BigEndian.PutUint16(p[6:], 0x2000) // MF: a first fragment
		frags[queueOf(p, 8)] = true
		binary.BigEndian.PutUint16(p[6:], 100) // a later fragment
		frags[queueOf(p, 8)] = true
	}
	if len(frags) != 1 {
		t.Errorf("fragments of one pair of hosts on queues %v", frags)
	}

	// Packets too short for their ports hash by addresses; those too short
	// for their addresses, or not IP, go to queue 0, as does everything
	// with one queue.
	full := flowPacket(flowA4, flowB4, 6, 7, 40000, 0)
	if a, b := queueOf(full[:21], 8), queueOf(flowPacket(flowA4, flowB4, 1, 0, 0, 0), 8); a != b {
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
		q := queueOf(p, 8)
		if q < 0 || q >= 8 {
			t.Errorf("%s: queue %d", name, q)
		}
		if name != "v4 ihl too big" && q != 0 {
			t.Errorf("%s: queue %d, want 0", name, q)
		}
	}
	for _, n := range []int{-1, 0, 1} {
		if q := queueOf(full, n); q != 0 {
			t.Errorf("%d queues: queue %d", n, q)
		}
	}
}

// FuzzQueueOf: whatever the bytes, the queue is in range and the same each
// time; bytes after the transport ports do not change it. The seeds run
// with plain go test.
func FuzzQueueOf(f *testing.F) {
	f.Add(flowPacket(flowA4, flowB4, 6, 7, 40000, 0), uint8(2))
	f.Add(flowPacket(flowA4, flowB4, 17, 53, 1234, 20), uint8(3))
	f.Add(flowPacket(flowA6, flowB6, 6, 80, 50000, 10), uint8(8))
	f.Add(flowPacket(flowA6, flowB6, 58, 0, 0, 4), uint8(4))
	f.Add([]byte{0x46, 0, 0, 24}, uint8(2))
	f.Add([]byte{}, uint8(0))
	f.Fuzz(func(t *testing.T, p []byte, nq uint8) {
		n := int(nq)
		q := queueOf(p, n)
		if q < 0 || (n > 0 && q >= n) || (n <= 1 && q != 0) {
			t.Fatalf("%d queues: queue %d", n, q)
		}
		if q2 := queueOf(p, n); q2 != q {
			t.Fatalf("queue %d then %d", q, q2)
		}
		if q2 := queueOf(append(p[:len(p):len(p)], 1, 2, 3, 4, 5, 6, 7, 8), n); len(p) >= 64 && q2 != q {
			t.Fatalf("%d bytes: queue %d, %d with more bytes after", len(p), q, q2)
		}
	})
}
