package frag

import (
	"net/netip"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

var (
	src4 = netip.MustParseAddr("192.0.2.1")
	dst4 = netip.MustParseAddr("192.0.2.2")
	src6 = netip.MustParseAddr("2001:db8::1")
	dst6 = netip.MustParseAddr("2001:db8::2")
	t0   = time.Date(2026, 12, 7, 8, 0, 0, 0, time.UTC)
)

// pattern returns n bytes that differ from offset to offset, so that data
// put at the wrong place shows.
func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7 + i/251)
	}
	return b
}

// f4 describes an IPv4 fragment for v4.
type f4 struct {
	id    uint16
	off   int
	more  bool
	data  []byte
	proto uint8  // 0: UDP
	tos   uint8  // TOS byte
	df    bool   // DF flag
	opts  []byte // options
	src   netip.Addr
}

// v4 builds an IPv4 fragment from src4 (or f.src) to dst4.
func v4(t testing.TB, f f4) []byte {
	t.Helper()
	h := wire.IPv4{ID: f.id, TOS: f.tos, DontFragment: f.df, MoreFragments: f.more,
		FragOffset: uint16(f.off), TTL: 64, Protocol: f.proto, Src: src4, Dst: dst4}
	if h.Protocol == 0 {
		h.Protocol = wire.ProtoUDP
	}
	if f.src.IsValid() {
		h.Src = f.src
	}
	b := make([]byte, wire.IPv4HeaderLen+len(f.opts)+len(f.data))
	n, err := h.EmitWithOptions(b, f.opts, len(f.data))
	if err != nil {
		t.Fatalf("v4 %+v: %v", f, err)
	}
	copy(b[n:], f.data)
	return b
}

// whole4 builds the unfragmented IPv4 packet carrying data.
func whole4(t testing.TB, id uint16, data []byte) []byte {
	return v4(t, f4{id: id, data: data})
}

// f6 describes an IPv6 fragment for v6.
type f6 struct {
	id   uint32
	off  int
	more bool
	data []byte
	next uint8  // the Fragment header's Next Header; 0: UDP
	tc   uint8  // traffic class
	pre  []byte // extension headers before the Fragment header (each naming the next)
}

// v6 builds an IPv6 fragment from src6 to dst6.
func v6(t testing.TB, f f6) []byte {
	t.Helper()
	h := wire.IPv6{TrafficClass: f.tc, FlowLabel: 0x12345, NextHeader: wire.ProtoFragment, HopLimit: 64, Src: src6, Dst: dst6}
	if len(f.pre) > 0 {
		h.NextHeader = wire.ProtoHopByHop
	}
	fr := wire.IPv6Fragment{NextHeader: f.next, FragOffset: uint16(f.off), MoreFragments: f.more, ID: f.id}
	if fr.NextHeader == 0 {
		fr.NextHeader = wire.ProtoUDP
	}
	n := wire.IPv6HeaderLen + len(f.pre)
	b := make([]byte, n+wire.IPv6FragmentLen+len(f.data))
	if _, err := h.Emit(b, len(b)-wire.IPv6HeaderLen); err != nil {
		t.Fatal(err)
	}
	copy(b[wire.IPv6HeaderLen:], f.pre)
	if _, err := fr.Emit(b[n:]); err != nil {
		t.Fatal(err)
	}
	copy(b[n+wire.IPv6FragmentLen:], f.data)
	return b
}

// hbh is an 8-byte Hop-by-Hop Options header naming the Fragment header.
var hbh = []byte{wire.ProtoFragment, 0, 1, 4, 0, 0, 0, 0}

// whole6 builds the unfragmented IPv6 packet carrying data as UDP, with
// the extension headers pre (whose last names UDP).
func whole6(t testing.TB, data []byte, pre []byte) []byte {
	t.Helper()
	h := wire.IPv6{FlowLabel: 0x12345, NextHeader: wire.ProtoUDP, HopLimit: 64, Src: src6, Dst: dst6}
	if len(pre) > 0 {
		h.NextHeader = wire.ProtoHopByHop
	}
	b := make([]byte, wire.IPv6HeaderLen+len(pre)+len(data))
	if _, err := h.Emit(b, len(b)-wire.IPv6HeaderLen); err != nil {
		t.Fatal(err)
	}
	copy(b[wire.IPv6HeaderLen:], pre)
	copy(b[wire.IPv6HeaderLen+len(pre):], data)
	return b
}
