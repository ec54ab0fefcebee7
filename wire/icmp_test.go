package wire

import (
	"bytes"
	"net/netip"
	"testing"
)

var (
	fe80a = netip.MustParseAddr("fe80::1")
	fe80b = netip.MustParseAddr("fe80::2")
)

func TestICMPVectors(t *testing.T) {
	// Echo request id 1 seq 1 "abcd", checksum computed independently.
	v4 := unhex(t, "08 00 33 37 00 01 00 01 61 62 63 64")
	h, body, err := ParseICMPv4(v4)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ICMP{Type: ICMPv4EchoRequest, Checksum: 0x3337, Rest: 0x00010001}); h != want {
		t.Fatalf("ParseICMPv4 = %+v, want %+v", h, want)
	}
	if string(body) != "abcd" || h.EchoID() != 1 || h.EchoSeq() != 1 {
		t.Fatalf("body %q id %d seq %d", body, h.EchoID(), h.EchoSeq())
	}
	bad := bytes.Clone(v4)
	bad[11] ^= 0x40
	if _, _, err := ParseICMPv4(bad); err != ErrBadChecksum {
		t.Fatalf("bad checksum: %v", err)
	}
	if _, _, err := ParseICMPv4(v4[:7]); err != ErrTruncated {
		t.Fatalf("short: %v", err)
	}

	// ICMPv6 echo request fe80::1 -> fe80::2, id 0x1234 seq 5 "ping".
	v6 := unhex(t, "80 00 91 aa 12 34 00 05 70 69 6e 67")
	h, body, err = ParseICMPv6(v6, fe80a, fe80b)
	if err != nil {
		t.Fatal(err)
	}
	if want := (ICMP{Type: ICMPv6EchoRequest, Checksum: 0x91aa, Rest: 0x12340005}); h != want || string(body) != "ping" {
		t.Fatalf("ParseICMPv6 = %+v %q", h, body)
	}
	if _, _, err := ParseICMPv6(v6, fe80b, fe80a.Next().Next()); err != ErrBadChecksum {
		t.Fatalf("wrong pseudo-header: %v", err)
	}

	// Emit reproduces the vectors.
	b := make([]byte, 64)
	n, err := (&ICMP{Type: ICMPv4EchoRequest, Rest: 0x00010001}).EmitV4(b, []byte("abcd"))
	if err != nil || !bytes.Equal(b[:n], v4) {
		t.Fatalf("EmitV4 = %x, %v", b[:n], err)
	}
	n, err = (&ICMP{Type: ICMPv6EchoRequest, Rest: 0x12340005}).EmitV6(b, []byte("ping"), fe80a, fe80b)
	if err != nil || !bytes.Equal(b[:n], v6) {
		t.Fatalf("EmitV6 = %x, %v", b[:n], err)
	}
}

func TestICMPRoundTrip(t *testing.T) {
	bodies := [][]byte{nil, {1}, []byte("odd"), bytes.Repeat([]byte{0xff}, 548)}
	for _, h := range []ICMP{
		{Type: ICMPv4EchoReply, Rest: 0xabcd0001},
		{Type: ICMPv4DestUnreachable, Code: ICMPv4FragNeeded, Rest: 1400},
		{Type: ICMPv4DestUnreachable, Code: ICMPv4PortUnreachable},
		{Type: ICMPv6PacketTooBig, Rest: 1280},
		{Type: 255, Code: 255, Rest: 0xffffffff},
	} {
		for _, body := range bodies {
			b := make([]byte, 8+len(body))
			n, err := h.EmitV4(b, body)
			if err != nil || n != len(b) {
				t.Fatalf("EmitV4: %d %v", n, err)
			}
			got, gotBody, err := ParseICMPv4(b)
			if err != nil {
				t.Fatalf("ParseICMPv4: %v", err)
			}
			want := h
			want.Checksum = got.Checksum
			if got != want || !bytes.Equal(gotBody, body) {
				t.Fatalf("v4 round trip %+v, want %+v", got, want)
			}
			if _, err := h.EmitV6(b, body, v6a, v6b); err != nil {
				t.Fatal(err)
			}
			got, gotBody, err = ParseICMPv6(b, v6a, v6b)
			if err != nil {
				t.Fatalf("ParseICMPv6: %v", err)
			}
			want.Checksum = got.Checksum
			if got != want || !bytes.Equal(gotBody, body) {
				t.Fatalf("v6 round trip %+v, want %+v", got, want)
			}
		}
	}
}

func TestICMPEmitInPlace(t *testing.T) {
	b := make([]byte, 8+5)
	copy(b[8:], "hello")
	h := ICMP{Type: ICMPv4EchoReply, Rest: 7}
	if _, err := h.EmitV4(b, b[8:]); err != nil {
		t.Fatal(err)
	}
	if _, body, err := ParseICMPv4(b); err != nil || string(body) != "hello" {
		t.Fatalf("in place: %q %v", body, err)
	}
	if _, err := h.EmitV4(b[:12], []byte("hello")); err != ErrShortBuffer {
		t.Fatalf("short: %v", err)
	}
	if _, err := h.EmitV6(b, nil, v4a, v6b); err != ErrBadAddress {
		t.Fatalf("v4 address: %v", err)
	}
}
