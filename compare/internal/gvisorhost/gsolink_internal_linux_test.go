package gvisorhost

import (
	"testing"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
)

// tcpPacket returns an IPv4 packet holding a TCP segment with payload
// and a correct checksum.
func tcpPacket(payload []byte) []byte {
	src, dst := tcpip.AddrFrom4([4]byte{10, 0, 0, 1}), tcpip.AddrFrom4([4]byte{10, 0, 0, 2})
	pkt := make([]byte, header.IPv4MinimumSize+header.TCPMinimumSize+len(payload))
	ip := header.IPv4(pkt)
	ip.Encode(&header.IPv4Fields{TotalLength: uint16(len(pkt)), TTL: 64, Protocol: uint8(header.TCPProtocolNumber), SrcAddr: src, DstAddr: dst})
	ip.SetChecksum(^ip.CalculateChecksum())
	tcp := header.TCP(pkt[header.IPv4MinimumSize:])
	tcp.Encode(&header.TCPFields{SrcPort: 1, DstPort: 2, DataOffset: header.TCPMinimumSize, Flags: header.TCPFlagAck, WindowSize: 100})
	copy(tcp.Payload(), payload)
	sum := header.PseudoHeaderChecksum(header.TCPProtocolNumber, src, dst, uint16(len(tcp)))
	tcp.SetChecksum(^checksum.Checksum(tcp, sum))
	return pkt
}

func TestGSOLinkChecksOnlyUnmarkedPackets(t *testing.T) {
	var e GSOLink
	good := tcpPacket([]byte("hello, world"))
	bad := append([]byte(nil), good...)
	bad[len(bad)-1] ^= 1
	for _, c := range []struct {
		name  string
		flags byte
		pkt   []byte
		want  bool
	}{
		{"good, unmarked", 0, good, true},
		{"bad, unmarked", 0, bad, false},
		{"bad, DATA_VALID", vnetFlagDataValid, bad, true},
		{"bad, NEEDS_CSUM", vnetFlagNeedsCsum, bad, true},
		{"not IP", 0, []byte{0x10, 0, 0, 0}, false},
		{"empty", 0, nil, false},
	} {
		hdr := [vnetHdrLen]byte{0: c.flags}
		if _, ok := e.check(hdr[:], c.pkt); ok != c.want {
			t.Errorf("%s: delivered %v, want %v", c.name, ok, c.want)
		}
	}
	if e.stats.BadChecksum.Load() != 1 || e.stats.Dropped.Load() != 2 || e.stats.PacketsIn.Load() != 6 {
		t.Errorf("counted %d bad checksums, %d dropped, %d in; want 1, 2, 6",
			e.stats.BadChecksum.Load(), e.stats.Dropped.Load(), e.stats.PacketsIn.Load())
	}
}
