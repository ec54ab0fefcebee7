package bench

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// UDPSizes and UDPFlows are the payload sizes (bytes) and the numbers of
// flows of the UDP figures.
var (
	UDPSizes = []int{64, 1400}
	UDPFlows = []int{1, 8}
)

// UDPWindow is the most datagrams each flow of the UDP figures keeps in
// flight: sent, and neither received nor written off as lost. The
// receiver acknowledges in memory (it publishes the highest sequence
// number it has read), not with packets, so that only the one-way path
// is measured, and the sender waits while its window is full: a sender
// paced by its receiver, as a protocol over UDP with flow control is, so
// that no stack is measured by how fast it drops what it cannot take. 64
// datagrams of 1,400 bytes (90 KB) fit every receiver's default buffer
// (Linux counts each datagram's whole buffer, about 2.3 KB on lo,
// against its 212,992 bytes), and 8 flows' 512 fit a link queue (1024
// packets) twice over.
const UDPWindow = 64

// udpStall is how long a sender waits for its full window to open before
// it writes the datagrams in flight off as lost and goes on (each such
// stall is counted in UDPResult.Stalls). On a loaded machine a receiver
// can go unscheduled that long with nothing lost (the kernel's, waiting
// for the netpoller, most often): its datagrams then arrive late, still
// counted, and the window holds more than UDPWindow for a while.
const udpStall = 50 * time.Millisecond

// udpDrain is how long, once the senders have stopped, the datagrams
// still in flight are waited for after the last arrival.
const udpDrain = 50 * time.Millisecond

// udpSeqLen is the length of the sequence number that starts every
// datagram (little endian).
const udpSeqLen = 8

// UDPMaxSize is the largest payload of the UDP figures: what fits a
// 1500-byte MTU without fragments.
const UDPMaxSize = 1500 - 20 - 8

// UDPResult is one UDP measurement.
type UDPResult struct {
	Kind  Kind
	Size  int // payload bytes of each datagram
	Flows int
	// Received is the datagrams all receivers read in the measured
	// window, which lasted Elapsed.
	Received int64
	Elapsed  time.Duration
	// Sent and Lost count the whole run, warm-up included: the datagrams
	// sent, and those of them never received.
	Sent, Lost int64
	// Stalls counts the times a sender's window stayed full for
	// udpStall (its datagrams in flight were then written off).
	Stalls int64
}

// PerSecond is the rate of datagrams received.
func (r UDPResult) PerSecond() float64 { return float64(r.Received) / r.Elapsed.Seconds() }

// LossPercent is the share of the datagrams sent that never arrived, in
// percent.
func (r UDPResult) LossPercent() float64 {
	if r.Sent == 0 {
		return 0
	}
	return 100 * float64(r.Lost) / float64(r.Sent)
}

// UDP sends size-byte datagrams over flows flows at once, each a socket
// on the client connected to a socket of its own on the server (link MTU
// 1500; for the kernel, loopback sockets), one goroutine sending and one
// receiving per flow, and measures the datagrams received: each sender
// keeps at most UDPWindow datagrams in flight. With Budget.Count, Count
// datagrams are sent in all (split evenly over the flows), and the rate
// is over the time until the last arrived.
func UDP(ctx context.Context, k Kind, size, flows int, b Budget) (UDPResult, error) {
	res := UDPResult{Kind: k, Size: size, Flows: flows}
	if err := b.check(); err != nil {
		return res, err
	}
	if size < udpSeqLen || size > UDPMaxSize {
		return res, fmt.Errorf("bench: udp: size %d out of [%d, %d]", size, udpSeqLen, UDPMaxSize)
	}
	if flows < 1 {
		return res, errors.New("bench: udp: no flows")
	}
	n, err := newNetwork(k, 1500, 1)
	if err != nil {
		return res, err
	}
	defer n.close()
	fs := make([]*udpFlow, 0, flows)
	defer func() {
		for _, f := range fs {
			f.snd.Close()
			f.rcv.Close()
		}
	}()
	for i := range flows {
		snd, rcv, err := n.udpFlow(i)
		if err != nil {
			return res, fmt.Errorf("bench: udp %s: flow %d: %w", k, i, err)
		}
		fs = append(fs, newUDPFlow(snd, rcv))
	}
	if err := runUDP(ctx, &res, fs, b); err != nil {
		return res, fmt.Errorf("bench: udp %s: %w", k, err)
	}
	return res, nil
}

// udpFlow is one sender and its receiver. The sender writes sent, the
// receiver got and acked; waiting and wake let the sender sleep while its
// window is full.
type udpFlow struct {
	snd, rcv net.Conn
	sent     atomic.Int64 // datagrams sent: the next sequence number
	got      atomic.Int64 // datagrams received
	acked    atomic.Int64 // the highest sequence number received, plus one
	off      atomic.Int64 // sequence numbers below it are received or written off
	stalls   atomic.Int64
	waiting  atomic.Bool   // the sender waits for its window to open
	wake     chan struct{} // one token: the window is half open again
	stall    time.Duration // udpStall, but for tests
}

func newUDPFlow(snd, rcv net.Conn) *udpFlow {
	return &udpFlow{snd: snd, rcv: rcv, wake: make(chan struct{}, 1), stall: udpStall}
}

// inFlight is what the window holds once seq datagrams have been sent.
func (f *udpFlow) inFlight(seq int64) int64 {
	return seq - max(f.acked.Load(), f.off.Load())
}

// send sends size-byte datagrams numbered from 0, count of them (no limit
// if 0), until stop is closed, keeping at most UDPWindow in flight.
func (f *udpFlow) send(size int, count int64, stop <-chan struct{}) error {
	msg := make([]byte, size)
	stall := time.NewTimer(f.stall)
	stall.Stop()
	var seq int64
	for count == 0 || seq < count {
		select {
		case <-stop:
			return nil
		default:
		}
		if f.inFlight(seq) >= UDPWindow {
			f.waiting.Store(true)
			// Looked at again once waiting is seen: a receiver that
			// moved on in between has not seen it.
			if f.inFlight(seq) >= UDPWindow {
				stall.Reset(f.stall)
				select {
				case <-f.wake:
				case <-stall.C:
					f.off.Store(seq)
					f.stalls.Add(1)
				case <-stop:
				}
				stall.Stop()
			}
			f.waiting.Store(false)
			continue
		}
		binary.LittleEndian.PutUint64(msg, uint64(seq))
		if _, err := f.snd.Write(msg); err != nil {
			return fmt.Errorf("write: %w", err)
		}
		seq++
		f.sent.Store(seq)
	}
	return nil
}

// receive reads datagrams of size bytes until the socket is closed, and
// wakes the sender once its window is half open.
func (f *udpFlow) receive(size int) error {
	buf := make([]byte, UDPMaxSize+1)
	for {
		m, err := f.rcv.Read(buf)
		if err != nil {
			return fmt.Errorf("read: %w", err)
		}
		if m != size {
			return fmt.Errorf("read a datagram of %d bytes, sent %d", m, size)
		}
		seq := int64(binary.LittleEndian.Uint64(buf))
		f.got.Add(1)
		if seq >= f.acked.Load() {
			f.acked.Store(seq + 1)
		}
		if f.waiting.Load() && f.inFlight(f.sent.Load()) <= UDPWindow/2 {
			select {
			case f.wake <- struct{}{}:
			default:
			}
		}
	}
}

// runUDP runs the flows for the budget and fills in res. The receivers
// are closed when it returns; the senders are the caller's to close.
func runUDP(ctx context.Context, res *UDPResult, fs []*udpFlow, b Budget) error {
	var perFlow int64
	if b.Count > 0 {
		perFlow = max(int64(b.Count)/int64(len(fs)), 1)
	} else {
		// A write stuck fails the run instead of hanging it.
		dl := time.Now().Add(b.Warmup + b.Duration + stepTimeout)
		for _, f := range fs {
			f.snd.SetWriteDeadline(dl)
		}
	}
	var (
		senders, receivers sync.WaitGroup
		closing            atomic.Bool
		stopOnce, errOnce  sync.Once
	)
	stop := make(chan struct{})
	failed := make(chan error, 1)
	stopSending := func() { stopOnce.Do(func() { close(stop) }) }
	fail := func(err error) {
		errOnce.Do(func() { failed <- err })
		stopSending()
	}
	for i, f := range fs {
		receivers.Add(1)
		go func() {
			defer receivers.Done()
			if err := f.receive(res.Size); err != nil && !closing.Load() {
				fail(fmt.Errorf("flow %d: %w", i, err))
			}
		}()
	}
	begin := time.Now()
	for i, f := range fs {
		senders.Add(1)
		go func() {
			defer senders.Done()
			if err := f.send(res.Size, perFlow, stop); err != nil {
				fail(fmt.Errorf("flow %d: %w", i, err))
			}
		}()
	}
	sent := make(chan struct{}) // closed once every sender has returned
	go func() {
		senders.Wait()
		close(sent)
	}()
	var werr error
	if b.Count > 0 {
		select {
		case <-sent:
		case <-ctx.Done():
			werr = ctx.Err()
		}
		stopSending()
		<-sent
		last := drainUDP(fs)
		res.Received, res.Elapsed = udpGot(fs), last.Sub(begin)
	} else {
		// The senders only end early when one fails, which says so on
		// failed (and sent is not watched).
		werr = sleep(ctx, b.Warmup, failed)
		var g0 int64
		var t0 time.Time
		if werr == nil {
			g0, t0 = udpGot(fs), time.Now()
			werr = sleep(ctx, b.Duration, failed)
		}
		if werr == nil {
			res.Received, res.Elapsed = udpGot(fs)-g0, time.Since(t0)
		}
		stopSending()
		<-sent
		if werr == nil {
			drainUDP(fs)
		}
	}
	closing.Store(true)
	for _, f := range fs {
		f.rcv.Close()
	}
	receivers.Wait()
	for _, f := range fs {
		res.Sent += f.sent.Load()
		res.Stalls += f.stalls.Load()
	}
	res.Lost = res.Sent - udpGot(fs)
	if werr == nil {
		select {
		case werr = <-failed:
		default:
		}
	}
	if werr == nil && res.Received == 0 {
		werr = fmt.Errorf("none of %d datagrams arrived", res.Sent)
	}
	return werr
}

// udpGot is the datagrams all flows have received.
func udpGot(fs []*udpFlow) int64 {
	var n int64
	for _, f := range fs {
		n += f.got.Load()
	}
	return n
}

// drainUDP waits, once the senders have stopped, until every datagram
// sent has arrived or none has for udpDrain, and returns when the last
// arrived (to the millisecond).
func drainUDP(fs []*udpFlow) time.Time {
	last, prev := time.Now(), udpGot(fs)
	for {
		done := true
		for _, f := range fs {
			done = done && f.got.Load() >= f.sent.Load()
		}
		if done {
			return time.Now()
		}
		time.Sleep(time.Millisecond)
		if cur := udpGot(fs); cur != prev {
			prev, last = cur, time.Now()
		} else if time.Since(last) >= udpDrain {
			return last
		}
	}
}
