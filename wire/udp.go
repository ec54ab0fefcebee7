package wire

import (
	"encoding/binary"
	"net/netip"
)

// UDPHeaderLen is the length of the UDP header (RFC 768).
const UDPHeaderLen = 8

// UDPMaxPayload is the largest UDP payload an IPv4 datagram without options
// carries: 65,535 - 20 (IPv4 header) - 8 (UDP header). Linux refuses a larger
// send with EMSGSIZE.
const UDPMaxPayload = 0xffff - IPv4HeaderLen - UDPHeaderLen

// Byte offsets of the UDP header fields (RFC 768).
const (
	udpSrcPort  = 0 // 2 bytes
	udpDstPort  = 2 // 2 bytes
	udpLength   = 4 // 2 bytes: header plus data, in bytes
	udpChecksum = 6 // 2 bytes
)

// UDP is a parsed UDP header.
type UDP struct {
	// SrcPort and DstPort are the source and destination ports.
	SrcPort, DstPort uint16
	// Length is the length field as parsed: header plus data. Emit
	// computes it from its payloadLen argument instead of reading it.
	Length uint16
	// Checksum is the checksum field as parsed; 0 means the sender
	// computed none (allowed on IPv4 only). Emit writes zero; see
	// SetUDPChecksum.
	Checksum uint16
}

// ParseUDP parses the UDP datagram in b, the whole IP payload. The length
// field must be at least UDPHeaderLen (else ErrBadLength) and at most
// len(b) (else ErrTruncated); bytes of b after it are ignored, as Linux
// trims the IP payload to the UDP length. It returns the header and the
// data, a subslice of b. The checksum is not verified: see
// UDPChecksumValid, which a caller skips when its link vouches for the
// checksum (link.ChecksumOffloader).
func ParseUDP(b []byte) (UDP, []byte, error) {
	if len(b) < UDPHeaderLen {
		return UDP{}, nil, ErrTruncated
	}
	n := int(binary.BigEndian.Uint16(b[udpLength:]))
	if n < UDPHeaderLen {
		return UDP{}, nil, ErrBadLength
	}
	if n > len(b) {
		return UDP{}, nil, ErrTruncated
	}
	h := UDP{
		SrcPort:  binary.BigEndian.Uint16(b[udpSrcPort:]),
		DstPort:  binary.BigEndian.Uint16(b[udpDstPort:]),
		Length:   uint16(n),
		Checksum: binary.BigEndian.Uint16(b[udpChecksum:]),
	}
	return h, b[UDPHeaderLen:n], nil
}

// UDPChecksumValid reports whether the UDP datagram at the start of b (the
// IP payload; the datagram is b[:length field]) has a checksum that
// verifies with the pseudo-header built from src and dst. A zero checksum
// field means "no checksum" and is valid over IPv4 (RFC 768); over IPv6 it
// is invalid (RFC 8200 section 8.1; Linux counts it in UdpInCsumErrors). A
// datagram whose length field ParseUDP would refuse is invalid.
func UDPChecksumValid(b []byte, src, dst netip.Addr) bool {
	if len(b) < UDPHeaderLen {
		return false
	}
	n := int(binary.BigEndian.Uint16(b[udpLength:]))
	if n < UDPHeaderLen || n > len(b) {
		return false
	}
	if binary.BigEndian.Uint16(b[udpChecksum:]) == 0 {
		return src.Is4() && dst.Is4()
	}
	return FoldChecksum(Checksum(b[:n], PseudoHeaderSum(src, dst, ProtoUDP, n))) == 0
}

// Emit writes the 8-byte UDP header for payloadLen bytes of data into b,
// with a zero checksum, and returns UDPHeaderLen. It fails with
// ErrShortBuffer if b is shorter than UDPHeaderLen and ErrBadValue if the
// length (header plus data) exceeds 65535. h is not modified.
func (h *UDP) Emit(b []byte, payloadLen int) (int, error) {
	if len(b) < UDPHeaderLen {
		return 0, ErrShortBuffer
	}
	if payloadLen < 0 || payloadLen > 0xffff-UDPHeaderLen {
		return 0, ErrBadValue
	}
	binary.BigEndian.PutUint16(b[udpSrcPort:], h.SrcPort)
	binary.BigEndian.PutUint16(b[udpDstPort:], h.DstPort)
	binary.BigEndian.PutUint16(b[udpLength:], uint16(UDPHeaderLen+payloadLen))
	binary.BigEndian.PutUint16(b[udpChecksum:], 0)
	return UDPHeaderLen, nil
}

// udpChecksumField turns a computed checksum into the value sent: a
// computed 0 is sent as 0xffff (its one's-complement twin), since 0 on the
// wire means "no checksum" (RFC 768).
func udpChecksumField(sum uint32) uint16 {
	if c := FoldChecksum(sum); c != 0 {
		return c
	}
	return 0xffff
}

// SetUDPChecksum computes the UDP checksum of datagram (header and data,
// the whole of it: its length is the length field's), with the IPv4 or
// IPv6 pseudo-header built from src and dst, and stores it in bytes 6..7;
// a computed 0 is stored as 0xffff. It does nothing if datagram is shorter
// than a UDP header.
func SetUDPChecksum(datagram []byte, src, dst netip.Addr) {
	if len(datagram) < UDPHeaderLen {
		return
	}
	SetUDPChecksumSplit(datagram[:UDPHeaderLen], datagram[UDPHeaderLen:], src, dst)
}

// SetUDPChecksumSplit is SetUDPChecksum for a datagram whose 8-byte header
// and data lie apart (link.GatherWriter). The checksum is stored in the
// header. It does nothing if header is not UDPHeaderLen bytes long.
func SetUDPChecksumSplit(header, payload []byte, src, dst netip.Addr) {
	if len(header) != UDPHeaderLen {
		return
	}
	binary.BigEndian.PutUint16(header[udpChecksum:], 0)
	sum := Checksum(header, PseudoHeaderSum(src, dst, ProtoUDP, UDPHeaderLen+len(payload)))
	sum = Checksum(payload, sum)
	binary.BigEndian.PutUint16(header[udpChecksum:], udpChecksumField(sum))
}
