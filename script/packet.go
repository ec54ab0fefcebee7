package script

import (
	"encoding/binary"
	"errors"
	"net/netip"
	"strconv"
	"strings"

	"github.com/synstack/synstack/wire"
)

// segment is a TCP segment the stack sent, parsed.
type segment struct {
	src, dst netip.AddrPort
	tcp      wire.TCP
	options  []option // raw list in wire order (up to and including an EOL)
	optLen   int      // option bytes in the header (data offset less 20)
	payload  []byte
	ecn      uint8 // the IP header's ECN field
}

// parseSegment parses an IP packet the stack wrote to the link.
func parseSegment(pkt []byte) (*segment, error) {
	if len(pkt) == 0 {
		return nil, errors.New("empty packet")
	}
	ip, body, err := wire.ParseIP(pkt)
	if errors.Is(err, wire.ErrBadVersion) {
		return nil, errors.New("not an IP packet")
	}
	if err != nil {
		return nil, err
	}
	if ip.Protocol != wire.ProtoTCP {
		field := "IPv4 protocol"
		if ip.V6 {
			field = "IPv6 next header"
		}
		return nil, errors.New("not TCP (" + field + " " + strconv.Itoa(int(ip.Protocol)) + ")")
	}
	src, dst := ip.Src, ip.Dst
	h, payload, err := wire.ParseTCP(body)
	if err != nil {
		return nil, err
	}
	if !wire.TCPChecksumValid(body, src, dst) {
		return nil, errors.New("bad TCP checksum")
	}
	raw, err := wire.ParseTCPOptionList(body[wire.TCPHeaderLen:h.DataOffset])
	if err != nil {
		return nil, err
	}
	s := &segment{
		src: netip.AddrPortFrom(src, h.SrcPort), dst: netip.AddrPortFrom(dst, h.DstPort),
		tcp: h, optLen: h.DataOffset - wire.TCPHeaderLen, payload: payload,
	}
	for _, o := range raw {
		s.options = append(s.options, decodeOption(o))
	}
	s.ecn = pkt[1] & 3 // IPv4: the TOS byte's low bits
	if ip.V6 {
		s.ecn = pkt[1] >> 4 & 3 // the traffic class's low bits
	}
	return s, nil
}

// decodeOption turns a raw option into the runner's form. An option of a
// known kind with an unexpected length stays raw.
func decodeOption(o wire.TCPOption) option {
	d := o.Data
	switch {
	case o.Kind == wire.OptEOL || o.Kind == wire.OptNOP:
		return option{kind: o.Kind}
	case o.Kind == wire.OptMSS && len(d) == 2:
		return option{kind: o.Kind, mss: binary.BigEndian.Uint16(d)}
	case o.Kind == wire.OptWScale && len(d) == 1:
		return option{kind: o.Kind, wscale: d[0]}
	case o.Kind == wire.OptSACKPermitted && len(d) == 0:
		return option{kind: o.Kind}
	case o.Kind == wire.OptTimestamp && len(d) == 8:
		return option{kind: o.Kind, tsVal: binary.BigEndian.Uint32(d), tsEcr: binary.BigEndian.Uint32(d[4:])}
	case o.Kind == wire.OptSACK && len(d) > 0 && len(d)%8 == 0:
		op := option{kind: o.Kind}
		for ; len(d) >= 8; d = d[8:] {
			op.sack = append(op.sack, wire.SACKBlock{Left: binary.BigEndian.Uint32(d), Right: binary.BigEndian.Uint32(d[4:])})
		}
		return op
	}
	return option{kind: o.Kind, raw: append([]byte{}, d...)}
}

// isRaw reports whether o is an option kept as raw bytes.
func (o option) isRaw() bool {
	switch o.kind {
	case wire.OptEOL, wire.OptNOP:
		return false
	case wire.OptMSS, wire.OptWScale, wire.OptSACKPermitted, wire.OptTimestamp, wire.OptSACK:
		return o.raw != nil
	}
	return true
}

// encode returns o as a raw wire option.
func (o option) encode() wire.TCPOption {
	if o.isRaw() {
		return wire.TCPOption{Kind: o.kind, Data: o.raw}
	}
	switch o.kind {
	case wire.OptMSS:
		return wire.TCPOption{Kind: o.kind, Data: binary.BigEndian.AppendUint16(nil, o.mss)}
	case wire.OptWScale:
		return wire.TCPOption{Kind: o.kind, Data: []byte{o.wscale}}
	case wire.OptTimestamp:
		d := binary.BigEndian.AppendUint32(nil, o.tsVal)
		return wire.TCPOption{Kind: o.kind, Data: binary.BigEndian.AppendUint32(d, o.tsEcr)}
	case wire.OptSACK:
		var d []byte
		for _, b := range o.sack {
			d = binary.BigEndian.AppendUint32(d, b.Left)
			d = binary.BigEndian.AppendUint32(d, b.Right)
		}
		return wire.TCPOption{Kind: o.kind, Data: d}
	}
	return wire.TCPOption{Kind: o.kind}
}

// equal reports whether two options are the same on the wire. Two MD5
// signatures of one length are: the digest is the key's, which the
// script does not know (packetdrill cannot sign either).
func (o option) equal(p option) bool {
	a, b := o.encode(), p.encode()
	if a.Kind == wire.OptMD5 && b.Kind == wire.OptMD5 {
		return len(a.Data) == len(b.Data)
	}
	return a.Kind == b.Kind && string(a.Data) == string(b.Data)
}

// String prints o in packetdrill syntax.
func (o option) String() string { return o.encode().String() }

// formatOptions prints a list as packetdrill does: "<mss 1460,nop,wscale 7>".
func formatOptions(list []option) string {
	parts := make([]string, len(list))
	for i, o := range list {
		parts[i] = o.String()
	}
	return "<" + strings.Join(parts, ",") + ">"
}

// tcpHeader is what the runner injects: a segment in live numbers.
type tcpHeader struct {
	src, dst netip.AddrPort
	flags    wire.TCPFlags
	seq, ack uint32
	win      uint16
	urg      uint16
	options  []option
	payload  int   // bytes of zeros
	ecn      uint8 // the IP header's ECN field
}

// buildPacket emits an IPv4 or IPv6 packet (after the addresses) carrying h.
func buildPacket(h *tcpHeader) ([]byte, error) {
	raw := make([]wire.TCPOption, 0, len(h.options))
	for _, o := range h.options {
		raw = append(raw, o.encode())
	}
	t := wire.TCP{
		SrcPort: h.src.Port(), DstPort: h.dst.Port(),
		Seq: h.seq, Ack: h.ack, Flags: h.flags, Window: h.win, Urgent: h.urg,
		RawOptions: raw,
	}
	seg := make([]byte, t.HeaderLen()+h.payload)
	if _, err := t.Emit(seg); err != nil {
		return nil, err
	}
	src, dst := h.src.Addr(), h.dst.Addr()
	wire.SetTCPChecksum(seg, src, dst)
	if src.Is4() {
		ip := wire.IPv4{TOS: h.ecn, TTL: 64, Protocol: wire.ProtoTCP, Src: src, Dst: dst}
		pkt := make([]byte, wire.IPv4HeaderLen+len(seg))
		if _, err := ip.Emit(pkt, len(seg)); err != nil {
			return nil, err
		}
		copy(pkt[wire.IPv4HeaderLen:], seg)
		return pkt, nil
	}
	ip := wire.IPv6{TrafficClass: h.ecn, NextHeader: wire.ProtoTCP, HopLimit: 64, Src: src, Dst: dst}
	pkt := make([]byte, wire.IPv6HeaderLen+len(seg))
	if _, err := ip.Emit(pkt, len(seg)); err != nil {
		return nil, err
	}
	copy(pkt[wire.IPv6HeaderLen:], seg)
	return pkt, nil
}

// formatPacket prints a segment in script notation: "> S. 0:0(0) ack 1 win
// 65535 <mss 1460>". Window and options are printed when asked.
func formatPacket(dir string, flags wire.TCPFlags, seq uint32, n int, ack uint32, win int, opts []option, withOpts bool) string {
	var sb strings.Builder
	sb.WriteString(dir)
	sb.WriteByte(' ')
	sb.WriteString(flags.String())
	sb.WriteByte(' ')
	sb.WriteString(strconv.FormatUint(uint64(seq), 10))
	sb.WriteByte(':')
	sb.WriteString(strconv.FormatUint(uint64(seq+uint32(n)), 10))
	sb.WriteByte('(')
	sb.WriteString(strconv.Itoa(n))
	sb.WriteByte(')')
	if flags&wire.FlagACK != 0 || ack != 0 {
		sb.WriteString(" ack ")
		sb.WriteString(strconv.FormatUint(uint64(ack), 10))
	}
	if win >= 0 {
		sb.WriteString(" win ")
		sb.WriteString(strconv.Itoa(win))
	}
	if withOpts && len(opts) > 0 {
		sb.WriteByte(' ')
		sb.WriteString(formatOptions(opts))
	}
	return sb.String()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }
