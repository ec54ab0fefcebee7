package main

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link/pcap"
	"github.com/synstack/synstack/trace"
	"github.com/synstack/synstack/wire"
)

// Export: the session as a packet script that synstack script replays,
// and as a pcap. In the script, host A is the stack under test and host
// B becomes the script's remote side: A's calls at their virtual times,
// every packet A sent as a ">" line, every packet delivered to A as a
// "<" line. The tape is what the script is written from; the capture is
// every packet either host sent.

// playMaxTape bounds the tape and the capture (entries each); a longer
// session cannot be exported.
const playMaxTape = 20000

// playTapeEntry is one line of the script to be: a call of A's (Call
// set) or a packet A sent (Out) or was delivered (In).
type playTapeEntry struct {
	Ms   int64
	Call *playCall
	Res  playResult
	Out  bool
	Pkt  []byte
}

// playCapture is one packet either host sent, for the pcap.
type playCapture struct {
	At  time.Time
	Pkt []byte
}

// tapeLocked adds an entry (at the end, or at index at if at >= 0).
// pg.qmu is held.
func (pg *playground) tapeLocked(e playTapeEntry, at int) {
	if len(pg.tape) >= playMaxTape {
		pg.tapeFull = true
		return
	}
	pg.tape = append(pg.tape, e)
	if at >= 0 && at < len(pg.tape)-1 {
		copy(pg.tape[at+1:], pg.tape[at:len(pg.tape)-1])
		pg.tape[at] = e
	}
}

// captureLocked keeps a sent packet for the pcap. pg.qmu is held.
func (pg *playground) captureLocked(pkt []byte) {
	if len(pg.captured) >= playMaxTape {
		pg.tapeFull = true
		return
	}
	pg.captured = append(pg.captured, playCapture{At: pg.clk.Now(), Pkt: pkt})
}

// exportPcap writes every packet either host sent, at its virtual time.
func (pg *playground) exportPcap() ([]byte, error) {
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	if pg.tapeFull {
		return nil, fmt.Errorf("the session sent more than %d packets: too long to export", playMaxTape)
	}
	var b bytes.Buffer
	w, err := pcap.NewWriter(&b)
	if err != nil {
		return nil, err
	}
	for _, c := range pg.captured {
		if err := w.WritePacket(c.At, c.Pkt); err != nil {
			return nil, err
		}
	}
	return b.Bytes(), nil
}

// exportScript writes the session as a packet script.
func (pg *playground) exportScript() (string, error) {
	pg.qmu.Lock()
	defer pg.qmu.Unlock()
	if pg.tapeFull {
		return "", fmt.Errorf("the session is longer than %d calls and packets: too long to export", playMaxTape)
	}
	var b strings.Builder
	b.WriteString("// A synstack play session. Host A is the stack under test; host B is the\n")
	b.WriteString("// script's remote side. Replay: synstack script --strict FILE\n")
	fmt.Fprintf(&b, "// Session: %s\n\n", pg.sessionText())
	isn := map[trace.FlowKey]uint32{}
	for _, e := range pg.tape {
		at := fmt.Sprintf("%d.%03d", e.Ms/1000, e.Ms%1000)
		if e.Call != nil {
			for _, line := range scriptCall(*e.Call, e.Res) {
				fmt.Fprintf(&b, "%8s %s\n", at, line)
			}
			continue
		}
		line, err := scriptPacket(e.Pkt, e.Out, isn)
		if err != nil {
			return "", fmt.Errorf("at %s ms: %v", at, err)
		}
		fmt.Fprintf(&b, "%8s %s\n", at, line)
	}
	return b.String(), nil
}

// scriptCall writes a call of A's as script lines: each socket is made
// non-blocking by fcntl, as the playground's are.
func scriptCall(c playCall, r playResult) []string {
	var call string
	switch c.Op {
	case "socket":
		call = "socket(..., SOCK_STREAM, IPPROTO_TCP)"
	case "bind":
		call = fmt.Sprintf("bind(%d, ..., ...)", c.FD)
	case "connect":
		call = fmt.Sprintf("connect(%d, ..., ...)", c.FD)
	case "listen":
		call = fmt.Sprintf("listen(%d, %d)", c.FD, c.Backlog)
	case "accept":
		call = fmt.Sprintf("accept(%d, ..., ...)", c.FD)
	case "write":
		call = fmt.Sprintf("write(%d, ..., %d)", c.FD, c.N)
	case "read":
		call = fmt.Sprintf("read(%d, ..., %d)", c.FD, playReadLen(c.N))
	case "shutdown":
		call = fmt.Sprintf("shutdown(%d, SHUT_%s)", c.FD, c.How)
	case "close", "dup":
		call = fmt.Sprintf("%s(%d)", c.Op, c.FD)
	default:
		o := playOptions[c.Op]
		if o.name == "SO_LINGER" {
			call = fmt.Sprintf("setsockopt(%d, SOL_SOCKET, SO_LINGER, {onoff=%d, linger=%d}, 8)", c.FD, b2i(c.Value >= 0), max(c.Value, 0))
		} else {
			call = fmt.Sprintf("setsockopt(%d, %s, %s, [%d], 4)", c.FD, o.levelName, o.name, c.Value)
		}
	}
	if r.Ret < 0 {
		return []string{fmt.Sprintf("%s = -1 %s (%s)", call, r.Errno, r.Meaning)}
	}
	lines := []string{fmt.Sprintf("%s = %d", call, r.Ret)}
	if c.Op == "socket" || c.Op == "accept" {
		lines = append(lines, fmt.Sprintf("fcntl(%d, F_SETFL, O_RDWR|O_NONBLOCK) = 0", r.Ret))
	}
	return lines
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// scriptPacket writes a packet as a script line, its sequence numbers
// relative to each direction's ISN (learned from its SYN, kept in isn).
func scriptPacket(pkt []byte, out bool, isn map[trace.FlowKey]uint32) (string, error) {
	p, err := trace.ParsePacket(pkt)
	if err != nil {
		return "", err
	}
	t := &p.TCP
	f := trace.FlowKey{Src: p.Src, Dst: p.Dst}
	if _, ok := isn[f]; !ok && t.Flags&wire.FlagSYN != 0 {
		isn[f] = t.Seq
	}
	seqBase, ok := isn[f]
	if !ok {
		return "", fmt.Errorf("a packet of %s > %s, whose SYN the script never saw", f.Src, f.Dst)
	}
	ackBase, ackKnown := isn[f.Reverse()]
	dir := "<"
	if out {
		dir = ">"
	}
	s := t.Seq - seqBase
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %d:%d(%d)", dir, t.Flags, s, s+uint32(p.PayloadLen), p.PayloadLen)
	if t.Flags&wire.FlagACK != 0 {
		if !ackKnown {
			return "", fmt.Errorf("an ACK of %s > %s before the other side's SYN", f.Src, f.Dst)
		}
		fmt.Fprintf(&b, " ack %d", t.Ack-ackBase)
	}
	fmt.Fprintf(&b, " win %d", t.Window)
	if len(p.Options) > 0 {
		parts := make([]string, len(p.Options))
		for i, o := range p.Options {
			parts[i] = o.String()
			if o.Kind == wire.OptSACK {
				// SACK blocks are the other side's sequence numbers.
				sack := "sack"
				for j := 0; j+8 <= len(o.Data); j += 8 {
					sack += fmt.Sprintf(" %d:%d", be32(o.Data[j:])-ackBase, be32(o.Data[j+4:])-ackBase)
				}
				parts[i] = sack
			}
		}
		b.WriteString(" <" + strings.Join(parts, ",") + ">")
	}
	return b.String(), nil
}

func be32(b []byte) uint32 {
	return uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3])
}

// playOption is a socket option the panel sets.
type playOption struct {
	level     int
	levelName string
	opt       int
	name      string
}

// playOptions are the options the panel sets, by call name.
var playOptions = map[string]playOption{
	"reuseaddr": {synstack.SOL_SOCKET, "SOL_SOCKET", synstack.SO_REUSEADDR, "SO_REUSEADDR"},
	"reuseport": {synstack.SOL_SOCKET, "SOL_SOCKET", synstack.SO_REUSEPORT, "SO_REUSEPORT"},
	"keepalive": {synstack.SOL_SOCKET, "SOL_SOCKET", synstack.SO_KEEPALIVE, "SO_KEEPALIVE"},
	"sndbuf":    {synstack.SOL_SOCKET, "SOL_SOCKET", synstack.SO_SNDBUF, "SO_SNDBUF"},
	"rcvbuf":    {synstack.SOL_SOCKET, "SOL_SOCKET", synstack.SO_RCVBUF, "SO_RCVBUF"},
	"nodelay":   {synstack.IPPROTO_TCP, "IPPROTO_TCP", synstack.TCP_NODELAY, "TCP_NODELAY"},
	"linger":    {synstack.SOL_SOCKET, "SOL_SOCKET", synstack.SO_LINGER, "SO_LINGER"},
}
