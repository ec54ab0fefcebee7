package synstack

import (
	"errors"
	"flag"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/link/sim"
	"github.com/synstack/synstack/tcp"
)

var lossyPathMB = flag.Int("synstack.lossymb", 24, "megabytes each transfer of TestGoodputLossyPath moves")

var lossyLog = flag.Bool("synstack.lossylog", false, "TestGoodputLossyPath: log the BBR connection every 50 ms")

var debugLossy = false

// lossyPathResult is what one bulk transfer over the simulated path did.
type lossyPathResult struct {
	goodput      float64 // bits per second of virtual time
	retrans, rto int
	info         tcp.Info
	link         sim.Stats // what the client's packets met
	dataSegs     int       // data segments the client sent that the link carried
}

// bulkOverLossyPath moves size bytes from a client using the congestion
// control cc to a server over link/sim on a virtual clock: 10 ms and 1 %
// loss each way, a 100 Mbit/s bottleneck with a 200-packet queue.
func bulkOverLossyPath(t *testing.T, cc string, seed uint64, size int) lossyPathResult {
	t.Helper()
	vc := clock.NewVirtual(time.Unix(1_800_000_000, 0))
	big := 0
	opts := sim.Options{Clock: vc, Seed: seed, Delay: 10 * time.Millisecond, Loss: 0.01,
		Bandwidth: 100_000_000, QueueLen: 200, MTU: 1500, Trace: func(e sim.Event) {
			if e.Dir == "a>b" && e.What == "sent" && e.Len >= 100 {
				big++
			}
		}}

	cli, srv, la, _ := simStacks(t, opts, vc, seed, "10.7.0")
	cs, ss := cli.Sockets(), srv.Sockets()
	addr := netip.MustParseAddrPort("10.7.0.1:5001")
	lfd, _ := ss.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
	if err := ss.Bind(lfd, addr); err != nil {
		t.Fatal(err)
	}
	if err := ss.Listen(lfd, 4); err != nil {
		t.Fatal(err)
	}
	fd, _ := cs.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
	if err := cs.SetsockoptString(fd, IPPROTO_TCP, TCP_CONGESTION, cc); err != nil {
		t.Fatal(err)
	}
	if err := cs.Connect(fd, addr); !errors.Is(err, syscall.EINPROGRESS) {
		t.Fatal(err)
	}
	chunk := make([]byte, 256<<10)
	for i := range chunk {
		chunk[i] = byte(i * 7)
	}
	buf := make([]byte, 256<<10)
	sfd := -1
	wrote, got := 0, 0
	var start time.Time
	limit := vc.Now().Add(10 * time.Minute)
	for got < size {
		if vc.Now().After(limit) {
			t.Fatalf("%s: %d of %d bytes after 10 minutes", cc, got, size)
		}
		if sfd < 0 {
			if f, _, err := ss.Accept(lfd); err == nil {
				sfd = f
				start = vc.Now()
			}
		}
		for wrote < size {
			n, err := cs.Send(fd, chunk[:min(len(chunk), size-wrote)], MSG_DONTWAIT)
			wrote += n
			if err != nil || n == 0 {
				break
			}
		}
		for sfd >= 0 {
			n, err := ss.Recv(sfd, buf, MSG_DONTWAIT)
			got += n
			if err != nil || n == 0 {
				break
			}
		}
		vc.Advance(time.Millisecond)
		if debugLossy && vc.Now().Sub(start)%(50*time.Millisecond) == 0 {
			cli.lock()
			for ep := range cli.allConns() {
				in := ep.Conn.Info(vc.Now())
				t.Logf("%v sndwnd %d got %d cwnd %d unacked %d ca %d pacing %.1f delivery %.1f minrtt %v rtt %v retr %d", vc.Now().Sub(start), in.SndWnd, got, in.Cwnd, in.Unacked, in.CAState, float64(in.PacingRate)*8/1e6, float64(in.DeliveryRate)*8/1e6, in.MinRTT, in.RTT, in.TotalRetrans)
			}
			cli.unlock()
		}
	}
	el := vc.Now().Sub(start)
	var r lossyPathResult
	r.goodput = float64(size) * 8 / el.Seconds()
	cli.lock()
	for ep := range cli.allConns() {
		r.info = ep.Conn.Info(vc.Now())
		r.retrans, r.rto = r.info.TotalRetrans, r.info.TotalRTO
	}
	cli.unlock()
	r.link = la.Stats()
	r.dataSegs = big
	return r
}

// TestGoodputLossyPath runs one bulk transfer with BBR and one with CUBIC
// over a simulated 100 Mbit/s path with 10 ms delay and 1 % loss each way.
// It is a simulation on virtual time, not a speed figure: it checks that
// BBR keeps most of the bottleneck despite random loss (what BBR is
// built for) and that RACK and SACK repair the losses without a
// retransmission timeout, and logs both goodputs.
func TestGoodputLossyPath(t *testing.T) {
	size := *lossyPathMB << 20
	if testing.Short() {
		size = 4 << 20
	}
	debugLossy = *lossyLog
	b := bulkOverLossyPath(t, "bbr", 1, size)
	debugLossy = false
	c := bulkOverLossyPath(t, "cubic", 1, size)
	t.Logf("bbr link %+v; cubic link %+v", b.link, c.link)
	t.Logf("over 10 ms + 1%% loss each way, 100 Mbit/s: bbr %.1f Mbit/s (%d retransmitted, %d RTO, pacing %.1f Mbit/s, delivery %.1f Mbit/s), cubic %.1f Mbit/s (%d retransmitted, %d RTO)",
		b.goodput/1e6, b.retrans, b.rto, float64(b.info.PacingRate)*8/1e6, float64(b.info.DeliveryRate)*8/1e6, c.goodput/1e6, c.retrans, c.rto)
	for _, r := range []lossyPathResult{b, c} {
		// Full segments: the congestion window counts segments, and no
		// runt is cut to fit its last bytes.
		if full := (size+1447)/1448 + r.retrans; r.dataSegs > full+int(r.link.Lost+r.link.QueueDrops)/10+20 {
			t.Errorf("%s: %d data segments carried for %d full ones (%d retransmitted)", r.info.Congestion, r.dataSegs, full, r.retrans)
		}
	}
	if testing.Short() {
		return
	}
	if b.goodput < 70e6 {
		t.Errorf("bbr goodput %.1f Mbit/s, want at least 70 of the 100", b.goodput/1e6)
	}
	if b.goodput < c.goodput {
		t.Errorf("bbr %.1f Mbit/s below cubic's %.1f under random loss", b.goodput/1e6, c.goodput/1e6)
	}
}
