package tcp

import (
	"testing"
	"time"

	"github.com/synstack/synstack/tcp/seq"
)

// TestInfoCountsRetransmittedData: what a sender loses and sends again
// counts in tcpi_data_segs_out and tcpi_bytes_sent, and in
// tcpi_bytes_retrans; the retransmission timeout starts an RTO recovery
// episode whose clock runs until loss recovery ends, a second timeout of
// the same data staying in the same episode (Linux's
// tcp_update_rto_stats, tcp_update_rto_time). The receiver counts the
// data segments that reached it.
func TestInfoCountsRetransmittedData(t *testing.T) {
	// Count what A sends, independently of its books: data segments,
	// octets, and octets below the highest sent before (sent again).
	segs, octets, again := 0, 0, 0
	var high seq.Value
	ends := 0
	n := newNet(t, func(cfg *Config) {
		ends++
		if ends != 1 {
			return // B
		}
		out := cfg.Output
		cfg.Output = func(s *Segment) {
			if len(s.Payload) > 0 {
				segs++
				octets += len(s.Payload)
				if s.SEQ.LessThan(high) {
					again += len(s.Payload)
				}
				high = seq.Max(high, s.SEQ.Add(seq.Size(len(s.Payload))))
			}
			out(s)
		}
	})
	n.handshake()
	a := n.a.c
	mss := a.opt.sndMSS
	high = a.snd.nxt
	if _, err := a.Write(n.now, make([]byte, 3*mss)); err != nil {
		t.Fatal(err)
	}
	check := func(step string, rto, recoveries int, rtoTime time.Duration) {
		t.Helper()
		inf := a.Info(n.now)
		if inf.DataSegsOut != uint64(segs) || inf.BytesSent != uint64(octets) || inf.BytesRetrans != uint64(again) {
			t.Errorf("%s: data_segs_out %d, bytes_sent %d, bytes_retrans %d; want %d, %d, %d", step,
				inf.DataSegsOut, inf.BytesSent, inf.BytesRetrans, segs, octets, again)
		}
		if inf.TotalRTO != rto || inf.TotalRTORecoveries != recoveries || inf.TotalRTOTime != rtoTime {
			t.Errorf("%s: total_rto %d, total_rto_recoveries %d, total_rto_time %v; want %d, %d, %v", step,
				inf.TotalRTO, inf.TotalRTORecoveries, inf.TotalRTOTime, rto, recoveries, rtoTime)
		}
	}
	n.drop(n.a)
	check("sent", 0, 0, 0)

	// Everything is lost until the timeout fires (a tail loss probe may
	// go first, and is lost too).
	for i := 0; a.Info(n.now).TotalRTO == 0; i++ {
		if i > 5 || !n.advance(n.now.Add(10*time.Second)) {
			t.Fatalf("no retransmission timeout\n%s", n.dump())
		}
		n.drop(n.a)
	}
	if again == 0 {
		t.Fatalf("nothing was sent again\n%s", n.dump())
	}
	rtoAt := n.now
	check("the timeout", 1, 1, 0)
	n.now = n.now.Add(150 * time.Millisecond)
	check("150 ms into the episode", 1, 1, 150*time.Millisecond)

	// The backed-off timeout: the same episode; this time the
	// retransmission arrives, and its ACK ends loss recovery.
	if !n.advance(n.now.Add(10*time.Second)) || a.Info(n.now).TotalRTO != 2 {
		t.Fatalf("no second timeout\n%s", n.dump())
	}
	n.settle()
	for a.flight() > 0 {
		if !n.advance(n.now.Add(10 * time.Second)) {
			t.Fatalf("data never acknowledged\n%s", n.dump())
		}
		n.settle()
	}
	if a.cc.loss == lossRTO {
		t.Fatalf("still in loss recovery with nothing in flight")
	}
	ended := n.now.Sub(rtoAt)
	check("acknowledged", 2, 1, ended)
	n.now = n.now.Add(time.Second)
	check("a second later", 2, 1, ended)

	if inf := n.b.c.Info(n.now); inf.DataSegsIn == 0 || inf.DataSegsIn > uint64(segs) {
		t.Errorf("receiver's data_segs_in %d, want 1..%d", inf.DataSegsIn, segs)
	}
}

// TestInfoOutOfOrder: a segment that arrives ahead of a hole counts in
// tcpi_rcv_ooopack; every segment with data counts in tcpi_data_segs_in,
// a pure ACK does not; ato is 0 until data arrives, then TCP_ATO_MIN.
func TestInfoOutOfOrder(t *testing.T) {
	n := newNet(t, nil)
	n.handshake()
	a, b := n.a.c, n.b.c
	if inf := b.Info(n.now); inf.ATO != 0 || inf.DataSegsIn != 0 || inf.RcvSsthresh == 0 {
		t.Fatalf("before data: ato %v, data_segs_in %d, rcv_ssthresh %d; want 0, 0, the window's",
			inf.ATO, inf.DataSegsIn, inf.RcvSsthresh)
	}
	mss := a.opt.sndMSS
	if _, err := a.Write(n.now, make([]byte, 3*mss)); err != nil {
		t.Fatal(err)
	}
	segs := n.a.out
	n.a.out = nil
	if len(segs) != 3 {
		t.Fatalf("%d segments sent, want 3", len(segs))
	}
	b.Input(n.now, &segs[0])
	b.Input(n.now, &segs[2]) // ahead of the second
	inf := b.Info(n.now)
	if inf.RcvOOOPack != 1 || inf.DataSegsIn != 2 || inf.ATO != atoMinMS*time.Millisecond {
		t.Errorf("after the third: rcv_ooopack %d, data_segs_in %d, ato %v; want 1, 2, 40ms",
			inf.RcvOOOPack, inf.DataSegsIn, inf.ATO)
	}
	b.Input(n.now, &segs[1]) // fills the hole: in order
	if inf := b.Info(n.now); inf.RcvOOOPack != 1 || inf.DataSegsIn != 3 {
		t.Errorf("after the hole filled: rcv_ooopack %d, data_segs_in %d; want 1, 3", inf.RcvOOOPack, inf.DataSegsIn)
	}
	if inf := a.Info(n.now); inf.DataSegsIn != 0 || inf.DataSegsOut != 3 {
		t.Errorf("sender: data_segs_in %d, data_segs_out %d; want 0, 3", inf.DataSegsIn, inf.DataSegsOut)
	}
}

// TestATO follows Linux's icsk_ack.ato: TCP_ATO_MIN with the first data;
// a gap of at most half of it pulls ato halfway toward TCP_ATO_MIN, a
// gap shorter than ato halfway toward the gap (at most the RTO), a longer
// gap leaves it; a delayed ACK that fired doubles it up to the RTO, or in
// pingpong mode sets it back to TCP_ATO_MIN, as quick-ack mode does.
func TestATO(t *testing.T) {
	var c Conn
	c.rtx.rto = 200 * time.Millisecond
	at := func(ms int) instant { return instant(time.Hour) + instant(ms)*instant(time.Millisecond) }
	want := func(step string, ms uint32) {
		t.Helper()
		if got := c.stats.more.ato; got != ms {
			t.Errorf("%s: ato %d ms, want %d", step, got, ms)
		}
	}
	c.atoOnData(at(0))
	want("first data", 40)
	c.atoOnData(at(30))
	want("a 30 ms gap", 50) // 40/2 + 30
	c.atoOnData(at(40))
	want("a 10 ms gap", 45) // 50/2 + 20
	c.atoOnData(at(140))
	want("a 100 ms gap", 45)
	c.atoOnDelAck()
	want("a delayed ACK fired", 90)
	c.atoOnDelAck()
	c.atoOnDelAck()
	want("two more", 200) // the RTO
	c.atoOnData(at(339))
	want("a 199 ms gap", 200) // 100 + 199, held to the RTO
	c.ack.pingpong = true
	c.atoOnDelAck()
	want("pingpong", 40)
	c.ack.pingpong = false
	c.atoOnDelAck()
	c.quickAckMode(1)
	want("quick-ack mode", 40)
}

// TestPMTU: tcpi_pmtu is the link's path MTU until ICMP shows a smaller
// one; ReduceMSS's MSS stands for that MTU less 40 octets of headers on
// IPv4 (never below 552) and 60 on IPv6, and a larger MTU than the one
// kept changes nothing.
func TestPMTU(t *testing.T) {
	for _, c := range []struct {
		v6        bool
		mss, want int
	}{
		{false, 960, 1000},
		{false, 300, 552},
		{false, 1460, 1500},
		{true, 1220, 1280},
	} {
		n := newNet(t, func(cfg *Config) { cfg.PathMTU, cfg.IPv6 = 1500, c.v6 })
		n.handshake()
		a := n.a.c
		if got := a.Info(n.now).PMTU; got != 1500 {
			t.Fatalf("before ICMP: pmtu %d, want 1500", got)
		}
		a.ReduceMSS(n.now, c.mss)
		if got := a.Info(n.now).PMTU; got != c.want {
			t.Errorf("IPv6 %v, MSS %d: pmtu %d, want %d", c.v6, c.mss, got, c.want)
		}
		a.ReduceMSS(n.now, c.mss+100)
		if got := a.Info(n.now).PMTU; got != c.want {
			t.Errorf("IPv6 %v, a larger MTU after %d: pmtu %d, want %d", c.v6, c.mss, got, c.want)
		}
	}
}
