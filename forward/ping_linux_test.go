package forward

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"runtime"
	"syscall"
	"testing"
	"time"

	"github.com/vishvananda/netlink"
	"golang.org/x/net/icmp"
	"golang.org/x/sys/unix"
)

// pingNetns makes a network namespace of the test's own, its loopback up
// and unprivileged ICMP sockets allowed for every group, and returns a
// Listen that opens ping sockets in it, and a function that runs another
// on its thread (to change its sysctls). It skips the test without root.
func pingNetns(t *testing.T) (listen func(network, address string) (net.PacketConn, error), in func(f func() error) error) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root, to make a network namespace")
	}
	calls := make(chan func())
	ready := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with its namespace
		ready <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNET); err != nil {
				return err
			}
			lo, err := netlink.LinkByName("lo")
			if err != nil {
				return err
			}
			if err := netlink.LinkSetUp(lo); err != nil {
				return err
			}
			return os.WriteFile("/proc/sys/net/ipv4/ping_group_range", []byte("0 2147483647"), 0)
		}()
		for f := range calls {
			f()
		}
	}()
	if err := <-ready; err != nil {
		close(calls)
		<-done
		t.Skipf("skipped: cannot make a network namespace with ping sockets: %v", err)
	}
	t.Cleanup(func() { close(calls); <-done })
	in = func(f func() error) error {
		errc := make(chan error, 1)
		calls <- func() { errc <- f() }
		return <-errc
	}
	listen = func(network, address string) (pc net.PacketConn, err error) {
		err = in(func() (err error) {
			pc, err = icmp.ListenPacket(network, address)
			return err
		})
		return pc, err
	}
	return listen, in
}

// echoReq is an EchoRequest for tests: decided receives "reply" or
// "drop".
type echoReq struct {
	src, dst netip.Addr
	seq      uint16
	data     []byte
	decided  chan string
}

func newEcho(dst string, seq uint16) *echoReq {
	return &echoReq{src: netip.MustParseAddr("10.0.0.2"), dst: netip.MustParseAddr(dst), seq: seq,
		data: []byte("abcdefgh"), decided: make(chan string, 1)}
}

func (r *echoReq) Src() netip.Addr { return r.src }
func (r *echoReq) Dst() netip.Addr { return r.dst }
func (r *echoReq) Seq() uint16     { return r.seq }
func (r *echoReq) Data() []byte    { return r.data }
func (r *echoReq) Reply() error    { r.decided <- "reply"; return nil }
func (r *echoReq) Drop() error     { r.decided <- "drop"; return nil }

// PingHost pings from the host with an unprivileged ICMP socket (in a
// namespace of the test's): loopback answers, IPv4 and IPv6; an address
// with no route fails at once (ENETUNREACH), not by the timeout; a host
// that ignores echo requests times out.
func TestForwardPingHost(t *testing.T) {
	listen, in := pingNetns(t)
	fw := &Forwarder{Ping: PingOptions{Listen: listen, Timeout: 300 * time.Millisecond}}
	defer fw.Close()
	ctx := context.Background()
	for _, a := range []string{"127.0.0.1", "::1"} {
		if err := fw.PingHost(ctx, netip.MustParseAddr(a), 7, []byte("hello")); err != nil {
			t.Errorf("ping %s: %v", a, err)
		}
	}
	if err := fw.PingHost(ctx, netip.MustParseAddr("192.0.2.1"), 1, nil); !errors.Is(err, syscall.ENETUNREACH) {
		t.Errorf("ping an address with no route: %v, want ENETUNREACH", err)
	}
	if err := in(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/icmp_echo_ignore_all", []byte("1"), 0)
	}); err != nil {
		t.Fatal(err)
	}
	if err := fw.PingHost(ctx, netip.MustParseAddr("127.0.0.1"), 2, []byte("x")); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("ping a host that does not answer: %v, want a timeout", err)
	}
}

// HandleEcho answers a request once the host's ping is answered, drops it
// when the ping fails or times out, drops requests beyond MaxInFlight,
// and answers every request at once with Local; each outcome is counted.
func TestForwardHandleEcho(t *testing.T) {
	listen, in := pingNetns(t)
	fw := &Forwarder{Ping: PingOptions{Listen: listen, Timeout: 300 * time.Millisecond}}
	defer fw.Close()
	for _, tc := range []struct {
		dst, want string
	}{{"127.0.0.1", "reply"}, {"::1", "reply"}, {"192.0.2.1", "drop"}} {
		r := newEcho(tc.dst, 3)
		fw.HandleEcho(r)
		if got := <-r.decided; got != tc.want {
			t.Errorf("echo request to %s: %s, want %s", tc.dst, got, tc.want)
		}
	}
	if err := in(func() error {
		return os.WriteFile("/proc/sys/net/ipv4/icmp_echo_ignore_all", []byte("1"), 0)
	}); err != nil {
		t.Fatal(err)
	}
	one := &Forwarder{Ping: PingOptions{Listen: listen, Timeout: 300 * time.Millisecond, MaxInFlight: 1}}
	defer one.Close()
	waiting, beyond := newEcho("127.0.0.1", 4), newEcho("127.0.0.1", 5)
	one.HandleEcho(waiting)
	one.HandleEcho(beyond) // the first holds the only slot until its timeout
	if got := <-beyond.decided; got != "drop" {
		t.Errorf("a request beyond MaxInFlight: %s, want drop", got)
	}
	if got := <-waiting.decided; got != "drop" {
		t.Errorf("a request to a host that does not answer: %s, want drop", got)
	}
	if st := fw.Stats().PingStats; st != (PingStats{PingRequests: 3, PingReplies: 2, PingFailures: 1}) {
		t.Errorf("stats %+v", st)
	}
	if st := one.Stats().PingStats; st != (PingStats{PingRequests: 2, PingTimeouts: 1, PingLimitDrops: 1}) {
		t.Errorf("stats with MaxInFlight 1: %+v", st)
	}

	local := &Forwarder{Ping: PingOptions{Local: true, Listen: func(string, string) (net.PacketConn, error) {
		t.Error("Local pinged from the host")
		return nil, errors.New("no")
	}}}
	defer local.Close()
	r := newEcho("192.0.2.1", 1)
	local.HandleEcho(r)
	if got := <-r.decided; got != "reply" || local.Stats().PingReplies != 1 {
		t.Errorf("Local: %s, %d replies; want reply, 1", got, local.Stats().PingReplies)
	}
}

// Off drops every request without pinging; Check's refusal drops one
// before the host pings, counted as a loop when it wraps ErrLoop and as a
// failure otherwise; a destination Check allows is pinged.
func TestForwardPingOffAndCheck(t *testing.T) {
	noPing := func(string, string) (net.PacketConn, error) {
		t.Error("pinged from the host")
		return nil, errors.New("no")
	}
	off := &Forwarder{Ping: PingOptions{Off: true, Listen: noPing}}
	defer off.Close()
	r := newEcho("192.0.2.1", 1)
	off.HandleEcho(r)
	if got := <-r.decided; got != "drop" {
		t.Errorf("Off: %s, want drop", got)
	}
	if st := off.Stats().PingStats; st != (PingStats{PingRequests: 1, PingDropped: 1}) {
		t.Errorf("Off: stats %+v", st)
	}

	var asked []netip.Addr
	pinged := make(chan netip.Addr, 1)
	checked := &Forwarder{Ping: PingOptions{
		Check: func(dst netip.Addr) error {
			asked = append(asked, dst)
			switch dst.String() {
			case "198.18.0.1":
				return fmt.Errorf("routed into the device: %w", ErrLoop)
			case "198.18.0.2":
				return syscall.ENETUNREACH
			}
			return nil
		},
		Listen: func(network, address string) (net.PacketConn, error) {
			pinged <- netip.MustParseAddr("192.0.2.9")
			return nil, syscall.EACCES
		},
	}}
	defer checked.Close()
	for _, tc := range []struct{ dst, want string }{{"198.18.0.1", "drop"}, {"198.18.0.2", "drop"}, {"192.0.2.9", "drop"}} {
		r := newEcho(tc.dst, 2)
		checked.HandleEcho(r)
		if got := <-r.decided; got != tc.want {
			t.Errorf("echo request to %s: %s, want %s", tc.dst, got, tc.want)
		}
	}
	if got := <-pinged; got.String() != "192.0.2.9" {
		t.Errorf("pinged %s", got)
	}
	if len(asked) != 3 {
		t.Errorf("Check asked about %v, want all three", asked)
	}
	if st := checked.Stats().PingStats; st != (PingStats{PingRequests: 3, PingLoops: 1, PingFailures: 2}) {
		t.Errorf("Check: stats %+v", st)
	}
}
