package frag

import (
	"bytes"
	"encoding/binary"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// FuzzReassembler feeds arbitrary fragments, IPv4 and IPv6, of a few
// datagrams, with time passing and raw packets between them, to a
// Reassembler with small limits. No input may panic, pass the memory
// bound or the bounds on datagrams and fragments, or break the
// bookkeeping; what it reassembles must parse.
func FuzzReassembler(f *testing.F) {
	f.Add([]byte{0, 1, 0, 0, 16, 1, 0, 0, 1, 0, 2, 16, 0, 0})
	f.Add([]byte{1, 1, 0, 0, 16, 1, 0, 1, 1, 0, 1, 9, 1, 0, 1, 1, 0, 2, 8, 0, 0})
	f.Add([]byte{0, 2, 0, 1, 200, 1, 5, 3, 0, 0, 0, 0, 0, 255, 2, 0, 0, 0, 20, 0, 0})
	f.Add([]byte{1, 3, 0, 0, 4, 1, 0, 1, 3, 0, 0, 40, 0, 0, 0, 3, 0, 1, 8, 1, 0})
	f.Fuzz(func(t *testing.T, ops []byte) {
		cfg := Config{HighThresh: 16 << 10, MaxDatagrams: 8, MaxFragments: 16}
		r := NewReassembler(cfg)
		now := t0
		for len(ops) >= 7 {
			op := ops[:7]
			ops = ops[7:]
			now = now.Add(time.Duration(op[6]) * 250 * time.Millisecond)
			var pkt []byte
			off := int(binary.BigEndian.Uint16(op[2:])) &^ 7
			n := int(op[4]) * (1 + int(op[5]>>4))
			more := op[5]&1 != 0
			switch op[0] % 4 {
			case 0:
				pkt = v4(t, f4{id: uint16(op[1] % 4), off: off, more: more, data: pattern(n),
					tos: op[5] >> 1 & 3, df: op[5]&8 != 0, proto: 1 + op[1]>>6})
			case 1:
				var pre []byte
				if op[5]&8 != 0 {
					pre = hbh
				}
				pkt = v6(t, f6{id: uint32(op[1] % 4), off: off, more: more, data: pattern(n),
					tc: op[5] >> 1 & 3, next: []uint8{wire.ProtoUDP, wire.ProtoTCP, wire.ProtoDestOpts, 99}[op[1]>>6], pre: pre})
			case 2:
				k := min(len(ops), n)
				pkt, ops = ops[:k], ops[k:]
			case 3:
				r.Expire(now, func(e Expired) {
					if e.First != nil && e.First[0]>>4 != 4 && e.First[0]>>4 != 6 {
						t.Fatalf("expired first fragment %x", e.First)
					}
				})
				checkInvariants(t, r)
				continue
			}
			res := r.Input(pkt, now)
			if res.Verdict == Done {
				checkReassembled(t, res.Packet)
			}
			checkInvariants(t, r)
		}
	})
}

// checkReassembled checks a reassembled packet is a whole IP packet.
func checkReassembled(t *testing.T, pkt []byte) {
	t.Helper()
	if pkt[0]>>4 == 4 {
		h, _, err := wire.ParseIPv4(pkt)
		if err != nil || int(h.TotalLen) != len(pkt) {
			t.Fatalf("reassembled IPv4 %+v: %v", h, err)
		}
		return
	}
	// The data may hold anything, broken extension headers too (the
	// upper layer drops those): only the fixed header is checked.
	if pkt[0]>>4 != 6 || int(binary.BigEndian.Uint16(pkt[4:]))+wire.IPv6HeaderLen != len(pkt) {
		t.Fatalf("reassembled IPv6 %x", pkt[:wire.IPv6HeaderLen])
	}
}

// checkInvariants checks the bounds and the bookkeeping of r.
func checkInvariants(t *testing.T, r *Reassembler) {
	t.Helper()
	if r.Memory() > r.cfg.HighThresh || r.Datagrams() > r.cfg.MaxDatagrams {
		t.Fatalf("%d bytes in %d datagrams, bounds %d and %d", r.Memory(), r.Datagrams(), r.cfg.HighThresh, r.cfg.MaxDatagrams)
	}
	var last time.Time
	for q := r.oldest; q != nil; q = q.next {
		if q.deadline.Before(last) {
			t.Fatalf("deadlines out of order")
		}
		last = q.deadline
		if len(q.frags) > r.cfg.MaxFragments || len(q.frags) == 0 {
			t.Fatalf("%d fragments", len(q.frags))
		}
		meat, end := 0, 0
		for _, f := range q.frags {
			if f.off < end || f.end <= f.off || len(f.data) != f.end-f.off || f.end > q.length {
				t.Fatalf("fragments %v of length %d", q.frags, q.length)
			}
			meat += f.end - f.off
			end = f.end
		}
		if meat != q.meat || q.firstIn != (q.frags[0].off == 0) {
			t.Fatalf("meat %d, counted %d; firstIn %v", meat, q.meat, q.firstIn)
		}
	}
	checkMemory(t, r)
}

// FuzzFragment cuts arbitrary packets for arbitrary MTUs: no panic, no
// fragment over the MTU, and what is cut reassembles to the packet.
func FuzzFragment(f *testing.F) {
	f.Add(uint16(1500), uint16(4000), uint8(0), false)
	f.Add(uint16(1280), uint16(3000), uint8(1), true)
	f.Add(uint16(68), uint16(65000), uint8(0), false)
	f.Add(uint16(100), uint16(500), uint8(3), true)
	f.Fuzz(func(t *testing.T, mtu, size uint16, variant uint8, v6 bool) {
		var pkt []byte
		if v6 {
			var pre []byte
			if variant&1 != 0 {
				pre = []byte{wire.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}
			}
			n := min(int(size), 0xffff-len(pre))
			pkt = whole6(t, pattern(n), pre)
		} else {
			var opts []byte
			if variant&1 != 0 {
				opts = []byte{0x07, 7, 4, 0, 0, 0, 0, 0x83, 3, 4, 1, 0}
			}
			n := min(int(size), 0xffff-wire.IPv4HeaderLen-len(opts))
			pkt = v4(t, f4{id: 1, data: pattern(n), opts: opts, df: variant&2 != 0})
		}
		var frags [][]byte
		emit := func(hdr, data []byte) error {
			p := append(append([]byte{}, hdr...), data...)
			if data != nil && len(p) > int(mtu) {
				t.Fatalf("fragment of %d bytes for MTU %d", len(p), mtu)
			}
			frags = append(frags, p)
			return nil
		}
		var fr Fragmenter
		var err error
		if v6 {
			err = fr.FragmentIPv6(pkt, int(mtu), 9, emit)
		} else {
			err = fr.FragmentIPv4(pkt, int(mtu), emit)
		}
		if err != nil {
			if err != ErrMTU && err != ErrDontFragment {
				t.Fatalf("FragmentIPv%d: %v", map[bool]int{false: 4, true: 6}[v6], err)
			}
			s := fr.Stats()
			if s.IpFragFails+s.Ip6FragFails != 1 || len(frags) != 0 {
				t.Fatalf("refused with %d fragments, stats %+v", len(frags), s)
			}
			return
		}
		if len(frags) == 1 {
			if len(pkt) > int(mtu) {
				t.Fatalf("a packet of %d bytes sent whole for MTU %d", len(pkt), mtu)
			}
			return
		}
		r := NewReassembler(Config{MaxFragments: 1 << 13, HighThresh: 64 << 20})
		var res Result
		for i := len(frags) - 1; i >= 0; i-- {
			res = r.Input(frags[i], t0)
		}
		if res.Verdict != Done || !bytes.Equal(res.Packet, pkt) {
			t.Fatalf("reassembled %v %v", res.Verdict, res.Reason)
		}
	})
}
