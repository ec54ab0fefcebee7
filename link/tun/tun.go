// Package tun is a link over a Linux TUN device: the stack's packets go to
// the kernel, which routes them to its own sockets (or anywhere else), and
// the packets the kernel routes to the device come to the stack.
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
// Opening a TUN device and configuring links needs CAP_NET_ADMIN (root).
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
}

// Stats count what an endpoint did.
type Stats struct {
	PacketsIn  uint64 // packets read and delivered to the stack (a large one counts once)
	PacketsOut uint64 // packets the stack wrote that went to the device
	WritesOut  uint64 // writes to the device (fewer than PacketsOut when segments are coalesced)
	GSOIn      uint64 // large packets read (several segments coalesced by the kernel)
	GSOOut     uint64 // large packets written (segments coalesced by the endpoint)
	CsumIn     uint64 // packets read whose checksum the endpoint completed

	DropNoDispatcher uint64 // packets read with no stack attached
	DropBad          uint64 // packets read that were malformed, or too large to write
	DropQueueFull    uint64 // packets written while the queue to the device was full
	WriteErrors      uint64 // writes the device refused (for example while it is down)
	ReadErrors       uint64 // reads that failed
}
