package synstack

import (
	"net/netip"
	"syscall"
	"testing"
)

// urgentPair connects two stacks, and has the client send "abc", then "wX"
// with MSG_OOB (X is urgent), then "def"; inline sets SO_OOBINLINE on the accepted
// socket first.
func urgentPair(t *testing.T, inline bool) (n *vnet, sfd int) {
	n = newVnet(t, nil)
	lfd := listenOn(t, n.b, netip.AddrPortFrom(addrB, 80), 4, true)
	cfd, sfd := n.connect(netip.AddrPortFrom(addrB, 80), lfd)
	sb := n.b.Sockets()
	must(t, sb.SetsockoptInt(sfd, SOL_SOCKET, SO_OOBINLINE, boolInt(inline)))
	if v, err := sb.GetsockoptInt(sfd, SOL_SOCKET, SO_OOBINLINE); v != boolInt(inline) || err != nil {
		t.Fatalf("SO_OOBINLINE reads %d, %v", v, err)
	}
	sa := n.a.Sockets()
	for _, w := range []struct {
		s     string
		flags int
	}{{"abc", 0}, {"wX", MSG_OOB}, {"def", 0}} {
		if k, err := sa.Send(cfd, []byte(w.s), w.flags); k != len(w.s) || err != nil {
			t.Fatalf("send %q: %d, %v", w.s, k, err)
		}
		n.pump()
	}
	return n, sfd
}

// recvString reads once with flags; "" and the error when it fails.
func recvString(t *testing.T, ss *Sockets, fd, flags int) (string, error) {
	buf := make([]byte, 100)
	k, err := ss.Recv(fd, buf, flags|MSG_DONTWAIT)
	if err != nil {
		return "", err
	}
	return string(buf[:k]), nil
}

// TestUrgentOutOfBand: the urgent byte leaves the stream. A read stops at
// the mark (SIOCATMARK then says so), MSG_OOB reads the byte once (a peek
// first leaves it), POLLPRI reports it until then, and the next read
// skips it.
func TestUrgentOutOfBand(t *testing.T) {
	n, sfd := urgentPair(t, false)
	sb := n.b.Sockets()
	if mark, err := sb.Ioctl(sfd, SIOCATMARK); mark != 0 || err != nil {
		t.Errorf("SIOCATMARK before reading: %d, %v; want 0", mark, err)
	}
	if got, err := recvString(t, sb, sfd, 0); got != "abcw" || err != nil {
		t.Fatalf("read %q, %v; want abcw (up to the mark)", got, err)
	}
	if mark, err := sb.Ioctl(sfd, SIOCATMARK); mark != 1 || err != nil {
		t.Errorf("SIOCATMARK at the mark: %d, %v; want 1", mark, err)
	}
	if ev := pollOne(sb, sfd, POLLIN|POLLPRI); ev&POLLPRI == 0 {
		t.Errorf("poll %#x: want POLLPRI", ev)
	}
	for _, flags := range []int{MSG_PEEK, 0} {
		if got, err := recvString(t, sb, sfd, MSG_OOB|flags); got != "X" || err != nil {
			t.Fatalf("recv MSG_OOB (flags %#x): %q, %v; want X", flags, got, err)
		}
	}
	if ev := pollOne(sb, sfd, POLLIN|POLLPRI); ev&POLLPRI != 0 {
		t.Errorf("poll %#x after reading it: want no POLLPRI", ev)
	}
	_, err := recvString(t, sb, sfd, MSG_OOB)
	wantErr(t, "recv MSG_OOB again", err, syscall.EINVAL)
	if got, err := recvString(t, sb, sfd, 0); got != "def" || err != nil {
		t.Fatalf("read %q, %v; want def (the urgent byte skipped)", got, err)
	}
	if mark, _ := sb.Ioctl(sfd, SIOCATMARK); mark != 0 {
		t.Errorf("SIOCATMARK past the mark: %d", mark)
	}
}

// TestUrgentInline: with SO_OOBINLINE the byte stays in the stream: a
// read still stops at the mark, the next returns the byte with what
// follows, and MSG_OOB finds nothing.
func TestUrgentInline(t *testing.T) {
	n, sfd := urgentPair(t, true)
	sb := n.b.Sockets()
	if got, err := recvString(t, sb, sfd, 0); got != "abcw" || err != nil {
		t.Fatalf("read %q, %v; want abcw", got, err)
	}
	_, err := recvString(t, sb, sfd, MSG_OOB)
	wantErr(t, "recv MSG_OOB inline", err, syscall.EINVAL)
	if got, err := recvString(t, sb, sfd, 0); got != "Xdef" || err != nil {
		t.Fatalf("read %q, %v; want Xdef", got, err)
	}
}

// TestUrgentErrors: MSG_OOB on a listener is ENOTCONN, on a socket never
// connected EINVAL, on UDP EOPNOTSUPP, as Linux.
func TestUrgentErrors(t *testing.T) {
	n := newVnet(t, nil)
	ss := n.a.Sockets()
	lfd := listenOn(t, n.a, netip.AddrPortFrom(addrA, 80), 4, true)
	fd, err := ss.Socket(AF_INET, SOCK_STREAM, 0)
	must(t, err)
	ufd, err := ss.Socket(AF_INET, SOCK_DGRAM, 0)
	must(t, err)
	buf := make([]byte, 1)
	_, err = ss.Recv(lfd, buf, MSG_OOB)
	wantErr(t, "listener", err, syscall.ENOTCONN)
	_, err = ss.Recv(fd, buf, MSG_OOB)
	wantErr(t, "unconnected", err, syscall.EINVAL)
	_, err = ss.Recv(ufd, buf, MSG_OOB)
	wantErr(t, "UDP", err, syscall.EOPNOTSUPP)
	_, err = ss.Ioctl(ufd, SIOCATMARK)
	wantErr(t, "UDP SIOCATMARK", err, syscall.ENOTTY)
}
