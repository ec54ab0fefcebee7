package wire_test

import (
	"encoding/hex"
	"fmt"
	"net/netip"
	"strings"

	"github.com/synstack/synstack/wire"
)

func Example() {
	// A Linux-style SYN: 10.0.0.1:12345 > 10.0.0.2:80.
	pkt, _ := hex.DecodeString(strings.Join(strings.Fields(`
		45 00 00 3c 12 34 40 00 40 06 14 86 0a 00 00 01 0a 00 00 02
		30 39 00 50 00 00 03 e8 00 00 00 00 a0 02 ff ff ff 8b 00 00
		02 04 05 b4 04 02 08 0a 00 00 00 01 00 00 00 00 01 03 03 07`), ""))

	ip, seg, err := wire.ParseIPv4(pkt)
	if err != nil || ip.Protocol != wire.ProtoTCP {
		fmt.Println("not TCP:", err)
		return
	}
	if !wire.TCPChecksumValid(seg, ip.Src, ip.Dst) {
		fmt.Println("bad TCP checksum")
		return
	}
	tcp, payload, err := wire.ParseTCP(seg)
	if err != nil {
		fmt.Println(err)
		return
	}
	opts, _ := wire.ParseTCPOptionList(seg[wire.TCPHeaderLen:tcp.DataOffset])
	fmt.Printf("%v:%d > %v:%d %v seq %d win %d <%s> len %d\n",
		ip.Src, tcp.SrcPort, ip.Dst, tcp.DstPort, tcp.Flags, tcp.Seq, tcp.Window,
		wire.FormatOptionList(opts), len(payload))
	fmt.Printf("mss %d wscale %d sackOK %v TSval %d\n",
		tcp.Options.MSS, tcp.Options.WScale, tcp.Options.SACKPermitted, tcp.Options.TSVal)
	// Output:
	// 10.0.0.1:12345 > 10.0.0.2:80 S seq 1000 win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7> len 0
	// mss 1460 wscale 7 sackOK true TSval 1
}

func ExampleParseUDP() {
	// A DNS query's UDP datagram, 10.0.0.1:1234 > 10.0.0.2:53, as the IP
	// payload of a packet, with two bytes of trailing padding the UDP
	// length leaves out.
	src, dst := netip.MustParseAddr("10.0.0.1"), netip.MustParseAddr("10.0.0.2")
	b := make([]byte, wire.UDPHeaderLen+5, 64)
	h := wire.UDP{SrcPort: 1234, DstPort: 53}
	n, _ := h.Emit(b, 5)
	copy(b[n:], "hello")
	wire.SetUDPChecksum(b, src, dst)
	b = append(b, 0, 0)

	udp, data, err := wire.ParseUDP(b)
	if err != nil || !wire.UDPChecksumValid(b, src, dst) {
		fmt.Println("dropped:", err)
		return
	}
	fmt.Printf("%v:%d > %v:%d len %d cksum %#04x %q\n",
		src, udp.SrcPort, dst, udp.DstPort, udp.Length, udp.Checksum, data)
	// Output:
	// 10.0.0.1:1234 > 10.0.0.2:53 len 13 cksum 0xa2f8 "hello"
}
