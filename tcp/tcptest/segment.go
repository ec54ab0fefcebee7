package tcptest

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// spec is one segment of a trace line, its sequence numbers relative as
// packetdrill writes them: SEQ from the sender's ISN, ACK and SACK blocks
// from the receiver's. What a line leaves out (the window, the options)
// is not compared.
type spec struct {
	flags    wire.TCPFlags
	seq, end uint32
	ack      uint32
	win      uint16
	hasWin   bool
	hasOpts  bool // the line has <...>: the options are compared, all of them
	opts     wire.TCPOptions
}

// flagChars are the flags as packetdrill writes them ('.' is ACK).
var flagChars = map[byte]wire.TCPFlags{
	'S': wire.FlagSYN, 'F': wire.FlagFIN, 'R': wire.FlagRST, 'P': wire.FlagPSH,
	'.': wire.FlagACK, 'E': wire.FlagECE, 'W': wire.FlagCWR, 'U': wire.FlagURG,
}

// parse reads a line of the form
//
//	FLAGS SEQ:END(LEN) [ack N] [win N] [<option,...>]
//
// for instance "S. 0:0(0) ack 1 win 65535 <mss 1460,sackOK,TS val 1 ecr 0,nop,wscale 8>".
// The options are mss N, wscale N, sackOK, TS val N ecr N, sack L:R ...,
// and nop and eol, which are accepted and ignored (a tcp.Segment keeps
// the options' values, not their wire order).
func parse(line string) (spec, error) {
	var s spec
	head, opts, hasOpts := strings.Cut(line, "<")
	if hasOpts {
		body, rest, ok := strings.Cut(opts, ">")
		if !ok || strings.TrimSpace(rest) != "" {
			return s, fmt.Errorf("options: want <...> at the end of the line")
		}
		s.hasOpts = true
		if err := parseOptions(body, &s.opts); err != nil {
			return s, err
		}
	}
	f := strings.Fields(head)
	if len(f) < 2 {
		return s, fmt.Errorf("want FLAGS SEQ:END(LEN), got %q", strings.TrimSpace(head))
	}
	if f[0] != "-" {
		for i := range len(f[0]) {
			b, ok := flagChars[f[0][i]]
			if !ok {
				return s, fmt.Errorf("flags %q: %q is not one of S F R P . E W U", f[0], f[0][i])
			}
			s.flags |= b
		}
	}
	if err := parseRange(f[1], &s); err != nil {
		return s, err
	}
	for f = f[2:]; len(f) > 0; f = f[2:] {
		if len(f) < 2 {
			return s, fmt.Errorf("%q wants a number after it", f[0])
		}
		n, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			return s, fmt.Errorf("%s %q: %v", f[0], f[1], err)
		}
		switch f[0] {
		case "ack":
			if s.flags&wire.FlagACK == 0 {
				return s, fmt.Errorf("ack %d without the ACK flag ('.')", n)
			}
			s.ack = uint32(n)
		case "win":
			if n > 0xffff {
				return s, fmt.Errorf("win %d: the field has 16 bits", n)
			}
			s.win, s.hasWin = uint16(n), true
		default:
			return s, fmt.Errorf("unknown field %q (want ack, win, <options>)", f[0])
		}
	}
	return s, nil
}

// parseRange reads SEQ:END(LEN).
func parseRange(w string, s *spec) error {
	var n uint32
	if _, err := fmt.Sscanf(w, "%d:%d(%d)", &s.seq, &s.end, &n); err != nil {
		return fmt.Errorf("%q: want SEQ:END(LEN): %v", w, err)
	}
	if s.end-s.seq != n {
		return fmt.Errorf("%q: END-SEQ is %d, LEN %d", w, s.end-s.seq, n)
	}
	return nil
}

// parseOptions reads the comma-separated options between < and >.
func parseOptions(body string, o *wire.TCPOptions) error {
	if strings.TrimSpace(body) == "" {
		return nil
	}
	for _, item := range strings.Split(body, ",") {
		f := strings.Fields(item)
		if len(f) == 0 {
			return fmt.Errorf("options: an empty item in <%s>", body)
		}
		num := func(i int, bits int) (uint64, error) {
			if i >= len(f) {
				return 0, fmt.Errorf("option %q: a number is missing", item)
			}
			return strconv.ParseUint(f[i], 10, bits)
		}
		var err error
		var n uint64
		switch {
		case f[0] == "nop" || f[0] == "eol":
		case f[0] == "md5" && len(f) <= 2:
			// The digest is the stack's to fill: only its presence counts.
			o.HasMD5 = true
		case f[0] == "sackOK":
			o.SACKPermitted = true
		case f[0] == "mss":
			n, err = num(1, 16)
			o.MSS = uint16(n)
		case f[0] == "wscale":
			n, err = num(1, 8)
			o.HasWScale, o.WScale = true, uint8(n)
		case f[0] == "TS" && len(f) == 5 && f[1] == "val" && f[3] == "ecr":
			o.HasTimestamp = true
			if n, err = num(2, 32); err == nil {
				o.TSVal = uint32(n)
				n, err = num(4, 32)
				o.TSEcr = uint32(n)
			}
		case f[0] == "sack" && len(f) > 1 && len(f) <= 1+len(o.SACK):
			for i, b := range f[1:] {
				if _, err = fmt.Sscanf(b, "%d:%d", &o.SACK[i].Left, &o.SACK[i].Right); err != nil {
					break
				}
			}
			o.NumSACK = uint8(len(f) - 1)
		default:
			return fmt.Errorf("option %q: want mss N, wscale N, sackOK, md5, TS val N ecr N, sack L:R..., nop or eol", strings.TrimSpace(item))
		}
		if err != nil {
			return fmt.Errorf("option %q: %v", strings.TrimSpace(item), err)
		}
	}
	return nil
}

// toSegment makes the segment a spec describes, arriving from the peer:
// sequence numbers from the peer's ISN, acknowledgments and SACK blocks
// from ours. The payload is zeros, as packetdrill's.
func (s *spec) toSegment(peer, local seq.Value) tcp.Segment {
	seg := tcp.Segment{
		SEQ:     peer.Add(seq.Size(s.seq)),
		Flags:   s.flags,
		WND:     s.win,
		Options: s.opts,
		Payload: make([]byte, s.end-s.seq),
	}
	if s.flags&wire.FlagACK != 0 {
		seg.ACK = local.Add(seq.Size(s.ack))
	}
	for i := range seg.Options.NumSACK {
		b := &seg.Options.SACK[i]
		b.Left, b.Right = uint32(local.Add(seq.Size(b.Left))), uint32(local.Add(seq.Size(b.Right)))
	}
	if !s.hasWin {
		seg.WND = 65535
	}
	return seg
}

// fromSegment is the spec of a segment the connection sent, relative to
// its ISN (local) and the peer's, every field present.
func fromSegment(seg *tcp.Segment, local, peer seq.Value) spec {
	s := spec{
		flags:   seg.Flags,
		seq:     uint32(seg.SEQ.Sub(local)),
		win:     seg.WND,
		hasWin:  true,
		hasOpts: true,
		opts:    seg.Options,
	}
	s.end = s.seq + uint32(len(seg.Payload))
	if seg.Flags&wire.FlagACK != 0 {
		s.ack = uint32(seg.ACK.Sub(peer))
	}
	for i := range s.opts.NumSACK {
		b := &s.opts.SACK[i]
		b.Left, b.Right = uint32(seq.Value(b.Left).Sub(peer)), uint32(seq.Value(b.Right).Sub(peer))
	}
	return s
}

// String writes s in the syntax parse reads.
func (s spec) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %d:%d(%d)", s.flags, s.seq, s.end, s.end-s.seq)
	if s.flags&wire.FlagACK != 0 {
		fmt.Fprintf(&b, " ack %d", s.ack)
	}
	if s.hasWin {
		fmt.Fprintf(&b, " win %d", s.win)
	}
	if s.hasOpts {
		b.WriteString(" <" + strings.Join(optionItems(&s.opts), ",") + ">")
	}
	return b.String()
}

// optionItems lists the options present, in the order Linux sends a SYN's.
func optionItems(o *wire.TCPOptions) []string {
	var items []string
	if o.HasMD5 {
		items = append(items, "md5")
	}
	if o.MSS != 0 {
		items = append(items, fmt.Sprintf("mss %d", o.MSS))
	}
	if o.SACKPermitted {
		items = append(items, "sackOK")
	}
	if o.HasTimestamp {
		items = append(items, fmt.Sprintf("TS val %d ecr %d", o.TSVal, o.TSEcr))
	}
	if o.HasWScale {
		items = append(items, fmt.Sprintf("wscale %d", o.WScale))
	}
	if o.NumSACK > 0 {
		blocks := make([]string, o.NumSACK)
		for i := range blocks {
			blocks[i] = fmt.Sprintf("%d:%d", o.SACK[i].Left, o.SACK[i].Right)
		}
		items = append(items, "sack "+strings.Join(blocks, " "))
	}
	return items
}

// diff lists the fields where got differs from want, one per line; only
// the fields want has are compared.
func diff(want, got spec) []string {
	var d []string
	field := func(name string, w, g any) {
		if w != g {
			d = append(d, fmt.Sprintf("%s: want %v, got %v", name, w, g))
		}
	}
	field("flags", want.flags, got.flags)
	field("seq", want.seq, got.seq)
	field("len", want.end-want.seq, got.end-got.seq)
	if want.flags&wire.FlagACK != 0 && got.flags&wire.FlagACK != 0 {
		field("ack", want.ack, got.ack)
	}
	if want.hasWin {
		field("win", want.win, got.win)
	}
	if want.hasOpts {
		w, g := optionItems(&want.opts), optionItems(&got.opts)
		if strings.Join(w, ",") != strings.Join(g, ",") {
			d = append(d, fmt.Sprintf("options: want <%s>, got <%s>", strings.Join(w, ","), strings.Join(g, ",")))
		}
	}
	return d
}
