package tun

import "encoding/binary"

// queueOf returns the queue, in [0, n), that the endpoint writes pkt (an
// IP packet from the stack) to: its flow's hash reduced to n. Every packet
// of a flow gets the same queue, so they stay in order and one writer sees
// a flow's whole burst, to coalesce. A packet that is neither IPv4 nor
// IPv6, or too short for its addresses, goes to queue 0; so does every
// packet when n <= 1.
func queueOf(pkt []byte, n int) int {
	if n <= 1 {
		return 0
	}
	h, ok := flowHash(pkt)
	if !ok {
		return 0
	}
	return int(uint64(uint32(h>>32)) * uint64(n) >> 32) // high bits scaled to [0, n)
}

// flowHash hashes what identifies pkt's flow: both addresses, plus the
// protocol and both ports for TCP and UDP (when the packet is long enough
// to hold them and, for IPv4, is not a fragment, so that all of a
// datagram's fragments hash alike). IPv6 extension headers are not
// walked: a next header other than TCP or UDP hashes by addresses alone.
// ok is false for a packet that is neither IPv4 nor IPv6 or is too short
// for its addresses.
func flowHash(pkt []byte) (h uint64, ok bool) {
	if len(pkt) == 0 {
		return 0, false
	}
	var proto byte
	var l4 []byte // the transport header, if the ports count
	switch pkt[0] >> 4 {
	case 4:
		ihl := int(pkt[0]&0x0f) * 4
		if len(pkt) < 20 || ihl < 20 {
			return 0, false
		}
		h = step(flowSeed^4, uint64(binary.BigEndian.Uint32(pkt[12:16]))<<32|uint64(binary.BigEndian.Uint32(pkt[16:20])))
		proto = pkt[9]
		if binary.BigEndian.Uint16(pkt[6:8])&0x3fff == 0 && len(pkt) >= ihl {
			l4 = pkt[ihl:]
		}
	case 6:
		if len(pkt) < 40 {
			return 0, false
		}
		h = flowSeed ^ 6
		for i := 8; i < 40; i += 8 {
			h = step(h, binary.BigEndian.Uint64(pkt[i:i+8]))
		}
		proto = pkt[6]
		l4 = pkt[40:]
	default:
		return 0, false
	}
	if (proto == 6 || proto == 17) && len(l4) >= 4 {
		h = step(h, uint64(proto)<<32|uint64(binary.BigEndian.Uint32(l4[:4])))
	}
	return finish(h), true
}

// flowSeed starts every flow hash: fixed, so that a flow's queue is the
// same from run to run.
const flowSeed = 0x6a09e667f3bcc908

// step mixes the word w into the hash h.
func step(h, w uint64) uint64 {
	h ^= w
	h *= 0x9fb21c651e98df25
	return h ^ h>>29
}

// finish spreads every bit of h over the high bits queueOf uses.
func finish(h uint64) uint64 {
	h ^= h >> 32
	h *= 0xd6e8feb86659fd93
	h ^= h >> 32
	return h
}
