package synstack_test

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack"
)

// udpForwarder is a Forwarder of UDP flows for tests: decide says what to
// do with each request (it may keep it undecided).
type udpForwarder struct {
	decide func(req *synstack.UDPForwardRequest)
}

func (f udpForwarder) Forward(req *synstack.ForwardRequest)       { req.Drop() }
func (f udpForwarder) ForwardUDP(req *synstack.UDPForwardRequest) { f.decide(req) }

// TestForwardUDP: a datagram for another address opens a flow; the
// forwarder accepts it and answers from the original destination.
func TestForwardUDP(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	var wg sync.WaitGroup
	defer wg.Wait()
	srv.SetForwarder(udpForwarder{func(req *synstack.UDPForwardRequest) {
		c, err := req.Accept()
		if err != nil {
			t.Error(err)
			return
		}
		wg.Add(1)
		go func() { // an echo upstream, idle after one exchange
			defer wg.Done()
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(30 * time.Second))
			buf := make([]byte, 2000)
			n, err := c.Read(buf)
			if err != nil {
				t.Error(err)
				return
			}
			c.Write(append([]byte("echo:"), buf[:n]...))
		}()
	}}, synstack.ForwardOptions{})
	u, err := cli.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	hangGuard(u)
	far := netip.MustParseAddrPort("198.51.100.7:53")
	if _, err := u.WriteToUDPAddrPort([]byte("query"), far); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := u.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != "echo:query" || from != far {
		t.Fatalf("read %q from %v, %v: want echo:query from %v", buf[:n], from, err, far)
	}
	wg.Wait()
	if st := srv.Stats(); st.SynstackForwardUDPRequests != 1 || st.SynstackForwardUDPFlows != 1 {
		t.Errorf("%d requests, %d flows: want 1 and 1", st.SynstackForwardUDPRequests, st.SynstackForwardUDPFlows)
	}
	if n := srv.UDPFlows(); n != 0 {
		t.Errorf("%d flows after the forwarder closed its UDPConn, want 0", n)
	}
}

// TestForwardUDPBounds: flows beyond MaxUDPFlows are dropped and counted,
// and a decided request gives its place back; Refuse answers with ICMP
// port unreachable.
func TestForwardUDPBounds(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	var mu sync.Mutex
	var held []*synstack.UDPForwardRequest
	srv.SetForwarder(udpForwarder{func(req *synstack.UDPForwardRequest) {
		mu.Lock()
		held = append(held, req)
		mu.Unlock()
	}}, synstack.ForwardOptions{MaxUDPFlows: 4})
	u, err := cli.ListenUDP("udp4", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	for i := range 6 {
		u.WriteToUDPAddrPort([]byte("x"), netip.AddrPortFrom(netip.MustParseAddr("198.51.100.7"), uint16(1000+i)))
	}
	waitFor(t, func() bool {
		st := srv.Stats()
		return st.SynstackForwardUDPRequests+st.SynstackForwardUDPLimitDrops == 6
	})
	if st := srv.Stats(); st.SynstackForwardUDPRequests != 4 || st.SynstackForwardUDPLimitDrops != 2 || srv.UDPFlows() != 4 {
		t.Fatalf("%d offered, %d dropped for the bound, %d flows: want 4, 2, 4",
			st.SynstackForwardUDPRequests, st.SynstackForwardUDPLimitDrops, srv.UDPFlows())
	}
	mu.Lock()
	reqs := held
	mu.Unlock()
	for _, r := range reqs[1:] {
		if err := r.Drop(); err != nil {
			t.Fatal(err)
		}
	}
	if err := reqs[1].Drop(); !errors.Is(err, synstack.ErrForwardDecided) {
		t.Errorf("a second decision: %v, want ErrForwardDecided", err)
	}

	// Refuse: a connected client hears ECONNREFUSED.
	d, err := cli.Dial("udp4", "198.51.100.7:1000")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dc := d.(*synstack.UDPConn)
	hangGuard(dc)
	reqs[0].Refuse()
	// reqs[0] was the flow of u's first datagram: the ICMP error goes to u,
	// which is not connected and ignores it. A new flow from dc, refused:
	d.Write([]byte("y"))
	waitFor(t, func() bool { mu.Lock(); defer mu.Unlock(); return len(held) == 5 })
	mu.Lock()
	held[4].Refuse()
	mu.Unlock()
	if _, err := d.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("read after a refused flow: %v, want ECONNREFUSED", err)
	}
	if n := srv.UDPFlows(); n != 0 {
		t.Errorf("%d flows after every request was decided, want 0", n)
	}
}

// pingForwarder answers pings for other addresses as reply says.
type pingForwarder struct {
	udpForwarder
	reply func(req *synstack.PingForwardRequest)
}

func (f pingForwarder) ForwardPing(req *synstack.PingForwardRequest) { f.reply(req) }

// TestForwardPing: an echo request for another address goes to the ping
// forwarder, whose Reply answers from that address; Drop leaves it
// unanswered.
func TestForwardPing(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	srv.SetForwarder(pingForwarder{reply: func(req *synstack.PingForwardRequest) {
		if req.Dst() == netip.MustParseAddr("198.51.100.9") {
			req.Reply()
		} else {
			req.Drop()
		}
	}}, synstack.ForwardOptions{})
	pc, err := cli.ListenPing("ping4", netip.Addr{})
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pc.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	echo := []byte{8, 0, 0, 0, 0, 0, 0, 1, 'h', 'i'}     // type, code, checksum, ident, seq 1, data
	down := netip.MustParseAddr("198.51.100.10")
	if _, err := pc.WriteTo(echo, &net.IPAddr{IP: down.AsSlice()}); err != nil {
		t.Fatal(err)
	}
	if _, err := pc.WriteTo(echo, &net.IPAddr{IP: net.IPv4(198, 51, 100, 9)}); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, from, err := pc.ReadFrom(buf)
	if err != nil || from.String() != "198.51.100.9" || n != len(echo) || buf[0] != 0 || string(buf[8:n]) != "hi" {
		t.Fatalf("read % x from %v, %v: want the echo reply from 198.51.100.9 alone", buf[:n], from, err)
	}
	if st := srv.Stats(); st.SynstackForwardPings != 2 || st.IcmpOutEchoReps != 1 {
		t.Errorf("%d pings offered, %d replies: want 2 and 1", st.SynstackForwardPings, st.IcmpOutEchoReps)
	}
}
