package wire

import (
	"bytes"
	"testing"
)

func TestParseIPv6Fragment(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want IPv6Fragment
		err  error
	}{
		{name: "first of several", in: "11 00 0001 12345678 aabb",
			want: IPv6Fragment{NextHeader: ProtoUDP, MoreFragments: true, ID: 0x12345678}},
		{name: "middle", in: "11 00 05a9 00000001 aabb",
			want: IPv6Fragment{NextHeader: ProtoUDP, FragOffset: 1448, MoreFragments: true, ID: 1}},
		// RFC 8200 4.5: both reserved fields are ignored on reception.
		{name: "reserved ignored", in: "06 ff 05ae ffffffff aabb",
			want: IPv6Fragment{NextHeader: ProtoTCP, FragOffset: 1448, ID: 0xffffffff}},
		{name: "last at the highest offset", in: "11 00 fff8 00000002 aabb",
			want: IPv6Fragment{NextHeader: ProtoUDP, FragOffset: 0xfff8, ID: 2}},
		{name: "truncated", in: "11 00 0001 123456", err: ErrTruncated},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h, p, err := ParseIPv6Fragment(unhex(t, tc.in))
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if h != tc.want || !bytes.Equal(p, []byte{0xaa, 0xbb}) {
				t.Fatalf("= %+v %x, want %+v aabb", h, p, tc.want)
			}
			b := make([]byte, IPv6FragmentLen)
			if n, err := h.Emit(b); err != nil || n != IPv6FragmentLen {
				t.Fatalf("Emit: %d %v", n, err)
			}
			if h2, _, _ := ParseIPv6Fragment(b); h2 != h {
				t.Fatalf("round trip %+v, want %+v", h2, h)
			}
			if b[1] != 0 || b[3]&6 != 0 {
				t.Fatalf("reserved fields not zero: %x", b)
			}
		})
	}
}

func TestIPv6FragmentEmitErrors(t *testing.T) {
	h := IPv6Fragment{FragOffset: 12}
	if _, err := h.Emit(make([]byte, 8)); err != ErrBadValue {
		t.Errorf("offset 12: %v", err)
	}
	h.FragOffset = 16
	if _, err := h.Emit(make([]byte, 7)); err != ErrShortBuffer {
		t.Errorf("short: %v", err)
	}
}

func TestIPv6FragmentAtomic(t *testing.T) {
	for _, tc := range []struct {
		h    IPv6Fragment
		want bool
	}{
		{IPv6Fragment{}, true},
		{IPv6Fragment{MoreFragments: true}, false},
		{IPv6Fragment{FragOffset: 8}, false},
	} {
		if got := tc.h.Atomic(); got != tc.want {
			t.Errorf("%+v: Atomic = %v", tc.h, got)
		}
	}
}

// ext returns an 8-byte extension header naming next.
func ext(next uint8) string { return string([]byte{next, 0, 1, 4, 0, 0, 0, 0}) }

func TestSkipIPv6ExtHeaders(t *testing.T) {
	hbh16 := string([]byte{ProtoDestOpts, 1, 0, 0, 0, 0, 0, 0}) + string(make([]byte, 8))
	tests := []struct {
		name    string
		next    uint8
		in      string
		wantNH  uint8
		wantAt  int
		restLen int
		err     error
	}{
		{name: "none", next: ProtoUDP, in: "abcd", wantNH: ProtoUDP, wantAt: -1, restLen: 4},
		{name: "hbh 16 then dest", next: ProtoHopByHop, in: hbh16 + ext(ProtoFragment) + "xy",
			wantNH: ProtoFragment, wantAt: 16, restLen: 2},
		{name: "routing then udp", next: ProtoRouting, in: ext(ProtoUDP), wantNH: ProtoUDP, wantAt: 0},
		{name: "no next", next: ProtoDestOpts, in: ext(ProtoNoNext), wantNH: ProtoNoNext, wantAt: 0},
		{name: "short", next: ProtoHopByHop, in: "1234567", err: ErrTruncated},
		{name: "length past end", next: ProtoHopByHop, in: hbh16[:15], err: ErrTruncated},
		{name: "too many", next: ProtoDestOpts, in: stringsRepeat(ext(ProtoDestOpts), 8) + ext(ProtoUDP), err: ErrBadExtHeader},
		{name: "eight is fine", next: ProtoDestOpts, in: stringsRepeat(ext(ProtoDestOpts), 7) + ext(ProtoUDP),
			wantNH: ProtoUDP, wantAt: 56},
		{name: "fragment after eight", next: ProtoDestOpts, in: stringsRepeat(ext(ProtoDestOpts), 7) + ext(ProtoFragment),
			err: ErrBadExtHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			nh, at, rest, err := SkipIPv6ExtHeaders(tc.next, []byte(tc.in))
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err != nil {
				return
			}
			if nh != tc.wantNH || at != tc.wantAt || len(rest) != tc.restLen {
				t.Fatalf("= %d, %d, %d bytes; want %d, %d, %d", nh, at, len(rest), tc.wantNH, tc.wantAt, tc.restLen)
			}
		})
	}
}

func stringsRepeat(s string, n int) string { return string(bytes.Repeat([]byte(s), n)) }

// ipv6With returns an IPv6 packet from v6a to v6b whose fixed header names
// next, followed by rest.
func ipv6With(t *testing.T, next uint8, rest string) []byte {
	b := make([]byte, IPv6HeaderLen+len(rest))
	h := IPv6{NextHeader: next, HopLimit: 64, Src: v6a, Dst: v6b}
	if _, err := h.Emit(b, len(rest)); err != nil {
		t.Fatal(err)
	}
	copy(b[IPv6HeaderLen:], rest)
	return b
}

func TestIPv6Unfragmentable(t *testing.T) {
	tests := []struct {
		name      string
		next      uint8
		rest      string
		n, nextAt int
		err       error
	}{
		{name: "no extension headers", next: ProtoUDP, rest: "data", n: 40, nextAt: 6},
		{name: "hop-by-hop", next: ProtoHopByHop, rest: ext(ProtoUDP) + "data", n: 48, nextAt: 40},
		// RFC 8200 4.5: Destination Options after the path's headers
		// are fragmentable, those before a Routing header are not.
		{name: "hbh then final dest opts", next: ProtoHopByHop, rest: ext(ProtoDestOpts) + ext(ProtoUDP), n: 48, nextAt: 40},
		{name: "dest opts then routing", next: ProtoDestOpts, rest: ext(ProtoRouting) + ext(ProtoDestOpts) + ext(ProtoUDP),
			n: 56, nextAt: 48},
		{name: "only final dest opts", next: ProtoDestOpts, rest: ext(ProtoUDP), n: 40, nextAt: 6},
		{name: "already a fragment", next: ProtoHopByHop, rest: ext(ProtoFragment) + "12345678", err: ErrFragment},
		{name: "truncated", next: ProtoHopByHop, rest: "1234", err: ErrTruncated},
		{name: "too many", next: ProtoDestOpts, rest: stringsRepeat(ext(ProtoDestOpts), 8) + ext(ProtoUDP), err: ErrBadExtHeader},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, nextAt, err := IPv6Unfragmentable(ipv6With(t, tc.next, tc.rest))
			if err != tc.err {
				t.Fatalf("err = %v, want %v", err, tc.err)
			}
			if err == nil && (n != tc.n || nextAt != tc.nextAt) {
				t.Fatalf("= %d, %d; want %d, %d", n, nextAt, tc.n, tc.nextAt)
			}
		})
	}
	if _, _, err := IPv6Unfragmentable(make([]byte, 39)); err != ErrTruncated {
		t.Errorf("short packet: %v", err)
	}
}

func TestParseIPv6FindsFragmentAfterExtensions(t *testing.T) {
	pkt := ipv6With(t, ProtoHopByHop, ext(ProtoFragment)+"\x11\x00\x00\x01\x00\x00\x00\x07"+"payload!")
	h, p, err := ParseIPv6(pkt)
	if err != ErrFragment || h.NextHeader != ProtoFragment {
		t.Fatalf("ParseIPv6: %+v %v", h, err)
	}
	f, data, err := ParseIPv6Fragment(p)
	if err != nil || f.ID != 7 || !f.MoreFragments || f.NextHeader != ProtoUDP || string(data) != "payload!" {
		t.Fatalf("ParseIPv6Fragment: %+v %q %v", f, data, err)
	}
	if _, _, err := ParseIPv6(ipv6With(t, ProtoFragment, "1234567")); err != ErrTruncated {
		t.Fatalf("short fragment header: %v", err)
	}
}

func TestIPv4EmitWithOptions(t *testing.T) {
	opts := unhex(t, "07 07 04 00 00 00 00 01") // record route, NOP
	h := IPv4{ID: 9, MoreFragments: true, FragOffset: 1480, TTL: 64, Protocol: ProtoUDP, Src: v4a, Dst: v4b}
	b := make([]byte, 28+3)
	n, err := h.EmitWithOptions(b, opts, 3)
	if err != nil || n != 28 {
		t.Fatalf("EmitWithOptions = %d, %v", n, err)
	}
	copy(b[n:], "abc")
	got, p, err := ParseIPv4(b)
	if err != ErrFragment {
		t.Fatalf("ParseIPv4: %v", err)
	}
	want := h
	want.HeaderLen, want.TotalLen = 28, 31
	if got != want || string(p) != "abc" || !bytes.Equal(b[20:28], opts) {
		t.Fatalf("got %+v %q\nwant %+v", got, p, want)
	}
	for _, bad := range [][]byte{make([]byte, 3), make([]byte, 44)} {
		if _, err := h.EmitWithOptions(make([]byte, 80), bad, 0); err != ErrBadValue {
			t.Errorf("%d option bytes: %v", len(bad), err)
		}
	}
	if _, err := h.EmitWithOptions(make([]byte, 27), opts, 0); err != ErrShortBuffer {
		t.Errorf("short: %v", err)
	}
	if _, err := h.EmitWithOptions(b, opts, 0xffff-27); err != ErrBadValue {
		t.Errorf("too long: %v", err)
	}
}

func TestIPv4FragmentOptions(t *testing.T) {
	tests := []struct{ name, in, want string }{
		// Record route (not copied) goes, loose source route (copied)
		// stays, NOP and EOL stay.
		{"rr lsrr nop eol", "07 07 04 00 00 00 00  83 07 04 0a 00 00 01  01 00",
			"01 01 01 01 01 01 01  83 07 04 0a 00 00 01  01 00"},
		{"after eol kept", "00 07 07 04", "00 07 07 04"},
		{"timestamp goes", "44 08 05 00 00 00 00 00", "01 01 01 01 01 01 01 01"},
		{"security stays", "82 04 aa bb", "82 04 aa bb"},
		{"length under 2", "83 01 aa bb", "01 01 01 01"},
		{"length past end", "01 83 09 aa", "01 01 01 01"},
		{"type alone at end", "01 01 01 83", "01 01 01 01"},
		{"empty", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in := unhex(t, tc.in)
			orig := bytes.Clone(in)
			dst := make([]byte, len(in))
			if n := IPv4FragmentOptions(dst, in); n != len(in) {
				t.Fatalf("n = %d", n)
			}
			if want := unhex(t, tc.want); !bytes.Equal(dst, want) {
				t.Fatalf("= % x, want % x", dst, want)
			}
			if !bytes.Equal(in, orig) {
				t.Fatal("input modified")
			}
		})
	}
}
