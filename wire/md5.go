package wire

import (
	"crypto/md5"
	"crypto/subtle"
	"encoding/binary"
	"hash"
	"net/netip"
)

// TCPMD5Len is the length of an MD5 signature option's digest (RFC 2385).
const TCPMD5Len = md5.Size

// TCPMD5KeyMax is the longest key Linux takes (TCP_MD5SIG_MAXKEYLEN).
const TCPMD5KeyMax = 80

// TCPMD5 signs and checks TCP segments with the MD5 signature option
// (RFC 2385). Its digest is MD5 over the pseudo-header (IPv4's 12 bytes or
// IPv6's 40, with the segment's whole length), the fixed 20-byte TCP
// header with a zero checksum (options excluded), the data, and the key.
// The zero value is ready to use; a TCPMD5 keeps its hash between calls,
// so that signing allocates nothing, and is not safe for concurrent use.
type TCPMD5 struct {
	h   hash.Hash
	sum [TCPMD5Len]byte
	// The pseudo-header and the fixed header are built here: bytes
	// handed to the hash's Write would escape from the stack.
	ph    [40]byte
	fixed [TCPHeaderLen]byte
}

// md5OptionAt returns the offset in header of the MD5 option's digest, or
// -1 if the header has no well-formed MD5 option.
func md5OptionAt(header []byte) int {
	if len(header) < TCPHeaderLen {
		return -1
	}
	hl := min(int(header[tcpDataOff]>>4)*4, len(header))
	for i := TCPHeaderLen; i < hl; {
		switch kind := header[i]; kind {
		case OptEOL:
			return -1
		case OptNOP:
			i++
			continue
		}
		if i+1 >= hl {
			return -1
		}
		n := int(header[i+1])
		if n < 2 || i+n > hl {
			return -1
		}
		if header[i] == OptMD5 {
			if n != optLenMD5 {
				return -1
			}
			return i + 2
		}
		i += n
	}
	return -1
}

// digest computes the signature of the segment made of header (its data
// offset says where the options end) and payload into m.sum.
func (m *TCPMD5) digest(header, payload []byte, src, dst netip.Addr, key []byte) {
	if m.h == nil {
		m.h = md5.New()
	}
	m.h.Reset()
	ph := &m.ph
	*ph = [40]byte{}
	n := len(header) + len(payload)
	if src.Is4() {
		s, d := src.As4(), dst.As4()
		copy(ph[0:4], s[:])
		copy(ph[4:8], d[:])
		ph[9] = ProtoTCP
		binary.BigEndian.PutUint16(ph[10:12], uint16(n))
		m.h.Write(ph[:12])
	} else {
		s, d := src.As16(), dst.As16()
		copy(ph[0:16], s[:])
		copy(ph[16:32], d[:])
		binary.BigEndian.PutUint32(ph[32:36], uint32(n))
		ph[39] = ProtoTCP
		m.h.Write(ph[:40])
	}
	copy(m.fixed[:], header)
	m.fixed[tcpChecksum], m.fixed[tcpChecksum+1] = 0, 0
	m.h.Write(m.fixed[:])
	m.h.Write(payload)
	m.h.Write(key)
	m.h.Sum(m.sum[:0])
}

// Sign writes the signature of the segment (header, with its options, and
// payload, which may lie apart, or the whole segment in header and no
// payload) into header's MD5 option, which Emit wrote
// for Options.HasMD5. It must run before the checksum is set (the digest
// does not cover it, but the checksum covers the digest). It reports false,
// and changes nothing, if header has no MD5 option.
func (m *TCPMD5) Sign(header, payload []byte, src, dst netip.Addr, key []byte) bool {
	at := md5OptionAt(header)
	if at < 0 {
		return false
	}
	switch hl := int(header[tcpDataOff]>>4) * 4; {
	case hl > len(header), hl < len(header) && len(payload) > 0:
		return false
	case hl < len(header):
		// The whole segment in one slice.
		header, payload = header[:hl], header[hl:]
	}
	m.digest(header, payload, src, dst, key)
	copy(header[at:at+TCPMD5Len], m.sum[:])
	return true
}

// Valid reports whether segment (a received TCP header and its data)
// carries an MD5 option whose digest is the one key gives.
func (m *TCPMD5) Valid(segment []byte, src, dst netip.Addr, key []byte) bool {
	at := md5OptionAt(segment)
	if at < 0 {
		return false
	}
	hl := int(segment[tcpDataOff]>>4) * 4
	if hl > len(segment) {
		return false
	}
	m.digest(segment[:hl], segment[hl:], src, dst, key)
	return subtle.ConstantTimeCompare(segment[at:at+TCPMD5Len], m.sum[:]) == 1
}
