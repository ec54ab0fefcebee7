package wire

import (
	"bytes"
	"errors"
	"net/netip"
	"testing"
)

// ipv6Hdr returns a fixed IPv6 header 2001:db8::1 -> 2001:db8::2, traffic
// class 0xb8, flow label 0x12345, hop limit 64, with the given next header and
// payload length.
func ipv6Hdr(t *testing.T, next byte, plen int) []byte {
	b := unhex(t, `6b812345 0000 00 40
		20010db8 00000000 00000000 00000001
		20010db8 00000000 00000000 00000002`)
	b[4], b[5] = byte(plen>>8), byte(plen)
	b[6] = next
	return b
}

func TestParseIPv6Vectors(t *testing.T) {
	tcp := []byte{0xde, 0xad, 0xbe, 0xef}
	hbh := []byte{ProtoDestOpts, 0, 1, 4, 0, 0, 0, 0}                         // PadN
	dst := []byte{ProtoRouting, 1, 1, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0} // 16 bytes
	rth := []byte{ProtoTCP, 0, 0, 0, 0, 0, 0, 0}                              // routing, segments left 0
	frag := []byte{ProtoTCP, 0, 0, 1, 0, 0, 0, 42}                            // offset 0, M=1
	cat := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	base := IPv6{TrafficClass: 0xb8, FlowLabel: 0x12345, HopLimit: 64, Src: v6a, Dst: v6b}
	with := func(next uint8, plen uint16) IPv6 {
		h := base
		h.NextHeader, h.PayloadLen = next, plen
		return h
	}
	many := ipv6Hdr(t, ProtoDestOpts, 9*8+4)
	for i := range 9 {
		next := byte(ProtoDestOpts)
		if i == 8 {
			next = ProtoTCP
		}
		many = append(many, next, 0, 1, 4, 0, 0, 0, 0)
	}
	many = append(many, tcp...)
	eight := ipv6Hdr(t, ProtoDestOpts, 8*8+4)
	for i := range 8 {
		next := byte(ProtoDestOpts)
		if i == 7 {
			next = ProtoTCP
		}
		eight = append(eight, next, 0, 1, 4, 0, 0, 0, 0)
	}
	eight = append(eight, tcp...)

	tests := []struct {
		name    string
		in      []byte
		want    IPv6
		payload []byte
		err     error
	}{
		{name: "tcp", in: cat(ipv6Hdr(t, ProtoTCP, 4), tcp), want: with(ProtoTCP, 4), payload: tcp},
		{name: "padding trimmed", in: cat(ipv6Hdr(t, ProtoTCP, 4), tcp, []byte{0, 0}), want: with(ProtoTCP, 4), payload: tcp},
		{name: "empty payload", in: ipv6Hdr(t, ProtoICMPv6, 0), want: with(ProtoICMPv6, 0), payload: []byte{}},
		{name: "no next header", in: cat(ipv6Hdr(t, ProtoNoNext, 4), tcp), want: with(ProtoNoNext, 4), payload: tcp},
		{name: "hbh dst rth", in: cat(ipv6Hdr(t, ProtoHopByHop, 36), hbh, dst, rth, tcp), want: with(ProtoTCP, 36), payload: tcp},
		{name: "eight ext headers", in: eight, want: with(ProtoTCP, 8*8+4), payload: tcp},
		{name: "fragment", in: cat(ipv6Hdr(t, ProtoFragment, 12), frag, tcp), want: with(ProtoFragment, 12), payload: cat(frag, tcp), err: ErrFragment},
		{name: "fragment after hbh", in: cat(ipv6Hdr(t, ProtoHopByHop, 20), []byte{ProtoFragment, 0, 1, 4, 0, 0, 0, 0}, frag, tcp),
			want: with(ProtoFragment, 20), payload: cat(frag, tcp), err: ErrFragment},
		{name: "short fragment header", in: cat(ipv6Hdr(t, ProtoFragment, 4), tcp), err: ErrTruncated},
		{name: "nine ext headers", in: many, err: ErrBadExtHeader},
		{name: "short", in: ipv6Hdr(t, ProtoTCP, 0)[:39], err: ErrTruncated},
		{name: "payload past end", in: cat(ipv6Hdr(t, ProtoTCP, 5), tcp), err: ErrTruncated},
		{name: "bad version", in: cat([]byte{0x4b}, ipv6Hdr(t, ProtoTCP, 4)[1:], tcp), err: ErrBadVersion},
		{name: "ext header short", in: cat(ipv6Hdr(t, ProtoHopByHop, 4), tcp), err: ErrTruncated},
		{name: "ext header length past end", in: cat(ipv6Hdr(t, ProtoDestOpts, 12), []byte{ProtoTCP, 1, 0, 0, 0, 0, 0, 0}, tcp), err: ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := ParseIPv6(tc.in)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err != nil && tc.err != ErrFragment {
				return
			}
			if h != tc.want {
				t.Errorf("header = %+v\nwant     %+v", h, tc.want)
			}
			if !bytes.Equal(p, tc.payload) {
				t.Errorf("payload = %x, want %x", p, tc.payload)
			}
		})
	}
}

func TestIPv6EmitVector(t *testing.T) {
	h := IPv6{TrafficClass: 0xb8, FlowLabel: 0x12345, NextHeader: ProtoTCP, HopLimit: 64, Src: v6a, Dst: v6b}
	b := make([]byte, 40)
	if n, err := h.Emit(b, 4); err != nil || n != IPv6HeaderLen {
		t.Fatalf("Emit = %d, %v", n, err)
	}
	if want := ipv6Hdr(t, ProtoTCP, 4); !bytes.Equal(b, want) {
		t.Fatalf("Emit wrote %x\nwant        %x", b, want)
	}
}

func TestIPv6RoundTrip(t *testing.T) {
	for _, h := range []IPv6{
		{NextHeader: ProtoTCP, HopLimit: 64, Src: v6a, Dst: v6b},
		{TrafficClass: 0xff, FlowLabel: 0xfffff, NextHeader: ProtoICMPv6, HopLimit: 255, Src: netip.IPv6Unspecified(), Dst: netip.MustParseAddr("ff02::1")},
		{TrafficClass: 1, FlowLabel: 1, NextHeader: 17, HopLimit: 1, Src: netip.MustParseAddr("::ffff:1.2.3.4"), Dst: v6a},
	} {
		for _, plen := range []int{0, 1, 1440} {
			b := make([]byte, 40+plen)
			if _, err := h.Emit(b, plen); err != nil {
				t.Fatalf("Emit(%+v): %v", h, err)
			}
			got, p, err := ParseIPv6(b)
			if err != nil {
				t.Fatalf("ParseIPv6: %v", err)
			}
			want := h
			want.PayloadLen = uint16(plen)
			if got != want {
				t.Errorf("round trip: got %+v\nwant %+v", got, want)
			}
			if len(p) != plen {
				t.Errorf("payload len %d, want %d", len(p), plen)
			}
		}
	}
}

func TestIPv6EmitErrors(t *testing.T) {
	ok := IPv6{NextHeader: ProtoTCP, HopLimit: 64, Src: v6a, Dst: v6b}
	b := make([]byte, 40)
	if _, err := ok.Emit(b[:39], 0); err != ErrShortBuffer {
		t.Errorf("short buffer: %v", err)
	}
	h := ok
	h.Dst = v4a
	if _, err := h.Emit(b, 0); err != ErrBadAddress {
		t.Errorf("v4 dst: %v", err)
	}
	h = ok
	h.FlowLabel = 1 << 20
	if _, err := h.Emit(b, 0); err != ErrBadValue {
		t.Errorf("flow label: %v", err)
	}
	if _, err := ok.Emit(b, 65536); err != ErrBadValue {
		t.Errorf("payload too long: %v", err)
	}
}
