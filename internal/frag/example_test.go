package frag_test

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/synstack/synstack/internal/frag"
	"github.com/synstack/synstack/wire"
)

func Example() {
	// A 3,000-byte UDP datagram from 192.0.2.1 to 192.0.2.2.
	data := make([]byte, wire.UDPHeaderLen+3000)
	udp := wire.UDP{SrcPort: 5353, DstPort: 53}
	udp.Emit(data, 3000)
	ip := wire.IPv4{ID: 42, TTL: 64, Protocol: wire.ProtoUDP,
		Src: netip.MustParseAddr("192.0.2.1"), Dst: netip.MustParseAddr("192.0.2.2")}
	pkt := make([]byte, wire.IPv4HeaderLen+len(data))
	ip.Emit(pkt, len(data))
	copy(pkt[wire.IPv4HeaderLen:], data)

	// The sender cuts it for a 1,500-byte MTU...
	var f frag.Fragmenter
	var wirePkts [][]byte
	f.FragmentIPv4(pkt, 1500, func(hdr, payload []byte) error {
		wirePkts = append(wirePkts, append(append([]byte{}, hdr...), payload...))
		return nil
	})
	// ...and the receiver puts the fragments back, last first.
	r := frag.NewReassembler(frag.Config{})
	now := time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)
	for i := len(wirePkts) - 1; i >= 0; i-- {
		res := r.Input(wirePkts[i], now)
		fmt.Printf("fragment of %d bytes: %v\n", len(wirePkts[i]), res.Verdict)
		if res.Verdict == frag.Done {
			h, payload, err := wire.ParseIPv4(res.Packet)
			fmt.Println("reassembled:", h.TotalLen, "bytes, id", h.ID, len(payload) == len(data), err)
		}
	}
	s := r.Stats()
	fmt.Println("IpReasmReqds", s.IpReasmReqds, "IpReasmOKs", s.IpReasmOKs, "IpFragCreates", f.Stats().IpFragCreates)
	// Output:
	// fragment of 68 bytes: held
	// fragment of 1500 bytes: held
	// fragment of 1500 bytes: done
	// reassembled: 3028 bytes, id 42 true <nil>
	// IpReasmReqds 3 IpReasmOKs 1 IpFragCreates 3
}
