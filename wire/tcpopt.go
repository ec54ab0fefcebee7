package wire

import (
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
)

// TCP option kinds.
const (
	// OptEOL is End of Option List (one byte).
	OptEOL = 0
	// OptNOP is No-Operation (one byte).
	OptNOP = 1
	// OptMSS is Maximum Segment Size (RFC 9293).
	OptMSS = 2
	// OptWScale is Window Scale (RFC 7323).
	OptWScale = 3
	// OptSACKPermitted is SACK-Permitted (RFC 2018).
	OptSACKPermitted = 4
	// OptSACK is SACK (RFC 2018).
	OptSACK = 5
	// OptTimestamp is Timestamps (RFC 7323).
	OptTimestamp = 8
	// OptMD5 is the TCP MD5 Signature option (RFC 2385): a 16-byte digest
	// of the segment and a key both ends share (md5.go).
	OptMD5 = 19
	// OptFastOpen is TCP Fast Open (RFC 7413): a cookie, or an empty
	// option asking for one.
	OptFastOpen = 34
	// OptExperimental is the shared experimental kind (RFC 6994): the
	// first two data bytes are a magic number naming the experiment.
	// Fast Open's pre-RFC form uses it with FastOpenMagic.
	OptExperimental = 254
)

// FastOpenMagic is the experiment identifier of Fast Open's experimental
// option (kind 254), as early implementations and Linux still accept it.
const FastOpenMagic = 0xF989

// Fast Open cookie lengths (RFC 7413 4.1.1): even, 4 to 16 bytes.
const (
	FastOpenCookieMin = 4
	FastOpenCookieMax = 16
)

// Total lengths (kind and length bytes included) of the known options.
const (
	optLenMSS       = 4
	optLenWScale    = 3
	optLenSACKPerm  = 2
	optLenTimestamp = 10
	optLenSACKBase  = 2
	optLenSACKBlock = 8
	optLenMD5       = 2 + TCPMD5Len
	// maxSACKBlocks is the size of TCPOptions.SACK.
	maxSACKBlocks = 4
)

// SACKBlock is one SACK block covering the sequence numbers [Left, Right).
type SACKBlock struct {
	// Left is the first sequence number of the block.
	Left uint32
	// Right is the sequence number just after the block.
	Right uint32
}

// TCPOptions is the meaning of a TCP option list.
//
// ParseTCP fills it following Linux (tcp_parse_options): unknown kinds are
// skipped by their length; a known option with the wrong length is ignored;
// EOL ends the list; a later occurrence of an option overrides an earlier
// one; SACK blocks beyond 4 are ignored. An option whose length byte is
// missing, smaller than 2, or runs past the end of the options is
// ErrBadOption.
type TCPOptions struct {
	// MSS is the maximum segment size; 0 when absent.
	MSS uint16
	// HasWScale reports a window scale option.
	HasWScale bool
	// WScale is the window scale shift as sent (the receiver clamps it to
	// 14).
	WScale uint8
	// SACKPermitted reports a SACK-permitted option.
	SACKPermitted bool
	// HasTimestamp reports a timestamps option.
	HasTimestamp bool
	// TSVal and TSEcr are the timestamp value and echo reply.
	TSVal, TSEcr uint32
	// NumSACK is the number of valid entries in SACK.
	NumSACK uint8
	// SACK holds the SACK blocks in wire order; entries from NumSACK on
	// are zero after parsing.
	SACK [4]SACKBlock
	// HasFastOpen reports a Fast Open option (RFC 7413): kind 34, or the
	// experimental kind 254 with FastOpenMagic when FastOpenExp. Its
	// cookie is FastOpenCookie[:FastOpenLen]; a length of 0 asks for a
	// cookie. A Fast Open option whose cookie length is odd or outside
	// 4..16 is ignored, as Linux ignores it.
	HasFastOpen bool
	FastOpenExp bool
	FastOpenLen uint8
	// FastOpenCookie holds the cookie; bytes from FastOpenLen on are
	// zero after parsing.
	FastOpenCookie [FastOpenCookieMax]byte
	// HasMD5 reports an MD5 signature option (RFC 2385) of the right
	// length, 18 bytes; one of another length is ignored, as Linux
	// ignores it. Emit writes it first, as "nop,nop,md5" with a zero
	// digest for SignTCPMD5 to fill; the digest received stays in the
	// packet (TCPMD5Valid reads it there).
	HasMD5 bool
}

// FastOpenCookieBytes returns the Fast Open cookie (empty for a request).
func (o *TCPOptions) FastOpenCookieBytes() []byte {
	return o.FastOpenCookie[:min(int(o.FastOpenLen), FastOpenCookieMax)]
}

// SetFastOpen sets a Fast Open option carrying cookie (a request when it
// is empty), in the experimental form when exp. A cookie longer than 16
// bytes is cut to 16.
func (o *TCPOptions) SetFastOpen(cookie []byte, exp bool) {
	o.HasFastOpen, o.FastOpenExp = true, exp
	o.FastOpenCookie = [FastOpenCookieMax]byte{}
	o.FastOpenLen = uint8(copy(o.FastOpenCookie[:], cookie))
}

// validFastOpenLen reports whether n is a cookie length Fast Open takes:
// 0 (a request) or an even length from 4 to 16.
func validFastOpenLen(n int) bool {
	return n == 0 || n >= FastOpenCookieMin && n <= FastOpenCookieMax && n%2 == 0
}

// fastOpenOptLen is the unpadded length of the Fast Open option of o.
func (o *TCPOptions) fastOpenOptLen() int {
	if o.FastOpenExp {
		return 4 + int(o.FastOpenLen)
	}
	return 2 + int(o.FastOpenLen)
}

// TCPOption is one raw option in wire order.
type TCPOption struct {
	// Kind is the option kind (OptMSS, ...).
	Kind uint8
	// Data is the bytes after the kind and length bytes; nil for NOP and
	// EOL (Emit ignores it for those kinds).
	Data []byte
}

// parseTCPOptions parses opts into o without allocating.
func parseTCPOptions(opts []byte, o *TCPOptions) error {
	for len(opts) > 0 {
		kind := opts[0]
		if kind == OptEOL {
			return nil
		}
		if kind == OptNOP {
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 {
			return ErrBadOption
		}
		n := int(opts[1])
		if n < 2 || n > len(opts) {
			return ErrBadOption
		}
		data := opts[2:n]
		opts = opts[n:]
		switch kind {
		case OptMSS:
			if n == optLenMSS {
				o.MSS = binary.BigEndian.Uint16(data)
			}
		case OptWScale:
			if n == optLenWScale {
				o.HasWScale = true
				o.WScale = data[0]
			}
		case OptSACKPermitted:
			if n == optLenSACKPerm {
				o.SACKPermitted = true
			}
		case OptTimestamp:
			if n == optLenTimestamp {
				o.HasTimestamp = true
				o.TSVal = binary.BigEndian.Uint32(data[0:4])
				o.TSEcr = binary.BigEndian.Uint32(data[4:8])
			}
		case OptSACK:
			if n >= optLenSACKBase+optLenSACKBlock && (n-optLenSACKBase)%optLenSACKBlock == 0 {
				o.SACK = [4]SACKBlock{}
				k := 0
				for ; k < maxSACKBlocks && len(data) >= optLenSACKBlock; k++ {
					o.SACK[k] = SACKBlock{
						Left:  binary.BigEndian.Uint32(data[0:4]),
						Right: binary.BigEndian.Uint32(data[4:8]),
					}
					data = data[optLenSACKBlock:]
				}
				o.NumSACK = uint8(k)
			}
		case OptMD5:
			if n == optLenMD5 {
				o.HasMD5 = true
			}
		case OptFastOpen:
			if validFastOpenLen(len(data)) {
				o.SetFastOpen(data, false)
			}
		case OptExperimental:
			if len(data) >= 2 && binary.BigEndian.Uint16(data) == FastOpenMagic && validFastOpenLen(len(data)-2) {
				o.SetFastOpen(data[2:], true)
			}
		}
	}
	return nil
}

// ParseTCPOptionList returns the raw options of opts (the bytes between the
// fixed TCP header and the data offset) in wire order, including NOP and EOL,
// for tools that compare option lists exactly. An EOL is included and ends
// the list; the bytes after it are padding and are not returned. Data slices
// alias opts. Malformed options are reported as by ParseTCP. It allocates the
// returned slice.
func ParseTCPOptionList(opts []byte) ([]TCPOption, error) {
	list := []TCPOption{}
	for len(opts) > 0 {
		kind := opts[0]
		if kind == OptEOL || kind == OptNOP {
			list = append(list, TCPOption{Kind: kind})
			if kind == OptEOL {
				break
			}
			opts = opts[1:]
			continue
		}
		if len(opts) < 2 {
			return nil, ErrBadOption
		}
		n := int(opts[1])
		if n < 2 || n > len(opts) {
			return nil, ErrBadOption
		}
		list = append(list, TCPOption{Kind: kind, Data: opts[2:n:n]})
		opts = opts[n:]
	}
	return list, nil
}

// emitLen returns the length of the Linux-ordered encoding of o.
func (o *TCPOptions) emitLen() int {
	n := 0
	if o.HasMD5 {
		n += optLenMD5 + 2
	}
	if o.MSS != 0 {
		n += 4
	}
	if o.HasTimestamp {
		n += 12
	} else if o.SACKPermitted {
		n += 4
	}
	if o.HasWScale {
		n += 4
	}
	if o.NumSACK > 0 {
		n += 4 + optLenSACKBlock*int(o.NumSACK)
	}
	if o.HasFastOpen {
		n += (o.fastOpenOptLen() + 3) &^ 3
	}
	return n
}

// write encodes o into b, which must be exactly o.emitLen() bytes long with
// NumSACK <= 4, in the order of Linux's tcp_options_write.
func (o *TCPOptions) write(b []byte) {
	if o.HasMD5 {
		// First, as Linux writes it: nop,nop,md5 and a digest to fill.
		b[0], b[1], b[2], b[3] = OptNOP, OptNOP, OptMD5, optLenMD5
		clear(b[4 : 4+TCPMD5Len])
		b = b[optLenMD5+2:]
	}
	if o.MSS != 0 {
		b[0], b[1] = OptMSS, optLenMSS
		binary.BigEndian.PutUint16(b[2:4], o.MSS)
		b = b[4:]
	}
	if o.HasTimestamp {
		if o.SACKPermitted {
			b[0], b[1] = OptSACKPermitted, optLenSACKPerm
		} else {
			b[0], b[1] = OptNOP, OptNOP
		}
		b[2], b[3] = OptTimestamp, optLenTimestamp
		binary.BigEndian.PutUint32(b[4:8], o.TSVal)
		binary.BigEndian.PutUint32(b[8:12], o.TSEcr)
		b = b[12:]
	} else if o.SACKPermitted {
		b[0], b[1], b[2], b[3] = OptNOP, OptNOP, OptSACKPermitted, optLenSACKPerm
		b = b[4:]
	}
	if o.HasWScale {
		b[0], b[1], b[2], b[3] = OptNOP, OptWScale, optLenWScale, o.WScale
		b = b[4:]
	}
	if o.NumSACK > 0 {
		n := int(o.NumSACK)
		b[0], b[1], b[2], b[3] = OptNOP, OptNOP, OptSACK, byte(optLenSACKBase+optLenSACKBlock*n)
		b = b[4:]
		for _, s := range o.SACK[:n] {
			binary.BigEndian.PutUint32(b[0:4], s.Left)
			binary.BigEndian.PutUint32(b[4:8], s.Right)
			b = b[8:]
		}
	}
	if o.HasFastOpen {
		// Last, as Linux writes it, padded with NOPs to a word.
		n := o.fastOpenOptLen()
		if o.FastOpenExp {
			b[0], b[1] = OptExperimental, byte(n)
			binary.BigEndian.PutUint16(b[2:4], FastOpenMagic)
			copy(b[4:], o.FastOpenCookieBytes())
		} else {
			b[0], b[1] = OptFastOpen, byte(n)
			copy(b[2:], o.FastOpenCookieBytes())
		}
		for i := n; i < len(b); i++ {
			b[i] = OptNOP
		}
	}
}

// rawOptionsLen returns the unpadded encoded length of list.
func rawOptionsLen(list []TCPOption) int {
	n := 0
	for _, o := range list {
		if o.Kind == OptEOL || o.Kind == OptNOP {
			n++
		} else {
			n += 2 + len(o.Data)
		}
	}
	return n
}

// writeRawOptions encodes list into b and fills the rest of b with EOL. b must
// be at least rawOptionsLen(list) bytes and every Data at most 253 bytes.
func writeRawOptions(b []byte, list []TCPOption) {
	i := 0
	for _, o := range list {
		b[i] = o.Kind
		i++
		if o.Kind == OptEOL || o.Kind == OptNOP {
			continue
		}
		b[i] = byte(2 + len(o.Data))
		i++
		i += copy(b[i:], o.Data)
	}
	clear(b[i:])
}

// String returns the option in packetdrill syntax: "mss 1460", "sackOK",
// "TS val 1 ecr 0", "nop", "eol", "wscale 7", "sack 1:2 3:4", "FO" (a Fast
// Open cookie request), "FO 0a0b0c0d", "FOEXP 0a0b0c0d", "md5 00..0f" (the
// 16-byte digest in hex). An unknown kind
// prints as "unknown-kind-N"; a known kind with a malformed length prints as
// "bad-NAME-len-L" where L is the total option length.
func (o TCPOption) String() string {
	bad := func(name string) string {
		return "bad-" + name + "-len-" + strconv.Itoa(len(o.Data)+2)
	}
	switch o.Kind {
	case OptEOL:
		return "eol"
	case OptNOP:
		return "nop"
	case OptMSS:
		if len(o.Data) != optLenMSS-2 {
			return bad("mss")
		}
		return "mss " + strconv.Itoa(int(binary.BigEndian.Uint16(o.Data)))
	case OptWScale:
		if len(o.Data) != optLenWScale-2 {
			return bad("wscale")
		}
		return "wscale " + strconv.Itoa(int(o.Data[0]))
	case OptSACKPermitted:
		if len(o.Data) != optLenSACKPerm-2 {
			return bad("sackOK")
		}
		return "sackOK"
	case OptTimestamp:
		if len(o.Data) != optLenTimestamp-2 {
			return bad("TS")
		}
		return "TS val " + strconv.FormatUint(uint64(binary.BigEndian.Uint32(o.Data[0:4])), 10) +
			" ecr " + strconv.FormatUint(uint64(binary.BigEndian.Uint32(o.Data[4:8])), 10)
	case OptSACK:
		if len(o.Data)%optLenSACKBlock != 0 {
			return bad("sack")
		}
		var sb strings.Builder
		sb.WriteString("sack")
		for d := o.Data; len(d) >= optLenSACKBlock; d = d[optLenSACKBlock:] {
			sb.WriteByte(' ')
			sb.WriteString(strconv.FormatUint(uint64(binary.BigEndian.Uint32(d[0:4])), 10))
			sb.WriteByte(':')
			sb.WriteString(strconv.FormatUint(uint64(binary.BigEndian.Uint32(d[4:8])), 10))
		}
		return sb.String()
	case OptMD5:
		if len(o.Data) != TCPMD5Len {
			return bad("md5")
		}
		return "md5 " + hex.EncodeToString(o.Data)
	case OptFastOpen:
		if !validFastOpenLen(len(o.Data)) {
			return bad("FO")
		}
		return fastOpenString("FO", o.Data)
	case OptExperimental:
		if len(o.Data) >= 2 && binary.BigEndian.Uint16(o.Data) == FastOpenMagic {
			if !validFastOpenLen(len(o.Data) - 2) {
				return bad("FOEXP")
			}
			return fastOpenString("FOEXP", o.Data[2:])
		}
	}
	return "unknown-kind-" + strconv.Itoa(int(o.Kind))
}

// fastOpenString prints a Fast Open option as packetdrill does: its name,
// then the cookie in hex if there is one.
func fastOpenString(name string, cookie []byte) string {
	if len(cookie) == 0 {
		return name
	}
	return name + " " + hex.EncodeToString(cookie)
}

// FormatOptionList returns the options in packetdrill syntax joined with
// ",", e.g. "mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 7".
func FormatOptionList(list []TCPOption) string {
	var sb strings.Builder
	for i, o := range list {
		if i > 0 {
			sb.WriteByte(',')
		}
		sb.WriteString(o.String())
	}
	return sb.String()
}
