package synstack

import (
	"bytes"
	"fmt"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// attacker speaks TCP by hand to stack B from an address of its own: it
// sees B's answers (captured before they reach stack A) and sends what it
// likes.
type attacker struct {
	t      *testing.T
	n      *vnet
	from   netip.AddrPort
	to     netip.AddrPort
	iss    uint32
	ack    uint32 // the last ACK B sent it
	rcvNxt uint32 // B's sequence space, to acknowledge
	acks   int
}

func newAttacker(t *testing.T, n *vnet, from, to netip.AddrPort) *attacker {
	a := &attacker{t: t, n: n, from: from, to: to, iss: 7000}
	prev := n.drop
	n.drop = func(dir string, pkt []byte) bool {
		ih, p, err := wire.ParseIPv4(pkt)
		if err == nil && dir == "b>a" && ih.Dst == from.Addr() {
			if h, _, err := wire.ParseTCP(p); err == nil && h.DstPort == from.Port() {
				if h.Flags&wire.FlagSYN != 0 {
					a.rcvNxt = h.Seq + 1
				}
				a.ack = h.Ack
				a.acks++
			}
			return true
		}
		return prev != nil && prev(dir, pkt)
	}
	return a
}

func (a *attacker) send(seq uint32, flags wire.TCPFlags, payload []byte, opts wire.TCPOptions) {
	h := wire.TCP{Seq: seq, Ack: a.rcvNxt, Flags: flags, Window: 1024, Options: opts}
	a.n.b.DeliverPacket(packet(a.t, a.from, a.to, h, payload))
	a.n.pump()
}

// handshake opens the connection, offering window scaling and nothing else.
func (a *attacker) handshake() {
	a.send(a.iss, wire.FlagSYN, nil, wire.TCPOptions{MSS: 1460, HasWScale: true, WScale: 7})
	if a.ack != a.iss+1 {
		a.t.Fatalf("no SYN,ACK (ack %d)", a.ack)
	}
	a.send(a.iss+1, wire.FlagACK, nil, wire.TCPOptions{})
}

// TestForcedACKAttackOnStack is issue 14's first attack against a stack: a
// peer sends 250-octet segments, each followed by a 1-octet duplicate that
// forces an ACK, to a server that never reads. The queue stays within its
// buffer, the prune counters rise, the budget gets everything back when
// the connection goes, and a well-behaved client's echo on the same stack
// at the same time is byte-exact.
func TestForcedACKAttackOnStack(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 16, true)
	// The well-behaved client on the same server, which echoes its data.
	cfd, sfd := n.connect(srvAddr, lfd)
	// The attacker's connection waits in the accept queue: nothing reads it.
	a := newAttacker(t, n, netip.MustParseAddrPort("10.0.0.66:40000"), srvAddr)
	a.handshake()
	ca, sb := n.a.Sockets(), n.b.Sockets()
	var sent, echoed bytes.Buffer
	buf := make([]byte, 4096)

	const rcvBuf = 131072
	peak := 0
	for round := 0; round < 3000; round++ {
		seq := a.ack
		a.send(seq, wire.FlagACK|wire.FlagPSH, bytes.Repeat([]byte{byte(round)}, 250), wire.TCPOptions{})
		a.send(seq-1, wire.FlagACK, []byte{0}, wire.TCPOptions{})

		msg := fmt.Appendf(nil, "round %d of the echo;", round)
		k, err := ca.Send(cfd, msg, MSG_DONTWAIT)
		must(t, err)
		sent.Write(msg[:k])
		n.pump()
		if k, err := sb.Recv(sfd, buf, MSG_DONTWAIT); err == nil {
			if _, err := sb.Send(sfd, buf[:k], MSG_DONTWAIT); err != nil {
				t.Fatal(err)
			}
		}
		n.pump()
		if k, err := ca.Recv(cfd, buf, MSG_DONTWAIT); err == nil {
			echoed.Write(buf[:k])
		}

		n.clk.Advance(600 * time.Millisecond) // past the duplicate-ACK rate limit
		n.pump()
		for _, ci := range n.b.Connections() {
			if ci.Remote == a.from {
				peak = max(peak, ci.RecvQ)
			}
		}
	}
	if !bytes.HasPrefix(sent.Bytes(), echoed.Bytes()) || echoed.Len() < sent.Len()-4096 {
		t.Fatalf("the client sent %d octets and got %d back, not a prefix of them", sent.Len(), echoed.Len())
	}
	st := n.b.Stats()
	if peak > rcvBuf {
		t.Fatalf("the attacked queue held %d octets, over its buffer of %d", peak, rcvBuf)
	}
	if peak <= rcvBuf/2 {
		t.Fatalf("the queue peaked at %d octets, within the window: the attack did not creep it, so this test shows nothing", peak)
	}
	if st.TcpExtPruneCalled == 0 || st.TcpExtRcvPruned == 0 || st.TcpExtTCPRcvQDrop == 0 {
		t.Fatalf("prune counters did not rise: %+v", st)
	}
	if st.SynstackTCPMemBytes < uint64(peak) || st.SynstackTCPMemBytes > rcvBuf+16<<10 {
		t.Fatalf("the budget holds %d bytes; the attacked queue %d", st.SynstackTCPMemBytes, peak)
	}
	// The attacker goes (a RST); the echo ends: the budget is empty.
	a.send(a.ack, wire.FlagRST, nil, wire.TCPOptions{})
	must(t, ca.Close(cfd))
	n.pump()
	must(t, sb.Close(sfd))
	// The attacker's connection waited in the accept queue, its data
	// readable by whoever accepts it (as in Linux, data before a RST is
	// read before the error): it goes with the listener.
	must(t, sb.Close(lfd))
	n.advance(2 * time.Minute)
	for _, st := range []*Stack{n.a, n.b} {
		if b := st.Stats().SynstackTCPMemBytes; b != 0 {
			t.Errorf("after every connection closed, the budget still holds %d bytes", b)
		}
	}
}

// TestStackMemoryBudget: many connections whose peers never read, against
// a small budget (Config.TCPMem). What the queues hold stays within it,
// beyond one 2 KiB buffer per connection; the budget goes under pressure and
// data past it is dropped and counted; when they close it all comes back.
func TestStackMemoryBudget(t *testing.T) {
	const conns = 200
	limits := tcp.MemoryLimits{Low: 256 << 10, Pressure: 512 << 10, High: 1 << 20}
	n := newVnet(t, func(a, b *Config) { a.TCPMem, b.TCPMem = limits, limits })
	lfd := listenOn(t, n.b, srvAddr, conns, true)
	var cfds, sfds []int
	for range conns {
		c, s := n.connect(srvAddr, lfd)
		cfds, sfds = append(cfds, c), append(sfds, s)
	}
	data := make([]byte, 64<<10)
	// Each client writes what its socket takes, the server reads nothing.
	for range 5 {
		for _, fd := range cfds {
			n.a.Sockets().Send(fd, data, MSG_DONTWAIT)
		}
		n.pump()
		n.advance(time.Second)
	}
	for name, st := range map[string]*Stack{"client": n.a, "server": n.b} {
		s := st.Stats()
		if lim := uint64(limits.High) + conns*2*2048; s.SynstackTCPMemBytes > lim {
			t.Errorf("%s: queues hold %d bytes, over the budget's %d", name, s.SynstackTCPMemBytes, lim)
		}
		if s.TcpExtTCPMemoryPressures == 0 {
			t.Errorf("%s: the budget never went under pressure (%d bytes held)", name, s.SynstackTCPMemBytes)
		}
	}
	if s := n.b.Stats(); s.TcpExtTCPRcvQDrop == 0 || s.TcpExtPruneCalled == 0 {
		t.Errorf("server: no drops counted past the budget: %+v", s)
	}
	for i := range cfds {
		must(t, n.a.Sockets().Close(cfds[i]))
		must(t, n.b.Sockets().Close(sfds[i]))
	}
	n.pump()
	n.advance(3 * time.Minute)
	for name, st := range map[string]*Stack{"client": n.a, "server": n.b} {
		if b := st.Stats().SynstackTCPMemBytes; b != 0 {
			t.Errorf("%s: after every connection closed, the budget still holds %d bytes", name, b)
		}
	}
}

// TestResetUnreadDataGoesBack: a connection reset by its peer keeps the
// data that came before the RST for a read (as Linux); when the
// application closes its socket without reading it, the buffer goes back
// to the budget, though the connection had already left the table.
func TestResetUnreadDataGoesBack(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 4, true)
	cfd, sfd := n.connect(srvAddr, lfd)
	_, err := n.a.Sockets().Send(cfd, []byte("never read"), MSG_DONTWAIT)
	must(t, err)
	n.pump()
	must(t, n.a.Sockets().SetsockoptLinger(cfd, syscall.Linger{Onoff: 1, Linger: 0}))
	must(t, n.a.Sockets().Close(cfd)) // RST
	n.pump()
	if b := n.b.Stats().SynstackTCPMemBytes; b == 0 {
		t.Fatal("the unread data holds no buffer: the test shows nothing")
	}
	must(t, n.b.Sockets().Close(sfd))
	must(t, n.b.Sockets().Close(lfd))
	if b := n.b.Stats().SynstackTCPMemBytes; b != 0 {
		t.Fatalf("after the socket closed, the budget still holds %d bytes", b)
	}
}
