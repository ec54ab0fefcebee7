package synstack

import (
	"net/netip"
	"testing"

	"github.com/synstack/synstack/tcp"
)

func TestVirtualHandshakeAndData(t *testing.T) {
	n := newVnet(t, nil)
	srv := netip.AddrPortFrom(addrB, 8080)
	lfd := listenOn(t, n.b, srv, 16, true)
	cfd, sfd := n.connect(srv, lfd)
	ca, sb := n.a.Sockets(), n.b.Sockets()
	if _, err := ca.Write(cfd, []byte("hello")); err != nil {
		t.Fatal(err)
	}
	n.pump()
	buf := make([]byte, 100)
	k, err := sb.Read(sfd, buf)
	if err != nil || string(buf[:k]) != "hello" {
		t.Fatalf("read %q %v", buf[:k], err)
	}
	info, err := sb.GetsockoptTCPInfo(sfd)
	must(t, err)
	if info.State != tcp.Established {
		t.Errorf("state %v", info.State)
	}
}
