package trace

import (
	"encoding/json"
	"io"
	"net/netip"
	"sync"
	"time"
)

// JSON prints events as JSON lines, one object per event (see Record). It
// is a Subscriber.
type JSON struct {
	mu      sync.Mutex
	enc     *json.Encoder
	start   time.Time
	started bool
	flows   Flows
	err     error
}

// NewJSON returns a JSON-lines printer writing to w.
func NewJSON(w io.Writer) *JSON {
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	return &JSON{enc: enc}
}

// Record is the JSON form of an Event.
type Record struct {
	T      float64       `json:"t"`    // seconds since the first event
	Time   string        `json:"time"` // RFC 3339 with nanoseconds
	Host   string        `json:"host,omitempty"`
	Kind   string        `json:"kind"` // Kind.String: packet-out, packet-in, transition, call, note, timer, drop
	Packet *PacketRecord `json:"packet,omitempty"`
	From   string        `json:"from,omitempty"` // transition
	To     string        `json:"to,omitempty"`
	Cause  string        `json:"cause,omitempty"`
	Local  string        `json:"local,omitempty"`  // address:port, left out when unknown
	Remote string        `json:"remote,omitempty"` // left out for a listening socket
	Text   string        `json:"text,omitempty"`   // call, note, timer, drop
}

// PacketRecord is the parsed headers of a packet event.
type PacketRecord struct {
	Src     string `json:"src"` // address:port
	Dst     string `json:"dst"`
	IPv6    bool   `json:"ipv6,omitempty"`
	TTL     uint8  `json:"ttl"`
	Flags   string `json:"flags"` // as packet scripts write them: S, S., P., F., R...
	Seq     uint32 `json:"seq"`   // absolute
	Ack     uint32 `json:"ack"`
	RelSeq  uint32 `json:"rel_seq"` // relative to the direction's ISN (0 before it is known)
	RelAck  uint32 `json:"rel_ack"`
	Window  uint16 `json:"win"` // as on the wire, unscaled
	Len     int    `json:"len"` // payload bytes
	Options string `json:"options,omitempty"`
	Tag     string `json:"tag,omitempty"` // retransmission, probe, dup ack (packet-out only)
	Summary string `json:"summary"`       // one line, relative numbers
	Error   string `json:"error,omitempty"`
}

// Event prints one event.
func (j *JSON) Event(ev Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if !j.started {
		j.start, j.started = ev.Time, true
	}
	r := Record{
		T:    ev.Time.Sub(j.start).Seconds(),
		Time: ev.Time.Format(time.RFC3339Nano),
		Host: ev.Host,
		Kind: ev.Kind.String(),
		Text: ev.Text,
		// Any event may name its connection (a transition does, and
		// so do the notes of package forward).
		Local:  addrPort(ev.Local),
		Remote: addrPort(ev.Remote),
	}
	switch ev.Kind {
	case PacketOut, PacketIn, Drop:
		r.Packet = j.packet(ev)
	case Transition:
		r.From, r.To, r.Cause = ev.From, ev.To, ev.Cause
	}
	if err := j.enc.Encode(&r); err != nil && j.err == nil {
		j.err = err
	}
}

// addrPort is a in a record: "" (the field left out) when a is not valid,
// as the remote address of a listening socket.
func addrPort(a netip.AddrPort) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// Err returns the first write error.
func (j *JSON) Err() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.err
}

func (j *JSON) packet(ev Event) *PacketRecord {
	p, err := ParsePacket(ev.Packet)
	if err != nil {
		return &PacketRecord{Summary: describeBad(ev.Packet, err), Error: err.Error()}
	}
	var seqBase, ackBase uint32
	var tag string
	if ev.Kind == PacketOut {
		seqBase, ackBase, tag = j.flows.Observe(&p)
	} else {
		seqBase, ackBase = j.flows.bases(&p, ev.Kind == PacketIn)
	}
	return &PacketRecord{
		Src:     p.Src.String(),
		Dst:     p.Dst.String(),
		IPv6:    p.IPv6,
		TTL:     p.TTL,
		Flags:   p.TCP.Flags.String(),
		Seq:     p.TCP.Seq,
		Ack:     p.TCP.Ack,
		RelSeq:  p.TCP.Seq - seqBase,
		RelAck:  p.TCP.Ack - ackBase,
		Window:  p.TCP.Window,
		Len:     p.PayloadLen,
		Options: formatOptions(&p, ackBase, OptionsAll),
		Tag:     tag,
		Summary: format(&p, seqBase, ackBase, OptionsAll),
	}
}
