package forward

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"sync/atomic"
	"time"

	"github.com/synstack/synstack"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// Pings. A Forwarder answers the ICMP (v6) echo requests a client sends to
// other addresses either locally (PingOptions.Local: every address seems
// up, at once) or by pinging the destination from the host with an
// unprivileged ICMP socket ("udp4"/"udp6", as Linux's ping does; the
// host's net.ipv4.ping_group_range must include the process's group) and
// answering the client only once the destination answered.
//
// The stack offers the echo requests for other addresses to a Forwarder
// as a synstack.PingForwardRequest (ForwardPing); HandleEcho takes any
// EchoRequest, that or another source's.

// DefaultPingTimeout is the default of PingOptions.Timeout: a little less
// than the one second between the requests of ping(8), so that a lost
// reply does not hold a slot past the next request.
const DefaultPingTimeout = 900 * time.Millisecond

// DefaultMaxPings is the default of PingOptions.MaxInFlight.
const DefaultMaxPings = 256

// PingOptions configure how a Forwarder answers echo requests.
type PingOptions struct {
	// Local answers every echo request at once, as if its destination
	// did, without pinging from the host.
	Local bool
	// Off drops every echo request unanswered (counted in
	// Stats.PingDropped), as a network that filters ICMP would.
	Off bool
	// Check, if set, is asked before the host pings dst; an error drops
	// the request (Stats.PingLoops if it wraps ErrLoop, PingFailures
	// otherwise). synstack forward refuses there a destination the host
	// would route back into the stack's device.
	Check func(dst netip.Addr) error
	// Timeout bounds the wait for the destination's echo reply; then the
	// request is dropped (counted in Stats.PingTimeouts), as an echo
	// request to a host that does not answer is. Default
	// DefaultPingTimeout.
	Timeout time.Duration
	// MaxInFlight bounds the echo requests waiting for the host's ping;
	// beyond it they are dropped and counted (Stats.PingLimitDrops).
	// Default DefaultMaxPings.
	MaxInFlight int
	// Listen opens the host's ICMP socket for a ping, "udp4" or "udp6" on
	// the unspecified address: a datagram socket of the ICMP protocol,
	// whose reads and writes are whole ICMP messages and whose addresses
	// are *net.UDPAddr, as icmp.ListenPacket's. Default
	// icmp.ListenPacket; a caller sets SO_MARK on it, or opens it in
	// another network namespace, here.
	Listen func(network, address string) (net.PacketConn, error)
}

// EchoRequest is an echo request for another address, as the stack would
// offer it: Reply answers it from Dst with the same identifier, sequence
// number and data; Drop leaves it unanswered.
type EchoRequest interface {
	// Src is the client, Dst the address it pings.
	Src() netip.Addr
	Dst() netip.Addr
	// Seq is the request's sequence number, Data its payload (valid
	// until the request is decided).
	Seq() uint16
	Data() []byte
	Reply() error
	Drop() error
}

// PingStats are the counters of a Forwarder's pings (in Stats).
type PingStats struct {
	PingRequests   uint64 // echo requests handled
	PingReplies    uint64 // answered: the destination answered the host's ping, or Local
	PingTimeouts   uint64 // dropped: no answer within PingOptions.Timeout
	PingFailures   uint64 // dropped: the host's ping failed (no route, no permission...)
	PingLimitDrops uint64 // dropped: MaxInFlight were waiting
	PingLoops      uint64 // dropped: Check said the host's ping would loop
	PingDropped    uint64 // dropped: PingOptions.Off
}

// ForwardPing implements synstack.PingForwarder: the stack's echo
// requests for other addresses are handled as HandleEcho says.
func (f *Forwarder) ForwardPing(req *synstack.PingForwardRequest) { f.HandleEcho(req) }

var _ synstack.PingForwarder = (*Forwarder)(nil)

// HandleEcho answers req as PingOptions say: locally at once, or once the
// host's ping of req.Dst() is answered, on a goroutine of its own (bounded
// by MaxInFlight; Close waits for it).
func (f *Forwarder) HandleEcho(req EchoRequest) {
	c := &f.pings
	c.requests.Add(1)
	switch {
	case f.Ping.Local:
		c.replies.Add(1)
		_ = req.Reply()
		return
	case f.Ping.Off:
		c.dropped.Add(1)
		_ = req.Drop()
		return
	}
	if f.Ping.Check != nil {
		if err := f.Ping.Check(req.Dst()); err != nil {
			if errors.Is(err, ErrLoop) {
				c.loops.Add(1)
			} else {
				c.failures.Add(1)
			}
			_ = req.Drop()
			return
		}
	}
	src := req.Src()
	ctx, err := f.start(&f.pingSlots, f.Ping.MaxInFlight, DefaultMaxPings, 0, src)
	if err != nil {
		if err != errClosed {
			c.limitDrops.Add(1)
		}
		_ = req.Drop()
		return
	}
	go func() {
		defer f.done(&f.pingSlots, src)
		err := f.PingHost(ctx, req.Dst(), req.Seq(), req.Data())
		switch {
		case err == nil:
			c.replies.Add(1)
			_ = req.Reply()
			return
		case errors.Is(err, os.ErrDeadlineExceeded):
			c.timeouts.Add(1)
		default:
			c.failures.Add(1)
		}
		_ = req.Drop()
	}()
}

// PingHost pings dst from the host (PingOptions.Listen's socket) with the
// sequence number seq and the payload data, and waits for its reply,
// within ctx and PingOptions.Timeout: nil once dst answered with the same
// sequence number and data; an error wrapping os.ErrDeadlineExceeded if
// it did not in time; another error if the socket could not be opened or
// the request not sent.
func (f *Forwarder) PingHost(ctx context.Context, dst netip.Addr, seq uint16, data []byte) error {
	dst = dst.Unmap()
	network, unspec, typ, reply, proto := "udp4", "0.0.0.0", icmp.Type(ipv4.ICMPTypeEcho), icmp.Type(ipv4.ICMPTypeEchoReply), 1
	if dst.Is6() {
		network, unspec, typ, reply, proto = "udp6", "::", ipv6.ICMPTypeEchoRequest, ipv6.ICMPTypeEchoReply, 58
	}
	listen := f.Ping.Listen
	if listen == nil {
		listen = listenICMP
	}
	pc, err := listen(network, unspec)
	if err != nil {
		return err
	}
	defer pc.Close()
	timeout := orDur(f.Ping.Timeout, DefaultPingTimeout)
	pc.SetDeadline(time.Now().Add(timeout))
	stop := context.AfterFunc(ctx, func() { pc.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	// The kernel puts the socket's own identifier in the request.
	msg, err := (&icmp.Message{Type: typ, Body: &icmp.Echo{Seq: int(seq), Data: data}}).Marshal(nil)
	if err != nil {
		return err
	}
	to := &net.UDPAddr{IP: dst.AsSlice(), Zone: dst.Zone()}
	if _, err := pc.WriteTo(msg, to); err != nil {
		return err
	}
	bp := getBuf(DefaultUDPBufSize)
	defer putBuf(bp)
	buf := *bp
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return err
		}
		m, err := icmp.ParseMessage(proto, buf[:n])
		if err != nil || m.Type != reply {
			continue
		}
		e, ok := m.Body.(*icmp.Echo)
		if ok && e.Seq == int(seq) && string(e.Data) == string(data) && sameAddr(from, dst) {
			return nil
		}
	}
}

// listenICMP is PingOptions.Listen's default.
func listenICMP(network, address string) (net.PacketConn, error) {
	return icmp.ListenPacket(network, address)
}

// sameAddr reports whether a is the address b.
func sameAddr(a net.Addr, b netip.Addr) bool {
	ua, ok := a.(*net.UDPAddr)
	return ok && ua.AddrPort().Addr().Unmap().WithZone("") == b.WithZone("")
}

// pingCounters are PingStats' atomics.
type pingCounters struct {
	requests, replies, timeouts, failures, limitDrops, loops, dropped atomic.Uint64
}

func (c *pingCounters) stats() PingStats {
	return PingStats{
		PingRequests: c.requests.Load(), PingReplies: c.replies.Load(), PingTimeouts: c.timeouts.Load(),
		PingFailures: c.failures.Load(), PingLimitDrops: c.limitDrops.Load(),
		PingLoops: c.loops.Load(), PingDropped: c.dropped.Load(),
	}
}
