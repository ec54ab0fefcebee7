// Package wire parses and emits the IPv4, IPv6 (with its Fragment header),
// ICMP, TCP and UDP headers used by synstack, and computes Internet
// checksums.
//
// The package is stateless: it knows nothing of connections, time or
// goroutines. Every parser first checks the length of its input and then only
// reads at offsets it has proved to be in bounds, so no parser can panic on
// any input. Payloads are returned as subslices of the input (no copies), and
// parsing a packet into the header structs does not allocate.
//
// Parse functions return a parsed representation (a plain struct) and the
// payload; Emit methods write that representation back to bytes. For the
// headers this package supports, parsing an emitted header yields the value
// that was emitted.
package wire

import "errors"

// Errors returned by the parsers and emitters. Every error returned by this
// package is one of these values.
var (
	// ErrTruncated means the input is shorter than a header or than a
	// length field inside it claims.
	ErrTruncated = errors.New("wire: truncated packet")
	// ErrBadVersion means the IP version field does not match the parser.
	ErrBadVersion = errors.New("wire: bad IP version")
	// ErrBadHeaderLen means a header length field (IPv4 IHL, TCP data
	// offset) is smaller than the fixed header.
	ErrBadHeaderLen = errors.New("wire: bad header length")
	// ErrBadLength means a total length field is inconsistent with the
	// header length (e.g. IPv4 total length smaller than IHL*4).
	ErrBadLength = errors.New("wire: bad total length")
	// ErrBadChecksum means a checksum did not verify.
	ErrBadChecksum = errors.New("wire: bad checksum")
	// ErrBadOption means a TCP option is malformed: its length byte is
	// missing, smaller than 2, or runs past the end of the option space.
	ErrBadOption = errors.New("wire: malformed TCP option")
	// ErrFragment means the packet is an IP fragment. The parsers return
	// the parsed header together with this error.
	ErrFragment = errors.New("wire: IP fragment")
	// ErrBadExtHeader means an IPv6 packet has more extension headers than
	// the parser is willing to skip.
	ErrBadExtHeader = errors.New("wire: too many IPv6 extension headers")
	// ErrShortBuffer means the buffer given to an Emit method is too small.
	ErrShortBuffer = errors.New("wire: buffer too short")
	// ErrBadAddress means an address has the wrong family for the header
	// being emitted.
	ErrBadAddress = errors.New("wire: wrong address family")
	// ErrBadValue means a field given to an Emit method does not fit the
	// wire format (e.g. a length over 65535, a flow label over 20 bits, a
	// fragment offset that is not a multiple of 8).
	ErrBadValue = errors.New("wire: field value out of range")
	// ErrOptionsTooLong means the TCP options to emit exceed
	// TCPMaxOptionsLen bytes.
	ErrOptionsTooLong = errors.New("wire: TCP options exceed 40 bytes")
)

// IP protocol numbers (the IPv4 Protocol and IPv6 Next Header fields).
const (
	// ProtoICMP is ICMP for IPv4.
	ProtoICMP = 1
	// ProtoTCP is TCP.
	ProtoTCP = 6
	// ProtoUDP is UDP.
	ProtoUDP = 17
	// ProtoICMPv6 is ICMP for IPv6.
	ProtoICMPv6 = 58
)
