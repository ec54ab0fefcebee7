package tun

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/synstack/synstack/link"
)

// TUNSETOFFLOAD's flags (include/uapi/linux/if_tun.h): what the kernel may
// hand the device undone.
const (
	tunFCsum = 0x01 // TUN_F_CSUM: partial checksums
	tunFTSO4 = 0x02 // TUN_F_TSO4: large TCP/IPv4 packets
	tunFTSO6 = 0x04 // TUN_F_TSO6: large TCP/IPv6 packets
)

// offloadTries are the offloads Open asks for, best first.
var offloadTries = []struct {
	flags int
	name  string
}{
	{tunFCsum | tunFTSO4 | tunFTSO6, "checksum, TSO4, TSO6 (large packets both ways)"},
	{tunFCsum, "checksum only"},
}

// maxBatch is how many queued packets the writer takes at once, and so
// the most segments one coalesced packet can gather.
const maxBatch = 64

// Endpoint is an open TUN device. It implements link.Endpoint: for each
// of the device's queues (one unless Options.Queues), one goroutine reads
// it and delivers to the attached Dispatcher, another writes what the
// stack queues with WritePacket. Close stops them all.
type Endpoint struct {
	queues  []*queue
	name    string
	index   int
	mtu     int
	vnet    bool   // IFF_VNET_HDR: a virtio header precedes every packet
	tso     bool   // the kernel may send large TCP packets (TSO4/6 on)
	offload string // what was negotiated, for people
	nl      *netlink.Handle

	// What Open changed, for Close to undo.
	created    bool           // the device did not exist: closing the fd removes it
	oldMTU     int            // MTU of an attached device before Open, 0 if unchanged
	wasDown    bool           // an attached device was down before Open
	addedAddrs []netlink.Addr // host addresses Open added

	disp   atomic.Pointer[dispatcherBox]
	pool   sync.Pool
	done   chan struct{}
	wg     sync.WaitGroup
	closed atomic.Bool
	once   sync.Once

	gsoIn, gsoOut, csumIn                    atomic.Uint64
	dropNoDisp, dropBad, writeErrs, readErrs atomic.Uint64
}

// queue is one of the device's queues: its own fd, reader and writer.
type queue struct {
	f   *os.File
	out chan *[]byte // packets waiting for the writer, each with vnetHdrLen bytes of headroom

	packetsIn, packetsOut, writesOut, dropFull atomic.Uint64
}

type dispatcherBox struct{ d link.Dispatcher }

var _ link.Endpoint = (*Endpoint)(nil)

// Open creates the TUN device opts.Name (or attaches to it if it exists),
// negotiates offloads unless opts.NoOffload, sets its MTU, brings it up and
// adds opts.HostAddrs to it, then starts reading it. Packets read before
// Attach are dropped.
func Open(opts Options) (*Endpoint, error) {
	if opts.MTU == 0 {
		opts.MTU = DefaultMTU
	}
	if opts.MTU < 68 || opts.MTU > maxIPPacket {
		return nil, fmt.Errorf("tun: MTU %d out of range", opts.MTU)
	}
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	if opts.Queues < 0 || opts.Queues > MaxQueues {
		return nil, fmt.Errorf("tun: %d queues, out of range [0, %d]", opts.Queues, MaxQueues)
	}
	nl, err := netlink.NewHandle()
	if err != nil {
		return nil, fmt.Errorf("tun: netlink: %w", err)
	}
	e := &Endpoint{nl: nl, mtu: opts.MTU, done: make(chan struct{})}
	e.pool.New = func() any {
		b := make([]byte, vnetHdrLen+e.mtu)
		return &b
	}
	ok := false
	defer func() {
		if !ok {
			e.teardown()
		}
	}()
	if opts.Name != "" {
		if _, err := nl.LinkByName(opts.Name); err != nil {
			e.created = true
		}
	} else {
		e.created = true
	}
	if err := e.openDevice(opts); err != nil {
		return nil, err
	}
	l, err := nl.LinkByName(e.name)
	if err != nil {
		return nil, fmt.Errorf("tun: %s: %w", e.name, err)
	}
	attrs := l.Attrs()
	e.index = attrs.Index
	if attrs.MTU != e.mtu {
		if !e.created {
			e.oldMTU = attrs.MTU
		}
		if err := nl.LinkSetMTU(l, e.mtu); err != nil {
			return nil, fmt.Errorf("tun: %s: set MTU %d: %w", e.name, e.mtu, err)
		}
	}
	if attrs.Flags&net.FlagUp == 0 {
		e.wasDown = !e.created
		if err := nl.LinkSetUp(l); err != nil {
			return nil, fmt.Errorf("tun: %s: up: %w", e.name, err)
		}
	}
	for _, p := range opts.HostAddrs {
		a := &netlink.Addr{IPNet: prefixIPNet(p)}
		if err := nl.AddrAdd(l, a); err != nil {
			if errors.Is(err, unix.EEXIST) {
				continue // someone else's: not ours to remove
			}
			return nil, fmt.Errorf("tun: %s: add address %s: %w", e.name, p, err)
		}
		e.addedAddrs = append(e.addedAddrs, *a)
	}
	for _, q := range e.queues {
		q.out = make(chan *[]byte, opts.QueueLen)
	}
	for _, q := range e.queues {
		e.wg.Add(2)
		go e.readLoop(q)
		go e.writeLoop(q)
	}
	ok = true
	return e, nil
}

// openDevice opens /dev/net/tun on the device, with offloads if asked and
// available: IFF_VNET_HDR and TUNSETOFFLOAD with checksums and TSO, else
// checksums alone, else a plain device. With several queues, the first
// open negotiates and the others (IFF_MULTI_QUEUE, same name) ask for what
// the first got.
func (e *Endpoint) openDevice(opts Options) error {
	var feats uint32
	multi := opts.Queues > 1
	if !opts.NoOffload || multi {
		fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("tun: %w", err)
		}
		feats, _ = unix.IoctlGetUint32(fd, unix.TUNGETFEATURES)
		unix.Close(fd)
	}
	var mq uint16
	if multi {
		if feats&unix.IFF_MULTI_QUEUE == 0 {
			return fmt.Errorf("tun: %d queues: the kernel has no multi-queue TUN devices (IFF_MULTI_QUEUE)", opts.Queues)
		}
		mq = unix.IFF_MULTI_QUEUE
	}
	flags, offFlags, err := e.openFirst(opts, feats, mq)
	if err != nil {
		return err
	}
	for i := 1; i < opts.Queues; i++ {
		fd, _, err := openQueue(e.name, flags, offFlags)
		if err != nil {
			return fmt.Errorf("%w (queue %d of %d)", err, i+1, opts.Queues)
		}
		if err := e.addQueue(fd); err != nil {
			return err
		}
	}
	return nil
}

// openFirst opens the device's first queue, negotiating offloads, and
// returns the TUNSETIFF and TUNSETOFFLOAD flags it got (offFlags -1: no
// TUNSETOFFLOAD).
func (e *Endpoint) openFirst(opts Options, feats uint32, mq uint16) (flags uint16, offFlags int, err error) {
	reason := "turned off"
	if !opts.NoOffload && feats&unix.IFF_VNET_HDR == 0 {
		reason = "the kernel has no IFF_VNET_HDR"
	}
	if !opts.NoOffload && feats&unix.IFF_VNET_HDR != 0 {
		flags = unix.IFF_TUN | unix.IFF_NO_PI | unix.IFF_VNET_HDR | mq
		for _, off := range offloadTries {
			fd, name, err := openQueue(opts.Name, flags, off.flags)
			if err == nil {
				e.vnet, e.tso, e.offload = true, off.flags&tunFTSO4 != 0, off.name
				e.name = name
				return flags, off.flags, e.addQueue(fd)
			}
			var oe offloadError
			if !errors.As(err, &oe) {
				if mq != 0 {
					return 0, 0, err // refused IFF_MULTI_QUEUE: fail, not fall back
				}
				reason = err.Error()
				break
			}
			reason = err.Error()
		}
	}
	flags = unix.IFF_TUN | unix.IFF_NO_PI | mq
	fd, name, err := openQueue(opts.Name, flags, -1)
	if err != nil {
		return 0, 0, err
	}
	e.offload = "none (" + reason + ")"
	e.name = name
	return flags, -1, e.addQueue(fd)
}

// offloadError is an error of openQueue's offload negotiation, after the
// device was opened.
type offloadError struct{ err error }

func (o offloadError) Error() string { return o.err.Error() }
func (o offloadError) Unwrap() error { return o.err }

// openQueue opens the TUN device name with the given flags and, if they
// have IFF_VNET_HDR, sets the virtio header's size and the offloads
// offFlags.
func openQueue(name string, flags uint16, offFlags int) (int, string, error) {
	fd, name, err := createTun(name, flags)
	if err != nil {
		return -1, "", err
	}
	if flags&unix.IFF_VNET_HDR == 0 {
		return fd, name, nil
	}
	if err := unix.IoctlSetPointerInt(fd, unix.TUNSETVNETHDRSZ, vnetHdrLen); err != nil {
		unix.Close(fd)
		return -1, "", offloadError{fmt.Errorf("TUNSETVNETHDRSZ: %w", err)}
	}
	if err := unix.IoctlSetInt(fd, unix.TUNSETOFFLOAD, offFlags); err != nil {
		unix.Close(fd)
		return -1, "", offloadError{fmt.Errorf("TUNSETOFFLOAD: %w", err)}
	}
	return fd, name, nil
}

// createTun opens a TUN device with the given flags.
func createTun(name string, flags uint16) (int, string, error) {
	fd, err := unix.Open("/dev/net/tun", unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, "", fmt.Errorf("tun: %w", err)
	}
	ifr, err := unix.NewIfreq(name)
	if err != nil {
		unix.Close(fd)
		return -1, "", fmt.Errorf("tun: device name %q: %w", name, err)
	}
	ifr.SetUint16(flags)
	if err := unix.IoctlIfreq(fd, unix.TUNSETIFF, ifr); err != nil {
		unix.Close(fd)
		if flags&unix.IFF_MULTI_QUEUE != 0 && errors.Is(err, unix.EINVAL) {
			return -1, "", fmt.Errorf("tun: TUNSETIFF %q with IFF_MULTI_QUEUE refused (an existing device that is not multi-queue, or other flags than its own?): %w", name, err)
		}
		return -1, "", fmt.Errorf("tun: TUNSETIFF %q: %w", name, err)
	}
	return fd, ifr.Name(), nil
}

// addQueue makes fd non-blocking and wraps it in an *os.File, so that reads
// wait in the runtime's poller and Close interrupts them, as a new queue.
func (e *Endpoint) addQueue(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("tun: %w", err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("/dev/net/tun:%s:%d", e.name, len(e.queues)))
	e.queues = append(e.queues, &queue{f: f})
	return nil
}

func prefixIPNet(p netip.Prefix) *net.IPNet {
	bits := 32
	if p.Addr().Is6() && !p.Addr().Is4In6() {
		bits = 128
	}
	return &net.IPNet{IP: net.IP(p.Addr().Unmap().AsSlice()), Mask: net.CIDRMask(p.Bits(), bits)}
}

// Name returns the device's name.
func (e *Endpoint) Name() string { return e.name }

// Index returns the device's interface index.
func (e *Endpoint) Index() int { return e.index }

// Offload describes the offloads in use: "none (why)", or which of
// checksum and TSO the kernel agreed to.
func (e *Endpoint) Offload() string { return e.offload }

// Created reports whether Open created the device (and Close removes it).
func (e *Endpoint) Created() bool { return e.created }

// MTU returns the device's MTU: the largest packet the stack sends.
func (e *Endpoint) MTU() int { return e.mtu }

// Attach sets the Dispatcher that receives the packets read from the
// device; nil detaches it.
func (e *Endpoint) Attach(d link.Dispatcher) {
	if d == nil {
		e.disp.Store(nil)
		return
	}
	e.disp.Store(&dispatcherBox{d})
}

// WritePacket queues a copy of pkt for the device and returns at once; a
// full queue drops it (counted in DropQueueFull). A TCP packet larger than
// the MTU goes as a GSO packet the kernel cuts (with offloads) or is cut
// here; any other packet larger than the MTU is dropped (DropBad). It
// returns ErrClosed after Close.
func (e *Endpoint) WritePacket(pkt []byte) error { return e.WritePacketGather(pkt, nil) }

var _ link.GatherWriter = (*Endpoint)(nil)

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
	var buf *[]byte
	if n <= e.mtu {
		buf = e.pool.Get().(*[]byte)
	} else {
		b := make([]byte, vnetHdrLen+n) // rare: the stack sends MTU-sized packets
		buf = &b
	}
	*buf = (*buf)[:vnetHdrLen+n]
	copy((*buf)[vnetHdrLen+copy((*buf)[vnetHdrLen:], hdr):], payload)
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
	return nil
}

func (e *Endpoint) release(buf *[]byte) {
	if cap(*buf) == vnetHdrLen+e.mtu {
		*buf = (*buf)[:cap(*buf)]
		e.pool.Put(buf)
	}
}

// readLoop reads one of the device's queues until Close and delivers each
// packet.
func (e *Endpoint) readLoop(q *queue) {
	defer e.wg.Done()
	buf := make([]byte, vnetHdrLen+maxIPPacket+1)
	for {
		n, err := q.f.Read(buf)
		if err != nil {
			if e.closed.Load() || errors.Is(err, os.ErrClosed) || errors.Is(err, io.EOF) {
				return
			}
			e.readErrs.Add(1)
			if errors.Is(err, unix.EBADFD) || errors.Is(err, unix.ENODEV) || errors.Is(err, unix.EINVAL) {
				return // the device is gone: nothing more will come
			}
			continue
		}
		pkt := buf[:n]
		if e.vnet {
			if n < vnetHdrLen {
				e.dropBad.Add(1)
				continue
			}
			var h vnetHdr
			h.decode(buf)
			pkt = buf[vnetHdrLen:n]
			ok, gso := fixIncoming(pkt, &h)
			if !ok {
				e.dropBad.Add(1)
				continue
			}
			if gso {
				e.gsoIn.Add(1)
			}
			if h.flags&vnetFlagNeedsCsum != 0 {
				e.csumIn.Add(1)
			}
		}
		box := e.disp.Load()
		if box == nil {
			e.dropNoDisp.Add(1)
			continue
		}
		box.d.DeliverPacket(pkt)
		q.packetsIn.Add(1)
	}
}

// writeLoop writes what WritePacket queues for q, a batch at a time:
// whatever gathered while the last write ran. With offloads, the segments
// of a batch that continue each other are coalesced.
func (e *Endpoint) writeLoop(q *queue) {
	defer e.wg.Done()
	var (
		batch   = make([]*[]byte, 0, maxBatch)
		pkts    = make([][]byte, 0, maxBatch)
		plan    gsoBatch
		scratch = make([]byte, vnetHdrLen+maxIPPacket)
	)
	for {
		select {
		case <-e.done:
			return
		case b := <-q.out:
			batch = append(batch, b)
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
			for _, b := range batch {
				pkts = append(pkts, (*b)[vnetHdrLen:])
			}
			e.writeOffload(q, &plan, pkts, batch, scratch)
		} else {
			for _, b := range batch {
				e.writePlain(q, (*b)[vnetHdrLen:], scratch)
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

// writePlain writes one packet to a device without offloads, cutting a TCP
// packet larger than the MTU.
func (e *Endpoint) writePlain(q *queue, p, scratch []byte) {
	if len(p) <= e.mtu {
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
	}
	splitTCP(p, t, mss, scratch[off:], func(s []byte) { e.write(q, scratch[:off+len(s)], 1) })
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
	s.GSOIn, s.GSOOut, s.CsumIn = e.gsoIn.Load(), e.gsoOut.Load(), e.csumIn.Load()
	s.DropNoDispatcher, s.DropBad = e.dropNoDisp.Load(), e.dropBad.Load()
	s.WriteErrors, s.ReadErrors = e.writeErrs.Load(), e.readErrs.Load()
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

// KernelReady reports whether the kernel's side of the device is ready to
// reach addr (one of the stack's addresses): the device is up and the
// kernel's route to addr goes through it, as it does once the device has
// an address whose prefix holds addr (`ip addr add 10.99.0.1/24 dev NAME`)
// or a route to it.
func (e *Endpoint) KernelReady(addr netip.Addr) (bool, error) {
	if e.closed.Load() {
		return false, ErrClosed
	}
	l, err := e.nl.LinkByIndex(e.index)
	if err != nil {
		return false, fmt.Errorf("tun: %s: %w", e.name, err)
	}
	if l.Attrs().Flags&net.FlagUp == 0 {
		return false, nil
	}
	routes, err := e.nl.RouteGet(net.IP(addr.Unmap().AsSlice()))
	if err != nil {
		return false, nil // no route yet (ENETUNREACH)
	}
	for _, r := range routes {
		if r.LinkIndex == e.index && r.Type != unix.RTN_LOCAL {
			return true, nil
		}
	}
	return false, nil
}

// HostAddrs returns the kernel's addresses on the device.
func (e *Endpoint) HostAddrs() ([]netip.Prefix, error) {
	l, err := e.nl.LinkByIndex(e.index)
	if err != nil {
		return nil, fmt.Errorf("tun: %s: %w", e.name, err)
	}
	addrs, err := e.nl.AddrList(l, netlink.FAMILY_ALL)
	if err != nil {
		return nil, fmt.Errorf("tun: %s: %w", e.name, err)
	}
	var out []netip.Prefix
	for _, a := range addrs {
		ip, ok := netip.AddrFromSlice(a.IP)
		if !ok {
			continue
		}
		ones, _ := a.Mask.Size()
		out = append(out, netip.PrefixFrom(ip.Unmap(), ones))
	}
	return out, nil
}

// Close stops the endpoint's goroutines and closes the device; queued
// packets are dropped. A device Open created disappears with it; on a
// device that existed, the addresses Open added are removed and the MTU
// and down state it had are restored. Close must not be called from inside
// the Dispatcher. Closing twice is harmless.
func (e *Endpoint) Close() error {
	var err error
	e.once.Do(func() {
		e.closed.Store(true)
		e.disp.Store(nil)
		close(e.done)
		err = e.teardown()
		e.wg.Wait()
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

// teardown undoes what Open did: a failed Open's or Close's.
func (e *Endpoint) teardown() error {
	var errs []error
	for _, q := range e.queues {
		// Closing the file wakes the reader; the writer may still be
		// finishing a write, which then fails with os.ErrClosed. The
		// last queue's closing removes a device Open created.
		errs = append(errs, q.f.Close())
	}
	if e.nl != nil {
		if !e.created && e.index != 0 {
			if l, err := e.nl.LinkByIndex(e.index); err == nil {
				for i := range e.addedAddrs {
					if err := e.nl.AddrDel(l, &e.addedAddrs[i]); err != nil && !errors.Is(err, unix.EADDRNOTAVAIL) {
						errs = append(errs, fmt.Errorf("tun: %s: remove address %s: %w", e.name, e.addedAddrs[i].IPNet, err))
					}
				}
				if e.oldMTU != 0 {
					errs = append(errs, e.nl.LinkSetMTU(l, e.oldMTU))
				}
				if e.wasDown {
					errs = append(errs, e.nl.LinkSetDown(l))
				}
			}
		}
		e.nl.Close()
	}
	return errors.Join(errs...)
}
