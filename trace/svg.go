package trace

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"time"
)

// SVG records events and draws them as one SVG image: the sequence diagram
// of the two hosts, then the RFC 9293 state diagram with every state and
// arrow each host went through lit, in that host's color. It is a
// Subscriber; call WriteTo once the events are in.
//
// In the sequence diagram each packet is an arrow from the row where it
// was sent, on the sender's lifeline, to the row where it arrived, on the
// receiver's, so packets in flight at the same time cross (simultaneous
// open, simultaneous close, a retransmission overtaken by an ACK). A
// packet sent is paired with its arrival by its headers (see segmentKey),
// first in, first out. A packet the link lost ends half-way in an X; one
// whose arrival was not seen (its receiver is not traced, or was down) is
// drawn to the other lifeline one row down, dashed. States are boxes on
// each host's lifeline, socket calls and timers written beside them.
//
// Elements carry ids, classes and data attributes for tests and style
// sheets: each packet is a line of class "packet" ("packet lost",
// "packet unseen" when its arrival was not seen) with data-flags (as
// packet scripts write them: "S", "F.") and data-from ("left" or
// "right"); each state box of the state diagram is id "state-NAME"
// ("state-CLOSED-end" for the final CLOSED), each arrow "edge-FROM-TO",
// and lit ones have class "lit" plus "left" and/or "right" for the host
// that took them.
type SVG struct {
	// Title is drawn at the top.
	Title string
	// Ports prefixes arrows with their ports, as Ladder.Ports.
	Ports bool

	mu          sync.Mutex
	left, right string
	events      []Event
}

// NewSVG returns an SVG recorder for two hosts, left and right. Events of
// any host other than left are drawn on the right.
func NewSVG(title, left, right string) *SVG {
	return &SVG{Title: title, left: left, right: right}
}

// Event records one event.
func (s *SVG) Event(ev Event) {
	s.mu.Lock()
	s.events = append(s.events, ev)
	s.mu.Unlock()
}

// Colors of the two hosts.
const (
	colorLeft      = "#1f6fd1"
	colorLeftPale  = "#dbe8fb"
	colorLeftText  = "#17549f" // packet labels: the host's color, darker
	colorRight     = "#e8710a"
	colorRightPale = "#fde5cf"
	colorRightText = "#a34d00"
)

// Layout of the sequence diagram.
const (
	svgWidth   = 900
	seqTop     = 80  // top of the first row
	seqRow     = 26  // row height
	seqLanding = 12  // height of the row where a packet arrives
	seqLeftX   = 270 // left lifeline
	seqRightX  = 630 // right lifeline
	seqNoteW   = 120 // characters per note line
	// halo draws text over a white outline, so that it stays legible
	// where an arrow passes under it.
	halo = `stroke="white" stroke-width="3" stroke-linejoin="round" paint-order="stroke"`
)

// svgWriter accumulates the document.
type svgWriter struct{ b bytes.Buffer }

func (w *svgWriter) f(format string, args ...any) { fmt.Fprintf(&w.b, format, args...) }

// esc escapes text for XML.
func esc(s string) string {
	var b strings.Builder
	xml.EscapeText(&b, []byte(s))
	return b.String()
}

// row is one line of the sequence diagram.
type row struct {
	ev      Event
	text    string // packet label, or note line
	lost    bool   // a packet the link lost
	ts      string // time label, empty when unchanged
	landing bool   // where the packet of row from arrives: no text
	from    int    // for a landing: the row of its packet
	to      int    // for a packet sent: the row of its landing, -1 if none was seen
	y       int    // the row's middle, set by layout
}

// WriteTo writes the SVG document to w.
func (s *SVG) WriteTo(w io.Writer) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	rows := s.rows()
	var sw svgWriter
	seqH := layout(rows) + 30
	stateTop := seqH + 40
	height := stateTop + stateDiagramH + 40 + 16*len(s.paths())
	sw.f(`<?xml version="1.0" encoding="UTF-8"?>` + "\n")
	sw.f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="DejaVu Sans Mono, Menlo, Consolas, monospace" font-size="11">`+"\n",
		svgWidth, height, svgWidth, height)
	sw.f(`<title>%s</title>`+"\n", esc(s.Title))
	sw.f(`<defs>
<marker id="head-grey" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#999"/></marker>
<marker id="head-left" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>
<marker id="head-right" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="6" markerHeight="6" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="%s"/></marker>
<linearGradient id="both"><stop offset="50%%" stop-color="%s"/><stop offset="50%%" stop-color="%s"/></linearGradient>
</defs>
`, colorLeft, colorRight, colorLeftPale, colorRightPale)
	sw.f(`<rect width="100%%" height="100%%" fill="white"/>` + "\n")
	title, sub, _ := strings.Cut(s.Title, ": ")
	sw.f(`<text x="%d" y="20" font-size="15" font-weight="bold" text-anchor="middle">%s</text>`+"\n", svgWidth/2, esc(title))
	sw.f(`<text x="%d" y="34" font-size="11" fill="#444" text-anchor="middle">%s</text>`+"\n", svgWidth/2, esc(sub))
	s.drawSequence(&sw, rows, seqH)
	s.drawStates(&sw, stateTop)
	sw.f("</svg>\n")
	n, err := w.Write(sw.b.Bytes())
	return int64(n), err
}

// rows lays the events out, one per row: a packet sent is one row with its
// label, its arrival a landing row (a lost packet has none), a note one row
// per line.
func (s *SVG) rows() []row {
	var flows Flows
	var way pairing
	var rows []row
	var start time.Time
	lastTS := ""
	for i, ev := range s.events {
		if i == 0 {
			start = ev.Time
		}
		r := row{ev: ev, to: -1}
		switch ev.Kind {
		case PacketOut:
			r.text = describeWith(&flows, ev.Packet, s.Ports, true)
			way.sent(keyOf(ev.Packet), len(rows))
		case Drop:
			if j, ok := way.lost(keyOf(ev.Packet)); ok {
				rows[j].lost = true
				continue
			}
			r.text, r.lost = describeWith(&flows, ev.Packet, s.Ports, false), true
		case PacketIn:
			if j, ok := way.arrived(keyOf(ev.Packet)); ok {
				rows[j].to = len(rows)
				rows = append(rows, row{ev: ev, landing: true, from: j, to: -1})
				continue
			}
			r.text = describeWith(&flows, ev.Packet, s.Ports, false)
		case Note:
			for _, line := range Wrap(ev.Text, seqNoteW) {
				rows = append(rows, row{ev: ev, text: line, to: -1})
			}
			continue
		}
		if ts := fmt.Sprintf("%.3f", ev.Time.Sub(start).Seconds()); ts != lastTS {
			r.ts, lastTS = ts, ts
		}
		rows = append(rows, r)
	}
	return rows
}

// layout sets each row's y and returns the bottom of the last.
func layout(rows []row) int {
	y := seqTop
	for i := range rows {
		h := seqRow
		if rows[i].landing {
			h = seqLanding
		}
		rows[i].y = y + h/2
		y += h
	}
	return y
}

// describeWith is the label of a packet, numbered by flows (observed only
// for packets sent).
func describeWith(flows *Flows, pkt []byte, ports, observe bool) string {
	p, err := ParsePacket(pkt)
	if err != nil {
		return describeBad(pkt, err)
	}
	if observe {
		return Label(flows, &p, OptionsSYN, ports)
	}
	seqBase, ackBase := flows.bases(&p, true)
	label := format(&p, seqBase, ackBase, OptionsSYN)
	if ports {
		label = fmt.Sprintf("%d>%d %s", p.Src.Port(), p.Dst.Port(), label)
	}
	return label
}

// side is where a host's lifeline is drawn.
type side struct {
	x, other    int    // its lifeline and the other one
	name        string // "left" or "right"
	color, pale string
	text        string // color of its packet labels
}

func (s *SVG) sideOf(host string) side {
	if host == s.left {
		return side{seqLeftX, seqRightX, "left", colorLeft, colorLeftPale, colorLeftText}
	}
	return side{seqRightX, seqLeftX, "right", colorRight, colorRightPale, colorRightText}
}

// otherSide is the side of the host a host's packets go to.
func (s *SVG) otherSide(host string) side {
	if host == s.left {
		return s.sideOf(s.right)
	}
	return s.sideOf(s.left)
}

func (s *SVG) drawSequence(sw *svgWriter, rows []row, bottom int) {
	sw.f(`<g id="sequence">` + "\n")
	for _, h := range []struct {
		x     int
		name  string
		color string
	}{{seqLeftX, s.left, colorLeft}, {seqRightX, s.right, colorRight}} {
		w := len(h.name)*7 + 20
		sw.f(`<rect x="%d" y="40" width="%d" height="24" rx="4" fill="%s"/>`+"\n", h.x-w/2, w, h.color)
		sw.f(`<text x="%d" y="56" text-anchor="middle" fill="white" font-weight="bold">%s</text>`+"\n", h.x, esc(h.name))
		sw.f(`<line x1="%d" y1="64" x2="%d" y2="%d" stroke="#bbb" stroke-width="2"/>`+"\n", h.x, h.x, bottom)
	}
	// The arrows first, so that every text is drawn over them.
	for _, r := range rows {
		if r.ev.Kind == PacketOut || r.ev.Kind == Drop || r.ev.Kind == PacketIn && !r.landing {
			s.drawPacket(sw, rows, r)
		}
	}
	for _, r := range rows {
		y := r.y
		sd := s.sideOf(r.ev.Host)
		x := sd.x
		if r.ts != "" {
			sw.f(`<text x="8" y="%d" fill="#888">%s</text>`+"\n", y+4, r.ts)
		}
		switch r.ev.Kind {
		case PacketOut, Drop, PacketIn:
			if r.landing {
				continue
			}
			// The label sits over the arrow's start, on the sender's
			// side: where arrows cross, each keeps its own label.
			text, from := r.text, sd
			if r.ev.Kind == PacketIn {
				text, from = text+" (received)", s.otherSide(r.ev.Host)
			}
			lx, anchor := from.x+10, "start"
			if from.name == "right" {
				lx, anchor = from.x-10, "end"
			}
			sw.f(`<text x="%d" y="%d" text-anchor="%s" font-size="10" fill="%s" %s>%s</text>`+"\n", lx, y-3, anchor, from.text, halo, esc(text))
		case Transition:
			cause := r.ev.Cause
			if s.Ports {
				cause = connTag(r.ev) + cause
			}
			sw.f(`<rect class="state" x="%d" y="%d" width="110" height="20" rx="9" fill="%s" stroke="%s"/>`+"\n", x-55, y-10, sd.pale, sd.color)
			sw.f(`<text x="%d" y="%d" text-anchor="middle" font-weight="bold">%s</text>`+"\n", x, y+4, esc(r.ev.To))
			if x == seqLeftX {
				sw.f(`<text x="%d" y="%d" text-anchor="end" fill="#555" font-size="10">%s</text>`+"\n", x-60, y+4, esc(cause))
			} else {
				sw.f(`<text x="%d" y="%d" fill="#555" font-size="10">%s</text>`+"\n", x+60, y+4, esc(cause))
			}
		case Call, Timer:
			text, style := r.ev.Text, `fill="#222"`
			if r.ev.Kind == Timer {
				text, style = "(timer) "+text, `fill="#7a3db8" font-style="italic"`
			}
			if x == seqLeftX {
				sw.f(`<text x="%d" y="%d" %s %s>%s</text>`+"\n", x+8, y+4, style, halo, esc(text))
			} else {
				sw.f(`<text x="%d" y="%d" text-anchor="end" %s %s>%s</text>`+"\n", x-8, y+4, style, halo, esc(text))
			}
		case Note:
			sw.f(`<text x="%d" y="%d" text-anchor="middle" fill="#666" font-style="italic" %s>%s</text>`+"\n", svgWidth/2, y+4, halo, esc(r.text))
		}
	}
	sw.f("</g>\n")
}

// drawPacket draws the arrow of a packet: from its row on the sender's
// lifeline to its landing row on the receiver's, or half-way to an X if
// the link lost it, or one row down, dashed, if its arrival was not seen.
// A packet whose sending was not seen comes from the other lifeline one
// row up.
func (s *SVG) drawPacket(sw *svgWriter, rows []row, r row) {
	sd := s.sideOf(r.ev.Host)
	flags := ""
	if p, err := ParsePacket(r.ev.Packet); err == nil {
		flags = p.TCP.Flags.String()
	}
	x1, y1, x2, y2 := sd.x, r.y+1, sd.other, r.y+1+seqLanding
	class, from, dash, head := "packet", sd.name, "", ` marker-end="url(#head-`+sd.name+`)"`
	switch {
	case r.ev.Kind == PacketIn:
		// Received, sent by a host not traced: the sender is the
		// other side.
		o := s.otherSide(r.ev.Host)
		x1, y1, x2, y2 = sd.other, r.y+1-seqLanding, sd.x, r.y+1
		class, from, head = "packet received", o.name, ` marker-end="url(#head-`+o.name+`)"`
		sd.color = o.color
	case r.lost:
		x2 = (seqLeftX+seqRightX)/2 + (sd.other-sd.x)/8
		class, dash, head = "packet lost", ` stroke-dasharray="5,3"`, ""
	case r.to >= 0:
		y2 = rows[r.to].y
	default:
		class, dash = "packet unseen", ` stroke-dasharray="2,3"`
	}
	sw.f(`<line class="%s" data-flags="%s" data-from="%s" x1="%d" y1="%d" x2="%d" y2="%d" stroke="%s" stroke-width="1.5"%s%s/>`+"\n",
		class, esc(flags), from, x1, y1, x2, y2, sd.color, dash, head)
	if r.lost {
		sw.f(`<text x="%d" y="%d" fill="#d00" font-size="16" font-weight="bold" text-anchor="middle">✕</text>`+"\n", x2, y2+6)
	}
}

// The state diagram: box centers (relative to the diagram's origin), as
// RFC 9293 figure 5 places them, CLOSED drawn twice (start and end).
const (
	stateDiagramW = 660
	stateDiagramH = 680
	boxW          = 112
	boxH          = 34
)

type stateBox struct {
	id, name string
	x, y     float64
}

var stateBoxes = []stateBox{
	{"CLOSED", "CLOSED", 330, 30},
	{"LISTEN", "LISTEN", 330, 130},
	{"SYN_RCVD", "SYN_RCVD", 90, 230},
	{"SYN_SENT", "SYN_SENT", 570, 230},
	{"ESTABLISHED", "ESTABLISHED", 330, 330},
	{"FIN_WAIT_1", "FIN_WAIT_1", 90, 430},
	{"CLOSE_WAIT", "CLOSE_WAIT", 570, 430},
	{"FIN_WAIT_2", "FIN_WAIT_2", 90, 560},
	{"CLOSING", "CLOSING", 330, 470},
	{"LAST_ACK", "LAST_ACK", 570, 540},
	{"TIME_WAIT", "TIME_WAIT", 330, 600},
	{"CLOSED-end", "CLOSED", 570, 640},
}

type stateEdge struct {
	from, to string // box ids
	label    string
	extra    bool // not in RFC 9293's figure: drawn dashed, only when taken
	// lx, ly place the label (anchored at its start, or its end if
	// lx < 0: at -lx) where the computed place would collide.
	lx, ly float64
}

// stateEdges are the arrows of RFC 9293 figure 5, with its labels
// (event / action).
var stateEdges = []stateEdge{
	{"CLOSED", "LISTEN", "passive OPEN", false, 0, 0},
	{"LISTEN", "CLOSED", "CLOSE", false, 0, 0},
	{"CLOSED", "SYN_SENT", "active OPEN / snd SYN", false, 450, 88},
	{"LISTEN", "SYN_RCVD", "rcv SYN / snd SYN,ACK", false, 0, 0},
	{"LISTEN", "SYN_SENT", "SEND / snd SYN", false, 0, 0},
	{"SYN_SENT", "SYN_RCVD", "rcv SYN / snd SYN,ACK", false, 0, 0},
	{"SYN_RCVD", "LISTEN", "rcv RST", false, 0, 0},
	{"SYN_SENT", "CLOSED", "CLOSE, timeout, rcv RST", false, 505, 160},
	{"SYN_RCVD", "ESTABLISHED", "rcv ACK of SYN", false, 0, 0},
	{"SYN_SENT", "ESTABLISHED", "rcv SYN,ACK / snd ACK", false, 0, 0},
	{"SYN_RCVD", "FIN_WAIT_1", "CLOSE / snd FIN", false, 0, 0},
	{"ESTABLISHED", "FIN_WAIT_1", "CLOSE / snd FIN", false, 0, 0},
	{"ESTABLISHED", "CLOSE_WAIT", "rcv FIN / snd ACK", false, 0, 0},
	{"FIN_WAIT_1", "FIN_WAIT_2", "rcv ACK of FIN", false, 0, 0},
	{"FIN_WAIT_1", "CLOSING", "rcv FIN / snd ACK", false, 0, 0},
	{"FIN_WAIT_1", "TIME_WAIT", "rcv FIN,ACK / snd ACK", false, -224, 532},
	{"FIN_WAIT_2", "TIME_WAIT", "rcv FIN / snd ACK", false, 0, 0},
	{"CLOSING", "TIME_WAIT", "rcv ACK of FIN", false, 0, 0},
	{"CLOSE_WAIT", "LAST_ACK", "CLOSE / snd FIN", false, 0, 0},
	{"LAST_ACK", "CLOSED-end", "rcv ACK of FIN", false, 0, 0},
	{"TIME_WAIT", "CLOSED-end", "timeout 2MSL", false, 0, 0},
}

// boxIDs maps a transition to the boxes of the diagram: a connection
// leaves from the first CLOSED, and returns to it from LISTEN and
// SYN_SENT (as in the RFC's figure); any other state ends in the final one.
func boxIDs(from, to string) (string, string) {
	if to == "CLOSED" && from != "LISTEN" && from != "SYN_SENT" && from != "CLOSED" {
		to = "CLOSED-end"
	}
	return from, to
}

// taken collects, per diagram arrow, which hosts went along it.
type taken struct {
	edges  map[[2]string][2]bool // box ids -> [left, right]
	states map[string][2]bool
	extra  []stateEdge // arrows not in the figure, in order of first use
}

func (s *SVG) taken() taken {
	t := taken{edges: map[[2]string][2]bool{}, states: map[string][2]bool{}}
	known := map[[2]string]bool{}
	for _, e := range stateEdges {
		known[[2]string{e.from, e.to}] = true
	}
	for _, ev := range s.events {
		if ev.Kind != Transition {
			continue
		}
		side := 1
		if ev.Host == s.left {
			side = 0
		}
		from, to := boxIDs(ev.From, ev.To)
		k := [2]string{from, to}
		if !known[k] {
			known[k] = true
			t.extra = append(t.extra, stateEdge{from: from, to: to, label: ev.Cause, extra: true})
		}
		v := t.edges[k]
		v[side] = true
		t.edges[k] = v
		for _, id := range []string{from, to} {
			v := t.states[id]
			v[side] = true
			t.states[id] = v
		}
	}
	return t
}

// paths lists, per connection, the states it went through, for the lines
// under the diagram.
func (s *SVG) paths() []string {
	type key struct {
		host          string
		local, remote string
		gen           int
	}
	var order []key
	seen := map[key][]string{}
	current := map[key]key{} // by host and addresses: the latest incarnation
	for _, ev := range s.events {
		if ev.Kind != Transition {
			continue
		}
		base := key{host: ev.Host}
		if ev.Local.IsValid() {
			base.local = ev.Local.String()
		}
		if ev.Remote.IsValid() {
			base.remote = ev.Remote.String()
		}
		k, ok := current[base]
		if ok {
			if p := seen[k]; p[len(p)-1] != ev.From {
				// A new incarnation on the same addresses (a
				// listener opened again): a path of its own.
				k.gen++
				ok = false
			}
		} else {
			k = base
		}
		current[base] = k
		if !ok {
			order = append(order, k)
			seen[k] = []string{ev.From}
		}
		seen[k] = append(seen[k], ev.To)
	}
	var out []string
	const most = 8
	for i, k := range order {
		if i == most {
			out = append(out, fmt.Sprintf("... and %d more connections", len(order)-most))
			break
		}
		name := k.host
		switch {
		case k.remote != "":
			name += " " + k.local + " <> " + k.remote
		case k.local != "":
			name += " listener " + k.local
		}
		out = append(out, name+": "+strings.Join(seen[k], " → "))
	}
	return out
}

func boxByID(id string) stateBox {
	for _, b := range stateBoxes {
		if b.id == id {
			return b
		}
	}
	return stateBox{}
}

// clip returns where the segment from the center of a toward the center of
// b leaves box a.
func clip(ax, ay, bx, by float64) (float64, float64) {
	dx, dy := bx-ax, by-ay
	if dx == 0 && dy == 0 {
		return ax, ay
	}
	t := math.Inf(1)
	if dx != 0 {
		t = math.Min(t, (boxW/2+3)/math.Abs(dx))
	}
	if dy != 0 {
		t = math.Min(t, (boxH/2+3)/math.Abs(dy))
	}
	return ax + dx*t, ay + dy*t
}

func (s *SVG) drawStates(sw *svgWriter, top int) {
	t := s.taken()
	ox := float64(svgWidth-stateDiagramW) / 2
	oy := float64(top)
	sw.f(`<g id="states" transform="translate(%g,%g)">`+"\n", ox, oy)
	sw.f(`<text x="%d" y="-14" font-size="14" font-weight="bold" text-anchor="middle">RFC 9293 state diagram: the path taken</text>`+"\n", stateDiagramW/2)
	all := append(append([]stateEdge(nil), stateEdges...), t.extra...)
	for _, e := range all {
		a, b := boxByID(e.from), boxByID(e.to)
		// Offset each arrow sideways so that opposite arrows between
		// the same boxes do not overlap.
		dx, dy := b.x-a.x, b.y-a.y
		l := math.Hypot(dx, dy)
		nx, ny := -dy/l*5, dx/l*5
		x1, y1 := clip(a.x, a.y, b.x, b.y)
		x2, y2 := clip(b.x, b.y, a.x, a.y)
		x1, y1, x2, y2 = x1+nx, y1+ny, x2+nx, y2+ny
		took := t.edges[[2]string{e.from, e.to}]
		id := "edge-" + e.from + "-" + e.to
		class := "edge"
		if took[0] || took[1] {
			class += " lit"
		}
		if took[0] {
			class += " left"
		}
		if took[1] {
			class += " right"
		}
		dash := ""
		if e.extra {
			dash = ` stroke-dasharray="6,4"`
		}
		sw.f(`<g id="%s" class="%s">`, esc(id), class)
		sw.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#aaa" stroke-width="1"%s marker-end="url(#head-grey)"/>`, x1, y1, x2, y2, dash)
		for side, on := range took {
			if !on {
				continue
			}
			color, head, off := colorLeft, "head-left", -1.5
			if side == 1 {
				color, head, off = colorRight, "head-right", 1.5
			}
			sw.f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="3"%s marker-end="url(#%s)"/>`,
				x1+nx/5*off, y1+ny/5*off, x2+nx/5*off, y2+ny/5*off, color, dash, head)
		}
		// The label sits beside the arrow's middle.
		mx, my := (x1+x2)/2+nx*1.6, (y1+y2)/2+ny*1.6+3
		anchor := "middle"
		switch {
		case nx > 1:
			anchor = "start"
		case nx < -1:
			anchor = "end"
		}
		switch {
		case e.lx > 0:
			mx, my, anchor = e.lx, e.ly, "start"
		case e.lx < 0:
			mx, my, anchor = -e.lx, e.ly, "end"
		}
		weight, fill := "normal", "#888"
		if took[0] || took[1] {
			weight, fill = "bold", "#222"
		}
		sw.f(`<text x="%.1f" y="%.1f" text-anchor="%s" font-size="9" font-weight="%s" fill="%s">%s</text>`, mx, my, anchor, weight, fill, esc(e.label))
		sw.f("</g>\n")
	}
	for _, b := range stateBoxes {
		took := t.states[b.id]
		fill, stroke, class := "white", "#888", "state"
		switch {
		case took[0] && took[1]:
			fill, stroke, class = "url(#both)", "#222", "state lit left right"
		case took[0]:
			fill, stroke, class = colorLeftPale, colorLeft, "state lit left"
		case took[1]:
			fill, stroke, class = colorRightPale, colorRight, "state lit right"
		}
		sw.f(`<g id="state-%s" class="%s"><rect x="%g" y="%g" width="%d" height="%d" rx="6" fill="%s" stroke="%s" stroke-width="2"/>`,
			b.id, class, b.x-boxW/2, b.y-boxH/2, boxW, boxH, fill, stroke)
		sw.f(`<text x="%g" y="%g" text-anchor="middle" font-weight="bold">%s</text></g>`+"\n", b.x, b.y+4, b.name)
	}
	// Legend and the paths taken, from the image's left edge.
	y := float64(stateDiagramH + 10)
	px := 10 - ox
	sw.f(`<rect x="%g" y="%g" width="14" height="10" fill="%s"/><text x="%g" y="%g">%s</text>`+"\n", px, y-9, colorLeft, px+20, y, esc(s.left))
	sw.f(`<rect x="%g" y="%g" width="14" height="10" fill="%s"/><text x="%g" y="%g">%s</text>`+"\n",
		px+300, y-9, colorRight, px+320, y, esc(s.right))
	for i, p := range s.paths() {
		sw.f(`<text class="path" x="%g" y="%g" font-size="10" fill="#333">%s</text>`+"\n", px, y+18+float64(i*16), esc(p))
	}
	sw.f("</g>\n")
}
