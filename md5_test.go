package synstack

import (
	"bytes"
	"net/netip"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/wire"
)

// md5Net is a vnet whose packets out of either stack are checked: every
// TCP segment carries a signature when signed says so.
func md5Net(t *testing.T, signed *atomic.Bool) *vnet {
	check := func(dir string, pkt []byte) {
		if dir != "out" {
			return
		}
		h, payload, err := wire.ParseIPv4(pkt)
		if err != nil || h.Protocol != wire.ProtoTCP {
			return
		}
		th, _, err := wire.ParseTCP(payload)
		if err != nil {
			t.Errorf("segment out: %v", err)
			return
		}
		if th.Options.HasMD5 != signed.Load() {
			t.Errorf("segment out %s seq %d: signed %v, want %v", th.Flags, th.Seq, th.Options.HasMD5, signed.Load())
		}
	}
	return newVnet(t, func(a, b *Config) { a.OnPacket, b.OnPacket = check, check })
}

// md5Keys gives fd of st a key for peer (TCP_MD5SIG).
func md5Key(t *testing.T, st *Stack, fd int, peer netip.Addr, key string) {
	t.Helper()
	must(t, st.Sockets().SetsockoptTCPMD5Sig(fd, TCP_MD5SIG, TCPMD5Sig{Addr: peer, Key: []byte(key)}))
}

// TestMD5PairSameKey: two stacks with the same key for each other connect,
// exchange data both ways and close, every segment signed (the SYN, the
// SYN,ACK, the ACKs, the data, the FINs) and none refused.
func TestMD5PairSameKey(t *testing.T) {
	var signed atomic.Bool
	signed.Store(true)
	n := md5Net(t, &signed)
	lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 179), 4, true)
	md5Key(t, n.b, lfd, addrA, "bgp-secret")
	sa := n.a.Sockets()
	cfd, err := sa.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
	must(t, err)
	md5Key(t, n.a, cfd, addrB, "bgp-secret")
	wantErr(t, "connect", sa.Connect(cfd, netip.AddrPortFrom(addrB, 179)), syscall.EINPROGRESS)
	n.pump()
	wantErr(t, "connect again", sa.Connect(cfd, netip.AddrPortFrom(addrB, 179)), 0)
	sfd, _, err := n.b.Sockets().Accept(lfd)
	must(t, err)
	msg := bytes.Repeat([]byte("open "), 1000)
	if _, err := sa.Write(cfd, msg); err != nil {
		t.Fatal(err)
	}
	n.advance(time.Second)
	got := make([]byte, 2*len(msg))
	k, err := n.b.Sockets().Read(sfd, got)
	if err != nil || !bytes.Equal(got[:k], msg) {
		t.Fatalf("read %d bytes, %v; want the %d written", k, err, len(msg))
	}
	info, err := sa.GetsockoptTCPInfo(cfd)
	must(t, err)
	if info.SndMSS != 1460-20 {
		t.Errorf("SndMSS %d, want 1440 (1460 less the signature)", info.SndMSS)
	}
	if _, err := n.b.Sockets().Write(sfd, []byte("keepalive")); err != nil {
		t.Fatal(err)
	}
	n.advance(time.Second)
	if k, err := sa.Read(cfd, got); err != nil || string(got[:k]) != "keepalive" {
		t.Fatalf("read %q, %v", got[:k], err)
	}
	must(t, sa.Close(cfd))
	must(t, n.b.Sockets().Close(sfd))
	n.advance(time.Second)
	for _, st := range []*Stack{n.a, n.b} {
		s := st.Stats()
		if s.TcpExtTCPMD5Failure+s.TcpExtTCPMD5NotFound+s.TcpExtTCPMD5Unexpected != 0 {
			t.Errorf("refused: failure %d, not found %d, unexpected %d", s.TcpExtTCPMD5Failure, s.TcpExtTCPMD5NotFound, s.TcpExtTCPMD5Unexpected)
		}
	}
}

// TestMD5PairRefused: a SYN signed with another key, a signed SYN to a
// listener without a key and an unsigned SYN to a listener with one are
// all dropped, counted, and never answered: the connect does not
// complete.
func TestMD5PairRefused(t *testing.T) {
	for _, tc := range []struct {
		name       string
		cli, srv   string // "" is no key
		failure    uint64
		notFound   uint64
		unexpected uint64
	}{
		{"different keys", "one", "two", 1, 0, 0},
		{"server without", "one", "", 0, 0, 1},
		{"client without", "", "two", 0, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var signed atomic.Bool
			signed.Store(tc.cli != "")
			n := md5Net(t, &signed)
			lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 179), 4, true)
			if tc.srv != "" {
				md5Key(t, n.b, lfd, addrA, tc.srv)
			}
			sa := n.a.Sockets()
			cfd, err := sa.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
			must(t, err)
			if tc.cli != "" {
				md5Key(t, n.a, cfd, addrB, tc.cli)
			}
			wantErr(t, "connect", sa.Connect(cfd, netip.AddrPortFrom(addrB, 179)), syscall.EINPROGRESS)
			n.pump()
			wantErr(t, "connect again", sa.Connect(cfd, netip.AddrPortFrom(addrB, 179)), syscall.EALREADY)
			s := n.b.Stats()
			if s.TcpExtTCPMD5Failure != tc.failure || s.TcpExtTCPMD5NotFound != tc.notFound || s.TcpExtTCPMD5Unexpected != tc.unexpected {
				t.Errorf("failure %d, not found %d, unexpected %d; want %d, %d, %d", s.TcpExtTCPMD5Failure,
					s.TcpExtTCPMD5NotFound, s.TcpExtTCPMD5Unexpected, tc.failure, tc.notFound, tc.unexpected)
			}
			if s.TcpOutSegs != 0 {
				t.Errorf("the server sent %d segments, want none", s.TcpOutSegs)
			}
		})
	}
}

// TestMD5SetsockoptErrors: TCP_MD5SIG's argument checks, as Linux's.
func TestMD5SetsockoptErrors(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	fd4, err := ss.Socket(AF_INET, SOCK_STREAM, 0)
	must(t, err)
	fd6, err := ss.Socket(AF_INET6, SOCK_STREAM, 0)
	must(t, err)
	long := make([]byte, TCP_MD5SIG_MAXKEYLEN+1)
	v6 := netip.MustParseAddr("fd00::2")
	mapped := netip.AddrFrom16(addrB.As16())
	for _, tc := range []struct {
		name string
		fd   int
		opt  int
		sig  TCPMD5Sig
		want syscall.Errno
	}{
		{"v4", fd4, TCP_MD5SIG, TCPMD5Sig{Addr: addrB, Key: []byte("k")}, 0},
		{"v6 address on AF_INET", fd4, TCP_MD5SIG, TCPMD5Sig{Addr: v6, Key: []byte("k")}, syscall.EINVAL},
		{"v4 address on AF_INET6", fd6, TCP_MD5SIG, TCPMD5Sig{Addr: addrB, Key: []byte("k")}, syscall.EINVAL},
		{"mapped on AF_INET6", fd6, TCP_MD5SIG, TCPMD5Sig{Addr: mapped, Key: []byte("k")}, 0},
		{"key too long", fd4, TCP_MD5SIG, TCPMD5Sig{Addr: addrB, Key: long}, syscall.EINVAL},
		{"delete absent", fd4, TCP_MD5SIG, TCPMD5Sig{Addr: addrA}, syscall.ENOENT},
		{"delete", fd4, TCP_MD5SIG, TCPMD5Sig{Addr: addrB}, 0},
		{"prefix", fd4, TCP_MD5SIG_EXT, TCPMD5Sig{Addr: addrB, Flags: TCP_MD5SIG_FLAG_PREFIX, PrefixLen: 24, Key: []byte("k")}, 0},
		{"prefix too long", fd4, TCP_MD5SIG_EXT, TCPMD5Sig{Addr: addrB, Flags: TCP_MD5SIG_FLAG_PREFIX, PrefixLen: 33, Key: []byte("k")}, syscall.EINVAL},
		{"unknown flag", fd4, TCP_MD5SIG_EXT, TCPMD5Sig{Addr: addrB, Flags: 4, Key: []byte("k")}, syscall.EINVAL},
		{"ifindex", fd4, TCP_MD5SIG_EXT, TCPMD5Sig{Addr: addrB, Flags: TCP_MD5SIG_FLAG_IFINDEX, IfIndex: 3, Key: []byte("k")}, syscall.ENODEV},
		{"other option", fd4, TCP_NODELAY, TCPMD5Sig{Addr: addrB, Key: []byte("k")}, syscall.ENOPROTOOPT},
	} {
		wantErr(t, tc.name, ss.SetsockoptTCPMD5Sig(tc.fd, tc.opt, tc.sig), tc.want)
	}
}

// TestMD5PrefixDualStack: a dual-stack listener's keys for an IPv6 prefix
// and for an IPv4 one (IPv4-mapped, its prefix in IPv4's bits, as Linux)
// sign connections from peers of either family.
func TestMD5PrefixDualStack(t *testing.T) {
	n := newVnet(t, nil)
	sb := n.b.Sockets()
	lfd := listenOn(t, n.b, netip.AddrPortFrom(netip.IPv6Unspecified(), 179), 4, true)
	for _, sig := range []TCPMD5Sig{
		{Addr: netip.MustParseAddr("fd00::"), Flags: TCP_MD5SIG_FLAG_PREFIX, PrefixLen: 64, Key: []byte("six")},
		{Addr: netip.AddrFrom16(netip.MustParseAddr("10.0.0.0").As16()), Flags: TCP_MD5SIG_FLAG_PREFIX, PrefixLen: 24, Key: []byte("four")},
	} {
		must(t, sb.SetsockoptTCPMD5Sig(lfd, TCP_MD5SIG_EXT, sig))
	}
	for _, tc := range []struct {
		fam        int
		peer, from netip.Addr
		key        string
	}{
		{AF_INET6, addr6B, addr6A, "six"},
		{AF_INET, addrB, addrA, "four"},
	} {
		sa := n.a.Sockets()
		cfd, err := sa.Socket(tc.fam, SOCK_STREAM|SOCK_NONBLOCK, 0)
		must(t, err)
		md5Key(t, n.a, cfd, tc.peer, tc.key)
		wantErr(t, "connect", sa.Connect(cfd, netip.AddrPortFrom(tc.peer, 179)), syscall.EINPROGRESS)
		n.pump()
		wantErr(t, "connect again "+tc.key, sa.Connect(cfd, netip.AddrPortFrom(tc.peer, 179)), 0)
		sfd, _, err := sb.Accept(lfd)
		must(t, err)
		if _, err := sa.Write(cfd, []byte("hi")); err != nil {
			t.Fatal(err)
		}
		n.pump()
		if got, err := recvString(t, sb, sfd, 0); got != "hi" || err != nil {
			t.Errorf("%s: read %q, %v", tc.key, got, err)
		}
	}
	if s := n.b.Stats(); s.TcpExtTCPMD5Failure+s.TcpExtTCPMD5NotFound+s.TcpExtTCPMD5Unexpected != 0 {
		t.Errorf("refused: %d, %d, %d", s.TcpExtTCPMD5Failure, s.TcpExtTCPMD5NotFound, s.TcpExtTCPMD5Unexpected)
	}
}

// TestMD5ListenerResetSigned: a listener with a key answers a signed ACK
// that matches no connection with a RST signed with that key, as Linux's
// tcp_v4_send_reset does.
func TestMD5ListenerResetSigned(t *testing.T) {
	var rst []byte
	n := newVnet(t, func(a, b *Config) {
		b.OnPacket = func(dir string, pkt []byte) {
			if dir == "out" {
				rst = append([]byte(nil), pkt...)
			}
		}
	})
	lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 179), 4, true)
	md5Key(t, n.b, lfd, addrA, "k")
	th := wire.TCP{SrcPort: 5555, DstPort: 179, Seq: 100, Ack: 200, Flags: wire.FlagACK, Window: 100,
		Options: wire.TCPOptions{HasMD5: true}}
	seg := make([]byte, th.HeaderLen())
	if _, err := th.Emit(seg); err != nil {
		t.Fatal(err)
	}
	var m wire.TCPMD5
	m.Sign(seg, nil, addrA, addrB, []byte("k"))
	wire.SetTCPChecksum(seg, addrA, addrB)
	ip := wire.IPv4{TTL: 64, Protocol: wire.ProtoTCP, Src: addrA, Dst: addrB}
	pkt := make([]byte, wire.IPv4HeaderLen+len(seg))
	if _, err := ip.Emit(pkt, len(seg)); err != nil {
		t.Fatal(err)
	}
	copy(pkt[wire.IPv4HeaderLen:], seg)
	n.b.DeliverPacket(pkt)
	if rst == nil {
		t.Fatal("no answer")
	}
	_, payload, err := wire.ParseIPv4(rst)
	if err != nil {
		t.Fatal(err)
	}
	h, _, err := wire.ParseTCP(payload)
	if err != nil || h.Flags != wire.FlagRST || h.Seq != 200 {
		t.Fatalf("answer %v seq %d, %v; want a RST at 200", h.Flags, h.Seq, err)
	}
	if !m.Valid(payload, addrB, addrA, []byte("k")) {
		t.Error("the RST is not signed with the listener's key")
	}
}
