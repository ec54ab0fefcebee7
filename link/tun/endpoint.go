package tun

import (
	"errors"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/synstack/synstack/link"
)

// The endpoint itself, the same on every OS: a reader and a writer per
// queue, over an *os.File that Open (Linux) or FromFD/FromFile gave it.

// maxBatch is how many queued packets the writer takes at once, and so
// the most segments one coalesced packet can gather.
const maxBatch = 64

// Endpoint is an open TUN device. It implements link.Endpoint: for each
// of the device's queues (one unless Options.Queues; one for FromFD), one
// goroutine reads it and delivers to the attached Dispatcher, another
// writes what the stack queues with WritePacket. Close stops them all.
type Endpoint struct {
	queues  []*queue
	name    string
	index   int
	mtu     int
	vnet    bool   // IFF_VNET_HDR: a virtio header precedes every packet
	tso     bool   // the kernel may send large TCP packets (TSO4/6 on)
	af      bool   // a 4-byte address family precedes every packet (FileOptions.AFHeader)
	offload string // what was negotiated, for people
	sys     sysState

	disp link.Attachment
	pool sync.Pool // buffers of vnetHdrLen+mtu bytes
	// bigPool holds buffers for packets above the MTU (vnetHdrLen +
	// maxIPPacket bytes); bigOut counts those queued or being written,
	// at most maxBigOut.
	bigPool sync.Pool
	bigOut  atomic.Int64
	done    chan struct{}
	wg      sync.WaitGroup // the readers
	// stopWrite tells the writers to write what is queued and return
	// (Close); wwg waits for them.
	stopWrite chan struct{}
	wwg       sync.WaitGroup
	closed    atomic.Bool
	once      sync.Once

	gsoIn, gsoOut, tsoOut, csumIn, verifiedIn atomic.Uint64
	dropNoDisp, dropBad, writeErrs, readErrs  atomic.Uint64

	// Backpressure (TxRoom, OnTxRoom): a queue holding highWater packets
	// or more has no room for data; once a sender was told so (waiting),
	// the writers call onRoom when every queue is at lowWater or below.
	highWater, lowWater int
	waiting             atomic.Bool
	onRoom              atomic.Pointer[func()]
	throttles           atomic.Uint64
}

// queue is one of the device's queues: its own file, reader and writer.
type queue struct {
	f   *os.File
	out chan *[]byte // packets waiting for the writer, each with vnetHdrLen bytes of headroom
	// The reader's raw access to f and its function reading a batch
	// (readPackets, where the OS has them); set by the reader.
	rc       syscall.RawConn
	readSome func(fd uintptr) bool

	packetsIn, packetsOut, writesOut, dropFull atomic.Uint64
}

// newEndpoint returns an endpoint of MTU mtu, with no queue yet.
func newEndpoint(mtu int) *Endpoint {
	e := &Endpoint{mtu: mtu, done: make(chan struct{}), stopWrite: make(chan struct{})}
	e.pool.New = func() any {
		b := make([]byte, vnetHdrLen+e.mtu)
		return &b
	}
	e.bigPool.New = func() any {
		b := make([]byte, vnetHdrLen+maxIPPacket)
		return &b
	}
	return e
}

// closeFlush bounds how long Close lets the writers write what is still
// queued.
const closeFlush = time.Second

// maxBigOut bounds the packets above the MTU queued for the device, all
// queues together: 256 buffers of 64 KiB, 16 MiB, half of what the
// kernel's own queue of a TUN device (500 packets, GSO packets among them)
// may hold. 64 of them (what the default queue of MTU-sized packets holds
// in bytes) dropped packets in TestKernelEcho: the stack's units are often
// smaller than the buffers they take.
const maxBigOut = 256

// bigHighWater and bigLowWater are Backpressure's marks for the large
// packets out: as the queues', no room at seven eighths, room again at
// half.
const (
	bigHighWater = maxBigOut - maxBigOut/8
	bigLowWater  = maxBigOut / 2
)

// getBuf returns a buffer for a packet of n bytes after the virtio
// header's room, or nil when too many large ones are out.
func (e *Endpoint) getBuf(n int) *[]byte {
	var buf *[]byte
	if n <= e.mtu {
		buf = e.pool.Get().(*[]byte)
	} else {
		if e.bigOut.Add(1) > maxBigOut {
			e.bigOut.Add(-1)
			return nil
		}
		buf = e.bigPool.Get().(*[]byte)
	}
	*buf = (*buf)[:vnetHdrLen+n]
	return buf
}

// enqueue queues buf for the writer of the queue its flow hashes to
// (link.FlowQueue); a full queue drops it.
func (e *Endpoint) enqueue(buf *[]byte) {
	q := e.queues[0]
	if len(e.queues) > 1 {
		q = e.queues[link.FlowQueue((*buf)[vnetHdrLen:], len(e.queues))]
	}
	select {
	case q.out <- buf:
	default:
		e.release(buf)
		q.dropFull.Add(1)
	}
}

// addFile adds f, open on the device, as a new queue.
func (e *Endpoint) addFile(f *os.File) {
	e.queues = append(e.queues, &queue{f: f})
}

// start gives every queue its reader and writer, each queue holding up to
// queueLen packets for the writer.
func (e *Endpoint) start(queueLen int) {
	for _, q := range e.queues {
		q.out = make(chan *[]byte, queueLen)
	}
	// An eighth of the queue stays for what is never held (ACKs, control
	// packets, datagrams, and the segments a sender has in hand when it
	// is told); senders resume once it is half empty.
	e.highWater = queueLen - max(queueLen/8, 1)
	e.lowWater = queueLen / 2
	for _, q := range e.queues {
		e.wg.Add(1)
		e.wwg.Add(1)
		go e.readLoop(q)
		go e.writeLoop(q)
	}
}

// An Endpoint is a link, takes a packet in two pieces, and tells a
// sender when its queue is full.
var (
	_ link.Endpoint     = (*Endpoint)(nil)
	_ link.GatherWriter = (*Endpoint)(nil)
	_ link.Backpressure = (*Endpoint)(nil)
)

// TxRoom implements link.Backpressure: false while any queue holds
// highWater packets or more, or bigHighWater large (TSO) packets are out
// (Stats.Throttled counts the times), and then the writers call
// OnTxRoom's function once every queue, and the large packets, have
// drained to half.
func (e *Endpoint) TxRoom() bool {
	if e.full() {
		// Say a sender waits before looking again: a writer that drains
		// in between either sees the flag or left room we see now.
		e.waiting.Store(true)
		if e.full() {
			e.throttles.Add(1)
			return false
		}
	}
	return true
}

// full reports whether some queue, or the large packets out, are at
// their high-water mark.
func (e *Endpoint) full() bool {
	if e.bigOut.Load() >= bigHighWater {
		return true
	}
	for _, q := range e.queues {
		if len(q.out) >= e.highWater {
			return true
		}
	}
	return false
}

// OnTxRoom implements link.Backpressure.
func (e *Endpoint) OnTxRoom(f func()) { e.onRoom.Store(&f) }

// roomReturned calls OnTxRoom's function if a sender waits and every
// queue is at its low-water mark or below. A writer calls it after each
// batch.
func (e *Endpoint) roomReturned() {
	if !e.waiting.Load() || e.bigOut.Load() > bigLowWater {
		return
	}
	for _, q := range e.queues {
		if len(q.out) > e.lowWater {
			return
		}
	}
	if e.waiting.CompareAndSwap(true, false) {
		if f := e.onRoom.Load(); f != nil {
			(*f)()
		}
	}
}

// Name returns the device's name.
func (e *Endpoint) Name() string { return e.name }

// Index returns the device's interface index.
func (e *Endpoint) Index() int { return e.index }

// Offload describes the offloads in use: "none (why)", or which of
// checksum and TSO the kernel agreed to.
func (e *Endpoint) Offload() string { return e.offload }

// Created reports whether Open created the device (and Close removes it).
func (e *Endpoint) Created() bool { return e.sys.created }

// MTU returns the device's MTU: the largest packet the stack sends.
func (e *Endpoint) MTU() int { return e.mtu }

// ChecksumOffload implements link.ChecksumOffloader. With the virtio-net
// header (offloads on), every TCP packet the endpoint writes goes out
// marked NEEDS_CSUM with the pseudo-header's sum in its checksum field,
// for the kernel to complete, so the stack need not compute it: tx. What
// the kernel sends is taken as verified packet by packet where the kernel
// says so (link.VerifiedDispatcher), and checked otherwise: rx is false.
func (e *Endpoint) ChecksumOffload() (tx, rx bool) { return e.vnet, false }

var _ link.ChecksumOffloader = (*Endpoint)(nil)

// Attach sets the Dispatcher that receives the packets read from the
// device; nil detaches it.
func (e *Endpoint) Attach(d link.Dispatcher) { e.disp.Set(d) }

// WritePacket queues a copy of pkt for the device and returns at once; a
// full queue drops it (counted in DropQueueFull). A TCP packet larger than
// the MTU goes as a GSO packet the kernel cuts (with offloads) or is cut
// here; any other packet larger than the MTU is dropped (DropBad). It
// returns ErrClosed after Close.
func (e *Endpoint) WritePacket(pkt []byte) error { return e.WritePacketGather(pkt, nil) }

// WritePacketGather implements link.GatherWriter: WritePacket of hdr
// followed by payload, copied once, straight into the queued buffer. With
// several queues, the packet goes to the one its flow hashes to (link.FlowQueue).
func (e *Endpoint) WritePacketGather(hdr, payload []byte) error {
	if e.closed.Load() {
		return ErrClosed
	}
	n := len(hdr) + len(payload)
	if n == 0 || n > maxIPPacket {
		e.dropBad.Add(1)
		return nil
	}
	if buf := e.fill(hdr, payload); buf != nil {
		e.enqueue(buf)
	}
	return nil
}

// fill returns a buffer holding hdr and payload after the virtio header's
// room, whose GSO type there says it is no GSO packet yet; nil, counted as
// a full queue, when too many large packets are out (maxBigOut).
func (e *Endpoint) fill(hdr, payload []byte) *[]byte {
	buf := e.getBuf(len(hdr) + len(payload))
	if buf == nil {
		e.queues[0].dropFull.Add(1)
		return nil
	}
	(*buf)[1] = vnetGSONone
	copy((*buf)[vnetHdrLen+copy((*buf)[vnetHdrLen:], hdr):], payload)
	return buf
}

// SegmentOffload implements link.SegmentOffloader: with offloads on and
// TSO accepted by the kernel, the endpoint takes TCP packets of up to
// 65,535 bytes for the kernel to cut; otherwise zero.
func (e *Endpoint) SegmentOffload() int {
	if e.vnet && e.tso {
		return maxIPPacket
	}
	return 0
}

var _ link.SegmentOffloader = (*Endpoint)(nil)

// WritePacketSegments implements link.SegmentOffloader: the TCP packet hdr
// followed by payload is copied once into the queued buffer and written
// with one virtio-net header (GSO_TCPV4 or GSO_TCPV6 with gso_size
// segSize, ECN when it carries CWR, NEEDS_CSUM), for the kernel to cut;
// the writer does not coalesce it with anything. A packet that does not
// qualify (not TCP, a segment of segSize above the MTU, SYN, RST or URG)
// is dropped (DropBad), and so is any packet above the MTU on an endpoint
// without TSO (SegmentOffload zero). A packet within the MTU is
// WritePacketGather's.
func (e *Endpoint) WritePacketSegments(hdr, payload []byte, segSize int) error {
	n := len(hdr) + len(payload)
	if n <= e.mtu {
		return e.WritePacketGather(hdr, payload)
	}
	if e.closed.Load() {
		return ErrClosed
	}
	if !e.vnet || !e.tso || n > maxIPPacket || segSize <= 0 {
		e.dropBad.Add(1)
		return nil
	}
	buf := e.fill(hdr, payload)
	if buf == nil {
		return nil
	}
	b := *buf
	p := b[vnetHdrLen:]
	t, ok := parseTCPPacket(p)
	if !ok || t.ipLen+t.tcpLen+segSize > e.mtu || p[t.ipLen+tcpFlagsOff]&(flagSYN|flagRST|flagURG) != 0 {
		e.release(buf)
		e.dropBad.Add(1)
		return nil
	}
	h := vnetHdr{gsoType: vnetGSOTCPv4, hdrLen: uint16(t.ipLen + t.tcpLen), gsoSize: uint16(segSize)}
	if t.v6 {
		h.gsoType = vnetGSOTCPv6
	}
	if p[t.ipLen+tcpFlagsOff]&flagCWR != 0 {
		h.gsoType |= vnetGSOECN
	}
	t.setPartialChecksum(p, &h)
	h.encode(b)
	e.enqueue(buf)
	return nil
}

func (e *Endpoint) release(buf *[]byte) {
	switch cap(*buf) {
	case vnetHdrLen + e.mtu:
		*buf = (*buf)[:cap(*buf)]
		e.pool.Put(buf)
	case vnetHdrLen + maxIPPacket:
		e.bigOut.Add(-1)
		*buf = (*buf)[:cap(*buf)]
		e.bigPool.Put(buf)
	}
}

// readBatch is how many packets a reader takes from its queue at once:
// after the one it waited for, whatever the device already holds, up to
// this many. They go to the stack in one delivery where it takes batches
// (link.BatchDispatcher), which acknowledges consecutive segments of one
// connection once, as Linux acknowledges what GRO gathered: one ACK, and
// one write to the device, for the run instead of one per packet.
const readBatch = 8

// reading is a reader's state: its buffers, each of vnetHdrLen +
// maxIPPacket + 1 bytes (the first made at once, the others when a batch
// first reaches them), the sizes the last batch read into them, and the
// packets and marks of the batch handed to the stack.
type reading struct {
	bufs     [][]byte
	sizes    [readBatch]int
	pkts     [][]byte
	verified []bool
	n        int   // packets of the batch being read
	err      error // what ended it early
}

// newReading returns a reader's state, with its first buffer.
func newReading() *reading {
	r := &reading{bufs: make([][]byte, readBatch), pkts: make([][]byte, 0, readBatch), verified: make([]bool, 0, readBatch)}
	r.bufs[0] = make([]byte, vnetHdrLen+maxIPPacket+1)
	return r
}

// buf returns buffer i, made if it is the first use.
func (r *reading) buf(i int) []byte {
	if r.bufs[i] == nil {
		r.bufs[i] = make([]byte, vnetHdrLen+maxIPPacket+1)
	}
	return r.bufs[i]
}

// readLoop reads one of the device's queues until Close and delivers
// each batch of packets (readBatch).
func (e *Endpoint) readLoop(q *queue) {
	defer e.wg.Done()
	r := newReading()
	for {
		n, err := q.readPackets(r)
		if err != nil {
			if e.closed.Load() || errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			e.readErrs.Add(1)
			if deviceGone(err) {
				return // the device is gone: nothing more will come
			}
			continue
		}
		d := e.disp.Get()
		if d == nil {
			e.dropNoDisp.Add(uint64(n))
			continue
		}
		vd, _ := d.(link.VerifiedDispatcher)
		r.pkts, r.verified = r.pkts[:0], r.verified[:0]
		for i := range n {
			if pkt, verified, ok := e.unwrap(r.bufs[i][:r.sizes[i]], vd != nil); ok {
				r.pkts, r.verified = append(r.pkts, pkt), append(r.verified, verified)
			}
		}
		// Counted first: once the stack has them, Stats says so.
		q.packetsIn.Add(uint64(len(r.pkts)))
		e.deliver(d, r.pkts, r.verified)
		clear(r.pkts) // what the stack was given is not held
	}
}

// unwrap returns the IP packet in b, as read from the device, and whether
// the kernel vouches for its checksum (only if canVerify: the stack takes
// such packets); not ok, counted, if it is malformed.
func (e *Endpoint) unwrap(b []byte, canVerify bool) (pkt []byte, verified, ok bool) {
	switch {
	case e.vnet:
		if len(b) < vnetHdrLen {
			e.dropBad.Add(1)
			return nil, false, false
		}
		var h vnetHdr
		h.decode(b)
		pkt = b[vnetHdrLen:]
		// The kernel vouches for a packet it verified, or made here and
		// never put on a wire: a stack that can take it so checks
		// nothing, and its partial checksum is left as it is.
		verified = canVerify && h.flags&(vnetFlagNeedsCsum|vnetFlagDataValid) != 0
		ok, gso := fixIncoming(pkt, &h, verified)
		if !ok {
			e.dropBad.Add(1)
			return nil, false, false
		}
		if gso {
			e.gsoIn.Add(1)
		}
		if h.flags&vnetFlagNeedsCsum != 0 && !verified {
			e.csumIn.Add(1)
		}
		return pkt, verified, true
	case e.af:
		if len(b) < afHdrLen {
			e.dropBad.Add(1)
			return nil, false, false
		}
		return b[afHdrLen:], false, true // the IP header's version says the family
	}
	return b, false, true
}

// deliver hands pkts to d in order: each run of packets that are all
// verified, or all not, in one call where d takes batches, else one by
// one.
func (e *Endpoint) deliver(d link.Dispatcher, pkts [][]byte, verified []bool) {
	bd, _ := d.(link.BatchDispatcher)
	vbd, _ := d.(link.VerifiedBatchDispatcher)
	vd, _ := d.(link.VerifiedDispatcher)
	for len(pkts) > 0 {
		n := 1
		for n < len(pkts) && verified[n] == verified[0] {
			n++
		}
		run := pkts[:n]
		if verified[0] {
			e.verifiedIn.Add(uint64(n)) // first: what the stack counted, the link has
		}
		switch {
		case n > 1 && verified[0] && vbd != nil:
			vbd.DeliverVerifiedPackets(run)
		case n > 1 && !verified[0] && bd != nil:
			bd.DeliverPackets(run)
		default:
			for _, p := range run {
				if verified[0] {
					vd.DeliverVerified(p)
				} else {
					d.DeliverPacket(p)
				}
			}
		}
		pkts, verified = pkts[n:], verified[n:]
	}
}

// writeLoop writes what WritePacket queues for q, a batch at a time:
// whatever gathered while the last write ran. With offloads, the segments
// of a batch that continue each other are coalesced.
func (e *Endpoint) writeLoop(q *queue) {
	defer e.wwg.Done()
	var (
		batch   = make([]*[]byte, 0, maxBatch)
		pkts    = make([][]byte, 0, maxBatch)
		plan    gsoBatch
		scratch = make([]byte, vnetHdrLen+maxIPPacket)
	)
	for {
		select {
		case b := <-q.out:
			batch = append(batch, b)
		case <-e.stopWrite:
			// Close: write what is still queued (the RSTs of a closing
			// stack among it), then return.
			select {
			case b := <-q.out:
				batch = append(batch, b)
			default:
				return
			}
		}
	drain:
		for len(batch) < maxBatch {
			select {
			case b := <-q.out:
				batch = append(batch, b)
			default:
				break drain
			}
		}
		if e.vnet {
			// Packets WritePacketSegments built go as they are, in
			// their place; the runs between them are coalesced.
			start := 0
			for i, b := range batch {
				pkts = append(pkts, (*b)[vnetHdrLen:])
				if (*b)[1] != vnetGSONone {
					e.writeOffload(q, &plan, pkts[start:i], batch[start:i], scratch)
					e.write(q, *b, 1)
					e.tsoOut.Add(1)
					start = i + 1
				}
			}
			e.writeOffload(q, &plan, pkts[start:], batch[start:], scratch)
		} else {
			for _, b := range batch {
				e.writePlain(q, *b, scratch)
			}
		}
		for i, b := range batch {
			e.release(b)
			batch[i] = nil
			if i < len(pkts) {
				pkts[i] = nil
			}
		}
		batch, pkts = batch[:0], pkts[:0]
		e.roomReturned()
	}
}

// writeOffload writes a batch through the virtio header: coalesced
// segments as GSO packets, single TCP packets with a partial checksum,
// other packets as they are.
func (e *Endpoint) writeOffload(q *queue, plan *gsoBatch, pkts [][]byte, bufs []*[]byte, scratch []byte) {
	maxSize := e.mtu
	if e.tso {
		maxSize = maxIPPacket
	}
	items := plan.plan(pkts, maxSize)
	for i := range items {
		it := &items[i]
		if it.n > 1 {
			e.write(q, plan.build(scratch, pkts, it), it.n)
			e.gsoOut.Add(1)
			continue
		}
		p := pkts[it.head]
		full := *bufs[it.head]
		var h vnetHdr
		if t, ok := parseTCPPacket(p); ok {
			if len(p) > e.mtu {
				if !e.tso {
					e.splitWrite(q, p, t, scratch)
					continue
				}
				h.gsoType = vnetGSOTCPv4
				if t.v6 {
					h.gsoType = vnetGSOTCPv6
				}
				h.hdrLen = uint16(t.ipLen + t.tcpLen)
				h.gsoSize = uint16(e.mtu - t.ipLen - t.tcpLen)
				e.gsoOut.Add(1)
			}
			t.setPartialChecksum(p, &h)
		} else if len(p) > e.mtu {
			e.dropBad.Add(1)
			continue
		}
		h.encode(full)
		e.write(q, full, 1)
	}
}

// writePlain writes one packet, after the vnetHdrLen bytes of headroom in
// buf, to a device without offloads, cutting a TCP packet larger than the
// MTU. With an address family header, it goes in the headroom.
func (e *Endpoint) writePlain(q *queue, buf, scratch []byte) {
	p := buf[vnetHdrLen:]
	if len(p) <= e.mtu {
		if e.af {
			p = buf[vnetHdrLen-afHdrLen:]
			putAFHeader(p)
		}
		e.write(q, p, 1)
		return
	}
	t, ok := parseTCPPacket(p)
	if !ok {
		e.dropBad.Add(1)
		return
	}
	e.splitWrite(q, p, t, scratch)
}

// splitWrite cuts a large TCP packet into MTU-sized segments and writes
// each.
func (e *Endpoint) splitWrite(q *queue, p []byte, t tcpPkt, scratch []byte) {
	mss := e.mtu - t.ipLen - t.tcpLen
	if mss <= 0 {
		e.dropBad.Add(1)
		return
	}
	off := 0
	if e.vnet {
		clear(scratch[:vnetHdrLen])
		off = vnetHdrLen
	} else if e.af {
		off = afHdrLen
	}
	splitTCP(p, t, mss, scratch[off:], func(s []byte) {
		if e.af {
			putAFHeader(scratch[:afHdrLen+len(s)])
		}
		e.write(q, scratch[:off+len(s)], 1)
	})
}

// write writes one buffer (a packet, with its virtio header if offloads
// are on) standing for n of the stack's packets to q.
func (e *Endpoint) write(q *queue, b []byte, n int) {
	if _, err := q.f.Write(b); err != nil {
		e.writeErrs.Add(1)
		return
	}
	q.writesOut.Add(1)
	q.packetsOut.Add(uint64(n))
}

// Stats returns the endpoint's counters, all queues together.
func (e *Endpoint) Stats() Stats {
	var s Stats
	for _, q := range e.queues {
		s.PacketsIn += q.packetsIn.Load()
		s.PacketsOut += q.packetsOut.Load()
		s.WritesOut += q.writesOut.Load()
		s.DropQueueFull += q.dropFull.Load()
	}
	s.GSOIn, s.GSOOut, s.TSOOut = e.gsoIn.Load(), e.gsoOut.Load(), e.tsoOut.Load()
	s.CsumIn, s.VerifiedIn = e.csumIn.Load(), e.verifiedIn.Load()
	s.DropNoDispatcher, s.DropBad = e.dropNoDisp.Load(), e.dropBad.Load()
	s.WriteErrors, s.ReadErrors = e.writeErrs.Load(), e.readErrs.Load()
	s.Throttled = e.throttles.Load()
	return s
}

// QueueStats returns the counters of each of the device's queues, in
// order: one element unless Options.Queues is above 1.
func (e *Endpoint) QueueStats() []QueueStats {
	qs := make([]QueueStats, len(e.queues))
	for i, q := range e.queues {
		qs[i] = QueueStats{
			PacketsIn:     q.packetsIn.Load(),
			PacketsOut:    q.packetsOut.Load(),
			WritesOut:     q.writesOut.Load(),
			DropQueueFull: q.dropFull.Load(),
		}
	}
	return qs
}

// Close stops the endpoint's goroutines and closes the device (the
// descriptor FromFD or FromFile was given, too); queued packets are
// dropped. A device Open created disappears with it; on a device that
// existed, the addresses Open added are removed and the MTU and down state
// it had are restored. Close must not be called from inside the
// Dispatcher. Closing twice is harmless.
func (e *Endpoint) Close() error {
	var err error
	e.once.Do(func() {
		e.closed.Store(true)
		e.disp.Set(nil)
		// What was queued before Close still goes out (a closing stack's
		// RSTs are written just before), for at most closeFlush: a device
		// whose writes block does not hold Close.
		close(e.stopWrite)
		flushed := make(chan struct{})
		go func() { e.wwg.Wait(); close(flushed) }()
		select {
		case <-flushed:
		case <-time.After(closeFlush):
		}
		close(e.done)
		err = e.teardown()
		e.wg.Wait()
		<-flushed
		for _, q := range e.queues {
		drain:
			for {
				select {
				case b := <-q.out:
					e.release(b)
				default:
					break drain
				}
			}
		}
	})
	return err
}

// teardown closes the device's files and undoes what Open did to the
// device: a failed Open's or Close's.
func (e *Endpoint) teardown() error {
	var errs []error
	for _, q := range e.queues {
		// Closing the file wakes the reader; the writer may still be
		// finishing a write, which then fails with os.ErrClosed. The
		// last queue's closing removes a device Open created.
		errs = append(errs, q.f.Close())
	}
	errs = append(errs, e.undo())
	return errors.Join(errs...)
}
