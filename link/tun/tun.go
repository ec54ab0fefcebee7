// Package tun is a link over a TUN device: the stack's packets go to the
// kernel, which routes them to its own sockets (or anywhere else), and the
// packets the kernel routes to the device come to the stack.
//
// On Linux, Open creates or attaches to a device itself (below). On any
// Unix system (Linux, Android, macOS, iOS, the BSDs), FromFD and FromFile
// wrap a device that someone else opened and configured: the descriptor
// Android's VpnService gives, a utun on macOS or iOS (with
// FileOptions.AFHeader), a descriptor a privileged helper passed over a
// Unix socket, with or without the virtio-net header
// (FileOptions.VnetHdr). Elsewhere than on Linux, Open returns an error
// wrapping errors.ErrUnsupported; the package builds everywhere.
//
//	// fd: ParcelFileDescriptor.detachFd() of VpnService.Builder.establish()
//	ep, err := tun.FromFD(fd, tun.FileOptions{MTU: 1500})
//
// Open creates the device, or attaches to an existing one by name, sets its
// MTU and brings it up (netlink, no shell commands); it can also give the
// kernel's side of the device its addresses (Options.HostAddrs). Close
// removes what Open created or restores what it changed.
//
// With offloads (the default), the device is opened with IFF_VNET_HDR and
// TUNSETOFFLOAD (checksum, TSO4, TSO6): the kernel sends large TCP packets
// of up to 64 KiB, several segments at once, and leaves their checksums to
// be completed; the endpoint completes them and hands each large packet to
// the stack whole (as GRO does). The other way, the endpoint coalesces the
// segments of one flow that the stack sends in a burst into one large
// packet, which crosses the device in one write (the kernel takes it as
// GSO), and leaves the checksum to the kernel. Where the kernel offers no
// offloads, or with Options.NoOffload, the device is a plain IFF_TUN one:
// one packet per read or write, MTU-sized.
//
// With Options.Queues above 1, the device is a multi-queue one
// (IFF_MULTI_QUEUE): it is opened that many times, and each of its queues
// has a reader and a writer of its own. The kernel spreads the flows it
// sends over the queues; the endpoint sends each flow's packets through
// one queue, chosen by a hash of its addresses and ports. The Dispatcher
// is then called from as many goroutines at once as there are queues, as
// a stack that shards its connections can take (synstack.Stack does).
//
// Opening a TUN device and configuring links needs CAP_NET_ADMIN (root);
// FromFD needs no privilege of its own.
//
//	ep, err := tun.Open(tun.Options{Name: "syn0", HostAddrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.1/24")}})
//	st, err := synstack.New(synstack.Config{Link: ep, Addrs: []netip.Prefix{netip.MustParsePrefix("10.99.0.2/24")}})
//	// the kernel reaches the stack at 10.99.0.2
package tun

import (
	"errors"
	"net/netip"
)

// Defaults of Options.
const (
	DefaultMTU      = 1500
	DefaultQueueLen = 2048
)

// ErrClosed is returned by WritePacket after Close.
var ErrClosed = errors.New("tun: endpoint closed")

// Options configure Open.
type Options struct {
	// Name is the device's name. An existing TUN device of that name is
	// attached to; otherwise a device is created, and removed by Close.
	// Empty lets the kernel pick one (tun0, tun1...); see Endpoint.Name.
	Name string
	// MTU is the device's MTU and the link's. Default DefaultMTU.
	MTU int
	// NoOffload opens a plain IFF_TUN device: no virtio header, no large
	// packets, checksums computed both ways.
	NoOffload bool
	// HostAddrs are addresses to give the kernel's side of the device
	// (as `ip addr add`), so that the kernel routes the stack's prefix to
	// it. Close removes them.
	HostAddrs []netip.Prefix
	// QueueLen is how many packets written by the stack may wait for the
	// device before more are dropped. Default DefaultQueueLen.
	QueueLen int
	// Queues is how many queues the device has. 0 or 1: one, a plain
	// device read and written by one goroutine each. Above 1 (at most
	// MaxQueues): a multi-queue device (IFF_MULTI_QUEUE), opened Queues
	// times, each queue with a reader and a writer of its own; an
	// existing device must then be a multi-queue one too. The Dispatcher
	// is then called from up to Queues goroutines at once, so it must be
	// safe for concurrent DeliverPacket calls (synstack.Stack is). The
	// kernel picks the queue of each packet it sends; the endpoint sends
	// each flow's packets (same addresses, protocol and ports) through
	// one queue, so they stay in order and coalesce as with one queue.
	// QueueLen applies to each queue. Open fails if the kernel refuses a
	// multi-queue device.
	Queues int
}

// MaxQueues bounds Options.Queues: the kernel's limit on a TUN device's
// queues (MAX_TAP_QUEUES).
const MaxQueues = 256

// QueueStats count what one queue of an endpoint did; they add up to the
// corresponding Stats.
type QueueStats struct {
	PacketsIn     uint64 // packets read from this queue and delivered
	PacketsOut    uint64 // packets written to this queue
	WritesOut     uint64 // writes to this queue
	DropQueueFull uint64 // packets dropped because this queue's writer was behind
}

// Stats count what an endpoint did.
type Stats struct {
	PacketsIn  uint64 // packets read and delivered to the stack (a large one counts once)
	PacketsOut uint64 // packets the stack wrote that went to the device
	WritesOut  uint64 // writes to the device (fewer than PacketsOut when segments are coalesced)
	GSOIn      uint64 // large packets read (several segments coalesced by the kernel)
	GSOOut     uint64 // large packets written (segments coalesced by the endpoint)
	TSOOut     uint64 // large segments the stack handed over whole (link.SegmentOffloader), each written as one GSO packet
	CsumIn     uint64 // packets read whose checksum the endpoint completed
	VerifiedIn uint64 // packets the kernel vouched for (DATA_VALID, NEEDS_CSUM), handed over as verified (link.VerifiedDispatcher)

	DropNoDispatcher uint64 // packets read with no stack attached
	DropBad          uint64 // packets read that were malformed, or too large to write
	DropQueueFull    uint64 // packets written while the queue to the device was full
	Throttled        uint64 // times a sender was told the queue had no room for data (link.Backpressure), and held it
	WriteErrors      uint64 // writes the device refused (for example while it is down)
	ReadErrors       uint64 // reads that failed
}
