package synstack

import (
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// A SYN flood from addresses that never answer fills the SYN queue; every
// SYN beyond it is answered with a cookie and costs the server nothing, and
// a legitimate client still connects: its ACK returns the cookie and the
// connection is rebuilt from it (the seed's "half-connection" attack).
func TestSynFloodCookies(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 4, true)
	// The flood's SYN,ACKs go to addresses nobody holds: drop them.
	n.drop = func(dir string, pkt []byte) bool {
		ih, _, err := wire.ParseIPv4(pkt)
		return err == nil && dir == "b>a" && ih.Dst != addrA
	}
	const flood = 2000
	for i := 0; i < flood; i++ {
		src := netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(100 + i%100)}), uint16(1024+i))
		syn := wire.TCP{Seq: uint32(i) * 7919, Flags: wire.FlagSYN, Window: 65535,
			Options: wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 1, HasWScale: true, WScale: 7}}
		n.b.DeliverPacket(packet(t, src, srvAddr, syn, nil))
	}
	n.pump()
	synQ, _ := n.b.queues(lfd)
	st := n.b.Stats()
	if synQ != 5 || st.TcpExtSyncookiesSent != flood-5 {
		t.Fatalf("after %d SYNs: %d half-open children (want backlog+1 = 5), %d cookies sent (want %d)",
			flood, synQ, st.TcpExtSyncookiesSent, flood-5)
	}
	// A real client, during the flood.
	ca := n.a.Sockets()
	cfd := mustFD(t)(ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0))
	wantErr(t, "connect", ca.Connect(cfd, srvAddr), syscall.EINPROGRESS)
	n.pump()
	sfd, _, err := n.b.Sockets().Accept(lfd)
	if err != nil {
		t.Fatalf("the legitimate client was not accepted during the flood: %v (stats %+v)", err, n.b.Stats())
	}
	if st := n.b.Stats(); st.TcpExtSyncookiesRecv != 1 {
		t.Fatalf("cookies received %d, want 1", st.TcpExtSyncookiesRecv)
	}
	// The connection works both ways and kept its options: the echoed
	// timestamp carried window scale and SACK.
	if _, err := ca.Write(cfd, []byte("through the flood")); err != nil {
		t.Fatal(err)
	}
	n.pump()
	buf := make([]byte, 64)
	k, err := n.b.Sockets().Read(sfd, buf)
	if err != nil || string(buf[:k]) != "through the flood" {
		t.Fatalf("read %q, %v", buf[:k], err)
	}
	info, err := n.b.Sockets().GetsockoptTCPInfo(sfd)
	must(t, err)
	if info.State != tcp.Established || info.Options&7 != 7 || info.SndWScale != 8 {
		t.Fatalf("cookie connection: %+v (want ESTABLISHED with TS, SACK, wscale 8)", info)
	}
}

// A forged ACK with a wrong cookie opens nothing and gets a RST; an old
// cookie (older than two periods) is refused too.
func TestSynCookieValidation(t *testing.T) {
	n := newVnet(t, nil)
	listenOn(t, n.b, srvAddr, 0, true)
	client := netip.AddrPortFrom(addrA, 40000)
	// Two SYNs: the second overflows backlog 0 + 1 and gets a cookie.
	for i := 0; i < 2; i++ {
		c := netip.AddrPortFrom(addrA, uint16(40000+i))
		n.b.DeliverPacket(packet(t, c, srvAddr, wire.TCP{Seq: 1000, Flags: wire.FlagSYN, Window: 65535}, nil))
	}
	out := sentBy(n)
	forged := wire.TCP{Seq: 1001, Ack: 12345, Flags: wire.FlagACK, Window: 65535}
	n.b.DeliverPacket(packet(t, netip.AddrPortFrom(addrA, 40001), srvAddr, forged, nil))
	if st := n.b.Stats(); st.TcpExtSyncookiesFailed != 1 || st.TcpExtSyncookiesRecv != 0 {
		t.Fatalf("forged cookie: %+v", st)
	}
	if len(*out) != 1 || (*out)[0].Flags != wire.FlagRST {
		t.Fatalf("forged cookie answered with %+v, want a RST", *out)
	}
	// The right cookie, too late.
	cookie := n.b.h.SynCookie(srvAddr, netip.AddrPortFrom(addrA, 40001), 1000, 0, n.clk.Now())
	n.clk.Advance(4 * time.Minute)
	late := wire.TCP{Seq: 1001, Ack: uint32(cookie) + 1, Flags: wire.FlagACK, Window: 65535}
	n.b.DeliverPacket(packet(t, netip.AddrPortFrom(addrA, 40001), srvAddr, late, nil))
	if st := n.b.Stats(); st.TcpExtSyncookiesRecv != 0 {
		t.Fatalf("a four-minute-old cookie was accepted: %+v", st)
	}
	_ = client
}
