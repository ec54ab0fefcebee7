package trace

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Ladder prints events as a two-column sequence diagram: one column per
// host, packets as arrows between them (drawn once, when sent; a packet the
// link lost ends in an X), and state changes, timers and socket calls
// written in the column of the host where they happen. Sequence numbers are
// relative to each direction's ISN, and retransmissions, probes and
// duplicate ACKs are marked. It is a Subscriber; call Flush after the last
// event.
//
//	 time  client 10.0.0.2                                  server 10.0.0.1
//	0.000  connect(3, 10.0.0.1:80) = -1 EINPROGRESS
//	0.000  CLOSED -> SYN_SENT  (call CONNECT)
//	0.000  ------ S 0:0(0) win 65535 <mss 1460,sackOK,TS,wscale 8> ------>
//	0.010                                      LISTEN -> SYN_RCVD  (rcv SYN)
type Ladder struct {
	// Options says which TCP options arrows show (default OptionsSYN).
	Options OptionMode
	// Ports prefixes arrows with their ports ("40001>80") and transitions
	// with their connection's ("[80>40001]"), for scenarios where a host
	// has several connections.
	Ports bool

	mu          sync.Mutex
	w           io.Writer
	left, right string
	width       int
	start       time.Time
	started     bool
	flows       Flows
	pending     *arrow // the last packet sent, printed once the next event shows it was not lost
}

type arrow struct {
	ts     string
	onLeft bool
	text   string
	pkt    []byte
}

// ladderWidth is the width of the two columns together; with the time
// column, lines fit in 80 characters.
const ladderWidth = 70

// NewLadder returns a ladder for two hosts, left and right, and prints its
// header. Events of any host other than left go to the right column.
func NewLadder(w io.Writer, left, right string) *Ladder {
	l := &Ladder{w: w, left: left, right: right, width: ladderWidth}
	fmt.Fprintf(w, "%8s  %-*s%s\n", "time", l.width-len(right), left, right)
	fmt.Fprintf(w, "%8s  %-*s%s\n", "", l.width-len(right), strings.Repeat("-", len(left)), strings.Repeat("-", len(right)))
	return l
}

// Event prints one event. Received packets are not printed: each packet is
// drawn once, as an arrow, when it is sent.
func (l *Ladder) Event(ev Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ev.Kind == PacketIn {
		return
	}
	if !l.started {
		l.start, l.started = ev.Time, true
	}
	ts := fmt.Sprintf("%8.3f", ev.Time.Sub(l.start).Seconds())
	onLeft := ev.Host == l.left
	if ev.Kind == Drop && l.pending != nil && bytes.Equal(l.pending.pkt, ev.Packet) {
		l.drawArrow(l.pending, true)
		l.pending = nil
		return
	}
	l.flushLocked()
	switch ev.Kind {
	case PacketOut:
		l.pending = &arrow{ts: ts, onLeft: onLeft, text: l.describe(ev.Packet), pkt: ev.Packet}
	case Drop:
		text := "X lost: " + l.describe(ev.Packet)
		fmt.Fprintf(l.w, "%s  %s\n", ts, center(text, l.width))
	case Transition:
		text := fmt.Sprintf("%s -> %s", ev.From, ev.To)
		if ev.Cause != "" {
			text += "  (" + ev.Cause + ")"
		}
		if l.Ports {
			text = connTag(ev) + text
		}
		l.column(ts, onLeft, text)
	case Call:
		l.column(ts, onLeft, ev.Text)
	case Timer:
		l.column(ts, onLeft, "(timer) "+ev.Text)
	case Note:
		for _, line := range Wrap(ev.Text, l.width-2) {
			fmt.Fprintf(l.w, "%8s  # %s\n", "", line)
		}
	}
}

// Flush prints the last arrow, held back in case the link lost it.
func (l *Ladder) Flush() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.flushLocked()
}

func (l *Ladder) flushLocked() {
	if l.pending != nil {
		l.drawArrow(l.pending, false)
		l.pending = nil
	}
}

// describe is the arrow's text for a packet.
func (l *Ladder) describe(pkt []byte) string {
	p, err := ParsePacket(pkt)
	if err != nil {
		return describeBad(pkt, err)
	}
	return Label(&l.flows, &p, l.Options, l.Ports)
}

func (l *Ladder) drawArrow(a *arrow, lost bool) {
	pad := max(l.width-4-len(a.text), 8)
	left := pad / 2
	right := pad - left
	var line string
	switch {
	case a.onLeft && !lost:
		line = dashes(left) + " " + a.text + " " + dashes(right) + ">"
	case a.onLeft:
		line = dashes(left) + " " + a.text + " --X"
	case !lost:
		line = "<" + dashes(left) + " " + a.text + " " + dashes(right)
	default:
		line = strings.Repeat(" ", max(left-2, 0)) + "X-- " + a.text + " " + dashes(right)
	}
	fmt.Fprintf(l.w, "%s  %s\n", a.ts, line)
}

// connTag names a transition's connection by its ports: "[80>40001] ", or
// "[:80] " for a listening socket.
func connTag(ev Event) string {
	switch {
	case !ev.Local.IsValid():
		return ""
	case !ev.Remote.IsValid():
		return fmt.Sprintf("[:%d] ", ev.Local.Port())
	}
	return fmt.Sprintf("[%d>%d] ", ev.Local.Port(), ev.Remote.Port())
}

func dashes(n int) string { return strings.Repeat("-", n) }

func (l *Ladder) column(ts string, onLeft bool, text string) {
	if onLeft {
		fmt.Fprintf(l.w, "%s  %s\n", ts, text)
		return
	}
	fmt.Fprintf(l.w, "%s  %*s\n", ts, l.width, text)
}

func center(s string, width int) string {
	if len(s) >= width {
		return s
	}
	return strings.Repeat(" ", (width-len(s))/2) + s
}

// Wrap splits text into lines of at most width characters, breaking at
// spaces; newlines in text start new lines. Printers of explanations use it.
func Wrap(text string, width int) []string {
	var lines []string
	for _, para := range strings.Split(text, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			switch {
			case line == "":
				line = word
			case len(line)+1+len(word) > width:
				lines = append(lines, line)
				line = word
			default:
				line += " " + word
			}
		}
		lines = append(lines, line)
	}
	return lines
}
