package synstack_test

import (
	"context"
	"net"
	"net/netip"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// serveDNS answers every A query on pc with addr, until pc is closed.
func serveDNS(pc net.PacketConn, addr [4]byte) {
	buf := make([]byte, 1500)
	for {
		n, from, err := pc.ReadFrom(buf)
		if err != nil {
			return
		}
		var p dnsmessage.Parser
		h, err := p.Start(buf[:n])
		if err != nil {
			continue
		}
		q, err := p.Question()
		if err != nil {
			continue
		}
		b := dnsmessage.NewBuilder(nil, dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true})
		b.StartQuestions()
		b.Question(q)
		b.StartAnswers()
		if q.Type == dnsmessage.TypeA {
			b.AResource(dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60},
				dnsmessage.AResource{A: addr})
		}
		msg, err := b.Finish()
		if err != nil {
			continue
		}
		pc.WriteTo(msg, from)
	}
}

// TestResolver: the standard library's resolver, dialing through the
// stack, asks a DNS server on another stack over UDP.
func TestResolver(t *testing.T) {
	srv, cli := stackPair(t, 1500, nil)
	pc, err := srv.ListenPacket("udp", "10.0.0.1:53")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	go serveDNS(pc, [4]byte{192, 0, 2, 7})
	r := cli.Resolver(netip.MustParseAddrPort("10.0.0.1:53"))
	addrs, err := r.LookupNetIP(context.Background(), "ip4", "service.example.")
	if err != nil || len(addrs) != 1 || addrs[0] != netip.MustParseAddr("192.0.2.7") {
		t.Fatalf("LookupNetIP: %v, %v; want 192.0.2.7", addrs, err)
	}
	if st := srv.Stats(); st.UdpInDatagrams == 0 {
		t.Error("the query did not come over the stack")
	}
	if _, err := cli.Resolver().LookupHost(context.Background(), "service.example."); err == nil {
		t.Error("a resolver without servers resolved a name")
	}
}
