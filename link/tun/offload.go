package tun

import (
	"encoding/binary"
	"net/netip"

	"github.com/synstack/synstack/wire"
)

// Offloads: what crosses the device when IFF_VNET_HDR is on. Every packet
// read or written is preceded by a struct virtio_net_hdr (10 bytes, in the
// host's byte order) that says whether the packet still needs its
// transport checksum (the kernel put only the pseudo-header sum in the
// checksum field: "checksum offload") and whether it is a GSO packet: one
// large TCP packet standing for several MSS-sized segments with the same
// headers, which the kernel cuts or, delivered locally, takes whole as if
// GRO had coalesced it.
//
// In: the kernel sends large TCP packets (TSO towards the device) and
// packets with a partial checksum. The endpoint completes the checksum and
// hands the large packet to the stack as it is (the stack takes any
// segment size its window admits), like GRO.
//
// Out: the endpoint coalesces consecutive segments of one flow that the
// stack writes in a burst into one GSO packet (the inverse of the
// kernel's segmentation: same headers, contiguous sequence numbers, every
// segment but the last full-sized), and marks every TCP packet's checksum
// as partial so the kernel does not verify it again.

// Layout of struct virtio_net_hdr (include/uapi/linux/virtio_net.h).
const (
	vnetHdrLen = 10

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetFlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID

	vnetGSONone  = 0    // VIRTIO_NET_HDR_GSO_NONE
	vnetGSOTCPv4 = 1    // VIRTIO_NET_HDR_GSO_TCPV4
	vnetGSOTCPv6 = 4    // VIRTIO_NET_HDR_GSO_TCPV6
	vnetGSOECN   = 0x80 // VIRTIO_NET_HDR_GSO_ECN
)

// maxIPPacket is the largest IP packet the device carries with offloads:
// the 16-bit length field of IPv4 (GSO_LEGACY_MAX_SIZE; the kernel does not
// turn BIG TCP on for a TUN device).
const maxIPPacket = 65535

// vnetHdr is struct virtio_net_hdr.
type vnetHdr struct {
	flags      uint8
	gsoType    uint8
	hdrLen     uint16 // length of the headers (IP + TCP) of a GSO packet
	gsoSize    uint16 // payload bytes per segment of a GSO packet
	csumStart  uint16 // where the checksummed part starts (the TCP header)
	csumOffset uint16 // where the checksum field is, from csumStart
}

// The header is in the host's byte order: TUN devices use the legacy
// (native-endian) virtio layout unless TUNSETVNETLE/BE says otherwise.
func (h *vnetHdr) decode(b []byte) {
	h.flags = b[0]
	h.gsoType = b[1]
	h.hdrLen = binary.NativeEndian.Uint16(b[2:])
	h.gsoSize = binary.NativeEndian.Uint16(b[4:])
	h.csumStart = binary.NativeEndian.Uint16(b[6:])
	h.csumOffset = binary.NativeEndian.Uint16(b[8:])
}

func (h *vnetHdr) encode(b []byte) {
	b[0] = h.flags
	b[1] = h.gsoType
	binary.NativeEndian.PutUint16(b[2:], h.hdrLen)
	binary.NativeEndian.PutUint16(b[4:], h.gsoSize)
	binary.NativeEndian.PutUint16(b[6:], h.csumStart)
	binary.NativeEndian.PutUint16(b[8:], h.csumOffset)
}

// TCP header fields, as byte offsets and flag bits.
const (
	tcpSeqOff    = 4
	tcpAckOff    = 8
	tcpFlagsOff  = 13
	tcpWindowOff = 14
	tcpCsumOff   = 16
	tcpUrgOff    = 18

	flagFIN = 0x01
	flagSYN = 0x02
	flagRST = 0x04
	flagPSH = 0x08
	flagACK = 0x10
	flagURG = 0x20
	flagECE = 0x40
	flagCWR = 0x80
)

// tcpPkt locates the headers of an IP packet carrying one TCP segment.
type tcpPkt struct {
	v6      bool
	ipLen   int // IP header length: 20 for IPv4 without options, 40 for IPv6
	tcpLen  int // TCP header length, options included
	payload int // TCP payload length
}

// parseTCPPacket locates the headers of p, an IPv4 packet without options
// that is not a fragment, or an IPv6 packet whose first next header is
// TCP, with a consistent length. Anything else is not for offloading.
func parseTCPPacket(p []byte) (tcpPkt, bool) {
	var t tcpPkt
	if len(p) < 1 {
		return t, false
	}
	switch p[0] >> 4 {
	case 4:
		if len(p) < 20 || p[0]&0x0f != 5 || p[9] != wire.ProtoTCP {
			return t, false
		}
		if binary.BigEndian.Uint16(p[6:])&0x3fff != 0 { // MF or a fragment offset
			return t, false
		}
		if int(binary.BigEndian.Uint16(p[2:])) != len(p) {
			return t, false
		}
		t.ipLen = 20
	case 6:
		if len(p) < 40 || p[6] != wire.ProtoTCP || int(binary.BigEndian.Uint16(p[4:]))+40 != len(p) {
			return t, false
		}
		t.v6 = true
		t.ipLen = 40
	default:
		return t, false
	}
	if len(p) < t.ipLen+20 {
		return t, false
	}
	t.tcpLen = int(p[t.ipLen+12]>>4) * 4
	if t.tcpLen < 20 || len(p) < t.ipLen+t.tcpLen {
		return t, false
	}
	t.payload = len(p) - t.ipLen - t.tcpLen
	return t, true
}

// addrs returns the source and destination addresses of a packet that
// parseTCPPacket accepted.
func (t *tcpPkt) addrs(p []byte) (src, dst netip.Addr) {
	if t.v6 {
		return netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	}
	return netip.AddrFrom4([4]byte(p[12:16])), netip.AddrFrom4([4]byte(p[16:20]))
}

// setPartialChecksum puts in the TCP checksum field the pseudo-header sum
// alone, folded but not complemented, which is what the kernel expects of
// a packet marked VIRTIO_NET_HDR_F_NEEDS_CSUM (CHECKSUM_PARTIAL), and
// fills in h.
func (t *tcpPkt) setPartialChecksum(p []byte, h *vnetHdr) {
	src, dst := t.addrs(p)
	sum := wire.PseudoHeaderSum(src, dst, wire.ProtoTCP, len(p)-t.ipLen)
	binary.BigEndian.PutUint16(p[t.ipLen+tcpCsumOff:], ^wire.FoldChecksum(sum))
	h.flags = vnetFlagNeedsCsum
	h.csumStart = uint16(t.ipLen)
	h.csumOffset = tcpCsumOff
}

// setIPLength writes the length of p into its IP header (and, for IPv4,
// the header checksum).
func setIPLength(p []byte, v6 bool) {
	if v6 {
		binary.BigEndian.PutUint16(p[4:], uint16(len(p)-40))
		return
	}
	binary.BigEndian.PutUint16(p[2:], uint16(len(p)))
	p[10], p[11] = 0, 0
	binary.BigEndian.PutUint16(p[10:], wire.FoldChecksum(wire.Checksum(p[:int(p[0]&0x0f)*4], 0)))
}

// fixIncoming makes a packet read with header h whole: the transport
// checksum computed where the kernel left it partial (unless partial is
// kept: the stack takes the packet as verified, link.VerifiedDispatcher),
// and the IP length of a GSO packet made to match the packet. It reports
// whether the packet is usable and whether it was a GSO packet.
func fixIncoming(p []byte, h *vnetHdr, keepPartial bool) (ok, gso bool) {
	switch h.gsoType &^ vnetGSOECN {
	case vnetGSONone:
	case vnetGSOTCPv4, vnetGSOTCPv6:
		gso = true
		if len(p) < 1 {
			return false, gso
		}
		switch v := p[0] >> 4; {
		case v == 4 && len(p) >= 20 && len(p) <= maxIPPacket && p[0]&0x0f >= 5 && int(p[0]&0x0f)*4 <= len(p):
			if int(binary.BigEndian.Uint16(p[2:])) != len(p) {
				setIPLength(p, false)
			}
		case v == 6 && len(p) >= 40 && len(p)-40 <= maxIPPacket:
			if int(binary.BigEndian.Uint16(p[4:]))+40 != len(p) {
				setIPLength(p, true)
			}
		default:
			return false, gso
		}
	default:
		return false, false // UDP fragmentation offload or USO: never asked for
	}
	if h.flags&vnetFlagNeedsCsum != 0 && !keepPartial {
		start, at := int(h.csumStart), int(h.csumStart)+int(h.csumOffset)
		if start > len(p) || at+2 > len(p) {
			return false, gso
		}
		// The field holds the pseudo-header sum: summing from csumStart
		// to the end with it in place gives the whole checksum.
		binary.BigEndian.PutUint16(p[at:], wire.FoldChecksum(wire.Checksum(p[start:], 0)))
	}
	return true, gso
}

// gsoItem is one packet to write: a single packet of the batch, or
// several segments of one flow to coalesce into a GSO packet.
type gsoItem struct {
	head, tail int // indexes in the batch; gsoBatch.next links the rest
	n          int // packets in the item
	payload    int // TCP payload bytes, all packets
	gsoSize    int // payload of the first segment: every one but the last has it
	tcp        bool
	open       bool // more segments may join
	t          tcpPkt
}

// gsoBatch plans how a batch of outgoing packets is written: which
// segments coalesce. It is reused from batch to batch.
type gsoBatch struct {
	items []gsoItem
	next  []int // next[i]: the packet after packet i in its item, -1 at the end
}

// plan groups pkts into items, keeping the order of each flow's packets:
// a packet joins the latest item of its flow if it continues it exactly,
// else starts a new item. maxSize bounds a coalesced packet.
func (b *gsoBatch) plan(pkts [][]byte, maxSize int) []gsoItem {
	b.items = b.items[:0]
	b.next = b.next[:0]
	for i, p := range pkts {
		b.next = append(b.next, -1)
		t, ok := parseTCPPacket(p)
		if !ok {
			b.items = append(b.items, gsoItem{head: i, tail: i, n: 1})
			continue
		}
		flags := p[t.ipLen+tcpFlagsOff]
		if it := b.latest(pkts, p, t); it != nil && it.open && canJoin(pkts[it.head], it, p, t, flags, maxSize) {
			b.next[it.tail] = i
			it.tail = i
			it.n++
			it.payload += t.payload
			it.open = flags == flagACK && t.payload == it.gsoSize
			continue
		}
		b.items = append(b.items, gsoItem{
			head: i, tail: i, n: 1, tcp: true, t: t,
			payload: t.payload, gsoSize: t.payload,
			open: flags == flagACK && t.payload > 0 && binary.BigEndian.Uint16(p[t.ipLen+tcpUrgOff:]) == 0,
		})
	}
	return b.items
}

// latest returns the most recent item of p's flow, nil if none.
func (b *gsoBatch) latest(pkts [][]byte, p []byte, t tcpPkt) *gsoItem {
	for i := len(b.items) - 1; i >= 0; i-- {
		it := &b.items[i]
		if it.tcp && sameFlow(pkts[it.head], it.t, p, t) {
			return it
		}
	}
	return nil
}

// sameFlow reports whether two TCP packets have the same addresses and ports.
func sameFlow(a []byte, ta tcpPkt, p []byte, tp tcpPkt) bool {
	if ta.v6 != tp.v6 {
		return false
	}
	if ta.v6 {
		if string(a[8:40]) != string(p[8:40]) {
			return false
		}
	} else if string(a[12:20]) != string(p[12:20]) {
		return false
	}
	return string(a[ta.ipLen:ta.ipLen+4]) == string(p[tp.ipLen:tp.ipLen+4])
}

// canJoin reports whether p (of the same flow) can be appended to the item
// whose first packet is head: the same IP and TCP headers but for the
// sequence number, which must follow the item's last byte, and the flags,
// ACK or ACK+PSH (PSH closes the item); a payload no larger than the
// item's segment size; the result within maxSize.
func canJoin(head []byte, it *gsoItem, p []byte, t tcpPkt, flags byte, maxSize int) bool {
	h := it.t
	if t.tcpLen != h.tcpLen || t.payload == 0 || t.payload > it.gsoSize ||
		flags&^flagPSH != flagACK ||
		h.ipLen+h.tcpLen+it.payload+t.payload > maxSize {
		return false
	}
	if h.v6 {
		if string(head[0:4]) != string(p[0:4]) || head[7] != p[7] { // class, flow label; hop limit
			return false
		}
	} else if head[1] != p[1] || head[6]&0x40 != p[6]&0x40 || head[8] != p[8] { // TOS, DF, TTL
		return false
	}
	ht, pt := head[h.ipLen:], p[t.ipLen:]
	if binary.BigEndian.Uint32(pt[tcpSeqOff:]) != binary.BigEndian.Uint32(ht[tcpSeqOff:])+uint32(it.payload) {
		return false
	}
	return string(ht[tcpAckOff:tcpAckOff+4]) == string(pt[tcpAckOff:tcpAckOff+4]) &&
		string(ht[tcpWindowOff:tcpWindowOff+2]) == string(pt[tcpWindowOff:tcpWindowOff+2]) &&
		string(pt[tcpUrgOff:tcpUrgOff+2]) == "\x00\x00" &&
		string(ht[20:h.tcpLen]) == string(pt[20:t.tcpLen]) // options, timestamps included
}

// build writes item's packets as one GSO packet into dst, preceded by its
// virtio header, and returns the bytes to write. The first packet's
// headers are used, with the IP length, the last packet's flags and a
// partial checksum.
func (b *gsoBatch) build(dst []byte, pkts [][]byte, it *gsoItem) []byte {
	t := it.t
	head := pkts[it.head]
	n := copy(dst[vnetHdrLen:], head)
	for i := b.next[it.head]; i >= 0; i = b.next[i] {
		p := pkts[i]
		n += copy(dst[vnetHdrLen+n:], p[t.ipLen+t.tcpLen:])
	}
	p := dst[vnetHdrLen : vnetHdrLen+n]
	setIPLength(p, t.v6)
	tail := pkts[it.tail]
	p[t.ipLen+tcpFlagsOff] = tail[t.ipLen+tcpFlagsOff]
	h := vnetHdr{gsoType: vnetGSOTCPv4, hdrLen: uint16(t.ipLen + t.tcpLen), gsoSize: uint16(it.gsoSize)}
	if t.v6 {
		h.gsoType = vnetGSOTCPv6
	}
	t.setPartialChecksum(p, &h)
	h.encode(dst)
	return dst[:vnetHdrLen+n]
}

// splitTCP cuts a TCP packet larger than the link's MTU into segments of
// at most mss payload bytes, as the kernel's GSO would, calling emit with
// each (valid only during the call; built in scratch, which must hold
// mtu bytes). Sequence numbers advance, FIN and PSH stay on the last
// segment only and CWR on the first, IPv4 IDs count up, and every
// checksum is computed.
func splitTCP(p []byte, t tcpPkt, mss int, scratch []byte, emit func([]byte)) {
	hdrLen := t.ipLen + t.tcpLen
	payload := p[hdrLen:]
	seq := binary.BigEndian.Uint32(p[t.ipLen+tcpSeqOff:])
	flags := p[t.ipLen+tcpFlagsOff]
	var id uint16
	if !t.v6 {
		id = binary.BigEndian.Uint16(p[4:])
	}
	src, dst := t.addrs(p)
	for off, i := 0, 0; off < len(payload); i++ {
		n := min(mss, len(payload)-off)
		s := scratch[:hdrLen+n]
		copy(s, p[:hdrLen])
		copy(s[hdrLen:], payload[off:off+n])
		th := s[t.ipLen:]
		binary.BigEndian.PutUint32(th[tcpSeqOff:], seq+uint32(off))
		f := flags
		if off+n < len(payload) {
			f &^= flagFIN | flagPSH
		}
		if i > 0 {
			f &^= flagCWR
		}
		th[tcpFlagsOff] = f
		if !t.v6 {
			binary.BigEndian.PutUint16(s[4:], id+uint16(i))
		}
		setIPLength(s, t.v6)
		wire.SetTCPChecksum(th, src, dst)
		emit(s)
		off += n
	}
}
