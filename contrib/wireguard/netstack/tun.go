package netstack

import (
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/link"
	"golang.zx2c4.com/wireguard/tun"
)

// Limits of the device.
const (
	// batchSize is the device's BatchSize: the most packets one Read or
	// Write moves, as wireguard-go's conn.IdealBatchSize.
	batchSize = 128
	// queueLen is the most packets the stack's side of the device holds
	// for wireguard-go to read; more are dropped. The stack's TCP sends
	// its window in bursts that wireguard-go, encrypting, drains more
	// slowly: with 1024, a 256 MiB download through wireguard-go lost
	// 1,400 to 5,700 packets (and as many retransmissions); with 4096, none
	// (compare/internal/wgbench).
	queueLen = 4096
	// eventsLen is the room of the Events channel.
	eventsLen = 10
)

// netTun is the tun.Device: wireguard-go reads from it what the stack
// sends (out of the queue) and writes into it what the stack receives
// (straight into Stack.DeliverPackets).
type netTun struct {
	stack  *synstack.Stack
	q      *queue
	mtu    int
	events chan tun.Event
	// batches holds *[][]byte scratch slices for Write, so that a batch
	// costs no allocation (Write may run on several goroutines: one per
	// peer in wireguard-go).
	batches   sync.Pool
	closed    atomic.Bool
	closeOnce sync.Once
}

// Net is the stack behind a device made by CreateNetTUN, with the dialing,
// listening and lookup methods of wireguard-go's netstack.Net.
type Net struct {
	stack        *synstack.Stack
	q            *queue
	resolver     *net.Resolver
	hasV4, hasV6 bool
}

// CreateNetTUN returns a tun.Device for wireguard-go's device.NewDevice and
// the Net on the other side of it: a synstack Stack with localAddresses
// (each a host address, /32 or /128) and link MTU mtu, which resolves
// names with the DNS servers dnsServers (port 53), through the tunnel.
// The device has sent tun.EventUp when CreateNetTUN returns. Closing the
// device closes the stack and every connection on it.
func CreateNetTUN(localAddresses, dnsServers []netip.Addr, mtu int) (tun.Device, *Net, error) {
	if mtu < 576 || mtu > 65535 {
		return nil, nil, fmt.Errorf("netstack: MTU %d out of range [576, 65535]", mtu)
	}
	n := &Net{}
	prefixes := make([]netip.Prefix, 0, len(localAddresses))
	for _, a := range localAddresses {
		if !a.IsValid() {
			return nil, nil, fmt.Errorf("netstack: invalid local address %v", a)
		}
		a = a.Unmap()
		prefixes = append(prefixes, netip.PrefixFrom(a, a.BitLen()))
		n.hasV4 = n.hasV4 || a.Is4()
		n.hasV6 = n.hasV6 || a.Is6()
	}
	q := newQueue(mtu)
	s, err := synstack.New(synstack.Config{Link: q, Addrs: prefixes})
	if err != nil {
		return nil, nil, fmt.Errorf("netstack: %w", err)
	}
	n.stack, n.q = s, q
	servers := make([]netip.AddrPort, len(dnsServers))
	for i, a := range dnsServers {
		servers[i] = netip.AddrPortFrom(a, 53)
	}
	n.resolver = s.Resolver(servers...)
	t := &netTun{stack: s, q: q, mtu: mtu, events: make(chan tun.Event, eventsLen)}
	t.batches.New = func() any {
		b := make([][]byte, 0, batchSize)
		return &b
	}
	t.events <- tun.EventUp
	return t, n, nil
}

// Stack returns the synstack Stack behind the Net: its counters
// (Stack.Stats), its socket layer and everything else package net does not
// have.
func (n *Net) Stack() *synstack.Stack { return n.stack }

// Drops returns the number of packets the device dropped on their way from
// the stack to wireguard-go: its queue was full, or a packet did not fit
// the buffer Read was given.
func (n *Net) Drops() uint64 { return n.q.drops.Load() }

// Name returns "synstack".
func (t *netTun) Name() (string, error) { return "synstack", nil }

// File returns nil: the device has no file descriptor.
func (t *netTun) File() *os.File { return nil }

// Events returns the channel of the device's events: tun.EventUp, sent by
// CreateNetTUN; Close closes it.
func (t *netTun) Events() <-chan tun.Event { return t.events }

// MTU returns the MTU given to CreateNetTUN.
func (t *netTun) MTU() (int, error) { return t.mtu, nil }

// BatchSize returns the most packets one Read or Write moves.
func (t *netTun) BatchSize() int { return batchSize }

// Read waits for packets the stack sent and copies as many as wait, up to
// len(bufs), each into bufs[i][offset:], its length into sizes[i]. It
// returns os.ErrClosed once the device is closed. A packet longer than its
// buffer is dropped (counted in Net.Drops).
func (t *netTun) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	if len(sizes) < len(bufs) {
		return 0, fmt.Errorf("netstack: Read with %d sizes for %d buffers", len(sizes), len(bufs))
	}
	return t.q.read(bufs, sizes, offset)
}

// Write hands the packets bufs[i][offset:] to the stack in one batch
// (Stack.DeliverPackets), which copies what it keeps. Empty packets are
// skipped; malformed ones are dropped and counted by the stack.
func (t *netTun) Write(bufs [][]byte, offset int) (int, error) {
	if t.closed.Load() {
		return 0, os.ErrClosed
	}
	bp := t.batches.Get().(*[][]byte)
	pkts := (*bp)[:0]
	for _, b := range bufs {
		if offset < len(b) {
			pkts = append(pkts, b[offset:])
		}
	}
	if len(pkts) > 0 {
		t.stack.DeliverPackets(pkts)
	}
	clear(pkts)
	*bp = pkts[:0]
	t.batches.Put(bp)
	return len(bufs), nil
}

// Close closes the stack (every connection on it is aborted and every
// blocked call returns), wakes a blocked Read, and closes the Events
// channel. Later calls return nil.
func (t *netTun) Close() error {
	var err error
	t.closeOnce.Do(func() {
		t.closed.Store(true)
		err = t.stack.Close() // closes the queue, its link
		t.q.Close()
		close(t.events)
	})
	return err
}

// queue is the link.Endpoint the stack sends on: a ring of at most
// queueLen packets that netTun.Read empties. A full ring drops, never
// blocks. Each packet is copied into a buffer of MTU bytes taken from a
// free list, to which Read returns it: the queue makes a buffer only when
// more packets wait than ever before, so its memory follows the most it
// has held, and a steady flow allocates nothing.
type queue struct {
	mtu   int
	mu    sync.Mutex
	ready sync.Cond // signalled when a packet is queued or the queue closes
	// ring[(head+i)%queueLen] for i < n are the queued packets.
	ring    [queueLen][]byte
	head, n int
	free    [][]byte // buffers of capacity mtu, not in the ring
	closed  bool
	drops   atomic.Uint64
}

var (
	_ link.Endpoint     = (*queue)(nil)
	_ link.GatherWriter = (*queue)(nil)
)

// newQueue returns an empty queue for packets of at most mtu bytes.
func newQueue(mtu int) *queue {
	q := &queue{mtu: mtu}
	q.ready.L = &q.mu
	return q
}

// MTU returns the largest packet the queue takes.
func (q *queue) MTU() int { return q.mtu }

// Attach does nothing: received packets reach the stack through
// netTun.Write, which calls Stack.DeliverPackets itself.
func (q *queue) Attach(link.Dispatcher) {}

// WritePacket queues a copy of pkt for netTun.Read.
func (q *queue) WritePacket(pkt []byte) error { return q.WritePacketGather(pkt, nil) }

// WritePacketGather queues a copy of hdr followed by payload. A full
// queue or a packet over the MTU drops it (counted in drops); a closed
// queue returns os.ErrClosed.
func (q *queue) WritePacketGather(hdr, payload []byte) error {
	size := len(hdr) + len(payload)
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return os.ErrClosed
	}
	if q.n == queueLen || size > q.mtu {
		q.mu.Unlock()
		q.drops.Add(1)
		return nil
	}
	var b []byte
	if k := len(q.free); k > 0 {
		b, q.free = q.free[k-1], q.free[:k-1]
	} else {
		b = make([]byte, 0, q.mtu)
	}
	q.ring[(q.head+q.n)%queueLen] = append(append(b[:0], hdr...), payload...)
	q.n++
	if q.n == 1 {
		q.ready.Signal()
	}
	q.mu.Unlock()
	return nil
}

// read waits for a packet, then copies up to len(bufs) queued packets into
// bufs[i][offset:]. A packet longer than the buffer whose turn it is is
// dropped, and the next packet tries the same buffer.
func (q *queue) read(bufs [][]byte, sizes []int, offset int) (int, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for {
		for q.n == 0 && !q.closed {
			q.ready.Wait()
		}
		if q.closed {
			return 0, os.ErrClosed
		}
		n := 0
		for n < len(bufs) && q.n > 0 {
			p := q.ring[q.head]
			q.ring[q.head] = nil
			q.head = (q.head + 1) % queueLen
			q.n--
			q.free = append(q.free, p[:0])
			if offset > len(bufs[n]) || len(p) > len(bufs[n])-offset {
				q.drops.Add(1)
				continue
			}
			sizes[n] = copy(bufs[n][offset:], p)
			n++
		}
		if n > 0 || len(bufs) == 0 {
			return n, nil
		}
	}
}

// Close wakes the readers; later writes and reads return os.ErrClosed.
func (q *queue) Close() error {
	q.mu.Lock()
	q.closed = true
	q.ready.Broadcast()
	q.mu.Unlock()
	return nil
}
