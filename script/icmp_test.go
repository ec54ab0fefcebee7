package script

import (
	"strings"
	"testing"
)

// TestParseICMP: inbound ICMP lines with their type, code, MTU and the
// quoted segment; outbound ones and unknown names are refused by name.
func TestParseICMP(t *testing.T) {
	for _, tc := range []struct {
		src       string
		typ, code string
		mtu, seq  uint32
		n         int
	}{
		{"0 < icmp unreachable frag_needed mtu 800", "unreachable", "frag_needed", 800, 0, 0},
		{"0 < icmp unreachable frag_needed mtu 840 [0:1000(1000)]", "unreachable", "frag_needed", 840, 0, 1000},
		{"0 < icmp packet_too_big mtu 1400 [0:1440(1440)]", "packet_too_big", "", 1400, 0, 1440},
		{"0 < icmp unreachable [5000:6000(1000)]", "unreachable", "", 0, 5000, 1000},
	} {
		ic := one(t, tc.src).packet.icmp
		if ic == nil || ic.typ != tc.typ || ic.code != tc.code || ic.mtu != tc.mtu || ic.seq != tc.seq || ic.length != tc.n {
			t.Errorf("%q: %+v", tc.src, ic)
		}
	}
	if _, err := parse("t.pkt", []byte("0 > icmp unreachable\n")); err == nil || !strings.Contains(err.Error(), "outbound icmp") {
		t.Errorf("outbound icmp: %v", err)
	}
	for _, v6 := range []bool{false, true} {
		if _, _, err := icmpTypeCode(&icmpSpec{typ: "unreachable", code: "no_such_code"}, v6); err == nil {
			t.Errorf("v6 %v: an unknown code was taken", v6)
		}
	}
	if typ, code, err := icmpTypeCode(&icmpSpec{typ: "unreachable", code: "CODE"}, false); typ != 3 || code != 1 || err != nil {
		t.Errorf("CODE: %d %d %v, want run_all.py's host_unreachable", typ, code, err)
	}
}
