package tcp

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/wire"
)

// arrows are the transitions of the RFC 9293 diagram, plus the ones every
// real TCP adds for aborts, resets and timeouts (to CLOSED from any state).
var arrows = map[[2]State]bool{
	{Closed, Listen}: true, {Closed, SynSent}: true,
	{Listen, SynRcvd}: true, {Listen, Closed}: true, {Listen, SynSent}: true,
	{SynSent, SynRcvd}: true, {SynSent, Established}: true, {SynSent, Closed}: true,
	{SynRcvd, Established}: true, {SynRcvd, FinWait1}: true, {SynRcvd, Listen}: true,
	{SynRcvd, Closed}: true, {SynRcvd, CloseWait}: true,
	{Established, FinWait1}: true, {Established, CloseWait}: true, {Established, Closed}: true,
	{FinWait1, FinWait2}: true, {FinWait1, Closing}: true, {FinWait1, TimeWait}: true, {FinWait1, Closed}: true,
	{FinWait2, TimeWait}: true, {FinWait2, Closed}: true,
	{CloseWait, LastAck}: true, {CloseWait, Closed}: true,
	{Closing, TimeWait}: true, {Closing, Closed}: true,
	{LastAck, Closed}:  true,
	{TimeWait, Closed}: true,
}

// fuzzPair runs two connections over a network the fuzzer controls (deliver,
// drop, duplicate, reorder), with user calls and forged segments mixed in,
// and checks invariants after every step and the byte streams at the end.
func fuzzPair(t *testing.T, prog []byte) {
	now := time.Unix(5000, 0)
	type side struct {
		c     *Conn
		q     []Segment
		wrote []byte
		read  []byte
	}
	var s [2]*side
	var badArrow string
	// Both sides charge one budget (memory.go): a roomy one, or, when the
	// program's first byte says so, one so tight that the pair lives under
	// pressure and past the high mark.
	mem := NewMemory(MemoryLimits{Low: 1 << 20, Pressure: 2 << 20, High: 4 << 20})
	if len(prog) > 0 && prog[0]&2 != 0 {
		mem = NewMemory(MemoryLimits{Low: 2048, Pressure: 4096, High: 6144})
	}
	for i := range s {
		i := i
		s[i] = &side{}
		var put func(seg *Segment)
		cfg := Config{
			RcvBuf: 2048, SndBuf: 4096, MSS: 100, Memory: mem,
			// A segment for the link to cut (TSO) goes on the network
			// as its pieces, as a TSO device sends it.
			Output: func(seg *Segment) { cutGSO(seg, put) },
			OnTransition: func(from, to State, cause Cause) {
				if !arrows[[2]State{from, to}] && badArrow == "" {
					badArrow = fmt.Sprintf("side %d: %s -> %s (%s)", i, from, to, cause)
				}
			},
		}
		put = func(seg *Segment) {
			if c := s[i].c; c != nil && badArrow == "" {
				end := seg.SEQ.Add(seq.Size(len(seg.Payload)))
				if seg.Flags&flagRST == 0 && seg.SEQ.LessThan(c.snd.nxt) && end.GreaterThan(c.snd.nxt) {
					badArrow = fmt.Sprintf("side %d resent %d+%d past SND.NXT %d", i, seg.SEQ, len(seg.Payload), c.snd.nxt)
				}
			}
			h := wire.TCP{Options: seg.Options}
			if len(seg.Payload)+h.OptionsLen() > 100 && badArrow == "" {
				badArrow = fmt.Sprintf("side %d sent %d bytes of data and %d of options: over the MSS 100", i, len(seg.Payload), h.OptionsLen())
			}
			cp := *seg
			cp.Payload = append([]byte(nil), seg.Payload...)
			s[i].q = append(s[i].q, cp)
		}
		if len(prog) > 0 && prog[0]&1 != 0 {
			cfg.NoTimestamps = true
		}
		if len(prog) > 0 && prog[0]&4 != 0 {
			cfg.SegmentOffload = 1000 // the link cuts segments: Output above
		}
		s[i].c = NewConn(cfg, seq.Value(uint32(i)*0x7fff0000+uint32(len(prog))))
	}
	s[1].c.Listen()
	s[0].c.Connect(now)
	counter := byte(0)
	next := func() byte {
		if len(prog) == 0 {
			return 0
		}
		b := prog[0]
		prog = prog[1:]
		return b
	}
	check := func(step int) {
		if badArrow != "" {
			t.Fatalf("step %d: transition off the diagram: %s", step, badArrow)
		}
		held := 0
		for _, x := range s {
			held += len(x.c.rq.buf) + len(x.c.sq.buf)
		}
		if int64(held) != mem.Used() {
			t.Fatalf("step %d: the rings hold %d bytes, the budget says %d", step, held, mem.Used())
		}
		// Past High, each of the four rings may hold only one forced buffer
		// of minRing more.
		if lim := mem.Limits().High + 4*minRing; mem.Used() > lim {
			t.Fatalf("step %d: %d bytes charged, over the budget's %d", step, mem.Used(), lim)
		}
		for i, x := range s {
			c := x.c
			if c.snd.nxt.LessThan(c.snd.una) || c.snd.max.LessThan(c.snd.nxt) {
				t.Fatalf("step %d side %d: SND.UNA %d SND.NXT %d SND.MAX %d out of order", step, i, c.snd.una, c.snd.nxt, c.snd.max)
			}
			if err := c.checkQueues(); err != nil {
				t.Fatalf("step %d side %d: %v", step, i, err)
			}
			if w := c.rcvWindowNow(); c.state.Synchronized() && int(w) > c.rcvCapacity()+(1<<c.opt.rcvShift) {
				t.Fatalf("step %d side %d: window %d beyond the buffer's capacity %d", step, i, w, c.rcvCapacity())
			}
			if c.state == Closed && !c.Deadline().IsZero() {
				t.Fatalf("step %d side %d: timers armed in CLOSED", step, i)
			}
		}
	}
	for step := 0; len(prog) > 0; step++ {
		op := next()
		who := s[op&1]
		other := s[1-op&1]
		switch (op >> 1) % 12 {
		case 0, 1, 2: // deliver the oldest segment
			if len(who.q) > 0 {
				seg := who.q[0]
				who.q = who.q[1:]
				other.c.Input(now, &seg)
			}
		case 3: // drop one
			if len(who.q) > 0 {
				who.q = who.q[1:]
			}
		case 4: // duplicate or reorder
			if len(who.q) > 1 {
				if next()&1 == 0 {
					who.q = append(who.q, who.q[0])
				} else {
					who.q[0], who.q[1] = who.q[1], who.q[0]
				}
			}
		case 5: // write
			counter++
			p := bytes.Repeat([]byte{counter}, int(next())*3)
			n, _ := who.c.Write(now, p)
			who.wrote = append(who.wrote, p[:n]...)
		case 6: // read
			buf := make([]byte, int(next())*4)
			n, _ := who.c.Read(now, buf)
			who.read = append(who.read, buf[:n]...)
		case 7: // time passes
			d := time.Duration(next()) * 50 * time.Millisecond
			if next()&7 == 0 {
				d = time.Duration(next()) * time.Second
			}
			now = now.Add(d)
			for _, x := range s {
				if dl := x.c.Deadline(); !dl.IsZero() && !now.Before(dl) {
					x.c.Tick(now)
				}
			}
		case 8: // shutdown
			who.c.Shutdown(now, int(next()%3))
		case 9: // close or abort
			if next()&3 == 0 {
				who.c.Abort(now)
			} else {
				who.c.Close(now)
			}
		case 10: // a forged segment near the receiver's sequence space
			f := Segment{
				SEQ:   other.c.rcv.nxt.Add(seq.Size(int8(next()))),
				ACK:   other.c.snd.una.Add(seq.Size(int8(next()))),
				Flags: wire.TCPFlags(next()) & (flagSYN | flagACK | flagRST | flagFIN | flagPSH),
				WND:   uint16(next()) << 4,
			}
			if next()&1 == 1 {
				f.Payload = bytes.Repeat([]byte{0xee}, int(next()%64))
			}
			if next()&1 == 1 {
				f.Options.HasTimestamp = true
				f.Options.TSVal = uint32(next()) << 8
			}
			other.c.Input(now, &f)
		case 11: // set options
			who.c.SetNoDelay(now, next()&1 == 0)
		}
		check(step)
	}
	// The streams: what each side read is a prefix of what the other wrote,
	// unless forged data was accepted into it (0xee bytes).
	for i, x := range s {
		w := s[1-i].wrote
		r := x.read
		if bytes.IndexByte(r, 0xee) >= 0 {
			continue
		}
		if len(r) > len(w) || !bytes.Equal(r, w[:len(r)]) {
			t.Fatalf("side %d read %d bytes that are not a prefix of the %d written", i, len(r), len(w))
		}
	}
}

func FuzzConnPair(f *testing.F) {
	// Seeds: a handshake, data, a close, losses and timeouts.
	f.Add([]byte{0, 1, 0, 1, 10, 40, 0, 0, 0, 0, 12, 100, 13, 100, 18, 1, 14, 9, 0, 1, 0, 1})
	f.Add([]byte{1, 0, 2, 0, 1, 10, 255, 10, 255, 6, 6, 14, 200, 0, 0, 0, 0, 1, 1, 1, 1, 14, 200, 14, 200, 14, 200})
	f.Add([]byte{0, 1, 0, 20, 1, 16, 3, 4, 5, 6, 0, 1, 0, 1, 18, 2, 0, 1, 19, 1, 0, 1, 14, 0, 255, 14, 0, 255})
	f.Add([]byte{0, 1, 0, 21, 0, 0, 0, 0, 5, 5, 5, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 14, 60, 0})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 4096 {
			return
		}
		fuzzPair(t, prog)
	})
}

// TestConnPairRandom runs the fuzz harness on pseudo-random programs, so the
// invariants are exercised on every go test even without -fuzz.
func TestConnPairRandom(t *testing.T) {
	x := uint64(0x9e3779b97f4a7c15)
	for run := 0; run < 300; run++ {
		prog := make([]byte, 600)
		for i := range prog {
			x ^= x << 13
			x ^= x >> 7
			x ^= x << 17
			prog[i] = byte(x)
			// Bias towards delivery so connections get somewhere.
			if prog[i]>>1%12 > 8 && x&3 != 0 {
				prog[i] &^= 0x1e
			}
		}
		t.Run(fmt.Sprint(run), func(t *testing.T) { fuzzPair(t, prog) })
	}
}
