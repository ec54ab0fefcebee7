package link

import (
	"encoding/binary"
	"math/bits"
)

// IP protocol numbers whose first four bytes are the source and
// destination ports.
const (
	protoTCP = 6
	protoUDP = 17
)

// FlowQueue returns the queue, in [0, n), that a link with n queues
// steers the IP packet pkt to: its FlowHash reduced to n, as a NIC's
// receive-side scaling does. Every packet of one flow gets the same
// queue, so a flow's packets stay in order (and a writer sees a flow's
// whole burst). A packet that is not IPv4 or IPv6, or is too short for
// its addresses, goes to queue 0. With n <= 1 the packet is not looked
// at. link/pipe and link/tun steer their queues with it.
func FlowQueue(pkt []byte, n int) int {
	if n <= 1 {
		return 0
	}
	h, ok := FlowHash(pkt)
	if !ok {
		return 0
	}
	// Multiply-shift reduction of the high 32 bits to [0, n): no division.
	return int((h >> 32) * uint64(n) >> 32)
}

// FlowHash hashes the flow pkt belongs to, read straight from the packet
// bytes: source and destination address, protocol and ports for a TCP or
// UDP packet that is not a fragment and is long enough to hold the ports;
// the two addresses alone for any other IPv4 or IPv6 packet (so that every
// fragment of a datagram hashes alike, whichever one carries the ports).
// IPv6 extension headers are not walked: a next header other than TCP or
// UDP counts as port-less. ok is false when pkt is neither IPv4 nor IPv6 or
// is too short for its addresses.
//
// The hash is not symmetric: the two directions of a connection usually
// hash differently. A queue steers one direction (a pipe's end receives
// one, a TUN device's queue is written one), so it does not need to be.
// It is fixed: a flow's queue is the same in every run.
func FlowHash(pkt []byte) (h uint64, ok bool) {
	if len(pkt) == 0 {
		return 0, false
	}
	switch pkt[0] >> 4 {
	case 4:
		if len(pkt) < 20 {
			return 0, false
		}
		ihl := int(pkt[0]&0x0f) * 4
		if ihl < 20 {
			return 0, false
		}
		h = mix(hashSeed, binary.LittleEndian.Uint64(pkt[12:20]))
		proto := pkt[9]
		frag := binary.BigEndian.Uint16(pkt[6:8])&0x3fff != 0 // MF or offset
		if frag || (proto != protoTCP && proto != protoUDP) || len(pkt) < ihl+4 {
			return fold(h), true
		}
		ports := binary.LittleEndian.Uint32(pkt[ihl : ihl+4])
		return fold(mix(h, uint64(ports)|uint64(proto)<<32)), true
	case 6:
		if len(pkt) < 40 {
			return 0, false
		}
		h = mix(hashSeed, binary.LittleEndian.Uint64(pkt[8:16]))
		h = mix(h, binary.LittleEndian.Uint64(pkt[16:24]))
		h = mix(h, binary.LittleEndian.Uint64(pkt[24:32]))
		h = mix(h, binary.LittleEndian.Uint64(pkt[32:40]))
		proto := pkt[6]
		if (proto != protoTCP && proto != protoUDP) || len(pkt) < 44 {
			return fold(h), true
		}
		ports := binary.LittleEndian.Uint32(pkt[40:44])
		return fold(mix(h, uint64(ports)|uint64(proto)<<32)), true
	}
	return 0, false
}

// hashSeed starts every flow hash (the first 64 bits of the fractional
// part of pi). It is fixed, so a flow's queue is the same in every run.
const hashSeed = 0x243f6a8885a308d3

// mix folds the 64-bit word w into the hash state h: a full 64x64->128
// multiply, whose two halves xored together depend on every bit of both.
func mix(h, w uint64) uint64 {
	hi, lo := bits.Mul64(h^w, 0x9e3779b97f4a7c15)
	return hi ^ lo
}

// fold finishes a hash so that its high bits, which FlowQueue uses, depend
// on every input bit.
func fold(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	return h
}
