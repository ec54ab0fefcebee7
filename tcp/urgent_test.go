package tcp_test

import (
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
	"github.com/synstack/synstack/tcp/tcptest"
	"github.com/synstack/synstack/wire"
)

// urgSeg is a segment from the peer carrying data at rel (relative to its
// ISN) with URG and urgent pointer up.
func urgSeg(rel int, data string, up uint16) *tcp.Segment {
	return &tcp.Segment{
		SEQ: tcptest.PeerISS.Add(seq.Size(rel)), ACK: tcptest.LocalISS.Add(1),
		Flags: wire.FlagACK | wire.FlagURG, WND: 512, UP: up, Payload: []byte(data),
	}
}

// urgEstablished returns a passive connection in ESTABLISHED.
func urgEstablished(t *testing.T, cfg tcp.Config) *tcptest.Conn {
	c := tcptest.New(t, cfg)
	c.Listen()
	c.In("S 0:0(0) win 65535 <mss 1460,sackOK,nop,wscale 7>")
	c.Out("S. 0:0(0) ack 1")
	c.In(". 1:1(0) ack 1 win 512")
	c.State(tcp.Established)
	return c
}

// readUpTo100 reads up to 100 bytes.
func readUpTo100(c *tcptest.Conn) (string, error) {
	b := make([]byte, 100)
	n, err := c.Conn().Read(c.Now(), b)
	return string(b[:n]), err
}

// TestUrgentPointerLater: a pointer beyond its segment's data waits for
// the segment that brings the byte: until then MSG_OOB is EAGAIN and
// reads stop at the mark all the same.
func TestUrgentPointerLater(t *testing.T) {
	c := urgEstablished(t, tcp.Config{})
	conn := c.Conn()
	conn.Input(c.Now(), urgSeg(1, "hello", 8)) // the urgent byte is the 8th: not here
	if _, err := conn.ReadUrgent(c.Now(), false); !errors.Is(err, syscall.EAGAIN) {
		t.Fatalf("ReadUrgent before the byte: %v, want EAGAIN", err)
	}
	if got, err := readUpTo100(c); got != "hello" || err != nil {
		t.Fatalf("read %q, %v", got, err)
	}
	conn.Input(c.Now(), &tcp.Segment{SEQ: tcptest.PeerISS.Add(6), ACK: tcptest.LocalISS.Add(1),
		Flags: wire.FlagACK, WND: 512, Payload: []byte("abcd")})
	if got, _ := readUpTo100(c); got != "ab" || !conn.AtMark() {
		t.Fatalf("read %q, at mark %v; want ab and the mark", got, conn.AtMark())
	}
	if b, err := conn.ReadUrgent(c.Now(), false); b != 'c' || err != nil {
		t.Fatalf("ReadUrgent %q, %v; want c", b, err)
	}
	if got, _ := readUpTo100(c); got != "d" {
		t.Fatalf("read %q; want d", got)
	}
}

// TestUrgentNewerPointer: a second pointer replaces the first; the first
// urgent byte, unread, stays in the stream.
func TestUrgentNewerPointer(t *testing.T) {
	c := urgEstablished(t, tcp.Config{})
	conn := c.Conn()
	conn.Input(c.Now(), urgSeg(1, "abc", 2))  // urgent: b
	conn.Input(c.Now(), urgSeg(4, "defg", 3)) // urgent: f
	if b, err := conn.ReadUrgent(c.Now(), false); b != 'f' || err != nil {
		t.Fatalf("ReadUrgent %q, %v; want f", b, err)
	}
	if got, _ := readUpTo100(c); got != "abcde" {
		t.Fatalf("read %q; want abcde", got)
	}
	if got, _ := readUpTo100(c); got != "g" {
		t.Fatalf("read %q; want g", got)
	}
	// A pointer before RCV.NXT (a replay) is ignored.
	conn.Input(c.Now(), urgSeg(1, "", 1))
	if _, err := conn.ReadUrgent(c.Now(), false); !errors.Is(err, syscall.EINVAL) {
		t.Fatalf("ReadUrgent after a replayed pointer: %v, want EINVAL", err)
	}
}

// TestUrgentSend: a write with MSG_OOB marks its segments with URG and
// the pointer past its end, Nagle holds none of them back, and once
// acknowledged the marks stop.
func TestUrgentSend(t *testing.T) {
	var ups []uint16 // the urgent pointer of each segment sent
	c := urgEstablished(t, tcp.Config{Output: func(seg *tcp.Segment) {
		if seg.Flags&wire.FlagURG != 0 {
			ups = append(ups, seg.UP)
		}
	}})
	conn := c.Conn()
	c.Write("a")
	c.Out("P. 1:2(1) ack 1")
	if n, err := conn.WriteMsg(c.Now(), []byte("bc"), tcp.WriteFlags{OOB: true}); n != 2 || err != nil {
		t.Fatalf("WriteMsg OOB: %d, %v", n, err)
	}
	// Nagle would hold "bc" while "a" is unacknowledged.
	c.Out("P.U 2:4(2) ack 1")
	c.Advance(10 * time.Millisecond)
	c.In(". 1:1(0) ack 2 win 512")
	// Data after the urgent byte: no mark (the pointer is behind it).
	c.Write("d")
	c.Out("P. 4:5(1) ack 1")
	if len(ups) != 1 || ups[0] != 2 {
		t.Fatalf("urgent pointers %v; want [2]: one past the urgent byte", ups)
	}
}

// FuzzUrgent feeds a connection segments with any urgent pointer, data
// and sequence number near RCV.NXT, and reads in every way: nothing
// panics, a read never returns more than was sent, and without URG the
// stream is untouched.
func FuzzUrgent(f *testing.F) {
	f.Add([]byte{1, 5, 8, 0, 3, 0xff, 2})
	f.Add([]byte{0, 0, 0, 9, 9, 9, 1, 1, 1})
	f.Fuzz(func(t *testing.T, ops []byte) {
		c := urgEstablished(t, tcp.Config{OOBInline: len(ops) > 0 && ops[0]&0x80 != 0})
		conn := c.Conn()
		next := func() byte {
			if len(ops) == 0 {
				return 0
			}
			b := ops[0]
			ops = ops[1:]
			return b
		}
		rel, got, sentN := 1, 0, 0
		for len(ops) > 0 {
			switch next() % 4 {
			case 0, 1:
				n := int(next() % 32)
				off := int(int8(next())) % 8
				seg := urgSeg(rel+off, string(make([]byte, n)), uint16(next())<<int(next()%9))
				if next()&1 == 0 {
					seg.Flags &^= wire.FlagURG
				}
				conn.Input(c.Now(), seg)
				if off == 0 {
					rel += n
					sentN += n
				}
			case 2:
				s, _ := readUpTo100(c)
				got += len(s)
			case 3:
				_, _ = conn.ReadUrgent(c.Now(), next()&1 == 0)
				_ = conn.AtMark()
			}
			if got > sentN+64 || conn.Readable() < 0 {
				t.Fatalf("read %d of %d sent, readable %d", got, sentN, conn.Readable())
			}
		}
	})
}
