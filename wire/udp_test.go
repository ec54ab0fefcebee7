package wire

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"net/netip"
	"testing"
)

// udpHello is 1234 > 53, length 13, checksum zero, data "hello". Its
// checksums (computed independently) are 0xa2f8 from 10.0.0.1 to 10.0.0.2
// and 0x5b86 from 2001:db8::1 to 2001:db8::2.
const udpHello = "04d2 0035 000d 0000 68656c6c6f"

func TestParseUDPVectors(t *testing.T) {
	hello := unhex(t, udpHello)
	tests := []struct {
		name    string
		in      []byte
		want    UDP
		payload []byte
		err     error
	}{
		{name: "hello", in: hello, want: UDP{SrcPort: 1234, DstPort: 53, Length: 13}, payload: []byte("hello")},
		{name: "empty data", in: unhex(t, "0001 0002 0008 abcd"), want: UDP{SrcPort: 1, DstPort: 2, Length: 8, Checksum: 0xabcd}, payload: []byte{}},
		// Linux trims the IP payload to the UDP length (udp_rcv: pskb_trim_rcsum).
		{name: "trailing bytes ignored", in: append(bytes.Clone(hello), 0xee, 0xee), want: UDP{SrcPort: 1234, DstPort: 53, Length: 13}, payload: []byte("hello")},
		{name: "empty", in: nil, err: ErrTruncated},
		{name: "short header", in: hello[:7], err: ErrTruncated},
		{name: "length below header", in: unhex(t, "0001 0002 0007 0000"), err: ErrBadLength},
		{name: "length zero", in: unhex(t, "0001 0002 0000 0000 00"), err: ErrBadLength},
		{name: "length past IP payload", in: hello[:12], err: ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := ParseUDP(tc.in)
			if !errors.Is(err, tc.err) || (tc.err == nil && err != nil) {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if tc.err != nil {
				return
			}
			if h != tc.want || !bytes.Equal(p, tc.payload) {
				t.Fatalf("ParseUDP = %+v %q, want %+v %q", h, p, tc.want, tc.payload)
			}
		})
	}
}

func TestUDPChecksumVectors(t *testing.T) {
	for _, tc := range []struct {
		name     string
		src, dst netip.Addr
		want     uint16
	}{
		{"ipv4", v4a, v4b, 0xa2f8},
		{"ipv6", v6a, v6b, 0x5b86},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := unhex(t, udpHello)
			SetUDPChecksum(b, tc.src, tc.dst)
			if got := binary.BigEndian.Uint16(b[6:]); got != tc.want {
				t.Fatalf("checksum %#04x, want %#04x", got, tc.want)
			}
			if !UDPChecksumValid(b, tc.src, tc.dst) {
				t.Fatal("own checksum does not verify")
			}
			// Split form agrees.
			h := bytes.Clone(b[:8])
			SetUDPChecksumSplit(h, b[8:], tc.src, tc.dst)
			if !bytes.Equal(h, b[:8]) {
				t.Fatalf("split header %x, want %x", h, b[:8])
			}
			// Trailing IP payload bytes are outside the checksum.
			if !UDPChecksumValid(append(bytes.Clone(b), 1, 2, 3), tc.src, tc.dst) {
				t.Fatal("trailing bytes broke the checksum")
			}
			b[9] ^= 1
			if UDPChecksumValid(b, tc.src, tc.dst) {
				t.Fatal("corrupted datagram verifies")
			}
			b[9] ^= 1
			if UDPChecksumValid(b, tc.dst, netip.MustParseAddr("10.9.9.9")) && tc.src.Is4() {
				t.Fatal("checksum verifies with the wrong pseudo-header")
			}
		})
	}
}

func TestUDPZeroChecksum(t *testing.T) {
	// A datagram that carries no checksum: accepted over IPv4 (RFC 768),
	// refused over IPv6 (RFC 8200 section 8.1, as Linux).
	b := unhex(t, udpHello)
	if !UDPChecksumValid(b, v4a, v4b) {
		t.Error("IPv4: zero checksum refused")
	}
	if UDPChecksumValid(b, v6a, v6b) {
		t.Error("IPv6: zero checksum accepted")
	}
	// Data whose computed checksum is 0 is sent as 0xffff, which verifies.
	for _, tc := range []struct {
		src, dst netip.Addr
		data     []byte
	}{
		{v4a, v4b, []byte{0xe6, 0xd0}},
		{v6a, v6b, []byte{0x9f, 0x5e}},
	} {
		d := append(unhex(t, "04d2 0035 000a 0000"), tc.data...)
		SetUDPChecksum(d, tc.src, tc.dst)
		if got := binary.BigEndian.Uint16(d[6:]); got != 0xffff {
			t.Fatalf("%v: computed-zero checksum sent as %#04x, want 0xffff", tc.src, got)
		}
		if !UDPChecksumValid(d, tc.src, tc.dst) {
			t.Fatalf("%v: 0xffff does not verify", tc.src)
		}
		h := bytes.Clone(d[:8])
		SetUDPChecksumSplit(h, d[8:], tc.src, tc.dst)
		if !bytes.Equal(h, d[:8]) {
			t.Fatalf("%v: split header %x, want %x", tc.src, h, d[:8])
		}
	}
}

func TestUDPChecksumValidBadLength(t *testing.T) {
	for _, b := range [][]byte{nil, unhex(t, "0001 0002 0007 0000"), unhex(t, udpHello)[:12]} {
		if UDPChecksumValid(b, v4a, v4b) {
			t.Errorf("%x: valid", b)
		}
	}
}

func TestUDPEmit(t *testing.T) {
	h := UDP{SrcPort: 1234, DstPort: 53, Length: 99, Checksum: 7}
	b := append(make([]byte, 8), "hello"...)
	n, err := h.Emit(b, 5)
	if err != nil || n != UDPHeaderLen {
		t.Fatalf("Emit = %d, %v", n, err)
	}
	if want := unhex(t, udpHello); !bytes.Equal(b, want) {
		t.Fatalf("Emit wrote %x, want %x", b, want)
	}
	if _, err := h.Emit(b[:7], 0); err != ErrShortBuffer {
		t.Errorf("short buffer: %v", err)
	}
	for _, n := range []int{-1, 0xffff - 7} {
		if _, err := h.Emit(b, n); err != ErrBadValue {
			t.Errorf("payloadLen %d: %v", n, err)
		}
	}
	if _, err := h.Emit(b, 0xffff-8); err != nil {
		t.Errorf("largest datagram: %v", err)
	}
}

func TestUDPRoundTripRandom(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for range 500 {
		h := UDP{SrcPort: uint16(r.Uint32()), DstPort: uint16(r.Uint32())}
		data := make([]byte, r.IntN(2000))
		for i := range data {
			data[i] = byte(r.Uint32())
		}
		src, dst := v4a, v4b
		if r.IntN(2) == 0 {
			src, dst = v6a, v6b
		}
		b := make([]byte, UDPHeaderLen+len(data))
		if _, err := h.Emit(b, len(data)); err != nil {
			t.Fatal(err)
		}
		copy(b[UDPHeaderLen:], data)
		SetUDPChecksum(b, src, dst)
		if binary.BigEndian.Uint16(b[6:]) == 0 {
			t.Fatal("zero checksum sent")
		}
		got, p, err := ParseUDP(b)
		if err != nil || !UDPChecksumValid(b, src, dst) {
			t.Fatalf("reparse: %v", err)
		}
		want := h
		want.Length = uint16(len(b))
		want.Checksum = got.Checksum
		if got != want || !bytes.Equal(p, data) {
			t.Fatalf("round trip %+v, want %+v", got, want)
		}
		// The checksum agrees with the reference implementation.
		ph := PseudoHeaderSum(src, dst, ProtoUDP, len(b))
		if refChecksum(b, ph) != 0xffff {
			t.Fatal("reference checksum disagrees")
		}
	}
}
