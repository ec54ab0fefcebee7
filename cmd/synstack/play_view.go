package main

import (
	"fmt"
	"net/netip"
	"reflect"
	"strings"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

// What the page shows beyond the sockets: each connection's path through
// the state diagram and its sequence spaces, the stacks' counters, and
// every field of a packet.

// Limits on what the views keep.
const (
	playMaxConns = 32 // connections remembered per host; the oldest finished go first
	playMaxPath  = 64 // states remembered per connection
)

// playConn is a connection (or a listener) as the transitions drew it.
type playConn struct {
	Local, Remote netip.AddrPort
	Path          []string // states in order: CLOSED first
}

// playConnView is a connection as the page shows it.
type playConnView struct {
	Local  string       `json:"local"`
	Remote string       `json:"remote"` // "" for a listener
	State  string       `json:"state"`
	Path   []string     `json:"path"`
	FDs    []int        `json:"fds"` // the descriptors open on it
	Seq    *playSeqView `json:"seq"` // null for a listener or a finished connection
	Info   []playField  `json:"info"`
}

// playSeqView is RFC 9293's send and receive sequence variables of a
// connection (section 3.3.1), absolute.
type playSeqView struct {
	ISS    uint32 `json:"iss"`
	SndUna uint32 `json:"sndUna"`
	SndNxt uint32 `json:"sndNxt"`
	SndWnd int    `json:"sndWnd"`
	IRS    uint32 `json:"irs"`
	RcvNxt uint32 `json:"rcvNxt"`
	RcvWnd int    `json:"rcvWnd"`
}

// playField is one named value: a packet's field, a counter.
type playField struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// transition records a state change of a host's connection: a ladder
// row, and a step on the connection's path.
func (h *playHost) transition(local, remote netip.AddrPort, from, to, cause string) {
	pg := h.pg
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	pg.recordLocked(h.name, "transition", transitionText(local, remote, from, to, cause))
	for _, c := range h.conns {
		if c.Local == local && c.Remote == remote && c.Path[len(c.Path)-1] == from {
			if len(c.Path) < playMaxPath {
				c.Path = append(c.Path, to)
			} else {
				c.Path[len(c.Path)-1] = to
			}
			return
		}
	}
	if len(h.conns) == playMaxConns {
		h.forgetConn()
	}
	h.conns = append(h.conns, &playConn{Local: local, Remote: remote, Path: []string{from, to}})
}

// forgetConn drops the oldest finished connection, or the oldest.
func (h *playHost) forgetConn() {
	at := 0
	for i, c := range h.conns {
		if c.Path[len(c.Path)-1] == "CLOSED" {
			at = i
			break
		}
	}
	h.conns = append(h.conns[:at], h.conns[at+1:]...)
}

// connViews returns the host's connections, with their descriptors, the
// stack's TCP_INFO and the sequence spaces, oldest first.
func (h *playHost) connViews() []playConnView {
	infos := map[[2]netip.AddrPort]synstack.ConnInfo{}
	for _, ci := range h.st.Connections() {
		infos[[2]netip.AddrPort{ci.Local, ci.Remote}] = ci
	}
	fds := map[[2]netip.AddrPort][]int{}
	for _, fd := range h.fds {
		l, _ := h.so.Getsockname(fd)
		r, _ := h.so.Getpeername(fd)
		if h.state(fd) == "LISTEN" {
			r = netip.AddrPort{}
		}
		k := [2]netip.AddrPort{l, r}
		fds[k] = append(fds[k], fd)
	}
	h.pg.qmu.Lock()
	defer h.pg.qmu.Unlock()
	out := []playConnView{}
	for _, c := range h.conns {
		k := [2]netip.AddrPort{c.Local, c.Remote}
		v := playConnView{Local: c.Local.String(), State: c.Path[len(c.Path)-1], Path: c.Path, FDs: fds[k]}
		if v.FDs == nil {
			v.FDs = []int{}
		}
		if c.Remote.IsValid() {
			v.Remote = c.Remote.String()
		}
		if ci, ok := infos[k]; ok && c.Remote.IsValid() {
			v.Seq = h.pg.seqView(c, ci)
			i := ci.Info
			v.Info = []playField{
				{"RTO", i.RTO.String()}, {"RTT", i.RTT.String()}, {"cwnd", fmt.Sprint(i.Cwnd, " segments")},
				{"MSS", fmt.Sprint(i.SndMSS)}, {"segments out / in", fmt.Sprint(i.SegsOut, " / ", i.SegsIn)},
				{"retransmissions", fmt.Sprint(i.TotalRetrans)}, {"timeouts", fmt.Sprint(i.TotalRTO)},
				{"bytes acked / received", fmt.Sprint(i.BytesAcked, " / ", i.BytesReceived)},
				{"Recv-Q / Send-Q", fmt.Sprint(ci.RecvQ, " / ", ci.SendQ)},
			}
		}
		out = append(out, v)
	}
	return out
}

// seqView is the connection's sequence variables, as the stack keeps
// them (tcp.Info.Seq). pg.qmu is held.
func (pg *playground) seqView(c *playConn, ci synstack.ConnInfo) *playSeqView {
	q := ci.Info.Seq
	if ci.Info.State == tcp.Listen {
		return nil // a listener has no sequence space
	}
	return &playSeqView{ISS: uint32(q.ISS), IRS: uint32(q.IRS), SndWnd: int(q.SndWnd), RcvWnd: int(q.RcvWnd),
		SndUna: uint32(q.SndUna), SndNxt: uint32(q.SndNxt), RcvNxt: uint32(q.RcvNxt)}
}

// packetFields lists every field of a packet's IP and TCP headers.
func packetFields(pkt []byte) []playField {
	ip, payload, err := wire.ParseIPv4(pkt)
	if err != nil {
		return []playField{{"error", err.Error()}}
	}
	f := []playField{
		{"IP version", "4"}, {"IP header length", fmt.Sprint(ip.HeaderLen)}, {"TOS", fmt.Sprint(ip.TOS)},
		{"total length", fmt.Sprint(ip.TotalLen)}, {"ID", fmt.Sprint(ip.ID)}, {"DF", fmt.Sprint(ip.DontFragment)},
		{"TTL", fmt.Sprint(ip.TTL)}, {"protocol", fmt.Sprint(ip.Protocol)}, {"source", ip.Src.String()},
		{"destination", ip.Dst.String()},
	}
	t, data, err := wire.ParseTCP(payload)
	if err != nil {
		return append(f, playField{"TCP", err.Error()})
	}
	p, _ := trace.ParsePacket(pkt)
	opts := make([]string, len(p.Options))
	for i, o := range p.Options {
		opts[i] = o.String()
	}
	f = append(f,
		playField{"source port", fmt.Sprint(t.SrcPort)}, playField{"destination port", fmt.Sprint(t.DstPort)},
		playField{"sequence number", fmt.Sprint(t.Seq)}, playField{"acknowledgment number", fmt.Sprint(t.Ack)},
		playField{"data offset", fmt.Sprint(t.DataOffset, " bytes")}, playField{"flags", flagNames(t.Flags)},
		playField{"window", fmt.Sprint(t.Window)}, playField{"checksum", fmt.Sprintf("0x%04x", t.Checksum)},
		playField{"urgent pointer", fmt.Sprint(t.Urgent)}, playField{"options", strings.Join(opts, ", ")},
		playField{"payload", fmt.Sprintf("%d bytes %s", len(data), quote(string(data[:min(len(data), 24)])))},
	)
	return f
}

// counters lists the stack's non-zero counters (nstat's names).
func (h *playHost) counters() []playField {
	s := h.st.Stats()
	v := reflect.ValueOf(s)
	out := []playField{}
	for i := range v.NumField() {
		if x := v.Field(i); x.Kind() == reflect.Uint64 && x.Uint() != 0 {
			out = append(out, playField{v.Type().Field(i).Name, fmt.Sprint(x.Uint())})
		}
	}
	return out
}
