// Package gvisorhost builds gVisor netstack hosts for synstack's tests and
// benchmarks: one gVisor stack on one link (a channel endpoint in memory,
// upstream's fdbased endpoint on a TUN descriptor, or this package's own
// GSO endpoint on a TUN descriptor), its addresses and routes, the TCP
// options Go programs on gVisor usually set, and dial and listen helpers
// that keep each connection's endpoint within reach.
//
// It is the one place that knows how a gVisor host is put together, so
// that internal/bench and internal/gvisortest measure and test the same
// gVisor. Only tests and benchmarks import it: the library never depends
// on gVisor.
//
//	s, err := gvisorhost.New(gvisorhost.NewChannel(1024, 1500, false), gvisorhost.Options{}, prefix)
//	ln, err := gvisorhost.Listen(s, addr, 16)
//	c, err := gvisorhost.Dial(ctx, s, netip.Addr{}, addr)
package gvisorhost

import (
	"context"
	"fmt"
	"net/netip"
	"time"

	"gvisor.dev/gvisor/pkg/buffer"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/channel"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv6"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// NIC is the number of the one NIC every host here has.
const NIC tcpip.NICID = 1

// Options choose how the gVisor stack is set up. The zero value is IPv4
// and TCP with SACK, everything else at gVisor's defaults.
type Options struct {
	// UDP adds the UDP transport protocol (at gVisor's defaults), for
	// gonet.DialUDP and gonet.NewUDPConn.
	UDP bool
	// IPv6 adds IPv6 (duplicate address detection off, so that its
	// addresses work at once) and a default IPv6 route.
	IPv6 bool
	// ModerateReceiveBuffer turns on receive-buffer moderation (auto
	// tuning), as Go programs on gVisor usually configure it.
	ModerateReceiveBuffer bool
	// TimeWait is how long connections stay in TIME_WAIT; 0 keeps
	// gVisor's default.
	TimeWait time.Duration
	// SendBuffer and ReceiveBuffer, when their Max is not 0, set TCP's
	// send and receive buffer size ranges in bytes.
	SendBuffer, ReceiveBuffer BufferRange
	// CongestionControl names TCP's congestion control ("reno",
	// "cubic"); "" keeps gVisor's default.
	CongestionControl string
}

// BufferRange is a socket buffer's minimum, default and maximum size in
// bytes.
type BufferRange struct {
	Min, Default, Max int
}

// New returns a gVisor stack with one NIC, ep, holding addrs, with a
// default route through it and the TCP options of opts. On error nothing
// is left running; ep is the caller's to close.
func New(ep stack.LinkEndpoint, opts Options, addrs ...netip.Prefix) (*stack.Stack, error) {
	nets := []stack.NetworkProtocolFactory{ipv4.NewProtocol}
	routes := []tcpip.Route{{Destination: header.IPv4EmptySubnet, NIC: NIC}}
	if opts.IPv6 {
		nets = append(nets, ipv6.NewProtocolWithOptions(ipv6.Options{DADConfigs: stack.DADConfigurations{DupAddrDetectTransmits: 0}}))
		routes = append(routes, tcpip.Route{Destination: header.IPv6EmptySubnet, NIC: NIC})
	}
	transports := []stack.TransportProtocolFactory{tcp.NewProtocol}
	if opts.UDP {
		transports = append(transports, udp.NewProtocol)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   nets,
		TransportProtocols: transports,
	})
	if err := setUp(s, ep, opts, addrs, routes); err != nil {
		s.Destroy()
		return nil, err
	}
	return s, nil
}

func setUp(s *stack.Stack, ep stack.LinkEndpoint, opts Options, addrs []netip.Prefix, routes []tcpip.Route) error {
	if err := s.CreateNIC(NIC, ep); err != nil {
		return fmt.Errorf("gvisorhost: CreateNIC: %s", err)
	}
	for _, a := range addrs {
		_, proto := FullAddr(netip.AddrPortFrom(a.Addr(), 0))
		pa := tcpip.ProtocolAddress{
			Protocol:          proto,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFromSlice(a.Addr().AsSlice()), PrefixLen: a.Bits()},
		}
		if err := s.AddProtocolAddress(NIC, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("gvisorhost: address %v: %s", a, err)
		}
	}
	s.SetRouteTable(routes)
	for _, o := range tcpOptions(opts) {
		if err := s.SetTransportProtocolOption(tcp.ProtocolNumber, o.opt); err != nil {
			return fmt.Errorf("gvisorhost: TCP option %s: %s", o.name, err)
		}
	}
	return nil
}

type namedOption struct {
	name string
	opt  tcpip.SettableTransportProtocolOption
}

// tcpOptions lists the TCP options opts asks for, SACK first.
func tcpOptions(opts Options) []namedOption {
	sack := tcpip.TCPSACKEnabled(true)
	list := []namedOption{{"SACK", &sack}}
	if opts.ModerateReceiveBuffer {
		mod := tcpip.TCPModerateReceiveBufferOption(true)
		list = append(list, namedOption{"receive buffer moderation", &mod})
	}
	if opts.TimeWait > 0 {
		tw := tcpip.TCPTimeWaitTimeoutOption(opts.TimeWait)
		list = append(list, namedOption{"TIME_WAIT", &tw})
	}
	if b := opts.SendBuffer; b.Max != 0 {
		list = append(list, namedOption{"send buffer", &tcpip.TCPSendBufferSizeRangeOption{Min: b.Min, Default: b.Default, Max: b.Max}})
	}
	if b := opts.ReceiveBuffer; b.Max != 0 {
		list = append(list, namedOption{"receive buffer", &tcpip.TCPReceiveBufferSizeRangeOption{Min: b.Min, Default: b.Default, Max: b.Max}})
	}
	if opts.CongestionControl != "" {
		cc := tcpip.CongestionControlOption(opts.CongestionControl)
		list = append(list, namedOption{"congestion control", &cc})
	}
	return list
}

// NewChannel returns gVisor's in-memory link, a channel endpoint holding
// queueLen packets of at most mtu bytes each way. With checksumOffload,
// gVisor neither computes nor verifies TCP checksums on it (memory does
// not corrupt packets), as synstack over its pipe with ChecksumOffload
// and the kernel over lo.
func NewChannel(queueLen, mtu int, checksumOffload bool) *channel.Endpoint {
	ch := channel.New(queueLen, uint32(mtu), "")
	if checksumOffload {
		ch.LinkEPCapabilities |= stack.CapabilityTXChecksumOffload | stack.CapabilityRXChecksumOffload
	}
	return ch
}

// Carry hands every packet from's stack sends to to's stack, copied once,
// until ctx ends or from closes: one direction of a link between two
// channel endpoints. (Handing over the sender's buffer by reference,
// without the copy, stalls bulk transfers: the sender keeps using it.)
func Carry(ctx context.Context, from, to *channel.Endpoint) {
	for {
		pb := from.ReadContext(ctx)
		if pb == nil {
			return
		}
		in := stack.NewPacketBuffer(stack.PacketBufferOptions{Payload: buffer.MakeWithView(pb.ToView())})
		proto := pb.NetworkProtocolNumber
		pb.DecRef()
		to.InjectInbound(proto, in)
		in.DecRef()
	}
}

// FullAddr is ap as gVisor names it on NIC, with its network protocol.
func FullAddr(ap netip.AddrPort) (tcpip.FullAddress, tcpip.NetworkProtocolNumber) {
	proto := ipv4.ProtocolNumber
	if ap.Addr().Is6() {
		proto = ipv6.ProtocolNumber
	}
	return tcpip.FullAddress{NIC: NIC, Addr: tcpip.AddrFromSlice(ap.Addr().AsSlice()), Port: ap.Port()}, proto
}

// AddrPort is gVisor's address and port as a netip.AddrPort (IPv4 in its
// 4-byte form).
func AddrPort(a tcpip.Address, port uint16) netip.AddrPort {
	ip, _ := netip.AddrFromSlice(a.AsSlice())
	return netip.AddrPortFrom(ip.Unmap(), port)
}
