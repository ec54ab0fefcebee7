package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"
)

// withIPv4Checksum returns a copy of b with the header checksum recomputed by
// the reference implementation.
func withIPv4Checksum(b []byte) []byte {
	b = bytes.Clone(b)
	hl := int(b[0]&0x0f) * 4
	b[10], b[11] = 0, 0
	binary.BigEndian.PutUint16(b[10:], ^uint16(refChecksum(b[:hl], 0)))
	return b
}

func TestParseIPv4Vectors(t *testing.T) {
	syn := unhex(t, synPacket)
	// RFC-style example header (UDP, 192.168.0.1 -> 192.168.0.199) with
	// its well-known checksum 0xb861, followed by 95 bytes of payload.
	udp := append(unhex(t, "4500 0073 0000 4000 4011 b861 c0a8 0001 c0a8 00c7"), make([]byte, 95)...)

	opts := withIPv4Checksum(append(unhex(t, "46 00 00 1c 00 07 00 00 20 01 00 00 01 02 03 04 05 06 07 08 01 01 01 00"), 0xaa, 0xbb, 0xcc, 0xdd))

	tests := []struct {
		name    string
		in      []byte
		want    IPv4
		payload []byte
		err     error
	}{
		{
			name: "tcp syn",
			in:   syn,
			want: IPv4{TotalLen: 60, ID: 0x1234, DontFragment: true, TTL: 64, Protocol: ProtoTCP,
				Src: v4a, Dst: v4b, HeaderLen: 20},
			payload: syn[20:],
		},
		{
			name: "udp example",
			in:   udp,
			want: IPv4{TotalLen: 0x73, DontFragment: true, TTL: 64, Protocol: 17,
				Src: netip.MustParseAddr("192.168.0.1"), Dst: netip.MustParseAddr("192.168.0.199"), HeaderLen: 20},
			payload: udp[20:],
		},
		{
			name: "options skipped",
			in:   opts,
			want: IPv4{TotalLen: 28, ID: 7, TTL: 32, Protocol: ProtoICMP,
				Src: netip.MustParseAddr("1.2.3.4"), Dst: netip.MustParseAddr("5.6.7.8"), HeaderLen: 24},
			payload: []byte{0xaa, 0xbb, 0xcc, 0xdd},
		},
		{
			name: "link padding trimmed",
			in:   append(bytes.Clone(syn), 0, 0, 0, 0, 0, 0),
			want: IPv4{TotalLen: 60, ID: 0x1234, DontFragment: true, TTL: 64, Protocol: ProtoTCP,
				Src: v4a, Dst: v4b, HeaderLen: 20},
			payload: syn[20:],
		},
		{
			name: "more fragments",
			in:   withIPv4Checksum(append(unhex(t, "45 00 00 18 00 09 20 00 40 06 00 00 0a 00 00 01 0a 00 00 02"), 1, 2, 3, 4)),
			want: IPv4{TotalLen: 24, ID: 9, MoreFragments: true, TTL: 64, Protocol: ProtoTCP,
				Src: v4a, Dst: v4b, HeaderLen: 20},
			payload: []byte{1, 2, 3, 4},
			err:     ErrFragment,
		},
		{
			name: "fragment offset",
			in:   withIPv4Checksum(append(unhex(t, "45 00 00 18 00 09 00 b9 40 06 00 00 0a 00 00 01 0a 00 00 02"), 1, 2, 3, 4)),
			want: IPv4{TotalLen: 24, ID: 9, FragOffset: 0xb9 * 8, TTL: 64, Protocol: ProtoTCP,
				Src: v4a, Dst: v4b, HeaderLen: 20},
			payload: []byte{1, 2, 3, 4},
			err:     ErrFragment,
		},
		{name: "empty", in: nil, err: ErrTruncated},
		{name: "short", in: syn[:19], err: ErrTruncated},
		{name: "version 6", in: withIPv4Checksum(append([]byte{0x65}, syn[1:]...)), err: ErrBadVersion},
		{name: "ihl 4", in: withIPv4Checksum(append([]byte{0x44}, syn[1:]...)), err: ErrBadHeaderLen},
		{name: "ihl past end", in: append([]byte{0x4f}, syn[1:20]...), err: ErrTruncated},
		{name: "total below ihl", in: withIPv4Checksum(append([]byte{0x45, 0, 0, 19}, syn[4:]...)), err: ErrBadLength},
		{name: "total past end", in: syn[:59], err: ErrTruncated},
		{name: "bad checksum", in: append([]byte{0x45, 0, 0, 60, 0x12, 0x35}, syn[6:]...), err: ErrBadChecksum},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := ParseIPv4(tc.in)
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

func TestIPv4EmitVector(t *testing.T) {
	h := IPv4{ID: 0x1234, DontFragment: true, TTL: 64, Protocol: ProtoTCP, Src: v4a, Dst: v4b}
	b := make([]byte, 20)
	n, err := h.Emit(b, 40)
	if err != nil || n != IPv4HeaderLen {
		t.Fatalf("Emit = %d, %v", n, err)
	}
	if want := unhex(t, synPacket)[:20]; !bytes.Equal(b, want) {
		t.Fatalf("Emit wrote %x\nwant        %x", b, want)
	}
}

func TestIPv4RoundTrip(t *testing.T) {
	for _, h := range []IPv4{
		{TTL: 64, Protocol: ProtoTCP, Src: v4a, Dst: v4b},
		{TOS: 0xb8, ID: 0xffff, DontFragment: true, TTL: 255, Protocol: ProtoICMP, Src: v4b, Dst: v4a},
		{ID: 1, MoreFragments: true, TTL: 1, Protocol: 17, Src: netip.IPv4Unspecified(), Dst: netip.MustParseAddr("255.255.255.255")},
		{ID: 2, FragOffset: 8 * 0x1fff, TTL: 3, Protocol: 6, Src: v4a, Dst: v4a},
	} {
		for _, plen := range []int{0, 1, 7, 1480} {
			b := make([]byte, 20+plen)
			for i := 20; i < len(b); i++ {
				b[i] = byte(i)
			}
			if _, err := h.Emit(b, plen); err != nil {
				t.Fatalf("Emit(%+v): %v", h, err)
			}
			got, p, err := ParseIPv4(b)
			if err != nil && (err != ErrFragment || !(h.MoreFragments || h.FragOffset != 0)) {
				t.Fatalf("ParseIPv4: %v", err)
			}
			want := h
			want.TotalLen = uint16(20 + plen)
			want.HeaderLen = 20
			if got != want {
				t.Errorf("round trip: got %+v\nwant %+v", got, want)
			}
			if !bytes.Equal(p, b[20:]) {
				t.Errorf("payload mismatch")
			}
		}
	}
}

func TestIPv4EmitErrors(t *testing.T) {
	ok := IPv4{TTL: 64, Protocol: ProtoTCP, Src: v4a, Dst: v4b}
	b := make([]byte, 20)
	if _, err := ok.Emit(b[:19], 0); err != ErrShortBuffer {
		t.Errorf("short buffer: %v", err)
	}
	h := ok
	h.Src = v6a
	if _, err := h.Emit(b, 0); err != ErrBadAddress {
		t.Errorf("v6 src: %v", err)
	}
	h = ok
	h.Dst = netip.Addr{}
	if _, err := h.Emit(b, 0); err != ErrBadAddress {
		t.Errorf("zero dst: %v", err)
	}
	h = ok
	h.Src = netip.MustParseAddr("::ffff:10.0.0.1")
	if _, err := h.Emit(b, 0); err != ErrBadAddress {
		t.Errorf("4in6 src: %v", err)
	}
	if _, err := ok.Emit(b, 65536-20); err != ErrBadValue {
		t.Errorf("payload too long: %v", err)
	}
	if _, err := ok.Emit(b, -1); err != ErrBadValue {
		t.Errorf("negative payload: %v", err)
	}
	if _, err := ok.Emit(b, 65535-20); err != nil {
		t.Errorf("max payload: %v", err)
	}
	h = ok
	h.FragOffset = 12
	if _, err := h.Emit(b, 0); err != ErrBadValue {
		t.Errorf("unaligned frag offset: %v", err)
	}
}
