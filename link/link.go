// Package link defines what a network link gives a stack: a way to send an IP
// packet and a way to have received ones delivered. Implementations live in the
// sub-packages (pipe, and later sim, tun, pcap).
package link

// Dispatcher receives packets from a link. A stack is a Dispatcher, and
// takes deliveries from several goroutines at once (a link with several
// receive queues).
type Dispatcher interface {
	// DeliverPacket hands one IP packet (IPv4 or IPv6, no link header) to the
	// stack. pkt is only valid during the call: the stack copies what it keeps.
	DeliverPacket(pkt []byte)
}

// BatchDispatcher is a Dispatcher that takes several packets at once: a
// link that finds more than one packet waiting hands them over together,
// and the stack reads its clock once for all of them and takes the lock
// of a run of packets for one connection once. Each packet is only valid
// during the call.
type BatchDispatcher interface {
	Dispatcher
	DeliverPackets(pkts [][]byte)
}

// VerifiedDispatcher is a Dispatcher that can take a packet whose TCP or
// UDP checksum needs no checking: the link vouches for the data. A TUN
// device does for the packets the kernel marks (virtio-net's DATA_VALID:
// the kernel verified the checksum; NEEDS_CSUM: the packet was made on
// this host and never crossed a wire, its checksum field holding only the
// pseudo-header's sum). The stack then skips its own check of that
// packet, and counts it (Stats.SynstackInCsumTrusted).
type VerifiedDispatcher interface {
	Dispatcher
	// DeliverVerified hands one such packet to the stack, as DeliverPacket
	// does.
	DeliverVerified(pkt []byte)
}

// VerifiedBatchDispatcher is a BatchDispatcher that takes a batch of
// packets whose checksums the link vouches for (VerifiedDispatcher's, several
// at once): a link that read several such packets in a row hands them over
// together.
type VerifiedBatchDispatcher interface {
	BatchDispatcher
	VerifiedDispatcher
	// DeliverVerifiedPackets hands such packets to the stack, as
	// DeliverPackets does. Each packet is only valid during the call.
	DeliverVerifiedPackets(pkts [][]byte)
}

// Endpoint is one end of a link.
type Endpoint interface {
	// MTU is the largest IP packet the link carries, in bytes.
	MTU() int
	// Attach starts delivery of received packets to d. Packets are delivered
	// from goroutines the link owns (one per receive queue; or, for a
	// synchronous test link, from the goroutine that injects them), never
	// from inside WritePacket.
	Attach(d Dispatcher)
	// WritePacket sends one IP packet. pkt is only valid during the call.
	// It must not block on the peer: a full queue drops the packet. A
	// stack calls it from several goroutines at once (one per shard of
	// connections at most), so it must be safe for that.
	WritePacket(pkt []byte) error
	// Close detaches the dispatcher, stops the link's goroutines and releases
	// its resources. Later writes return an error.
	Close() error
}

// GatherWriter is implemented by links that can send a packet given in
// two pieces: the headers the stack built, and the payload where it lies
// (in the connection's send queue). Such a link copies both straight into
// the buffer it queues (link/pipe, link/tun), so the payload is not first
// copied into a buffer of the stack's: one copy less per segment sent.
type GatherWriter interface {
	// WritePacketGather sends the IP packet hdr followed by payload, as
	// WritePacket would send their concatenation. Neither is kept after
	// the call.
	WritePacketGather(hdr, payload []byte) error
}

// ChecksumOffloader is implemented by links that take care of TCP checksums
// themselves, as the kernel's loopback device does: a link that cannot
// corrupt a packet and delivers it only to a stack that knows so. A stack
// on such a link neither computes the checksums of the TCP segments it
// sends (tx) nor checks those of the segments it receives (rx); IPv4
// header checksums are still computed and checked. A tap that records
// packets (link/pcap) does not pass the interface on, so what it records
// always carries real checksums.
type ChecksumOffloader interface {
	ChecksumOffload() (tx, rx bool)
}

// Backpressure is implemented by links whose transmit queue a fast sender
// can fill faster than the link drains it (link/tun: a goroutine writes
// the queue to the device, and may be descheduled). A stack asks before it
// sends more of a connection's data and, when the queue is nearly full,
// holds that data instead of having the link drop it: as Linux's TCP Small
// Queues hold a socket's data out of a full qdisc, so that the host's own
// queue does not turn into losses and retransmissions. Control packets
// (ACKs, SYNs, resets) and datagrams are never held.
type Backpressure interface {
	// TxRoom reports whether the transmit queue takes more data now.
	// After it has returned false the link calls the function set by
	// OnTxRoom, once, when the queue has drained well below full.
	TxRoom() bool
	// OnTxRoom sets the function the link calls (from one of its own
	// goroutines, holding no lock) when room returns after TxRoom said
	// there was none.
	OnTxRoom(f func())
}

// SegmentOffloader is implemented by links that cut a large TCP segment
// into MSS-sized ones themselves (TSO: the kernel does it for a TUN device
// with offloads on). A stack on such a link hands it, as one packet, what
// it would otherwise send as a run of full-sized segments with the same
// headers and consecutive sequence numbers, and the link cuts it, FIN and
// PSH going to the last piece and CWR to the first, each piece's IPv4 ID
// one more than the last, and every checksum computed.
type SegmentOffloader interface {
	// SegmentOffload returns the largest IP packet WritePacketSegments
	// takes: above the MTU when the link cuts segments, zero when it
	// does not (offloads off, or refused by the kernel).
	SegmentOffload() int
	// WritePacketSegments sends hdr followed by payload, the IP and TCP
	// headers of one TCP segment and its payload, cut into segments of
	// segSize payload octets (the last may be shorter), each at most the
	// MTU. The TCP checksum field of hdr need not be set: the link
	// completes the checksum of every piece. Neither slice is kept after
	// the call. As WritePacket, it never blocks on the peer.
	WritePacketSegments(hdr, payload []byte, segSize int) error
}
