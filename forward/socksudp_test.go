package forward

import (
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/proxy"

	"github.com/synstack/synstack"
	"github.com/synstack/synstack/internal/kernelnet"
)

// socksUDPServer runs kernelnet's SOCKS5 UDP server on the loopback,
// with user "u" and password "p", answering reply, and returns its
// address; asked is told each destination.
func socksUDPServer(t *testing.T, reply byte, asked chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &kernelnet.SOCKS5UDP{User: "u", Password: "p", Reply: reply,
		Asked: func(dst netip.AddrPort) { asked <- dst.String() }}
	s.Serve(t, ln)
	return ln.Addr().String()
}

// UDP through a SOCKS5 proxy (UDP ASSOCIATE, with a password): the proxy
// is asked for the flow's destination, the answer comes back, and the
// association ends with the flow; a proxy that refuses the association
// refuses the flow.
func TestForwardUDPSOCKS5(t *testing.T) {
	up := kernelnet.ServeUDP(t, answerDNS)
	asked := make(chan string, 10)
	auth := &proxy.Auth{User: "u", Password: "p"}
	fw := &Forwarder{Dial: SOCKS5(socksUDPServer(t, 0, asked), auth, nil), UDP: UDPOptions{Target: udpTo(up)}}
	client, fwd := setup(t, fw, synstack.ForwardOptions{})
	c, err := client.Dial("udp", "198.18.0.53:53")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange(t, c, "q1", "answer:q1")
	exchange(t, c, "q2", "answer:q2")
	for range 2 {
		if a := <-asked; a != up {
			t.Errorf("the proxy was asked for %s, want %s", a, up)
		}
	}
	fw.Close()
	if st := fw.Stats(); st.UDPFlows != 1 || st.UDPDatagramsDown != 2 || fwd.UDPFlows() != 0 {
		t.Errorf("stats %+v, %d flows in the stack: want 1 flow, 2 answers, none left", st.UDPStats, fwd.UDPFlows())
	}

	// A proxy answering "connection refused" (5) refuses the flow.
	fw2 := &Forwarder{Dial: SOCKS5(socksUDPServer(t, 5, asked), auth, nil), UDP: UDPOptions{Target: udpTo(up)}}
	client2, _ := setup(t, fw2, synstack.ForwardOptions{})
	d, err := client2.Dial("udp", "198.18.0.53:53")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	d.Write([]byte("q"))
	d.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	if _, err := d.Read(make([]byte, 10)); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("through a refusing proxy: %v, want ECONNREFUSED", err)
	}
	// A wrong password: the dial fails with EACCES, the flow is dropped.
	fw3 := &Forwarder{Dial: SOCKS5(socksUDPServer(t, 0, asked), &proxy.Auth{User: "u", Password: "x"}, nil), UDP: UDPOptions{Target: udpTo(up)}}
	client3, _ := setup(t, fw3, synstack.ForwardOptions{})
	e, err := client3.Dial("udp", "198.18.0.53:53")
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	e.Write([]byte("q"))
	waitFor(t, func() bool { return fw3.Stats().UDPDialDrops == 1 })
}

// The UDP request header of RFC 1928 section 7, for each address type,
// and its length when read back; malformed headers are refused.
func TestSOCKSHeader(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want []byte
	}{
		{"198.18.0.1:53", []byte{0, 0, 0, 1, 198, 18, 0, 1, 0, 53}},
		{"[2001:db8::1]:443", append(append([]byte{0, 0, 0, 4}, netip.MustParseAddr("2001:db8::1").AsSlice()...), 1, 187)},
		{"example.org:80", append(append([]byte{0, 0, 0, 3, 11}, "example.org"...), 0, 80)},
	} {
		h, err := socksHeader(tc.addr)
		if err != nil || string(h) != string(tc.want) {
			t.Errorf("%s: header %v, %v; want %v", tc.addr, h, err, tc.want)
		}
		if n := socksHeaderLen(append(h, "data"...)); n != len(h) {
			t.Errorf("%s: header length read back %d, want %d", tc.addr, n, len(h))
		}
	}
	for _, bad := range [][]byte{nil, {0, 0, 0}, {1, 0, 0, 1, 1, 2, 3, 4, 0, 1}, {0, 0, 0, 1, 1, 2}, {0, 0, 0, 9, 0, 0, 0, 0, 0, 0}, {0, 0, 0, 3, 200, 1}} {
		if n := socksHeaderLen(bad); n != -1 {
			t.Errorf("header %v: length %d, want -1", bad, n)
		}
	}
	if _, err := socksHeader("198.18.0.1:99999"); err == nil {
		t.Error("port 99999 accepted")
	}
}

// A UDP association reads only what its destination sent: datagrams
// from another source, fragments (FRAG not 0) and malformed headers are
// dropped; the proxy closing the control connection ends the reads.
func TestSOCKSUDPConnFilters(t *testing.T) {
	relay, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer relay.Close()
	udp, err := net.DialUDP("udp", nil, relay.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	hdr, _ := socksHeader("198.18.0.1:53")
	ctrl, proxySide := net.Pipe()
	c := &socksUDPConn{Conn: udp, ctrl: ctrl, hdr: hdr, done: make(chan struct{})}
	go c.watch()
	defer c.Close()

	if _, err := c.Write([]byte("query")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 100)
	n, client, err := relay.ReadFromUDPAddrPort(buf)
	if err != nil || string(buf[:n]) != string(hdr)+"query" {
		t.Fatalf("the relay got %q, %v; want the header and the query", buf[:n], err)
	}
	other, _ := socksHeader("198.18.0.2:53")
	frag := append([]byte(nil), hdr...)
	frag[2] = 1
	for _, d := range [][]byte{
		append(other, "from elsewhere"...),
		append(frag, "a fragment"...),
		{0, 0, 0, 9, 1, 2},
		append(hdr, "answer"...),
	} {
		relay.WriteToUDPAddrPort(d, client)
	}
	udp.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
	if n, err := c.Read(buf); err != nil || string(buf[:n]) != "answer" {
		t.Fatalf("read %q, %v; want the destination's answer alone", buf[:n], err)
	}
	proxySide.Close() // the proxy ends the association
	if _, err := c.Read(buf); err == nil {
		t.Fatal("a read after the proxy closed the control connection succeeded")
	}
}
