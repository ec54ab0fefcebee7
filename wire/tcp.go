package wire

import (
	"encoding/binary"
	"net/netip"
)

// Lengths of the TCP header.
const (
	// TCPHeaderLen is the length of a TCP header without options.
	TCPHeaderLen = 20
	// TCPMaxOptionsLen is the most option bytes a TCP header can carry.
	TCPMaxOptionsLen = 40
)

// Byte offsets of the TCP header fields (RFC 9293).
const (
	tcpSrcPort  = 0  // 2 bytes
	tcpDstPort  = 2  // 2 bytes
	tcpSeq      = 4  // 4 bytes
	tcpAck      = 8  // 4 bytes
	tcpDataOff  = 12 // data offset in 32-bit words (high nibble)
	tcpFlags    = 13 // CWR ECE URG ACK PSH RST SYN FIN
	tcpWindow   = 14 // 2 bytes
	tcpChecksum = 16 // 2 bytes
	tcpUrgent   = 18 // 2 bytes
)

// TCPFlags are the flag bits of a TCP header (byte 13).
type TCPFlags uint8

// TCP flag bits.
const (
	// FlagFIN is FIN: no more data from the sender.
	FlagFIN TCPFlags = 1 << iota
	// FlagSYN is SYN: synchronize sequence numbers.
	FlagSYN
	// FlagRST is RST: reset the connection.
	FlagRST
	// FlagPSH is PSH: push function.
	FlagPSH
	// FlagACK is ACK: the acknowledgment field is significant.
	FlagACK
	// FlagURG is URG: the urgent pointer field is significant.
	FlagURG
	// FlagECE is ECE: ECN echo.
	FlagECE
	// FlagCWR is CWR: congestion window reduced.
	FlagCWR
)

// Has reports whether all bits of g are set in f.
func (f TCPFlags) Has(g TCPFlags) bool { return f&g == g }

// String returns the flags as packetdrill and tcpdump scripts write them, in
// the order S F R P . (ACK) E W U, e.g. "S", "S.", "F.", "P.", "FP.", "R";
// "-" when no flag is set.
func (f TCPFlags) String() string {
	if f == 0 {
		return "-"
	}
	var buf [8]byte
	n := 0
	for _, x := range [...]struct {
		flag TCPFlags
		c    byte
	}{
		{FlagSYN, 'S'}, {FlagFIN, 'F'}, {FlagRST, 'R'}, {FlagPSH, 'P'},
		{FlagACK, '.'}, {FlagECE, 'E'}, {FlagCWR, 'W'}, {FlagURG, 'U'},
	} {
		if f&x.flag != 0 {
			buf[n] = x.c
			n++
		}
	}
	return string(buf[:n])
}

// TCP is a parsed TCP header.
type TCP struct {
	// SrcPort and DstPort are the source and destination ports.
	SrcPort, DstPort uint16
	// Seq is the sequence number.
	Seq uint32
	// Ack is the acknowledgment number.
	Ack uint32
	// DataOffset is the header length in bytes as parsed. Emit ignores it
	// and writes HeaderLen().
	DataOffset int
	// Flags are the flag bits.
	Flags TCPFlags
	// Window is the window field, unscaled.
	Window uint16
	// Checksum is the checksum field as parsed. Emit ignores it and writes
	// zero; see SetTCPChecksum.
	Checksum uint16
	// Urgent is the urgent pointer.
	Urgent uint16
	// Options is the meaning of the option list.
	Options TCPOptions
	// RawOptions, when not nil on Emit, is written instead of Options,
	// exactly in this order (packet scripts inject option lists verbatim,
	// odd orders included). ParseTCP leaves it nil.
	RawOptions []TCPOption
}

// ParseTCP parses the TCP segment in b. It checks that the data offset is at
// least 5 words and within b, and parses the options into Options (see
// TCPOptions for the rules). It does not verify the checksum; see
// TCPChecksumValid. The payload is a subslice of b.
func ParseTCP(b []byte) (TCP, []byte, error) {
	if len(b) < TCPHeaderLen {
		return TCP{}, nil, ErrTruncated
	}
	hl := int(b[tcpDataOff]>>4) * 4
	if hl < TCPHeaderLen {
		return TCP{}, nil, ErrBadHeaderLen
	}
	if hl > len(b) {
		return TCP{}, nil, ErrTruncated
	}
	h := TCP{
		SrcPort:    binary.BigEndian.Uint16(b[tcpSrcPort:]),
		DstPort:    binary.BigEndian.Uint16(b[tcpDstPort:]),
		Seq:        binary.BigEndian.Uint32(b[tcpSeq:]),
		Ack:        binary.BigEndian.Uint32(b[tcpAck:]),
		DataOffset: hl,
		Flags:      TCPFlags(b[tcpFlags]),
		Window:     binary.BigEndian.Uint16(b[tcpWindow:]),
		Checksum:   binary.BigEndian.Uint16(b[tcpChecksum:]),
		Urgent:     binary.BigEndian.Uint16(b[tcpUrgent:]),
	}
	if err := parseTCPOptions(b[TCPHeaderLen:hl], &h.Options); err != nil {
		return TCP{}, nil, err
	}
	return h, b[hl:], nil
}

// OptionsLen returns the length in bytes of the options Emit would write for
// h, a multiple of 4. It may exceed TCPMaxOptionsLen, in which case Emit
// fails.
func (h *TCP) OptionsLen() int {
	if h.RawOptions != nil {
		return (rawOptionsLen(h.RawOptions) + 3) &^ 3
	}
	return h.Options.emitLen()
}

// HeaderLen returns TCPHeaderLen + h.OptionsLen().
func (h *TCP) HeaderLen() int { return TCPHeaderLen + h.OptionsLen() }

// Emit writes the header and its options into b with a zero checksum field
// and returns the header length. Options from Options are written in the
// order and with the padding Linux uses (tcp_options_write), so that packet
// scripts written against Linux match:
//
//	MSS:                            02 04 mss
//	timestamps with SACK-permitted: 04 02 08 0a val ecr   "sackOK,TS val X ecr Y"
//	timestamps alone:               01 01 08 0a val ecr   "nop,nop,TS val X ecr Y"
//	SACK-permitted without TS:      01 01 04 02           "nop,nop,sackOK"
//	window scale:                   01 03 03 ws           "nop,wscale N"
//	SACK blocks:                    01 01 05 (2+8n) ...   "nop,nop,sack A:B C:D"
//
// A Linux SYN is thus "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7". If
// RawOptions is not nil it is written instead, as given, padded with EOL to a
// multiple of 4. Emit fails with ErrOptionsTooLong if the options exceed
// TCPMaxOptionsLen bytes, ErrBadValue if Options.NumSACK exceeds 4 or a raw
// option's data exceeds 253 bytes, and ErrShortBuffer if b is too short.
func (h *TCP) Emit(b []byte) (int, error) {
	var n int
	if h.RawOptions != nil {
		for _, o := range h.RawOptions {
			if o.Kind != OptEOL && o.Kind != OptNOP && len(o.Data) > 255-2 {
				return 0, ErrBadValue
			}
		}
		n = (rawOptionsLen(h.RawOptions) + 3) &^ 3
	} else {
		if h.Options.NumSACK > uint8(len(h.Options.SACK)) {
			return 0, ErrBadValue
		}
		n = h.Options.emitLen()
	}
	if n > TCPMaxOptionsLen {
		return 0, ErrOptionsTooLong
	}
	hl := TCPHeaderLen + n
	if len(b) < hl {
		return 0, ErrShortBuffer
	}
	b = b[:hl]
	binary.BigEndian.PutUint16(b[tcpSrcPort:], h.SrcPort)
	binary.BigEndian.PutUint16(b[tcpDstPort:], h.DstPort)
	binary.BigEndian.PutUint32(b[tcpSeq:], h.Seq)
	binary.BigEndian.PutUint32(b[tcpAck:], h.Ack)
	b[tcpDataOff] = byte(hl/4) << 4
	b[tcpFlags] = byte(h.Flags)
	binary.BigEndian.PutUint16(b[tcpWindow:], h.Window)
	binary.BigEndian.PutUint16(b[tcpChecksum:], 0)
	binary.BigEndian.PutUint16(b[tcpUrgent:], h.Urgent)
	opts := b[TCPHeaderLen:]
	if h.RawOptions != nil {
		writeRawOptions(opts, h.RawOptions)
	} else {
		h.Options.write(opts)
	}
	return hl, nil
}

// SetTCPChecksum computes the TCP checksum of segment (header and payload),
// with the IPv4 or IPv6 pseudo-header built from src and dst, treating the
// checksum field as zero, and stores it in bytes 16..17. It does nothing if
// segment is shorter than a TCP header.
func SetTCPChecksum(segment []byte, src, dst netip.Addr) {
	if len(segment) < TCPHeaderLen {
		return
	}
	binary.BigEndian.PutUint16(segment[tcpChecksum:], 0)
	sum := Checksum(segment, PseudoHeaderSum(src, dst, ProtoTCP, len(segment)))
	binary.BigEndian.PutUint16(segment[tcpChecksum:], FoldChecksum(sum))
}

// SetTCPChecksumSplit is SetTCPChecksum for a segment whose header (of
// even length, as every TCP header is) and payload lie apart: a segment
// that goes to a link in two pieces (link.GatherWriter). The checksum is
// stored in the header.
func SetTCPChecksumSplit(header, payload []byte, src, dst netip.Addr) {
	if len(header) < TCPHeaderLen || len(header)%2 != 0 {
		return
	}
	binary.BigEndian.PutUint16(header[tcpChecksum:], 0)
	sum := Checksum(header, PseudoHeaderSum(src, dst, ProtoTCP, len(header)+len(payload)))
	sum = Checksum(payload, sum)
	binary.BigEndian.PutUint16(header[tcpChecksum:], FoldChecksum(sum))
}

// SetTCPChecksumCopy copies payload into dst (the packet's bytes after
// the TCP header) and sets the header's checksum over the header and the
// payload, reading the payload once: the copy and the sum in one pass
// (CopyChecksum). dst must hold len(payload) bytes; a header of odd length
// or shorter than TCPHeaderLen is left alone, and the payload copied.
func SetTCPChecksumCopy(header, dst, payload []byte, src, dstAddr netip.Addr) {
	if len(header) < TCPHeaderLen || len(header)%2 != 0 {
		copy(dst, payload)
		return
	}
	binary.BigEndian.PutUint16(header[tcpChecksum:], 0)
	sum := Checksum(header, PseudoHeaderSum(src, dstAddr, ProtoTCP, len(header)+len(payload)))
	_, sum = CopyChecksum(dst, payload, sum)
	binary.BigEndian.PutUint16(header[tcpChecksum:], FoldChecksum(sum))
}

// TCPChecksumValid reports whether the checksum of the received segment
// verifies with the pseudo-header built from src and dst.
func TCPChecksumValid(segment []byte, src, dst netip.Addr) bool {
	if len(segment) < TCPHeaderLen {
		return false
	}
	return FoldChecksum(Checksum(segment, PseudoHeaderSum(src, dst, ProtoTCP, len(segment)))) == 0
}
