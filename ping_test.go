package synstack_test

import (
	"bytes"
	"errors"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// TestPing: a ping socket sends echo requests with its identifier and
// reads the replies, on IPv4 and IPv6, small and fragmented.
func TestPing(t *testing.T) {
	for _, c := range []struct {
		network string
		dst     netip.Addr
		req     icmp.Type
		proto   int
	}{
		{"ping4", netip.MustParseAddr("10.0.0.1"), ipv4.ICMPTypeEcho, 1},
		{"ping6", netip.MustParseAddr("fd00::1"), ipv6.ICMPTypeEchoRequest, 58},
	} {
		t.Run(c.network, func(t *testing.T) {
			srv, cli := stackPair(t, 1500, nil)
			pc, err := cli.ListenPing(c.network, netip.Addr{})
			if err != nil {
				t.Fatal(err)
			}
			defer pc.Close()
			pc.SetReadDeadline(time.Now().Add(30 * time.Second)) // a hang guard
			for seq, size := range []int{56, 4000} {
				data := bytes.Repeat([]byte{byte(seq + 1)}, size)
				m := icmp.Message{Type: c.req, Body: &icmp.Echo{ID: 1234, Seq: seq, Data: data}}
				b, err := m.Marshal(nil)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := pc.WriteTo(b, &net.IPAddr{IP: c.dst.AsSlice()}); err != nil {
					t.Fatal(err)
				}
				buf := make([]byte, 8000)
				n, from, err := pc.ReadFrom(buf)
				if err != nil {
					st := cli.Stats()
					t.Fatalf("%v (in %d %d reps %d %d, srv out %d %d)", err, st.IcmpInMsgs, st.Icmp6InMsgs, st.IcmpInEchoReps, st.Icmp6InEchoReplies, srv.Stats().IcmpOutEchoReps, srv.Stats().Icmp6OutEchoReplies)
				}
				if from.String() != c.dst.String() {
					t.Errorf("reply from %v, want %v", from, c.dst)
				}
				reply, err := icmp.ParseMessage(c.proto, buf[:n])
				if err != nil {
					t.Fatal(err)
				}
				e, ok := reply.Body.(*icmp.Echo)
				if !ok || e.ID != int(pc.Ident()) || e.Seq != seq || !bytes.Equal(e.Data, data) {
					t.Fatalf("reply %+v: want identifier %d, seq %d, the data back", reply, pc.Ident(), seq)
				}
			}
			st := cli.Stats()
			out, in := st.IcmpOutEchos, st.IcmpInEchoReps
			if c.network == "ping6" {
				out, in = st.Icmp6OutEchos, st.Icmp6InEchoReplies
			}
			if out != 2 || in != 2 {
				t.Errorf("%d echo requests sent, %d replies delivered: want 2 and 2", out, in)
			}
			// Not an echo request: EINVAL, as Linux.
			bad := icmp.Message{Type: ipv4.ICMPTypeTimestamp, Body: &icmp.Echo{ID: 1, Seq: 1}}
			if c.network == "ping6" {
				bad.Type = ipv6.ICMPTypeEchoReply
			}
			b, _ := bad.Marshal(nil)
			if _, err := pc.WriteTo(b, &net.IPAddr{IP: c.dst.AsSlice()}); !errors.Is(err, syscall.EINVAL) {
				t.Errorf("a message that is no echo request: %v, want EINVAL", err)
			}
		})
	}
}
