package wire

import "testing"

func TestParseDoesNotAllocate(t *testing.T) {
	pkt := unhex(t, synPacket)
	allocs := testing.AllocsPerRun(1000, func() {
		ip, p, err := ParseIPv4(pkt)
		if err != nil || ip.Protocol != ProtoTCP {
			t.Fatal(err)
		}
		if !TCPChecksumValid(p, ip.Src, ip.Dst) {
			t.Fatal("checksum")
		}
		h, _, err := ParseTCP(p)
		if err != nil || h.Options.MSS != 1460 {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseIPv4+ParseTCP: %v allocations per run, want 0", allocs)
	}

	v6 := make([]byte, 40+20)
	h6 := IPv6{NextHeader: ProtoTCP, HopLimit: 64, Src: v6a, Dst: v6b}
	if _, err := h6.Emit(v6, 20); err != nil {
		t.Fatal(err)
	}
	icmp := unhex(t, "08 00 33 37 00 01 00 01 61 62 63 64")
	udp := unhex(t, udpHello)
	allocs = testing.AllocsPerRun(1000, func() {
		if _, _, err := ParseIPv6(v6); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ParseICMPv4(icmp); err != nil {
			t.Fatal(err)
		}
		if _, _, err := ParseUDP(udp); err != nil || !UDPChecksumValid(udp, v4a, v4b) {
			t.Fatal(err)
		}
		// Error paths must not allocate either.
		if _, _, err := ParseIPv4(icmp); err == nil {
			t.Fatal("expected error")
		}
	})
	if allocs != 0 {
		t.Fatalf("ParseIPv6+ParseICMPv4+ParseUDP: %v allocations per run, want 0", allocs)
	}
}

func TestEmitDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 100)
	ip := IPv4{TTL: 64, Protocol: ProtoTCP, Src: v4a, Dst: v4b}
	tcp := TCP{SrcPort: 1, DstPort: 2, Flags: FlagSYN, Options: TCPOptions{
		MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1, HasWScale: true, WScale: 7}}
	raw := TCP{RawOptions: []TCPOption{{Kind: OptMSS, Data: []byte{5, 0xb4}}, {Kind: OptNOP}}}
	ip6 := IPv6{NextHeader: ProtoTCP, HopLimit: 64, Src: v6a, Dst: v6b}
	icmp := ICMP{Type: ICMPv6EchoRequest}
	allocs := testing.AllocsPerRun(1000, func() {
		n, err := tcp.Emit(buf[20:])
		if err != nil {
			t.Fatal(err)
		}
		SetTCPChecksum(buf[20:20+n], ip.Src, ip.Dst)
		if _, err := ip.Emit(buf, n); err != nil {
			t.Fatal(err)
		}
		if _, err := raw.Emit(buf[20:]); err != nil {
			t.Fatal(err)
		}
		if _, err := ip6.Emit(buf, 0); err != nil {
			t.Fatal(err)
		}
		if _, err := icmp.EmitV6(buf[40:], nil, ip6.Src, ip6.Dst); err != nil {
			t.Fatal(err)
		}
		if _, err := (&UDP{SrcPort: 1, DstPort: 2}).Emit(buf[40:], 8); err != nil {
			t.Fatal(err)
		}
		SetUDPChecksum(buf[40:56], ip6.Src, ip6.Dst)
	})
	if allocs != 0 {
		t.Fatalf("Emit: %v allocations per run, want 0", allocs)
	}
}
