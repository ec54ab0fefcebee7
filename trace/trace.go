// Package trace turns what a stack does into something a person (or a
// program) can read: events (a packet sent or received, a state transition
// with its cause, a timer firing, a socket call, a packet lost on the link,
// a note), a Tracer that hands them to subscribers at no cost when nobody
// subscribes, and printers: a two-column Ladder, JSON lines and an SVG
// drawing (sequence diagram and RFC 9293 state diagram). Packet captures are
// written by a tap on the link (package link/pcap).
//
// The package knows nothing of how the events are produced: states are
// strings, packets are IP packets.
package trace

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/synstack/synstack/wire"
)

// Kind says what an Event is.
type Kind uint8

// Event kinds.
const (
	PacketOut  Kind = iota // Host sent Packet
	PacketIn               // Host received Packet
	Transition             // a connection of Host moved From -> To because of Cause
	Call                   // a socket call made on Host, with its result (Text)
	Note                   // an explanation (Text)
	Timer                  // a timer of Host fired (Text says which, as far as known)
	Drop                   // the link lost Packet, sent by Host (Text says why)
)

var kindNames = [...]string{
	PacketOut:  "packet-out",
	PacketIn:   "packet-in",
	Transition: "transition",
	Call:       "call",
	Note:       "note",
	Timer:      "timer",
	Drop:       "drop",
}

// String returns the kind's name as JSON lines print it: "packet-out",
// "transition", "timer"...
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind-%d", k)
}

// Event is one thing that happened on one host.
type Event struct {
	Time   time.Time
	Host   string
	Kind   Kind
	Packet []byte // IP packet, for PacketOut, PacketIn and Drop; owned by the event
	From   string // for Transition
	To     string
	Cause  string         // for Transition: "rcv SYN", "call CLOSE", "timer 2MSL"...
	Local  netip.AddrPort // the connection, for Transition (when known)
	Remote netip.AddrPort // the zero AddrPort for a listening socket
	Text   string         // for Call, Note, Timer and Drop
}

// Packet is the parsed headers of an IP packet carrying TCP.
type Packet struct {
	Src, Dst   netip.AddrPort
	IPv6       bool
	TTL        uint8 // TTL or hop limit
	TCP        wire.TCP
	Options    []wire.TCPOption // the options in the order they appear
	PayloadLen int
}

// SegLen is SEG.LEN: payload octets plus one for SYN and one for FIN.
func (p *Packet) SegLen() uint32 {
	n := uint32(p.PayloadLen)
	if p.TCP.Flags&wire.FlagSYN != 0 {
		n++
	}
	if p.TCP.Flags&wire.FlagFIN != 0 {
		n++
	}
	return n
}

// ErrNotTCP is returned by ParsePacket for an IP packet that does not carry TCP.
var ErrNotTCP = errors.New("trace: not a TCP packet")

// ParsePacket parses an IPv4 or IPv6 packet carrying TCP.
func ParsePacket(pkt []byte) (Packet, error) {
	var p Packet
	ip, payload, err := wire.ParseIP(pkt)
	if err != nil {
		return p, err
	}
	if ip.Protocol != wire.ProtoTCP {
		return p, ErrNotTCP
	}
	p.TTL, p.IPv6 = ip.TTL, ip.V6
	t, data, err := wire.ParseTCP(payload)
	if err != nil {
		return p, err
	}
	p.TCP = t
	p.Src = netip.AddrPortFrom(ip.Src, t.SrcPort)
	p.Dst = netip.AddrPortFrom(ip.Dst, t.DstPort)
	p.PayloadLen = len(data)
	if t.DataOffset > wire.TCPHeaderLen {
		p.Options, _ = wire.ParseTCPOptionList(payload[wire.TCPHeaderLen:t.DataOffset])
	}
	return p, nil
}

// Summary describes an IP packet carrying TCP the way packet scripts write
// it: flags, relative seq:end(len), ack, window, options. isn maps each
// direction of each connection to the initial sequence number seen in its
// SYN, so numbers print relative to it (pass nil for absolute numbers).
func Summary(pkt []byte, isn map[FlowKey]uint32) string {
	p, err := ParsePacket(pkt)
	if err != nil {
		return describeBad(pkt, err)
	}
	fwd := FlowKey{p.Src, p.Dst}
	seqBase, ackBase := uint32(0), uint32(0)
	if isn != nil {
		if p.TCP.Flags&wire.FlagSYN != 0 {
			isn[fwd] = p.TCP.Seq
		}
		seqBase, ackBase = isn[fwd], isn[fwd.Reverse()]
	}
	return format(&p, seqBase, ackBase, OptionsAll)
}

// describeBad says what a packet that ParsePacket refused is.
func describeBad(pkt []byte, err error) string {
	if err == ErrNotTCP {
		if pkt[0]>>4 == 4 {
			return fmt.Sprintf("IPv4 proto %d (%d bytes)", pkt[9], len(pkt))
		}
		return fmt.Sprintf("IPv6 (not TCP, %d bytes)", len(pkt))
	}
	return fmt.Sprintf("bad packet (%d bytes): %v", len(pkt), err)
}

// OptionMode says which TCP options a printer shows.
type OptionMode uint8

// Option modes.
const (
	// OptionsSYN shows the options of SYN segments (where they are
	// negotiated) without timestamp values, and SACK blocks on the others.
	OptionsSYN OptionMode = iota
	// OptionsAll shows every option as packet scripts write them.
	OptionsAll
	// OptionsNone shows no options.
	OptionsNone
)

// Label is the one-line description printers give a packet sent: its
// summary with relative numbers (observed by flows), the options mode
// says (a retransmitted SYN's options, the same as the first's, are left
// out in OptionsSYN mode), ports in front if asked, and its tag.
func Label(flows *Flows, p *Packet, mode OptionMode, ports bool) string {
	seqBase, ackBase, tag := flows.Observe(p)
	if tag == TagRetransmission && mode == OptionsSYN {
		mode = OptionsNone
	}
	s := format(p, seqBase, ackBase, mode)
	if ports {
		s = fmt.Sprintf("%d>%d %s", p.Src.Port(), p.Dst.Port(), s)
	}
	if tag != "" {
		s += " (" + tag + ")"
	}
	return s
}

// format writes the packet's summary with sequence numbers relative to
// seqBase (this direction's ISN) and ackBase (the other direction's).
func format(p *Packet, seqBase, ackBase uint32, mode OptionMode) string {
	t := &p.TCP
	s := t.Seq - seqBase
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d:%d(%d)", t.Flags, s, s+uint32(p.PayloadLen), p.PayloadLen)
	if t.Flags&wire.FlagACK != 0 {
		fmt.Fprintf(&b, " ack %d", t.Ack-ackBase)
	}
	fmt.Fprintf(&b, " win %d", t.Window)
	if opts := formatOptions(p, ackBase, mode); opts != "" {
		b.WriteString(" <" + opts + ">")
	}
	return b.String()
}

func formatOptions(p *Packet, ackBase uint32, mode OptionMode) string {
	switch {
	case len(p.Options) == 0 || mode == OptionsNone:
		return ""
	case mode == OptionsAll:
		return wire.FormatOptionList(p.Options)
	}
	syn := p.TCP.Flags&wire.FlagSYN != 0
	var parts []string
	for _, o := range p.Options {
		switch {
		case o.Kind == wire.OptNOP || o.Kind == wire.OptEOL:
		case o.Kind == wire.OptSACK:
			s := "sack"
			for i := 0; i+8 <= len(o.Data); i += 8 {
				l := be32(o.Data[i:]) - ackBase
				r := be32(o.Data[i+4:]) - ackBase
				s += fmt.Sprintf(" %d:%d", l, r)
			}
			parts = append(parts, s)
		case !syn:
		case o.Kind == wire.OptTimestamp:
			parts = append(parts, "TS")
		default:
			parts = append(parts, o.String())
		}
	}
	return strings.Join(parts, ",")
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// FlowKey is one direction of a connection.
type FlowKey struct{ Src, Dst netip.AddrPort }

// Reverse returns the other direction.
func (k FlowKey) Reverse() FlowKey { return FlowKey{k.Dst, k.Src} }

// Tags a Flows tracker gives packets.
const (
	TagRetransmission = "retransmission" // occupies sequence space already sent
	TagProbe          = "probe"          // an empty ACK one below the highest sequence sent: keepalive or zero-window probe
	TagDupAck         = "dup ack"        // same ACK and window again while data is outstanding (RFC 5681)
)

// Flows follows the connections of a packet trace, as Wireshark's TCP
// analysis does: it numbers sequence space relative to each direction's
// ISN and tells retransmissions, probes and duplicate ACKs apart. Feed it
// every packet sent, in order. The zero value is ready to use.
type Flows struct {
	m map[FlowKey]*flow
}

type flow struct {
	isn      uint32
	haveISN  bool
	maxEnd   uint32 // highest seq+len sent, valid when sent
	sent     bool
	lastAck  uint32
	lastWin  uint16
	haveAck  bool
	synFlags wire.TCPFlags // flags of the last SYN sent (SYN or SYN,ACK)
}

func (f *Flows) get(k FlowKey) *flow {
	if f.m == nil {
		f.m = map[FlowKey]*flow{}
	}
	fl := f.m[k]
	if fl == nil {
		fl = &flow{}
		f.m[k] = fl
	}
	return fl
}

// Observe records a packet sent and returns the bases of its relative
// numbers (this direction's ISN, the other direction's ISN; 0 when
// unknown) and its tag ("" or one of the Tag constants).
func (f *Flows) Observe(p *Packet) (seqBase, ackBase uint32, tag string) {
	k := FlowKey{p.Src, p.Dst}
	fl, rev := f.get(k), f.get(k.Reverse())
	t := &p.TCP
	if t.Flags&wire.FlagSYN != 0 && t.Flags&wire.FlagRST == 0 {
		// A SYN again, or a SYN,ACK again, is a retransmission; the
		// SYN,ACK of a simultaneous open repeats the SYN's ISN but is not.
		synFlags := t.Flags & (wire.FlagSYN | wire.FlagACK)
		if fl.haveISN && fl.isn == t.Seq && fl.synFlags == synFlags {
			tag = TagRetransmission
		}
		fl.isn, fl.haveISN, fl.synFlags = t.Seq, true, synFlags
		if tag == "" {
			fl.sent = false // a new incarnation numbers from its own SYN
		}
	}
	n := p.SegLen()
	end := t.Seq + n
	ackOnly := t.Flags&^wire.FlagPSH == wire.FlagACK && n == 0
	switch {
	case tag != "":
	case t.Flags&wire.FlagRST != 0:
	case n > 0 && fl.sent && int32(t.Seq-fl.maxEnd) < 0:
		tag = TagRetransmission
	case ackOnly && fl.sent && t.Seq == fl.maxEnd-1:
		tag = TagProbe
	case ackOnly && fl.haveAck && t.Ack == fl.lastAck && t.Window == fl.lastWin &&
		rev.sent && int32(rev.maxEnd-t.Ack) > 0:
		tag = TagDupAck
	}
	if t.Flags&wire.FlagRST == 0 {
		if !fl.sent || int32(end-fl.maxEnd) > 0 {
			fl.maxEnd, fl.sent = end, true
		}
		if t.Flags&wire.FlagACK != 0 {
			fl.lastAck, fl.lastWin, fl.haveAck = t.Ack, t.Window, true
		}
	}
	if fl.haveISN {
		seqBase = fl.isn
	}
	if rev.haveISN {
		ackBase = rev.isn
	}
	return seqBase, ackBase, tag
}

// bases returns the bases of the relative numbers of a packet that is not
// being sent (one received, or reported lost) without recording it: the
// packet was observed when sent, if its sender is traced. learnSYN takes
// the ISN of a SYN whose sending was not seen.
func (f *Flows) bases(p *Packet, learnSYN bool) (seqBase, ackBase uint32) {
	k := FlowKey{p.Src, p.Dst}
	if learnSYN && p.TCP.Flags&wire.FlagSYN != 0 {
		if fl := f.get(k); !fl.haveISN {
			fl.isn, fl.haveISN = p.TCP.Seq, true
		}
	}
	if fl := f.m[k]; fl != nil && fl.haveISN {
		seqBase = fl.isn
	}
	if fl := f.m[k.Reverse()]; fl != nil && fl.haveISN {
		ackBase = fl.isn
	}
	return seqBase, ackBase
}

// Peer returns what p's receiver last acknowledged in the other direction:
// the ACK number and the window field of its latest ACK, if it sent one.
func (f *Flows) Peer(p *Packet) (ack uint32, win uint16, ok bool) {
	fl := f.m[FlowKey{p.Dst, p.Src}]
	if fl == nil || !fl.haveAck {
		return 0, 0, false
	}
	return fl.lastAck, fl.lastWin, true
}
