package synstack

import (
	"bytes"
	"context"
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/link/pipe"
	"github.com/synstack/synstack/wire"
)

var router = netip.MustParseAddr("10.0.0.254")
var router6 = netip.MustParseAddr("fd00::fe")

// icmpPacket builds an ICMP (v6: ICMPv6) message from src to dst.
func icmpPacket(t testing.TB, src, dst netip.Addr, typ, code uint8, rest uint32, body []byte) []byte {
	t.Helper()
	h := wire.ICMP{Type: typ, Code: code, Rest: rest}
	if src.Is4() {
		buf := make([]byte, wire.IPv4HeaderLen+wire.ICMPHeaderLen+len(body))
		if _, err := h.EmitV4(buf[wire.IPv4HeaderLen:], body); err != nil {
			t.Fatal(err)
		}
		ih := wire.IPv4{TTL: 64, Protocol: wire.ProtoICMP, Src: src, Dst: dst}
		if _, err := ih.Emit(buf, len(buf)-wire.IPv4HeaderLen); err != nil {
			t.Fatal(err)
		}
		return buf
	}
	buf := make([]byte, wire.IPv6HeaderLen+wire.ICMPHeaderLen+len(body))
	if _, err := h.EmitV6(buf[wire.IPv6HeaderLen:], body, src, dst); err != nil {
		t.Fatal(err)
	}
	ih := wire.IPv6{NextHeader: wire.ProtoICMPv6, HopLimit: 64, Src: src, Dst: dst}
	if _, err := ih.Emit(buf, len(buf)-wire.IPv6HeaderLen); err != nil {
		t.Fatal(err)
	}
	return buf
}

// quote is what a router quotes of pkt: its IP header and the first 8
// bytes of its payload.
func quote(pkt []byte) []byte {
	hl := wire.IPv6HeaderLen
	if pkt[0]>>4 == 4 {
		hl = int(pkt[0]&0x0f) * 4
	}
	return bytes.Clone(pkt[:min(len(pkt), hl+8)])
}

// parseIP splits an IPv4 or IPv6 packet.
func parseIP(t testing.TB, pkt []byte) (src, dst netip.Addr, proto uint8, payload []byte) {
	t.Helper()
	if pkt[0]>>4 == 4 {
		h, p, err := wire.ParseIPv4(pkt)
		if err != nil {
			t.Fatal(err)
		}
		return h.Src, h.Dst, h.Protocol, p
	}
	h, p, err := wire.ParseIPv6(pkt)
	if err != nil {
		t.Fatal(err)
	}
	return h.Src, h.Dst, h.NextHeader, p
}

// tcpPayloadLen returns the TCP payload length of pkt, -1 if not TCP.
func tcpPayloadLen(t testing.TB, pkt []byte) int {
	_, _, proto, p := parseIP(t, pkt)
	if proto != wire.ProtoTCP {
		return -1
	}
	_, data, err := wire.ParseTCP(p)
	if err != nil {
		t.Fatal(err)
	}
	return len(data)
}

func TestICMPEchoReply(t *testing.T) {
	for _, tc := range []struct {
		from, to      netip.Addr
		req, rep      uint8
		wantOut, want func(Stats) uint64
	}{
		{router, addrB, wire.ICMPv4EchoRequest, wire.ICMPv4EchoReply,
			func(s Stats) uint64 { return s.IcmpOutEchoReps }, func(s Stats) uint64 { return s.IcmpInEchos }},
		{router6, addr6B, wire.ICMPv6EchoRequest, wire.ICMPv6EchoReply,
			func(s Stats) uint64 { return s.Icmp6OutEchoReplies }, func(s Stats) uint64 { return s.Icmp6InEchos }},
	} {
		n := newVnet(t, nil)
		var out [][]byte
		n.drop = func(dir string, pkt []byte) bool {
			out = append(out, bytes.Clone(pkt))
			return true
		}
		data := []byte("ping payload 0123456789")
		n.b.DeliverPacket(icmpPacket(t, tc.from, tc.to, tc.req, 0, 0x1234_0007, data))
		if len(out) != 1 {
			t.Fatalf("%v: %d packets sent, want one echo reply", tc.to, len(out))
		}
		src, dst, proto, p := parseIP(t, out[0])
		var h wire.ICMP
		var body []byte
		var err error
		if tc.to.Is4() {
			h, body, err = wire.ParseICMPv4(p)
			if proto != wire.ProtoICMP {
				t.Errorf("protocol %d", proto)
			}
		} else {
			h, body, err = wire.ParseICMPv6(p, src, dst)
			if proto != wire.ProtoICMPv6 {
				t.Errorf("next header %d", proto)
			}
		}
		if err != nil || src != tc.to || dst != tc.from || h.Type != tc.rep || h.Code != 0 ||
			h.EchoID() != 0x1234 || h.EchoSeq() != 7 || !bytes.Equal(body, data) {
			t.Errorf("%v: reply %v->%v %+v %q %v", tc.to, src, dst, h, body, err)
		}
		st := n.b.Stats()
		if tc.want(st) != 1 || tc.wantOut(st) != 1 {
			t.Errorf("%v: stats %+v", tc.to, st)
		}
		// A request with a bad checksum is dropped and counted.
		bad := icmpPacket(t, tc.from, tc.to, tc.req, 0, 1, data)
		bad[len(bad)-1] ^= 1
		n.b.DeliverPacket(bad)
		if st := n.b.Stats(); len(out) != 1 || st.IcmpInErrors+st.Icmp6InErrors != 1 {
			t.Errorf("%v: bad checksum: %d sent, stats %+v", tc.to, len(out), st)
		}
	}
}

// connectAndCatchSYN starts a non-blocking connect from n.a to dst and
// returns its descriptor and the SYN it sent, which is not delivered.
func connectAndCatchSYN(t *testing.T, n *vnet, dst netip.AddrPort) (int, []byte) {
	t.Helper()
	var syn []byte
	n.drop = func(dir string, pkt []byte) bool {
		if syn == nil {
			syn = bytes.Clone(pkt)
		}
		return true
	}
	fam := AF_INET
	if dst.Addr().Is6() {
		fam = AF_INET6
	}
	ca := n.a.Sockets()
	fd := mustFD(t)(ca.Socket(fam, SOCK_STREAM|SOCK_NONBLOCK, 0))
	wantErr(t, "connect", ca.Connect(fd, dst), syscall.EINPROGRESS)
	n.drop = nil
	if syn == nil {
		t.Fatal("no SYN sent")
	}
	return fd, syn
}

func TestICMPUnreachableFailsConnect(t *testing.T) {
	for _, tc := range []struct {
		name       string
		dst        netip.AddrPort
		typ, code  uint8
		want       syscall.Errno
		fromRouter bool
	}{
		{"v4 port unreachable", netip.AddrPortFrom(addrB, 81), wire.ICMPv4DestUnreachable, wire.ICMPv4PortUnreachable, syscall.ECONNREFUSED, false},
		{"v4 protocol unreachable", netip.AddrPortFrom(addrB, 81), wire.ICMPv4DestUnreachable, wire.ICMPv4ProtoUnreachable, syscall.ENOPROTOOPT, false},
		{"v4 host unreachable", netip.MustParseAddrPort("10.0.0.77:80"), wire.ICMPv4DestUnreachable, wire.ICMPv4HostUnreachable, syscall.EHOSTUNREACH, true},
		{"v4 net unreachable", netip.MustParseAddrPort("10.9.0.1:80"), wire.ICMPv4DestUnreachable, wire.ICMPv4NetUnreachable, syscall.ENETUNREACH, true},
		{"v4 time exceeded", netip.MustParseAddrPort("10.9.0.1:80"), wire.ICMPv4TimeExceeded, 0, syscall.EHOSTUNREACH, true},
		{"v6 port unreachable", netip.AddrPortFrom(addr6B, 81), wire.ICMPv6DestUnreachable, wire.ICMPv6PortUnreachable, syscall.ECONNREFUSED, false},
		{"v6 address unreachable", netip.MustParseAddrPort("[fd00::77]:80"), wire.ICMPv6DestUnreachable, wire.ICMPv6AddrUnreachable, syscall.EHOSTUNREACH, true},
		{"v6 no route", netip.MustParseAddrPort("[fd09::1]:80"), wire.ICMPv6DestUnreachable, wire.ICMPv6NoRoute, syscall.ENETUNREACH, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newVnet(t, nil)
			ca := n.a.Sockets()
			fd, syn := connectAndCatchSYN(t, n, tc.dst)
			from := tc.dst.Addr()
			if tc.fromRouter {
				from = router
				if from.Is4() != tc.dst.Addr().Is4() {
					from = router6
				}
			}
			to := addrA
			if tc.dst.Addr().Is6() {
				to = addr6A
			}

			// A forged error with a sequence number not in flight is ignored.
			forged := quote(syn)
			forged[len(forged)-4] ^= 0x80
			n.a.DeliverPacket(icmpPacket(t, from, to, tc.typ, tc.code, 0, forged))
			// So is one quoting another port.
			other := quote(syn)
			other[len(other)-8] ^= 0x40
			n.a.DeliverPacket(icmpPacket(t, from, to, tc.typ, tc.code, 0, other))
			wantErr(t, "connect after forged ICMP", ca.Connect(fd, tc.dst), syscall.EALREADY)
			st := n.a.Stats()
			if st.TcpExtOutOfWindowIcmps != 1 || st.IcmpInErrors+st.Icmp6InErrors != 1 {
				t.Errorf("forged ICMP: stats %+v", st)
			}

			n.a.DeliverPacket(icmpPacket(t, from, to, tc.typ, tc.code, 0, quote(syn)))
			wantErr(t, "connect", ca.Connect(fd, tc.dst), tc.want)
		})
	}
}

// TestICMPErrorIgnoredWhenEstablished checks that an unreachable about an
// established connection is a soft error: the connection goes on.
func TestICMPErrorIgnoredWhenEstablished(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 5, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	var data []byte
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "a>b" && tcpPayloadLen(t, pkt) > 0 && data == nil {
			data = bytes.Clone(pkt)
			return true
		}
		return false
	}
	n.a.Sockets().Write(cfd, []byte("hello"))
	n.a.DeliverPacket(icmpPacket(t, router, addrA, wire.ICMPv4DestUnreachable, wire.ICMPv4HostUnreachable, 0, quote(data)))
	n.advance(2 * time.Second) // the retransmission gets through
	if got, err := readAll(t, n, n.b.Sockets(), sfd); got != "hello" || err != nil {
		t.Errorf("read %q, %v", got, err)
	}
}

func TestICMPPacketTooBig(t *testing.T) {
	for _, tc := range []struct {
		name    string
		dst     netip.AddrPort
		mtu     uint32
		wantMSS int
	}{
		{"v4 frag needed", srvAddr, 1000, 1000 - 40 - 12},
		{"v4 below min_pmtu", srvAddr, 300, 552 - 40 - 12},
		{"v6 packet too big", netip.AddrPortFrom(addr6B, 8080), 1280, 1280 - 60 - 12},
		{"v6 below 1280: ignored", netip.AddrPortFrom(addr6B, 8080), 1000, 1500 - 60 - 12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := newVnet(t, nil)
			lfd := listenOn(t, n.b, tc.dst, 5, true)
			cfd, sfd := n.connect(tc.dst, lfd)
			ca, sb := n.a.Sockets(), n.b.Sockets()

			// The first flight of data is lost at a link with a smaller MTU.
			var lost [][]byte
			n.drop = func(dir string, pkt []byte) bool {
				if dir == "a>b" && tcpPayloadLen(t, pkt) > 0 {
					lost = append(lost, bytes.Clone(pkt))
					return true
				}
				return false
			}
			msg := bytes.Repeat([]byte("0123456789abcdef"), 400)
			if k, err := ca.Write(cfd, msg); k != len(msg) || err != nil {
				t.Fatalf("write %d, %v", k, err)
			}
			if len(lost) < 2 {
				t.Fatalf("%d segments sent", len(lost))
			}
			var sent []int
			n.drop = func(dir string, pkt []byte) bool {
				if dir == "a>b" {
					if k := tcpPayloadLen(t, pkt); k > 0 {
						sent = append(sent, k)
					}
				}
				return false
			}
			from, to, typ, code := router, addrA, uint8(wire.ICMPv4DestUnreachable), uint8(wire.ICMPv4FragNeeded)
			if tc.dst.Addr().Is6() {
				from, to, typ, code = router6, addr6A, wire.ICMPv6PacketTooBig, 0
			}
			// A stale one, quoting data already acknowledged, is ignored.
			stale := quote(lost[0])
			stale[len(stale)-4] -= 0x10
			n.a.DeliverPacket(icmpPacket(t, from, to, typ, code, tc.mtu, stale))
			if st := n.a.Stats(); (st.TcpExtOutOfWindowIcmps != 1) != (tc.mtu < 1280 && tc.dst.Addr().Is6()) || len(sent) != 0 {
				t.Errorf("stale ICMP: %d resent, stats %+v", len(sent), st)
			}
			n.a.DeliverPacket(icmpPacket(t, from, to, typ, code, tc.mtu, quote(lost[0])))
			mss, err := ca.GetsockoptInt(cfd, IPPROTO_TCP, TCP_MAXSEG)
			if err != nil || mss != tc.wantMSS {
				t.Errorf("MSS %d, %v; want %d", mss, err, tc.wantMSS)
			}
			n.advance(5 * time.Second)
			got, err := readAll(t, n, sb, sfd)
			if got != string(msg) || err != nil {
				t.Errorf("received %d bytes of %d, %v", len(got), len(msg), err)
			}
			for _, k := range sent {
				if k > tc.wantMSS {
					t.Errorf("segment of %d bytes after the MSS dropped to %d: %v", k, tc.wantMSS, sent)
					break
				}
			}
		})
	}
}

// TestDialICMPUnreachable checks what a Dial reports for an ICMP error
// arriving while it waits, through the net.Conn layer and a real link.
func TestDialICMPUnreachable(t *testing.T) {
	for _, tc := range []struct {
		addr      string
		typ, code uint8
		want      syscall.Errno
	}{
		{"10.0.0.1:80", wire.ICMPv4DestUnreachable, wire.ICMPv4PortUnreachable, syscall.ECONNREFUSED},
		{"10.0.0.99:80", wire.ICMPv4DestUnreachable, wire.ICMPv4HostUnreachable, syscall.EHOSTUNREACH},
		{"[fd00::99]:80", wire.ICMPv6DestUnreachable, wire.ICMPv6AddrUnreachable, syscall.EHOSTUNREACH},
	} {
		a, b := pipe.New(1500)
		cli, err := New(Config{Link: b, Addrs: []netip.Prefix{
			netip.PrefixFrom(addrB, 24), netip.PrefixFrom(addr6B, 64)}})
		must(t, err)
		// The peer end: instead of answering, a router says why not.
		b.SetDropFunc(func(pkt []byte) bool {
			src, dst, _, _ := parseIP(t, pkt)
			from := router
			if dst.Is6() {
				from = router6
			}
			go cli.DeliverPacket(icmpPacket(t, from, src, tc.typ, tc.code, 0, quote(pkt)))
			return true
		})
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err = cli.DialContext(ctx, "tcp", tc.addr)
		cancel()
		if !errors.Is(err, tc.want) {
			t.Errorf("dial %s: %v, want %v", tc.addr, err, tc.want)
		}
		cli.Close()
		a.Close()
	}
}
