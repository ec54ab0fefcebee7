package synstack

import (
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/wire"
)

// inputClock is a clock that, the first time input reads it after armed
// is set, runs hook before handing back the reading: it stands for
// whatever ran between that read and the moment input got its shard's
// lock (a timer, a writer, the scheduler giving the thread to another
// process).
type inputClock struct {
	clock.Clock
	armed bool
	hook  func()
}

func (c *inputClock) Now() time.Time {
	now := c.Clock.Now()
	if c.armed {
		if pc, _, _, ok := runtime.Caller(1); ok && strings.HasSuffix(runtime.FuncForPC(pc).Name(), ".(*Host).inputBatch") {
			// Input has its reading; the rest of the world moves on
			// before it takes the lock.
			c.armed = false
			c.hook()
		}
	}
	return now
}

// TestTimestampsNeverGoBack: a segment the stack sends carries a TSval no
// older than one it already sent on the connection (RFC 7323 5.3: the
// receiver's PAWS drops a segment whose TSval is older than its
// TS.Recent). Here a retransmission timeout fires between input's first
// look at the clock and its taking the connection's lock; the data the
// ACK then clocks out must be stamped with the time it is sent. It once
// carried the time the batch began, 1 s older, and Linux dropped such
// segments over TUN under load (skb drop reason TCP_RFC7323_PAWS).
func TestTimestampsNeverGoBack(t *testing.T) {
	var ic *inputClock
	n := newVnet(t, func(a, _ *Config) {
		ic = &inputClock{Clock: a.Clock}
		a.Clock = ic
	})
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, _ := n.connect(srvAddr, lfd)

	var tsvals []uint32
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "a>b" {
			_, p, err := wire.ParseIPv4(pkt)
			if err == nil {
				if h, _, err := wire.ParseTCP(p); err == nil && h.Options.HasTimestamp {
					tsvals = append(tsvals, h.Options.TSVal)
				}
			}
		}
		return false
	}
	ic.hook = func() { n.clk.Advance(time.Second) } // past the RTO: a retransmission leaves first
	ic.armed = true
	_, err := n.a.Sockets().Write(cfd, make([]byte, 200_000))
	must(t, err)
	n.pump()
	if ic.armed {
		t.Fatal("the hook never ran: input did not read the clock")
	}
	if len(tsvals) < 3 {
		t.Fatalf("only %d segments sent", len(tsvals))
	}
	hi := tsvals[0]
	for i, ts := range tsvals {
		if int32(hi-ts) > 1 { // PAWS tolerates one tick
			t.Fatalf("segment %d of %d carries TSval %d after one with %d", i, len(tsvals), ts, hi)
		}
		if int32(ts-hi) > 0 {
			hi = ts
		}
	}
	if st := n.a.Stats(); st.TcpRetransSegs == 0 {
		t.Errorf("no retransmission: the test did not make the case (%+v)", st)
	}
}
