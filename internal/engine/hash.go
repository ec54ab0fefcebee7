package engine

import (
	"encoding/binary"
	"math/bits"
	"net/netip"
)

// secret is the stack's key for the keyed hashes of RFC 6528 (ISNs), RFC
// 6056 (ephemeral ports), timestamp offsets and SO_REUSEPORT selection.
type secret struct{ k0, k1 uint64 }

// Domains keep the hashes for different purposes independent.
const (
	domainISN byte = iota + 1
	domainTSOffset
	domainPort
	domainBindPort
	domainReusePort
	domainCookie
	domainCookieTime
	domainUDPReuseport
)

// sipHash is SipHash-2-4 (Aumasson and Bernstein) of msg under the secret:
// a keyed pseudo-random function, as RFC 6528 asks of F().
func (k secret) sipHash(msg []byte) uint64 {
	v0 := k.k0 ^ 0x736f6d6570736575
	v1 := k.k1 ^ 0x646f72616e646f6d
	v2 := k.k0 ^ 0x6c7967656e657261
	v3 := k.k1 ^ 0x7465646279746573
	round := func() {
		v0 += v1
		v1 = bits.RotateLeft64(v1, 13)
		v1 ^= v0
		v0 = bits.RotateLeft64(v0, 32)
		v2 += v3
		v3 = bits.RotateLeft64(v3, 16)
		v3 ^= v2
		v0 += v3
		v3 = bits.RotateLeft64(v3, 21)
		v3 ^= v0
		v2 += v1
		v1 = bits.RotateLeft64(v1, 17)
		v1 ^= v2
		v2 = bits.RotateLeft64(v2, 32)
	}
	n := len(msg)
	for len(msg) >= 8 {
		m := binary.LittleEndian.Uint64(msg)
		v3 ^= m
		round()
		round()
		v0 ^= m
		msg = msg[8:]
	}
	var last [8]byte
	copy(last[:], msg)
	last[7] = byte(n)
	m := binary.LittleEndian.Uint64(last[:])
	v3 ^= m
	round()
	round()
	v0 ^= m
	v2 ^= 0xff
	round()
	round()
	round()
	round()
	return v0 ^ v1 ^ v2 ^ v3
}

// hashAddrs hashes a domain byte, up to two address-port pairs and an extra
// word. Invalid (zero) AddrPorts hash as empty.
func (k secret) hashAddrs(domain byte, a, b netip.AddrPort, extra uint64) uint64 {
	var buf [1 + 2*18 + 8]byte
	buf[0] = domain
	n := 1
	for _, ap := range [2]netip.AddrPort{a, b} {
		ip := ap.Addr().As16()
		n += copy(buf[n:], ip[:])
		binary.BigEndian.PutUint16(buf[n:], ap.Port())
		n += 2
	}
	binary.BigEndian.PutUint64(buf[n:], extra)
	n += 8
	return k.sipHash(buf[:n])
}

// splitmix64 is a simple mixer, used to expand a Seed into a key.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
