package synstack

import (
	"errors"
	"net/netip"
	"syscall"
	"testing"
	"time"
)

// TestListenerMaxConns: a listener bounded to 3 connections takes 3 of 5
// clients; the other two SYNs are dropped and counted, and their
// retransmissions get in once connections have ended.
func TestListenerMaxConns(t *testing.T) {
	n := newVnet(t, nil)
	lfd := listenOn(t, n.b, srvAddr, 16, true)
	must(t, n.b.Sockets().SetMaxConns(lfd, 3))
	ca := n.a.Sockets()
	var cfds []int
	for range 5 {
		fd, err := ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
		must(t, err)
		wantErr(t, "connect", ca.Connect(fd, srvAddr), syscall.EINPROGRESS)
		cfds = append(cfds, fd)
	}
	n.pump()
	connected := func() int {
		k := 0
		for _, fd := range cfds {
			if _, err := ca.Getpeername(fd); err == nil {
				k++
			}
		}
		return k
	}
	if got := connected(); got != 3 {
		t.Fatalf("%d clients connected, want 3", got)
	}
	st := n.b.Stats()
	if st.SynstackConnLimitDrops != 2 || st.TcpExtListenDrops != 2 || st.TcpPassiveOpens != 3 {
		t.Fatalf("limit drops %d, listen drops %d, passive opens %d: want 2, 2, 3", st.SynstackConnLimitDrops, st.TcpExtListenDrops, st.TcpPassiveOpens)
	}
	// Two connections end (the clients close first: the server's side
	// goes through LAST_ACK, and leaves the table at once).
	var sfds []int
	for range 3 {
		sfd, _, err := n.b.Sockets().Accept(lfd)
		must(t, err)
		sfds = append(sfds, sfd)
	}
	k := 0
	for _, fd := range cfds {
		if _, err := ca.Getpeername(fd); err == nil && k < 2 {
			must(t, ca.Close(fd))
			k++
		}
	}
	n.pump()
	for _, fd := range sfds[:2] {
		must(t, n.b.Sockets().Close(fd))
	}
	n.pump()
	n.advance(4 * time.Second) // the SYN retransmissions (1 s, then 2 s)
	if st := n.b.Stats(); st.TcpPassiveOpens != 5 {
		t.Fatalf("after two connections ended: %d passive opens, want 5 (the dropped SYNs' retransmissions taken)", st.TcpPassiveOpens)
	}
}

// TestStackMaxConns: Config.MaxConns bounds a stack's connections, active
// (connect fails with ENOBUFS) and passive (SYNs dropped).
func TestStackMaxConns(t *testing.T) {
	n := newVnet(t, func(a, b *Config) { a.MaxConns = 4; b.MaxConns = 2 })
	listenOn(t, n.b, srvAddr, 16, true)
	ca := n.a.Sockets()
	var errs []error
	for range 5 {
		fd, err := ca.Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
		must(t, err)
		errs = append(errs, ca.Connect(fd, srvAddr))
	}
	for i, err := range errs[:4] {
		if !errors.Is(err, syscall.EINPROGRESS) {
			t.Fatalf("connect %d: %v, want EINPROGRESS", i, err)
		}
	}
	if !errors.Is(errs[4], syscall.ENOBUFS) {
		t.Fatalf("connect beyond MaxConns: %v, want ENOBUFS", errs[4])
	}
	n.pump()
	if st := n.a.Stats(); st.SynstackConnLimitDrops != 1 {
		t.Fatalf("client: %d limit drops, want 1", st.SynstackConnLimitDrops)
	}
	if st := n.b.Stats(); st.TcpPassiveOpens != 2 || st.SynstackConnLimitDrops != 2 {
		t.Fatalf("server: %d passive opens and %d limit drops, want 2 and 2", st.TcpPassiveOpens, st.SynstackConnLimitDrops)
	}
}

// TestListenConfigMaxConns: the net face's bound reaches the listener.
func TestListenConfigMaxConns(t *testing.T) {
	n := newVnet(t, nil)
	lc := ListenConfig{Stack: n.b, MaxConns: 1}
	ln, err := lc.Listen(t.Context(), "tcp", srvAddr.String())
	must(t, err)
	defer ln.Close()
	for range 2 {
		fd, err := n.a.Sockets().Socket(AF_INET, SOCK_STREAM|SOCK_NONBLOCK, 0)
		must(t, err)
		n.a.Sockets().Connect(fd, netip.AddrPortFrom(addrB, srvAddr.Port()))
	}
	n.pump()
	if st := n.b.Stats(); st.TcpPassiveOpens != 1 || st.SynstackConnLimitDrops != 1 {
		t.Fatalf("%d passive opens, %d limit drops: want 1 and 1", st.TcpPassiveOpens, st.SynstackConnLimitDrops)
	}
}
