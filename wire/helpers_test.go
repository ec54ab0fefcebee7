package wire

import (
	"encoding/hex"
	"net/netip"
	"strings"
	"testing"
)

// unhex decodes a hex string, ignoring spaces and newlines.
func unhex(t testing.TB, s string) []byte {
	t.Helper()
	s = strings.Join(strings.Fields(s), "")
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex %q: %v", s, err)
	}
	return b
}

// refChecksum is a deliberately simple reference: add 16-bit big-endian words
// one at a time with end-around carry.
func refChecksum(b []byte, initial uint32) uint32 {
	s := uint64(initial)
	for i := 0; i+1 < len(b); i += 2 {
		s += uint64(b[i])<<8 | uint64(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint64(b[len(b)-1]) << 8
	}
	for s > 0xffff {
		s = s>>16 + s&0xffff
	}
	return uint32(s)
}

var (
	v4a = netip.MustParseAddr("10.0.0.1")
	v4b = netip.MustParseAddr("10.0.0.2")
	v6a = netip.MustParseAddr("2001:db8::1")
	v6b = netip.MustParseAddr("2001:db8::2")
)

// synPacket is an IPv4 SYN from 10.0.0.1:12345 to 10.0.0.2:80, seq 1000,
// window 65535, options "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7", ID
// 0x1234, DF, TTL 64. Both checksums were computed independently.
const synPacket = `
45 00 00 3c 12 34 40 00 40 06 14 86 0a 00 00 01 0a 00 00 02
30 39 00 50 00 00 03 e8 00 00 00 00 a0 02 ff ff ff 8b 00 00
02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07`
