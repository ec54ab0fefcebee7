// Package trace turns what a stack does into something a person can read:
// events (a packet sent or received, a state transition with its cause, a
// socket call, a note) and printers for them. It knows nothing of how the
// events are produced.
package trace

import (
	"fmt"
	"io"
	"net/netip"
	"strings"
	"time"

	"github.com/synstack/synstack/wire"
)

// Kind says what an Event is.
type Kind uint8

// Event kinds.
const (
	PacketOut  Kind = iota // a host sent Packet
	PacketIn               // a host received Packet
	Transition             // a connection of Host moved From -> To because of Cause
	Call                   // a socket call made on Host (Text)
	Note                   // an explanation (Text)
)

// Event is one thing that happened on one host.
type Event struct {
	Time   time.Time
	Host   string
	Kind   Kind
	Packet []byte // IP packet, for PacketOut and PacketIn
	From   string // for Transition
	To     string
	Cause  string
	Local  netip.AddrPort // the connection, for Transition (when known)
	Remote netip.AddrPort
	Text   string // for Call and Note
}

// Summary describes an IP packet carrying TCP the way packet scripts write
// it: flags, relative seq:end(len), ack, window, options. isn maps each
// direction of each connection to the initial sequence number seen in its
// SYN, so numbers print relative to it (pass nil for absolute numbers).
func Summary(pkt []byte, isn map[FlowKey]uint32) string {
	var src, dst netip.Addr
	var payload []byte
	var err error
	switch {
	case len(pkt) > 0 && pkt[0]>>4 == 4:
		var h wire.IPv4
		h, payload, err = wire.ParseIPv4(pkt)
		src, dst = h.Src, h.Dst
		if err == nil && h.Protocol != wire.ProtoTCP {
			return fmt.Sprintf("IPv4 proto %d %s > %s", h.Protocol, src, dst)
		}
	case len(pkt) > 0 && pkt[0]>>4 == 6:
		var h wire.IPv6
		h, payload, err = wire.ParseIPv6(pkt)
		src, dst = h.Src, h.Dst
		if err == nil && h.NextHeader != wire.ProtoTCP {
			return fmt.Sprintf("IPv6 next %d %s > %s", h.NextHeader, src, dst)
		}
	default:
		return fmt.Sprintf("unknown packet (%d bytes)", len(pkt))
	}
	if err != nil {
		return "bad IP packet: " + err.Error()
	}
	t, data, err := wire.ParseTCP(payload)
	if err != nil {
		return "bad TCP segment: " + err.Error()
	}
	fwd := FlowKey{netip.AddrPortFrom(src, t.SrcPort), netip.AddrPortFrom(dst, t.DstPort)}
	rev := FlowKey{fwd.Dst, fwd.Src}
	seqBase, ackBase := uint32(0), uint32(0)
	if isn != nil {
		if t.Flags&wire.FlagSYN != 0 {
			isn[fwd] = t.Seq
		}
		seqBase, ackBase = isn[fwd], isn[rev]
	}
	s := t.Seq - seqBase
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d:%d(%d)", t.Flags, s, s+uint32(len(data)), len(data))
	if t.Flags&wire.FlagACK != 0 {
		fmt.Fprintf(&b, " ack %d", t.Ack-ackBase)
	}
	fmt.Fprintf(&b, " win %d", t.Window)
	if t.DataOffset > wire.TCPHeaderLen {
		if list, err := wire.ParseTCPOptionList(payload[wire.TCPHeaderLen:t.DataOffset]); err == nil && len(list) > 0 {
			fmt.Fprintf(&b, " <%s>", wire.FormatOptionList(list))
		}
	}
	return b.String()
}

// FlowKey is one direction of a connection.
type FlowKey struct{ Src, Dst netip.AddrPort }

// Ladder prints events as a two-column sequence diagram: one column per host,
// packets as arrows between them, state changes written in the column of the
// host where they happen.
type Ladder struct {
	w           io.Writer
	left, right string
	width       int
	start       time.Time
	started     bool
	isn         map[FlowKey]uint32
	// ShowOptions prints TCP options on packets (default true).
	ShowOptions bool
}

// NewLadder returns a ladder for two hosts, left and right.
func NewLadder(w io.Writer, left, right string) *Ladder {
	l := &Ladder{w: w, left: left, right: right, width: 34, isn: map[FlowKey]uint32{}, ShowOptions: true}
	fmt.Fprintf(w, "%8s  %-*s%*s\n", "time", l.width, left, l.width+8, right)
	fmt.Fprintf(w, "%8s  %-*s%*s\n", "", l.width, strings.Repeat("-", len(left)), l.width+8, strings.Repeat("-", len(right)))
	return l
}

// Event prints one event. Received packets are not printed: each packet is
// drawn once, as an arrow, when it is sent.
func (l *Ladder) Event(ev Event) {
	if !l.started {
		l.start, l.started = ev.Time, true
	}
	ts := fmt.Sprintf("%8.3f", ev.Time.Sub(l.start).Seconds())
	onLeft := ev.Host == l.left
	total := 2*l.width + 8
	switch ev.Kind {
	case PacketIn:
		return
	case PacketOut:
		sum := Summary(ev.Packet, l.isn)
		if !l.ShowOptions {
			if i := strings.Index(sum, " <"); i >= 0 {
				sum = sum[:i]
			}
		}
		pad := total - 4 - len(sum)
		if pad < 8 {
			pad = 8
		}
		left := pad / 2
		right := pad - left
		if onLeft {
			fmt.Fprintf(l.w, "%s  %s %s %s>\n", ts, strings.Repeat("-", left), sum, strings.Repeat("-", right))
		} else {
			fmt.Fprintf(l.w, "%s  <%s %s %s\n", ts, strings.Repeat("-", left), sum, strings.Repeat("-", right))
		}
	case Transition:
		text := fmt.Sprintf("%s -> %s", ev.From, ev.To)
		if ev.Cause != "" {
			text += "  (" + ev.Cause + ")"
		}
		l.column(ts, onLeft, text)
	case Call:
		l.column(ts, onLeft, ev.Text)
	case Note:
		fmt.Fprintf(l.w, "%8s  # %s\n", "", ev.Text)
	}
}

func (l *Ladder) column(ts string, onLeft bool, text string) {
	if onLeft {
		fmt.Fprintf(l.w, "%s  %s\n", ts, text)
		return
	}
	total := 2*l.width + 8
	fmt.Fprintf(l.w, "%s  %*s\n", ts, total, text)
}
