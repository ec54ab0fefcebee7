package synstack

import (
	"net/netip"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
)

// TestConnections checks the stack-wide socket list and state counts, and
// the retransmission counters, on a connection whose data is lost once.
func TestConnections(t *testing.T) {
	n := newVnet(t, nil)
	srv := netip.AddrPortFrom(addrB, 80)
	lfd := listenOn(t, n.b, srv, 8, true)
	cfd, sfd := n.connect(srv, lfd)

	if got := n.b.CountStates(); got[tcp.Listen] != 1 || got[tcp.Established] != 1 {
		t.Errorf("server CountStates = %v, want 1 LISTEN, 1 ESTABLISHED", got)
	}
	conns := n.b.Connections()
	if len(conns) != 2 {
		t.Fatalf("server Connections = %+v, want a listener and a connection", conns)
	}
	if l := conns[0]; !l.Listening || l.Local != srv || l.Info.State != tcp.Listen || l.SendQ != 8 || l.RecvQ != 0 {
		t.Errorf("listener = %+v", l)
	}
	c := conns[1]
	if c.Listening || c.Local != srv || c.Remote.Addr() != addrA || c.Info.State != tcp.Established || c.Congestion == "" {
		t.Errorf("connection = %+v", c)
	}

	// Lose the client's data segment and its tail loss probe: the
	// retransmission timer sends it again; meanwhile the bytes sit in the
	// client's Send-Q.
	dropped := 0
	n.drop = func(dir string, pkt []byte) bool {
		if dir == "a>b" && len(pkt) > 52 && dropped < 2 {
			dropped++
			return true
		}
		return false
	}
	if _, err := n.a.Sockets().Write(cfd, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n.pump()
	cc := n.a.Connections()
	if len(cc) != 1 || cc[0].SendQ != 5 || cc[0].Info.State != tcp.Established {
		t.Fatalf("client Connections = %+v, want one with Send-Q 5", cc)
	}
	n.advance(3 * time.Second)
	st := n.a.Stats()
	if st.TcpRetransSegs != 2 || st.TcpExtTCPTimeouts != 1 {
		t.Errorf("TcpRetransSegs %d, TcpExtTCPTimeouts %d, want 2 (probe, timeout) and 1", st.TcpRetransSegs, st.TcpExtTCPTimeouts)
	}
	if cc := n.a.Connections(); cc[0].SendQ != 0 || cc[0].Info.TotalRTO < 1 {
		t.Errorf("after the retransmission: %+v", cc[0])
	}
	if cc := n.b.Connections(); cc[1].RecvQ != 5 {
		t.Errorf("server Recv-Q = %d, want 5", cc[1].RecvQ)
	}
	if _, err := n.b.Sockets().Read(sfd, make([]byte, 16)); err != nil {
		t.Fatal(err)
	}

	// Close from the client: TIME_WAIT on its side, gone on the server's.
	must(t, n.a.Sockets().Close(cfd))
	n.pump()
	must(t, n.b.Sockets().Close(sfd))
	n.pump()
	if got := n.a.CountStates(); got[tcp.TimeWait] != 1 {
		t.Errorf("client CountStates = %v, want 1 TIME_WAIT", got)
	}
	if cc := n.a.Connections(); len(cc) != 1 || !cc[0].Orphan || cc[0].Info.State != tcp.TimeWait {
		t.Errorf("client Connections = %+v, want one orphan in TIME_WAIT", cc)
	}
	if got := n.b.CountStates(); got != (StateCounts{tcp.Listen: 1}) {
		t.Errorf("server CountStates = %v, want only the listener", got)
	}
}
