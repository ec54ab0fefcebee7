package trace_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"io"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

// packetLine is the arrow of one packet in an SVG sequence diagram.
type packetLine struct {
	class, flags, from string
	x1, y1, x2, y2     float64
}

// packetLines returns the packet arrows of an SVG document, in order.
func packetLines(t *testing.T, doc []byte) []packetLine {
	t.Helper()
	var lines []packetLine
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return lines
		}
		if err != nil {
			t.Fatalf("not well-formed: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "line" {
			continue
		}
		var l packetLine
		for _, a := range se.Attr {
			f, _ := strconv.ParseFloat(a.Value, 64)
			switch a.Name.Local {
			case "class":
				l.class = a.Value
			case "data-flags":
				l.flags = a.Value
			case "data-from":
				l.from = a.Value
			case "x1":
				l.x1 = f
			case "y1":
				l.y1 = f
			case "x2":
				l.x2 = f
			case "y2":
				l.y2 = f
			}
		}
		if strings.HasPrefix(l.class, "packet") {
			lines = append(lines, l)
		}
	}
}

// cross reports whether two line segments cross at a point inside both.
func cross(a, b packetLine) bool {
	side := func(l packetLine, x, y float64) float64 {
		return (l.x2-l.x1)*(y-l.y1) - (l.y2-l.y1)*(x-l.x1)
	}
	return side(a, b.x1, b.y1)*side(a, b.x2, b.y2) < 0 && side(b, a.x1, a.y1)*side(b, a.x2, a.y2) < 0
}

// draw records evs in an SVG and returns its packet arrows.
func draw(t *testing.T, evs []trace.Event) []packetLine {
	t.Helper()
	s := trace.NewSVG("x: y", "client", "server")
	for _, ev := range evs {
		s.Event(ev)
	}
	var out bytes.Buffer
	if _, err := s.WriteTo(&out); err != nil {
		t.Fatal(err)
	}
	return packetLines(t, out.Bytes())
}

// send is a packet sent at ms by host, arriving 10 ms later unless lost.
type send struct {
	ms   int
	host string
	pkt  []byte
	lost bool
}

// exchange returns the events of sends: every packet sent, then every
// arrival.
func exchange(sends []send) []trace.Event {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	other := map[string]string{"client": "server", "server": "client"}
	var evs []trace.Event
	for _, s := range sends {
		evs = append(evs, trace.Event{Time: at(s.ms), Host: s.host, Kind: trace.PacketOut, Packet: s.pkt})
		if s.lost {
			evs = append(evs, trace.Event{Time: at(s.ms), Host: s.host, Kind: trace.Drop, Packet: s.pkt, Text: "lost"})
		}
	}
	// The arrivals, after the sends (the tests send all at one instant).
	for _, s := range sends {
		if !s.lost {
			evs = append(evs, trace.Event{Time: at(s.ms + 10), Host: other[s.host], Kind: trace.PacketIn, Packet: s.pkt})
		}
	}
	return evs
}

// Two FINs sent at once cross; so do two SYNs; an arrow ends on the
// receiver's lifeline below its start.
func TestSVGArrowsCross(t *testing.T) {
	fa := wire.FlagFIN | wire.FlagACK
	for _, c := range []struct {
		name  string
		flags string
		a, b  []byte
	}{
		{"simultaneous close", "F.", pkt(cli, srv, fa, 101, 501, 500, wire.TCPOptions{}, ""), pkt(srv, cli, fa, 501, 101, 500, wire.TCPOptions{}, "")},
		{"simultaneous open", "S", pkt(cli, srv, wire.FlagSYN, 100, 0, 65535, synOpts, ""), pkt(srv, cli, wire.FlagSYN, 500, 0, 65535, synOpts, "")},
	} {
		t.Run(c.name, func(t *testing.T) {
			lines := draw(t, exchange([]send{{0, "client", c.a, false}, {0, "server", c.b, false}}))
			if len(lines) != 2 {
				t.Fatalf("%d arrows, want 2: %+v", len(lines), lines)
			}
			l, r := lines[0], lines[1]
			if l.from != "left" || r.from != "right" || l.flags != c.flags || r.flags != c.flags || l.class != "packet" || r.class != "packet" {
				t.Fatalf("arrows: %+v", lines)
			}
			if l.x1 >= l.x2 || r.x1 <= r.x2 || l.y2 <= l.y1 || r.y2 <= r.y1 {
				t.Errorf("arrows do not go from sender down to receiver: %+v", lines)
			}
			if !cross(l, r) {
				t.Errorf("the arrows do not cross: %+v", lines)
			}
		})
	}
}

// A lost packet ends half-way; its retransmission (same bytes) is paired
// with the arrival; identical duplicate ACKs pair first in, first out; a
// packet whose arrival was not seen, and one whose sending was not, are
// drawn as such.
func TestSVGPairing(t *testing.T) {
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	data := pkt(cli, srv, wire.FlagPSH|wire.FlagACK, 101, 501, 500, wire.TCPOptions{}, "hello")
	dup := pkt(srv, cli, wire.FlagACK, 501, 101, 500, wire.TCPOptions{}, "")
	evs := []trace.Event{
		{Time: at(0), Host: "client", Kind: trace.PacketOut, Packet: data},
		{Time: at(0), Host: "client", Kind: trace.Drop, Packet: data, Text: "lost"},
		{Time: at(5), Host: "server", Kind: trace.PacketOut, Packet: dup},
		{Time: at(6), Host: "server", Kind: trace.PacketOut, Packet: dup},
		{Time: at(15), Host: "client", Kind: trace.PacketIn, Packet: dup},
		{Time: at(16), Host: "client", Kind: trace.PacketIn, Packet: dup},
		{Time: at(200), Host: "client", Kind: trace.PacketOut, Packet: data},
		{Time: at(210), Host: "server", Kind: trace.PacketIn, Packet: data},
		// Sent, never seen arriving.
		{Time: at(300), Host: "server", Kind: trace.PacketOut, Packet: pkt(srv, cli, wire.FlagRST, 501, 0, 0, wire.TCPOptions{}, "")},
		// Received, its sending not traced.
		{Time: at(400), Host: "server", Kind: trace.PacketIn, Packet: pkt(cli, srv, wire.FlagSYN, 900, 0, 100, wire.TCPOptions{}, "")},
	}
	lines := draw(t, evs)
	if len(lines) != 6 {
		t.Fatalf("%d arrows, want 6: %+v", len(lines), lines)
	}
	lost, d1, d2, rtx, unseen, received := lines[0], lines[1], lines[2], lines[3], lines[4], lines[5]
	if lost.class != "packet lost" || lost.x2 >= 630 || lost.x2 <= 450 {
		t.Errorf("lost packet: %+v", lost)
	}
	if d1.class != "packet" || d2.class != "packet" || d1.y2 >= d2.y2 || cross(d1, d2) {
		t.Errorf("duplicate ACKs not paired in order: %+v %+v", d1, d2)
	}
	if rtx.class != "packet" || rtx.flags != "P." || rtx.x2 != 630 || rtx.y2 <= rtx.y1 || rtx.y1 <= d2.y2 {
		t.Errorf("retransmission: %+v", rtx)
	}
	if unseen.class != "packet unseen" || unseen.flags != "R" || unseen.from != "right" {
		t.Errorf("packet whose arrival was not seen: %+v", unseen)
	}
	if received.class != "packet received" || received.flags != "S" || received.from != "left" || received.x2 != 630 {
		t.Errorf("packet whose sending was not seen: %+v", received)
	}
}

// A listening socket has no remote address: the JSON record leaves the
// field out instead of printing "invalid AddrPort".
func TestJSONListenerHasNoRemote(t *testing.T) {
	var out bytes.Buffer
	j := trace.NewJSON(&out)
	j.Event(trace.Event{Time: t0, Host: "server", Kind: trace.Transition, From: "CLOSED", To: "LISTEN", Cause: "call LISTEN", Local: srv})
	j.Event(trace.Event{Time: t0, Host: "server", Kind: trace.Transition, From: "LISTEN", To: "SYN_RCVD", Cause: "rcv SYN", Local: srv, Remote: cli})
	j.Event(trace.Event{Time: t0, Host: "server", Kind: trace.Note, Text: "no connection"})
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 {
		t.Fatalf("%d lines:\n%s", len(lines), out.String())
	}
	for i, want := range []map[string]string{
		{"local": "10.0.0.1:80"},
		{"local": "10.0.0.1:80", "remote": "10.0.0.2:40000"},
		{},
	} {
		var m map[string]any
		if err := json.Unmarshal([]byte(lines[i]), &m); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"local", "remote"} {
			got, ok := m[k]
			w, present := want[k]
			if ok != present || ok && got != w {
				t.Errorf("line %d: %s = %v (present %v), want %q: %s", i, k, got, ok, w, lines[i])
			}
		}
	}
}
