package frag

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/synstack/synstack/wire"
)

// fragments runs the Fragmenter over pkt and returns the fragments, each
// one packet.
func fragments(t testing.TB, f *Fragmenter, pkt []byte, mtu int, id uint32) [][]byte {
	t.Helper()
	var out [][]byte
	emit := func(hdr, data []byte) error {
		p := append(bytes.Clone(hdr), data...)
		if len(p) > mtu && data != nil {
			t.Fatalf("fragment of %d bytes for MTU %d", len(p), mtu)
		}
		out = append(out, p)
		return nil
	}
	var err error
	if pkt[0]>>4 == 4 {
		err = f.FragmentIPv4(pkt, mtu, emit)
	} else {
		err = f.FragmentIPv6(pkt, mtu, id, emit)
	}
	if err != nil {
		t.Fatalf("fragmenting %d bytes for MTU %d: %v", len(pkt), mtu, err)
	}
	return out
}

func shuffle(r *rand.Rand, p [][]byte) {
	r.Shuffle(len(p), func(i, j int) { p[i], p[j] = p[j], p[i] })
}

func TestFragmentIPv4(t *testing.T) {
	d := pattern(4000)
	var f Fragmenter
	frags := fragments(t, &f, whole4(t, 77, d), 1500, 0)
	// RFC 791: 1480 bytes of data per fragment (a multiple of 8), MF on
	// all but the last, DF clear, the ID kept.
	wantData := []int{1480, 1480, 1040}
	if len(frags) != len(wantData) {
		t.Fatalf("%d fragments, want %d", len(frags), len(wantData))
	}
	off := 0
	for i, p := range frags {
		h, data, err := wire.ParseIPv4(p)
		if err != wire.ErrFragment {
			t.Fatalf("fragment %d: %v", i, err)
		}
		if h.ID != 77 || h.DontFragment || int(h.FragOffset) != off || h.MoreFragments != (i < 2) ||
			len(data) != wantData[i] || !bytes.Equal(data, d[off:off+len(data)]) {
			t.Fatalf("fragment %d: %+v, %d bytes", i, h, len(data))
		}
		off += len(data)
	}
	if s := f.Stats(); s != (Stats{IpFragOKs: 1, IpFragCreates: 3}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestFragmentIPv4Options(t *testing.T) {
	// Record route (not copied) and loose source route (copied): the
	// first fragment has both, the others the route alone, with No
	// Operations in place of record route, as Linux.
	rr := []byte{0x07, 7, 4, 0, 0, 0, 0}
	lsrr := []byte{0x83, 7, 4, 10, 0, 0, 1}
	opts := append(append(append([]byte{}, rr...), lsrr...), 1, 0)
	later := append(append(bytes.Repeat([]byte{1}, 7), lsrr...), 1, 0)
	d := pattern(100)
	var f Fragmenter
	frags := fragments(t, &f, v4(t, f4{id: 5, data: d, opts: opts}), 20+16+40, 0)
	if len(frags) != 3 {
		t.Fatalf("%d fragments", len(frags))
	}
	for i, p := range frags {
		h, data, err := wire.ParseIPv4(p)
		if err != wire.ErrFragment || h.HeaderLen != 36 {
			t.Fatalf("fragment %d: %+v %v", i, h, err)
		}
		want := later
		if i == 0 {
			want = opts
		}
		if !bytes.Equal(p[20:36], want) {
			t.Fatalf("fragment %d options % x, want % x", i, p[20:36], want)
		}
		if !bytes.Equal(data, d[h.FragOffset:int(h.FragOffset)+len(data)]) {
			t.Fatalf("fragment %d data", i)
		}
	}
}

func TestFragmentIPv4Refragment(t *testing.T) {
	// A forwarder cutting a fragment again: offsets from the original,
	// MF kept on the last piece.
	d := pattern(64)
	var f Fragmenter
	frags := fragments(t, &f, v4(t, f4{id: 3, off: 800, more: true, data: d}), 20+32, 0)
	if len(frags) != 2 {
		t.Fatalf("%d fragments", len(frags))
	}
	for i, p := range frags {
		h, _, _ := wire.ParseIPv4(p)
		if int(h.FragOffset) != 800+32*i || !h.MoreFragments {
			t.Fatalf("fragment %d: %+v", i, h)
		}
	}
}

func TestFragmentIPv4Refused(t *testing.T) {
	d := pattern(100)
	emitted := 0
	emit := func(hdr, data []byte) error { emitted++; return nil }
	var f Fragmenter
	// DF set and too big: refused, counted (RFC 1191; Linux's
	// ip_fragment counts IpFragFails).
	if err := f.FragmentIPv4(v4(t, f4{id: 1, df: true, data: d}), 68, emit); err != ErrDontFragment {
		t.Fatalf("DF: %v", err)
	}
	// No room for 8 bytes after the header.
	if err := f.FragmentIPv4(whole4(t, 1, d), 27, emit); err != ErrMTU {
		t.Fatalf("MTU 27: %v", err)
	}
	// A malformed packet.
	if err := f.FragmentIPv4([]byte{0x45, 0}, 68, emit); err != wire.ErrTruncated {
		t.Fatalf("malformed: %v", err)
	}
	// The link's error stops it and counts.
	boom := errors.New("boom")
	if err := f.FragmentIPv4(whole4(t, 1, d), 68, func(h, d []byte) error { return boom }); err != boom {
		t.Fatalf("emit error: %v", err)
	}
	if emitted != 0 {
		t.Fatalf("%d emitted", emitted)
	}
	// DF set and small enough: sent whole.
	pkt := v4(t, f4{id: 1, df: true, data: d})
	var got []byte
	if err := f.FragmentIPv4(append(pkt, 0, 0), 1500, func(h, d []byte) error { got = h; return nil }); err != nil ||
		!bytes.Equal(got, pkt) {
		t.Fatalf("whole: %v %x", err, got)
	}
	if s := f.Stats(); s != (Stats{IpFragFails: 3}) {
		t.Fatalf("stats %+v", s)
	}
}

func TestFragmentIPv6(t *testing.T) {
	d := pattern(3000)
	var f Fragmenter
	pre := []byte{wire.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}
	frags := fragments(t, &f, whole6(t, d, pre), 1280, 0xdeadbeef)
	// RFC 8200 4.5: the unfragmentable part (IPv6 + Hop-by-Hop, 48
	// bytes) in each, then the Fragment header, then 1224 bytes (1280 -
	// 56, a multiple of 8) but the last.
	wantData := []int{1224, 1224, 552}
	if len(frags) != len(wantData) {
		t.Fatalf("%d fragments", len(frags))
	}
	off := 0
	for i, p := range frags {
		h, rest, err := wire.ParseIPv6(p)
		if err != wire.ErrFragment || h.FlowLabel != 0x12345 || int(h.PayloadLen) != len(p)-40 {
			t.Fatalf("fragment %d: %+v %v", i, h, err)
		}
		if p[6] != wire.ProtoHopByHop || p[40] != wire.ProtoFragment {
			t.Fatalf("fragment %d: header chain %d %d", i, p[6], p[40])
		}
		fh, data, err := wire.ParseIPv6Fragment(rest)
		if err != nil || fh.ID != 0xdeadbeef || fh.NextHeader != wire.ProtoUDP || int(fh.FragOffset) != off ||
			fh.MoreFragments != (i < 2) || len(data) != wantData[i] || !bytes.Equal(data, d[off:off+len(data)]) {
			t.Fatalf("fragment %d: %+v, %d bytes", i, fh, len(data))
		}
		off += len(data)
	}
	if s := f.Stats(); s != (Stats{Ip6FragOKs: 1, Ip6FragCreates: 3}) {
		t.Fatalf("stats %+v", s)
	}
	// Already fragmented, or no room: refused.
	if err := f.FragmentIPv6(v6(t, f6{id: 1, more: true, data: d[:16]}), 50, 1, nil); err != ErrFragmented {
		t.Fatalf("fragment: %v", err)
	}
	if err := f.FragmentIPv6(whole6(t, d, nil), 55, 1, nil); err != ErrMTU {
		t.Fatalf("MTU 55: %v", err)
	}
	if s := f.Stats(); s.Ip6FragFails != 1 {
		t.Fatalf("stats %+v", s)
	}
}

// TestFragmentReassembleRoundTrip is the property: for random sizes and
// MTUs, fragmenting and then reassembling in a shuffled order, with
// duplicates, gives the packet back, byte for byte, on the last fragment
// and not before.
func TestFragmentReassembleRoundTrip(t *testing.T) {
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(seed, 1))
	var f Fragmenter
	// Limits out of the way: 8-byte fragments of 64 KiB datagrams.
	r := NewReassembler(Config{MaxFragments: 8192, HighThresh: 64 << 20})
	for i := range 300 {
		v6 := rng.IntN(2) == 0
		var pkt []byte
		var mtu int
		if v6 {
			n := 1 + rng.IntN(0xffff-8)
			if rng.IntN(4) == 0 {
				n = 1 + rng.IntN(5000)
			}
			var pre []byte
			if rng.IntN(3) == 0 {
				pre = []byte{wire.ProtoUDP, 0, 1, 4, 0, 0, 0, 0}
				n -= len(pre)
			}
			pkt = whole6(t, pattern(max(n, 8)), pre)
			mtu = 1280 + rng.IntN(8000)
			if rng.IntN(4) == 0 {
				mtu = 40 + len(pre) + 8 + 8 + rng.IntN(500)
			}
		} else {
			n := 1 + rng.IntN(0xffff-20)
			if rng.IntN(4) == 0 {
				n = 1 + rng.IntN(5000)
			}
			pkt = whole4(t, uint16(i), pattern(n))
			mtu = 68 + rng.IntN(9000)
		}
		frags := fragments(t, &f, pkt, mtu, uint32(i))
		if len(frags) == 1 {
			if !bytes.Equal(frags[0], pkt) || len(pkt) > mtu {
				t.Fatalf("case %d: a packet that fits changed", i)
			}
			continue
		}
		for range rng.IntN(3) {
			frags = append(frags, frags[rng.IntN(len(frags))])
		}
		shuffle(rng, frags)
		var got []byte
		for j, p := range frags {
			res := r.Input(p, t0)
			switch res.Verdict {
			case Done:
				// Duplicates after Done start a new datagram,
				// which may complete again.
				if got != nil && !bytes.Equal(got, res.Packet) {
					t.Fatalf("case %d: reassembled twice, differently", i)
				}
				got = bytes.Clone(res.Packet)
			case Held:
			case Dropped:
				// A duplicate, or one coming after the datagram
				// was done, which starts another one.
				if res.Reason != ReasonDuplicate && got == nil {
					t.Fatalf("case %d fragment %d: %v", i, j, res.Reason)
				}
			default:
				t.Fatalf("case %d fragment %d: %+v", i, j, res)
			}
		}
		if !bytes.Equal(got, pkt) {
			t.Fatalf("case %d (v6 %v, %d bytes, MTU %d, %d fragments): reassembled %d bytes, differ",
				i, v6, len(pkt), mtu, len(frags), len(got))
		}
		r.Expire(t0.Add(DefaultTimeout), nil) // what duplicates after Done started
	}
	if r.Memory() != 0 {
		t.Fatalf("%d bytes left", r.Memory())
	}
}

func TestDefaultsReassembleLargestDatagramAtSmallMTU(t *testing.T) {
	// The default fragment bound lets a 65,507-byte UDP payload through
	// a 576-byte MTU.
	var f Fragmenter
	r := NewReassembler(Config{})
	pkt := whole4(t, 1, pattern(wire.UDPMaxPayload+wire.UDPHeaderLen))
	var res Result
	for _, p := range fragments(t, &f, pkt, 576, 0) {
		res = r.Input(p, t0)
	}
	if res.Verdict != Done || !bytes.Equal(res.Packet, pkt) {
		t.Fatalf("%+v", res.Verdict)
	}
}
