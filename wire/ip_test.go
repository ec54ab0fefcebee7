package wire

import (
	"bytes"
	"errors"
	"testing"
)

// ParseIP reads either family through its own parser, keeps its errors,
// and refuses what is neither.
func TestParseIP(t *testing.T) {
	v4 := make([]byte, IPv4HeaderLen+3)
	h4 := IPv4{TTL: 61, Protocol: ProtoTCP, Src: v4a, Dst: v4b}
	if _, err := h4.Emit(v4, 3); err != nil {
		t.Fatal(err)
	}
	copy(v4[IPv4HeaderLen:], "abc")
	v6 := make([]byte, IPv6HeaderLen+2)
	h6 := IPv6{NextHeader: ProtoICMPv6, HopLimit: 9, Src: v6a, Dst: v6b}
	if _, err := h6.Emit(v6, 2); err != nil {
		t.Fatal(err)
	}
	copy(v6[IPv6HeaderLen:], "de")
	frag := make([]byte, IPv4HeaderLen+8)
	hf := IPv4{MoreFragments: true, TTL: 1, Protocol: ProtoTCP, Src: v4a, Dst: v4b}
	if _, err := hf.Emit(frag, 8); err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name    string
		pkt     []byte
		want    IP
		payload string
		err     error
	}{
		{"IPv4", v4, IP{Protocol: ProtoTCP, TTL: 61, Src: v4a, Dst: v4b}, "abc", nil},
		{"IPv6", v6, IP{V6: true, Protocol: ProtoICMPv6, TTL: 9, Src: v6a, Dst: v6b}, "de", nil},
		{"IPv4 fragment", frag, IP{Protocol: ProtoTCP, TTL: 1, Src: v4a, Dst: v4b}, string(frag[IPv4HeaderLen:]), ErrFragment},
		{"IPv4 truncated", v4[:10], IP{}, "", ErrTruncated},
		{"empty", nil, IP{}, "", ErrBadVersion},
		{"version 5", append([]byte{0x50}, v4[1:]...), IP{}, "", ErrBadVersion},
	} {
		got, payload, err := ParseIP(tc.pkt)
		if !errors.Is(err, tc.err) || (err == nil) != (tc.err == nil) {
			t.Errorf("%s: error %v, want %v", tc.name, err, tc.err)
		}
		if got != tc.want || !bytes.Equal(payload, []byte(tc.payload)) {
			t.Errorf("%s: got %+v %q, want %+v %q", tc.name, got, payload, tc.want, tc.payload)
		}
	}
}
