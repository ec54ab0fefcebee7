package gvisorhost

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// GSOLink is a gVisor link endpoint on a TUN descriptor opened with
// IFF_VNET_HDR and TUNSETOFFLOAD (checksum, TSO4, TSO6), as OpenTUN opens
// it with vnetHdr: gVisor at its best over TUN, as products that run it
// on a TUN device give it a link of their own.
//
// Upstream's fdbased endpoint turns host GSO on only for socket
// descriptors: on a TUN descriptor gVisor sends one MTU-sized packet per
// system call. GSOLink instead tells gVisor's TCP that the host segments
// (SupportedGSO is stack.HostGSOSupported, GSOMaxSize 64 KiB), so TCP
// hands it packets of up to 64 KiB with a partial checksum and
// stack.GSO options (type, MSS, checksum offset), and GSOLink puts a
// virtio-net header in front of each: gso_type TCPv4 or TCPv6 and
// gso_size the MSS when the payload is over one MSS, NEEDS_CSUM with
// csum_start at the end of the IP header (a TUN device has no Ethernet
// header). The kernel segments, or takes the packet whole.
//
// In the other direction the kernel sends large TCP packets with a
// virtio-net header, up to 64 KiB, which GSOLink hands to gVisor whole.
// The link claims receive checksum offload: packets the kernel marks
// NEEDS_CSUM (its own, checksum not yet computed) or DATA_VALID (checked)
// are trusted, as fdbased's RXChecksumOffload trusts every packet; TCP and
// UDP packets with neither mark are checked here and dropped if wrong.
//
// One goroutine reads the device; any goroutine may write. GSOLink owns
// the descriptor: Close closes it.
type GSOLink struct {
	f      *os.File
	rc     syscall.RawConn
	mtu    atomic.Uint32
	gsoMax uint32

	mu         sync.Mutex
	dispatcher stack.NetworkDispatcher
	onClose    func()
	reading    bool
	stop       atomic.Bool
	wg         sync.WaitGroup
	closeOnce  sync.Once

	stats GSOLinkStats
}

// GSOLinkStats counts what a GSOLink did.
type GSOLinkStats struct {
	// PacketsIn and PacketsOut are packets read and written, each with its
	// virtio-net header.
	PacketsIn, PacketsOut atomic.Uint64
	// GSOIn and GSOOut are those of them that were large (gso_type
	// TCPv4 or TCPv6): more than one MSS of payload.
	GSOIn, GSOOut atomic.Uint64
	// BytesIn and BytesOut are the IP bytes of all of them.
	BytesIn, BytesOut atomic.Uint64
	// Dropped counts packets read that were malformed (short, a header
	// that does not fit, not IP); BadChecksum, TCP or UDP packets without
	// the kernel's mark whose checksum was wrong; WriteErrors, writes the
	// device refused; ReadErrors, reads that failed, which end reading.
	Dropped, BadChecksum, WriteErrors, ReadErrors atomic.Uint64
}

// virtio-net header (include/uapi/linux/virtio_net.h), the 10-byte form
// TUNSETVNETHDRSZ leaves by default, little-endian.
const (
	vnetHdrLen = 10

	vnetFlagNeedsCsum = 1 // VIRTIO_NET_HDR_F_NEEDS_CSUM
	vnetFlagDataValid = 2 // VIRTIO_NET_HDR_F_DATA_VALID

	vnetGSONone  = 0
	vnetGSOTCPv4 = 1
	vnetGSOTCPv6 = 4
	vnetGSOECN   = 0x80
)

// gsoLinkMaxPacket is the largest IP packet GSOLink reads or writes, and
// its GSOMaxSize: the most an IPv4 length field says.
const gsoLinkMaxPacket = 65535

// smallPacket is the size under which a packet read is copied out of the
// 64 KiB buffer it was read into, so that small packets (ACKs) do not hold
// 64 KiB each while gVisor queues them.
const smallPacket = 4096

// NewGSOLink returns a GSOLink on fd, a TUN descriptor opened with
// IFF_VNET_HDR and a 10-byte header, for a device of the given MTU. It
// takes fd over, even on error.
func NewGSOLink(fd, mtu int) (*GSOLink, error) {
	if mtu < header.IPv6MinimumMTU || mtu > gsoLinkMaxPacket {
		unix.Close(fd)
		return nil, fmt.Errorf("gvisorhost: GSO link: MTU %d out of range", mtu)
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("gvisorhost: GSO link: %w", err)
	}
	f := os.NewFile(uintptr(fd), "tun")
	rc, err := f.SyscallConn()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("gvisorhost: GSO link: %w", err)
	}
	e := &GSOLink{f: f, rc: rc, gsoMax: gsoLinkMaxPacket + 1}
	e.mtu.Store(uint32(mtu))
	return e, nil
}

// Stats returns the link's counters.
func (e *GSOLink) Stats() *GSOLinkStats { return &e.stats }

// MTU implements stack.LinkEndpoint.
func (e *GSOLink) MTU() uint32 { return e.mtu.Load() }

// SetMTU implements stack.LinkEndpoint.
func (e *GSOLink) SetMTU(mtu uint32) { e.mtu.Store(mtu) }

// MaxHeaderLength implements stack.LinkEndpoint: no link header (the
// virtio-net header is written from a buffer of its own).
func (*GSOLink) MaxHeaderLength() uint16 { return 0 }

// LinkAddress implements stack.LinkEndpoint: a TUN device has none.
func (*GSOLink) LinkAddress() tcpip.LinkAddress { return "" }

// SetLinkAddress implements stack.LinkEndpoint; it does nothing.
func (*GSOLink) SetLinkAddress(tcpip.LinkAddress) {}

// Capabilities implements stack.LinkEndpoint: receive checksum offload
// (see GSOLink). Not transmit: packets without GSO options carry
// complete checksums.
func (*GSOLink) Capabilities() stack.LinkEndpointCapabilities {
	return stack.CapabilityRXChecksumOffload
}

// GSOMaxSize implements stack.GSOEndpoint.
func (e *GSOLink) GSOMaxSize() uint32 { return e.gsoMax }

// SupportedGSO implements stack.GSOEndpoint: the host segments.
func (*GSOLink) SupportedGSO() stack.SupportedGSO { return stack.HostGSOSupported }

// ARPHardwareType implements stack.LinkEndpoint.
func (*GSOLink) ARPHardwareType() header.ARPHardwareType { return header.ARPHardwareNone }

// AddHeader implements stack.LinkEndpoint; there is no link header.
func (*GSOLink) AddHeader(*stack.PacketBuffer) {}

// ParseHeader implements stack.LinkEndpoint; there is no link header.
func (*GSOLink) ParseHeader(*stack.PacketBuffer) bool { return true }

// SetOnCloseAction implements stack.LinkEndpoint.
func (e *GSOLink) SetOnCloseAction(f func()) {
	e.mu.Lock()
	e.onClose = f
	e.mu.Unlock()
}

// Attach implements stack.LinkEndpoint. The first dispatcher starts the
// reading goroutine; nil (the NIC going away) stops it and waits for it.
func (e *GSOLink) Attach(d stack.NetworkDispatcher) {
	e.mu.Lock()
	if d == nil {
		e.dispatcher = nil
		e.mu.Unlock()
		e.stopReading()
		return
	}
	e.dispatcher = d
	start := !e.reading && !e.stop.Load()
	e.reading = true
	e.mu.Unlock()
	if start {
		e.wg.Add(1)
		go e.readLoop()
	}
}

// IsAttached implements stack.LinkEndpoint.
func (e *GSOLink) IsAttached() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.dispatcher != nil
}

// Wait implements stack.LinkEndpoint: it waits for the reading goroutine.
func (e *GSOLink) Wait() { e.wg.Wait() }

// stopReading ends the reading goroutine (a read deadline in the past
// wakes it) and waits for it.
func (e *GSOLink) stopReading() {
	e.stop.Store(true)
	e.f.SetReadDeadline(time.Unix(1, 0))
	e.wg.Wait()
}

// Close implements stack.LinkEndpoint: it stops reading and closes the
// descriptor.
func (e *GSOLink) Close() {
	e.closeOnce.Do(func() {
		e.stopReading()
		e.f.Close()
		e.mu.Lock()
		f := e.onClose
		e.mu.Unlock()
		if f != nil {
			f()
		}
	})
}

func (e *GSOLink) readLoop() {
	defer e.wg.Done()
	var hdr [vnetHdrLen]byte
	v := buffer.NewViewSize(gsoLinkMaxPacket)
	defer func() { v.Release() }()
	for !e.stop.Load() {
		n, err := e.read(hdr[:], v.AsSlice())
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			// Stopped (a deadline in the past, or closed), or the device
			// is gone (EBADFD, EIO): nothing more will come.
			if !errors.Is(err, os.ErrDeadlineExceeded) && !errors.Is(err, os.ErrClosed) && !e.stop.Load() {
				e.stats.ReadErrors.Add(1)
			}
			return
		}
		if n < vnetHdrLen {
			e.stats.Dropped.Add(1)
			continue
		}
		n -= vnetHdrLen
		pkt := v.AsSlice()[:n]
		proto, ok := e.check(hdr[:], pkt)
		if !ok {
			continue
		}
		var payload *buffer.View
		if n < smallPacket {
			payload = buffer.NewViewWithData(pkt)
		} else {
			payload = v
			payload.CapLength(n)
			v = buffer.NewViewSize(gsoLinkMaxPacket)
		}
		pb := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(payload)})
		e.mu.Lock()
		d := e.dispatcher
		e.mu.Unlock()
		if d != nil {
			d.DeliverNetworkPacket(proto, pb)
		}
		pb.DecRef()
	}
}

// read reads one packet: its virtio-net header into hdr, the IP packet
// into pkt. It returns the bytes of both.
func (e *GSOLink) read(hdr, pkt []byte) (int, error) {
	var n int
	var errno error
	iov := [2]unix.Iovec{{Base: &hdr[0]}, {Base: &pkt[0]}}
	iov[0].SetLen(len(hdr))
	iov[1].SetLen(len(pkt))
	err := e.rc.Read(func(fd uintptr) bool {
		r, _, en := unix.Syscall(unix.SYS_READV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
		if en == unix.EAGAIN {
			return false
		}
		n = int(r)
		if en != 0 {
			errno = en
		}
		return true
	})
	if err != nil {
		return 0, err
	}
	return n, errno
}

// check counts a packet read and reports its network protocol, and
// whether to deliver it: well formed, and with a correct checksum unless
// the kernel marked it.
func (e *GSOLink) check(hdr, pkt []byte) (tcpip.NetworkProtocolNumber, bool) {
	e.stats.PacketsIn.Add(1)
	e.stats.BytesIn.Add(uint64(len(pkt)))
	if hdr[1]&^vnetGSOECN != vnetGSONone {
		e.stats.GSOIn.Add(1)
	}
	if len(pkt) == 0 {
		e.stats.Dropped.Add(1)
		return 0, false
	}
	var proto tcpip.NetworkProtocolNumber
	switch pkt[0] >> 4 {
	case 4:
		proto = header.IPv4ProtocolNumber
	case 6:
		proto = header.IPv6ProtocolNumber
	default:
		e.stats.Dropped.Add(1)
		return 0, false
	}
	if hdr[0]&(vnetFlagNeedsCsum|vnetFlagDataValid) == 0 && !transportChecksumOK(pkt) {
		e.stats.BadChecksum.Add(1)
		return 0, false
	}
	return proto, true
}

// transportChecksumOK reports whether a TCP or UDP packet's checksum is
// right; other packets and ones too short to tell pass (gVisor's own
// checks see them).
func transportChecksumOK(pkt []byte) bool {
	var src, dst tcpip.Address
	var proto tcpip.TransportProtocolNumber
	var l4 []byte
	switch pkt[0] >> 4 {
	case 4:
		h := header.IPv4(pkt)
		if !h.IsValid(len(pkt)) || h.More() || h.FragmentOffset() != 0 {
			return true
		}
		src, dst, proto = h.SourceAddress(), h.DestinationAddress(), h.TransportProtocol()
		l4 = pkt[h.HeaderLength():h.TotalLength()]
	case 6:
		h := header.IPv6(pkt)
		if !h.IsValid(len(pkt)) {
			return true
		}
		// A TCP or UDP header right after the IPv6 header; packets with
		// extension headers pass.
		src, dst, proto = h.SourceAddress(), h.DestinationAddress(), tcpip.TransportProtocolNumber(h.NextHeader())
		l4 = pkt[header.IPv6MinimumSize : header.IPv6MinimumSize+int(h.PayloadLength())]
	}
	if proto != header.TCPProtocolNumber && proto != header.UDPProtocolNumber {
		return true
	}
	if proto == header.UDPProtocolNumber && len(l4) >= header.UDPMinimumSize && header.UDP(l4).Checksum() == 0 {
		return true // IPv4 UDP without a checksum
	}
	sum := header.PseudoHeaderChecksum(proto, src, dst, uint16(len(l4)))
	return checksum.Checksum(l4, sum) == 0xffff
}

// WritePackets implements stack.LinkEndpoint: one writev a packet, its
// virtio-net header first.
func (e *GSOLink) WritePackets(pkts stack.PacketBufferList) (int, tcpip.Error) {
	n := 0
	for _, pkt := range pkts.AsSlice() {
		if err := e.writePacket(pkt); err != nil {
			if n == 0 {
				return 0, err
			}
			break
		}
		n++
	}
	return n, nil
}

// maxIovecs bounds the pieces of one packet written in one writev; a
// packet in more pieces is copied into one buffer first.
const maxIovecs = 16

func (e *GSOLink) writePacket(pkt *stack.PacketBuffer) tcpip.Error {
	var hdr [vnetHdrLen]byte
	large := e.vnetHeader(hdr[:], pkt)
	var iov [maxIovecs]unix.Iovec
	iov[0].Base = &hdr[0]
	iov[0].SetLen(len(hdr))
	cnt := 1
	slices := pkt.AsSlices()
	if len(slices) >= maxIovecs {
		joined := pkt.ToView()
		defer joined.Release()
		slices = [][]byte{joined.AsSlice()}
	}
	size := 0
	for _, s := range slices {
		if len(s) == 0 {
			continue
		}
		iov[cnt].Base = &s[0]
		iov[cnt].SetLen(len(s))
		size += len(s)
		cnt++
	}
	var errno syscall.Errno
	err := e.rc.Write(func(fd uintptr) bool {
		_, _, errno = unix.Syscall(unix.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), uintptr(cnt))
		return errno != unix.EAGAIN
	})
	if err != nil || errno != 0 {
		e.stats.WriteErrors.Add(1)
		if errno != 0 {
			return tcpip.TranslateErrno(errno)
		}
		return &tcpip.ErrClosedForSend{}
	}
	e.stats.PacketsOut.Add(1)
	e.stats.BytesOut.Add(uint64(size))
	if large {
		e.stats.GSOOut.Add(1)
	}
	return nil
}

// vnetHeader fills hdr for pkt from its GSO options and reports whether
// the kernel is to segment it. gVisor's TCP sets the options on every
// packet of a connection on this link; the checksum in its TCP header
// then covers only the pseudo-header (the kernel completes it from
// csum_start, the end of the IP header, as there is no Ethernet header in
// front).
func (e *GSOLink) vnetHeader(hdr []byte, pkt *stack.PacketBuffer) bool {
	g := pkt.GSOOptions
	if g.Type != stack.GSOTCPv4 && g.Type != stack.GSOTCPv6 {
		return false
	}
	binary.LittleEndian.PutUint16(hdr[2:], uint16(pkt.HeaderSize()))
	if g.NeedsCsum {
		hdr[0] = vnetFlagNeedsCsum
		binary.LittleEndian.PutUint16(hdr[6:], uint16(len(pkt.NetworkHeader().Slice())))
		binary.LittleEndian.PutUint16(hdr[8:], g.CsumOffset)
	}
	if pkt.Data().Size() <= int(g.MSS) {
		return false
	}
	hdr[1] = vnetGSOTCPv4
	if g.Type == stack.GSOTCPv6 {
		hdr[1] = vnetGSOTCPv6
	}
	binary.LittleEndian.PutUint16(hdr[4:], g.MSS)
	return true
}

var (
	_ stack.LinkEndpoint = (*GSOLink)(nil)
	_ stack.GSOEndpoint  = (*GSOLink)(nil)
)
