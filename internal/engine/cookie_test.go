package engine

import (
	"net/netip"
	"testing"
	"time"

	"github.com/synstack/synstack/clock"
	"github.com/synstack/synstack/wire"
)

var (
	cookieSrv  = netip.MustParseAddrPort("10.0.0.1:179")
	cookiePeer = netip.MustParseAddr("10.0.0.2")
)

// cookieHost is a host on a recording link whose listener on cookieSrv
// (backlog 0, so a second half-open child overflows it and draws a
// cookie) has key, if not nil, for cookiePeer.
func cookieHost(t *testing.T, key []byte) (*Host, *segLink, *Socket) {
	t.Helper()
	l := &segLink{}
	s, err := New(Config{Link: l, Clock: clock.NewVirtual(time.Unix(1e9, 0)), Addrs: []netip.Prefix{netip.MustParsePrefix("10.0.0.1/24")},
		Limits:     Limits{MaxOrphans: 16, SomaxConn: 128, MaxSynBacklog: 128, MaxConns: 16},
		SynCookies: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	sk, err := s.NewSocket(AF_INET)
	if err != nil {
		t.Fatal(err)
	}
	if err := sk.Bind(cookieSrv); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		if err := sk.SetMD5Key(netip.PrefixFrom(cookiePeer, 32), key); err != nil {
			t.Fatal(err)
		}
	}
	if err := sk.Listen(0); err != nil {
		t.Fatal(err)
	}
	return s, l, sk
}

// peerPacket builds the IPv4 packet of th from cookiePeer to cookieSrv,
// signed with key when key is not nil.
func peerPacket(t *testing.T, th wire.TCP, key []byte) []byte {
	t.Helper()
	th.DstPort = cookieSrv.Port()
	th.Options.HasMD5 = key != nil
	seg := make([]byte, th.HeaderLen())
	if _, err := th.Emit(seg); err != nil {
		t.Fatal(err)
	}
	if key != nil {
		var m wire.TCPMD5
		m.Sign(seg, nil, cookiePeer, cookieSrv.Addr(), key)
	}
	wire.SetTCPChecksum(seg, cookiePeer, cookieSrv.Addr())
	ip := wire.IPv4{TTL: 64, Protocol: wire.ProtoTCP, Src: cookiePeer, Dst: cookieSrv.Addr()}
	pkt := make([]byte, wire.IPv4HeaderLen+len(seg))
	if _, err := ip.Emit(pkt, len(seg)); err != nil {
		t.Fatal(err)
	}
	copy(pkt[wire.IPv4HeaderLen:], seg)
	return pkt
}

// lastOut parses the last packet the host wrote, and reports whether its
// signature is valid under key.
func lastOut(t *testing.T, l *segLink, key []byte) (wire.TCP, bool) {
	t.Helper()
	if len(l.writes) == 0 {
		t.Fatal("the host sent nothing")
	}
	_, payload, err := wire.ParseIPv4(l.writes[len(l.writes)-1])
	if err != nil {
		t.Fatal(err)
	}
	th, _, err := wire.ParseTCP(payload)
	if err != nil {
		t.Fatal(err)
	}
	var m wire.TCPMD5
	return th, th.Options.HasMD5 && m.Valid(payload, cookieSrv.Addr(), cookiePeer, key)
}

// cookieSYNACK fills the listener's SYN queue from port 40000 and sends
// a SYN from port 40001, which is answered with a cookie; both SYNs are
// signed with key (nil: unsigned). It returns the cookie SYN,ACK.
func cookieSYNACK(t *testing.T, s *Host, l *segLink, key []byte) wire.TCP {
	t.Helper()
	opts := wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasWScale: true, WScale: 7}
	for port := uint16(40000); port <= 40001; port++ {
		s.DeliverPacket(peerPacket(t, wire.TCP{SrcPort: port, Seq: 1000, Flags: wire.FlagSYN, Window: 65535, Options: opts}, key))
	}
	if st := s.Stats(); st.TcpExtSyncookiesSent != 1 || len(l.writes) != 2 {
		t.Fatalf("%d cookies sent in %d segments, want 1 in 2", st.TcpExtSyncookiesSent, len(l.writes))
	}
	th, _ := lastOut(t, l, key)
	if th.Flags != wire.FlagSYN|wire.FlagACK || th.DstPort != 40001 {
		t.Fatalf("answer %v to port %d, want the SYN,ACK to 40001", th.Flags, th.DstPort)
	}
	return th
}

// TestMD5CookieSYNACKSigned: a listener with a TCP MD5 key for the peer
// signs the SYN,ACK that carries a SYN cookie with that key, as Linux's
// tcp_v4_send_synack signs any SYN,ACK of a listener with a key; the
// signature's room leaves no timestamps beside SACK, as in any signed
// SYN,ACK.
func TestMD5CookieSYNACKSigned(t *testing.T) {
	key := []byte("bgp-secret")
	s, l, _ := cookieHost(t, key)
	s.DeliverPacket(peerPacket(t, wire.TCP{SrcPort: 40000, Seq: 1000, Flags: wire.FlagSYN, Window: 65535,
		Options: wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 5}}, key))
	s.DeliverPacket(peerPacket(t, wire.TCP{SrcPort: 40001, Seq: 1000, Flags: wire.FlagSYN, Window: 65535,
		Options: wire.TCPOptions{MSS: 1460, SACKPermitted: true, HasTimestamp: true, TSVal: 5}}, key))
	if st := s.Stats(); st.TcpExtSyncookiesSent != 1 {
		t.Fatalf("%d cookies sent, want 1", st.TcpExtSyncookiesSent)
	}
	th, valid := lastOut(t, l, key)
	if !valid {
		t.Fatalf("the cookie SYN,ACK (signed %v) is not signed with the listener's key", th.Options.HasMD5)
	}
	if th.Options.HasTimestamp || !th.Options.SACKPermitted {
		t.Errorf("cookie SYN,ACK options %+v: want SACK and no timestamps beside the signature", th.Options)
	}
}

// TestMD5CookieACKChecked: the ACK that returns a cookie to a listener
// with a key is checked as any segment of a keyed connection: unsigned
// (TcpExtTCPMD5NotFound) or signed with another key (TcpExtTCPMD5Failure)
// it opens nothing and draws no answer; signed with the key it opens the
// connection, which has the key: its segments are signed and its MSS
// makes room for the signature.
func TestMD5CookieACKChecked(t *testing.T) {
	key := []byte("bgp-secret")
	s, l, sk := cookieHost(t, key)
	synack := cookieSYNACK(t, s, l, key)
	ack := wire.TCP{SrcPort: 40001, Seq: 1001, Ack: synack.Seq + 1, Flags: wire.FlagACK, Window: 65535}
	s.DeliverPacket(peerPacket(t, ack, nil))
	s.DeliverPacket(peerPacket(t, ack, []byte("another-key")))
	st := s.Stats()
	if st.TcpExtTCPMD5NotFound != 1 || st.TcpExtTCPMD5Failure != 1 || st.TcpExtSyncookiesRecv != 0 || len(l.writes) != 2 {
		t.Fatalf("unsigned and badly signed ACKs: not found %d, failure %d, cookies taken %d, %d segments sent; want 1, 1, 0, 2",
			st.TcpExtTCPMD5NotFound, st.TcpExtTCPMD5Failure, st.TcpExtSyncookiesRecv, len(l.writes))
	}
	s.DeliverPacket(peerPacket(t, ack, key))
	if st := s.Stats(); st.TcpExtSyncookiesRecv != 1 {
		t.Fatalf("the signed ACK: %d cookies taken, want 1", st.TcpExtSyncookiesRecv)
	}
	var child *Socket
	for child == nil {
		c, from, err := sk.Accept(true, nil)
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		if from.Port() == 40001 {
			child = c
		}
	}
	if got := child.ep.conn.MD5Key(); string(got) != string(key) {
		t.Fatalf("the connection from the cookie has key %q, want %q", got, key)
	}
	if n, err := child.Send(make([]byte, 3000), true, nil); err != nil || n != 3000 {
		t.Fatalf("send: %d, %v", n, err)
	}
	th, valid := lastOut(t, l, key)
	if !valid || th.Flags&wire.FlagACK == 0 {
		t.Fatalf("the connection's data (%v) is not signed with the key", th.Flags)
	}
	if mss := child.ep.conn.Info(s.clock.Now()).SndMSS; mss != 1460-20 {
		t.Errorf("SndMSS %d, want 1440: 1460 less the signature", mss)
	}
}

// TestMD5CookieACKUnexpected: a listener without a key drops a signed
// ACK that returns its cookie (TcpExtTCPMD5Unexpected) and opens
// nothing; the same ACK unsigned opens the connection, without a key.
func TestMD5CookieACKUnexpected(t *testing.T) {
	s, l, sk := cookieHost(t, nil)
	synack := cookieSYNACK(t, s, l, nil)
	if synack.Options.HasMD5 {
		t.Fatal("a listener without a key signed its cookie SYN,ACK")
	}
	ack := wire.TCP{SrcPort: 40001, Seq: 1001, Ack: synack.Seq + 1, Flags: wire.FlagACK, Window: 65535}
	s.DeliverPacket(peerPacket(t, ack, []byte("k")))
	if st := s.Stats(); st.TcpExtTCPMD5Unexpected != 1 || st.TcpExtSyncookiesRecv != 0 {
		t.Fatalf("signed ACK: unexpected %d, cookies taken %d; want 1, 0", st.TcpExtTCPMD5Unexpected, st.TcpExtSyncookiesRecv)
	}
	s.DeliverPacket(peerPacket(t, ack, nil))
	if st := s.Stats(); st.TcpExtSyncookiesRecv != 1 {
		t.Fatalf("unsigned ACK: %d cookies taken, want 1", st.TcpExtSyncookiesRecv)
	}
	for {
		c, from, err := sk.Accept(true, nil)
		if err != nil {
			t.Fatalf("accept: %v", err)
		}
		if from.Port() == 40001 {
			if c.ep.conn.MD5Key() != nil {
				t.Error("the connection from the cookie has a key its listener lacks")
			}
			return
		}
	}
}
