package tcp

import (
	"bytes"
	"testing"
)

// roomHost is a RoomHost whose link takes room more data segments; its
// segments go to e's outbox, as a test end's do.
type roomHost struct {
	e    *end
	room int
	said int // times Room said no
}

func (h *roomHost) Send(s *Segment) {
	cp := *s
	cp.Payload = bytes.Clone(s.Payload)
	h.e.out = append(h.e.out, cp)
	if len(s.Payload) > 0 {
		h.room--
	}
}

func (h *roomHost) Transition(from, to State, cause Cause) { h.e.path = append(h.e.path, to) }

func (h *roomHost) Room() bool {
	if h.room > 0 {
		return true
	}
	h.said++
	return false
}

// roomNet is a test net whose A sends through a roomHost.
func roomNet(t *testing.T) (*testNet, *roomHost) {
	n := newNet(t, nil)
	h := &roomHost{e: n.a, room: 1 << 30}
	n.a.c = new(Conn)
	n.a.c.Init(&Config{}, h, 1000, 0)
	n.handshake()
	return n, h
}

// A link without room holds the data: the connection sends only what the
// link takes, ACKs do not push more past it, and Push sends the rest once
// there is room; the peer gets every byte once, nothing is retransmitted.
func TestRoomHostHoldsData(t *testing.T) {
	n, h := roomNet(t)
	h.room = 3
	data := bytes.Repeat([]byte("0123456789abcdef"), 4096) // 64 KiB
	if k, err := n.a.c.Write(n.now, data); err != nil || k != len(data) {
		t.Fatalf("write: %d, %v", k, err)
	}
	if got := len(n.a.out); got != 3 {
		t.Fatalf("sent %d segments with room for 3", got)
	}
	n.settle() // the ACKs come back: still no room
	if h.said == 0 || n.b.c.Readable() != 3*n.a.c.opt.sndMSS {
		t.Fatalf("Room asked %d times no; B has %d bytes, want %d", h.said, n.b.c.Readable(), 3*n.a.c.opt.sndMSS)
	}
	h.room = 1 << 30
	n.a.c.Push(n.now)
	n.settle()
	if got := readAll(t, n, n.b); !bytes.Equal(got[:min(len(got), len(data))], data) || len(got) < len(data) {
		t.Fatalf("B read %d bytes, want the %d written", len(got), len(data))
	}
	if segs, _ := n.a.c.Retransmissions(); segs != 0 {
		t.Errorf("%d retransmissions", segs)
	}
}

// While the link has no room, neither the tail loss probe nor the
// retransmission timer resends (the segment may still be in the host's
// queue, as Linux's skb_still_in_host_queue): the RTO is tried again
// after half a second without backing off; once there is room, it
// retransmits.
func TestRoomHostDefersProbeAndRTO(t *testing.T) {
	n, h := roomNet(t)
	if _, err := n.a.c.Write(n.now, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	n.drop(n.a) // lost: only a timer can repair it
	h.room = 0
	start := n.now
	for range 3 {
		n.now = n.a.c.Deadline()
		n.a.c.Tick(n.now)
	}
	if len(n.a.out) != 0 {
		t.Fatalf("sent %d segments with no room", len(n.a.out))
	}
	info := n.a.c.Info(n.now)
	if info.Backoff != 0 || info.TotalRetrans != 0 {
		t.Fatalf("backoff %d, %d retransmissions with no room", info.Backoff, info.TotalRetrans)
	}
	if d := n.a.c.Deadline().Sub(n.now); d != resourceProbeInterval {
		t.Errorf("next try in %v, want %v (after %v)", d, resourceProbeInterval, n.now.Sub(start))
	}
	h.room = 1 << 30
	n.now = n.a.c.Deadline()
	n.a.c.Tick(n.now)
	if len(n.a.out) != 1 || len(n.a.out[0].Payload) != 1000 {
		t.Fatalf("with room: sent %d segments, want the lost one again", len(n.a.out))
	}
	n.settle()
	if n.b.c.Readable() != 1000 {
		t.Errorf("B has %d bytes, want 1000", n.b.c.Readable())
	}
}
