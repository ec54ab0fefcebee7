package gvisorhost_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/netip"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"

	"github.com/synstack/synstack/compare/internal/gvisorhost"
)

func TestOptionsReachTheStack(t *testing.T) {
	ch := gvisorhost.NewChannel(16, 1500, true)
	opts := gvisorhost.Options{
		ModerateReceiveBuffer: true,
		TimeWait:              3 * time.Second,
		SendBuffer:            gvisorhost.BufferRange{Min: 4096, Default: 65536, Max: 1 << 20},
		ReceiveBuffer:         gvisorhost.BufferRange{Min: 4096, Default: 131072, Max: 2 << 20},
		CongestionControl:     "cubic",
	}
	s, err := gvisorhost.New(ch, opts, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"))
	if err == nil {
		s.Destroy()
		t.Fatal("an IPv6 address without Options.IPv6 was taken")
	}
	opts.IPv6 = true
	s, err = gvisorhost.New(ch, opts, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("fd00::1/64"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Destroy()

	var sack tcpip.TCPSACKEnabled
	var mod tcpip.TCPModerateReceiveBufferOption
	var tw tcpip.TCPTimeWaitTimeoutOption
	var snd tcpip.TCPSendBufferSizeRangeOption
	var rcv tcpip.TCPReceiveBufferSizeRangeOption
	var cc tcpip.CongestionControlOption
	for _, o := range []tcpip.GettableTransportProtocolOption{&sack, &mod, &tw, &snd, &rcv, &cc} {
		if err := s.TransportProtocolOption(tcp.ProtocolNumber, o); err != nil {
			t.Fatalf("%T: %s", o, err)
		}
	}
	if !bool(sack) || !bool(mod) || time.Duration(tw) != opts.TimeWait || snd.Max != opts.SendBuffer.Max ||
		rcv.Default != opts.ReceiveBuffer.Default || string(cc) != opts.CongestionControl {
		t.Errorf("options read back as sack=%v moderate=%v timewait=%v send=%+v receive=%+v cc=%q", sack, mod, tw, snd, rcv, cc)
	}
	for _, a := range []string{"10.0.0.1", "fd00::1"} {
		fa, proto := gvisorhost.FullAddr(netip.AddrPortFrom(netip.MustParseAddr(a), 0))
		if nic := s.CheckLocalAddress(gvisorhost.NIC, proto, fa.Addr); nic != gvisorhost.NIC {
			t.Errorf("%s is not on the NIC", a)
		}
	}
	if ch.Capabilities()&stack.CapabilityRXChecksumOffload == 0 {
		t.Error("NewChannel(..., true) did not turn checksum offload on")
	}
	if gvisorhost.NewChannel(16, 1500, false).Capabilities()&stack.CapabilityTXChecksumOffload != 0 {
		t.Error("NewChannel(..., false) turned checksum offload on")
	}
}

func TestDialListenAbort(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	chA, chB := gvisorhost.NewChannel(64, 1500, false), gvisorhost.NewChannel(64, 1500, false)
	a, err := gvisorhost.New(chA, gvisorhost.Options{}, netip.MustParsePrefix("10.0.0.1/24"), netip.MustParsePrefix("10.0.0.3/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Destroy()
	b, err := gvisorhost.New(chB, gvisorhost.Options{}, netip.MustParsePrefix("10.0.0.2/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	go gvisorhost.Carry(ctx, chA, chB)
	go gvisorhost.Carry(ctx, chB, chA)

	srv := netip.MustParseAddrPort("10.0.0.2:80")
	if _, err := gvisorhost.Dial(ctx, a, netip.Addr{}, srv); err == nil {
		t.Fatal("dial with nobody listening succeeded")
	} else if _, ok := err.(*net.OpError); !ok {
		t.Errorf("dial error %T, want *net.OpError", err)
	}
	ln, err := gvisorhost.Listen(b, srv, 4)
	if err != nil {
		t.Fatal(err)
	}
	acc := make(chan *gvisorhost.Conn, 1)
	go func() {
		c, _ := ln.Accept(ctx)
		acc <- c
	}()
	c, err := gvisorhost.Dial(ctx, a, netip.MustParseAddr("10.0.0.3"), srv)
	if err != nil {
		t.Fatal(err)
	}
	s := <-acc
	if s == nil {
		t.Fatal("accept failed")
	}
	if got := s.RemoteAddr().String(); got != "10.0.0.3:"+portOf(c.LocalAddr()) {
		t.Errorf("accepted from %s, dialled from %s", got, c.LocalAddr())
	}
	if s.State() != "ESTABLISHED" {
		t.Errorf("accepted connection in %s", s.State())
	}
	// Abort: the peer's read sees a reset, not an end of stream.
	s.Abort()
	s.Close()
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err == nil || errors.Is(err, io.EOF) {
		t.Errorf("read after the peer aborted: %v, want a reset", err)
	}
	c.Close()

	ln.Close()
	if _, err := ln.Accept(ctx); !errors.Is(err, net.ErrClosed) {
		t.Errorf("Accept on a closed listener: %v, want net.ErrClosed", err)
	}
}

func portOf(a net.Addr) string {
	_, p, _ := net.SplitHostPort(a.String())
	return p
}

// Options.UDP adds UDP: without it a UDP endpoint cannot be made, with it
// a datagram goes from one stack to the other through gonet.
func TestUDPOption(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	chA, chB := gvisorhost.NewChannel(64, 1500, true), gvisorhost.NewChannel(64, 1500, true)
	none, err := gvisorhost.New(gvisorhost.NewChannel(4, 1500, true), gvisorhost.Options{}, netip.MustParsePrefix("10.0.0.9/24"))
	if err != nil {
		t.Fatal(err)
	}
	fa, proto := gvisorhost.FullAddr(netip.MustParseAddrPort("10.0.0.9:53"))
	if c, err := gonet.DialUDP(none, &fa, nil, proto); err == nil {
		c.Close()
		t.Error("a UDP endpoint was made without Options.UDP")
	}
	none.Destroy()

	a, err := gvisorhost.New(chA, gvisorhost.Options{UDP: true}, netip.MustParsePrefix("10.0.0.1/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Destroy()
	b, err := gvisorhost.New(chB, gvisorhost.Options{UDP: true}, netip.MustParsePrefix("10.0.0.2/24"))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Destroy()
	go gvisorhost.Carry(ctx, chA, chB)
	go gvisorhost.Carry(ctx, chB, chA)

	la, proto := gvisorhost.FullAddr(netip.MustParseAddrPort("10.0.0.2:53"))
	rcv, err := gonet.DialUDP(b, &la, nil, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer rcv.Close()
	snd, err := gonet.DialUDP(a, nil, &la, proto)
	if err != nil {
		t.Fatal(err)
	}
	defer snd.Close()
	if _, err := snd.Write([]byte("hello")); err != nil {
		t.Fatal(err)
	}
	rcv.SetReadDeadline(time.Now().Add(10 * time.Second))
	buf := make([]byte, 16)
	n, from, err := rcv.ReadFrom(buf)
	if err != nil || string(buf[:n]) != "hello" || from.String() != snd.LocalAddr().String() {
		t.Errorf("read %q from %v, %v; want \"hello\" from %v", buf[:n], from, err, snd.LocalAddr())
	}
}
