package synstack

import (
	"net/netip"
	"syscall"

	"github.com/synstack/synstack/wire"
)

// TCP MD5 signatures (RFC 2385), Linux's TCP_MD5SIG: a socket holds a key
// per peer (an address, or with TCP_MD5SIG_EXT a prefix); its connection
// to a peer with a key signs every segment it sends and takes only
// segments signed with that key. A listener's keys pass to the
// connections it accepts. Segments refused are counted in Stats
// (TcpExtTCPMD5NotFound, TcpExtTCPMD5Unexpected, TcpExtTCPMD5Failure).
// docs/linux-differences.md lists what Linux does that the stack does
// not (keys on an interface, TCP-AO).

// TCP_MD5SIG options and flags (level IPPROTO_TCP), as Linux numbers them.
const (
	TCP_MD5SIG              = 14 // set a key for a peer address: see SetsockoptTCPMD5Sig
	TCP_MD5SIG_EXT          = 32 // TCP_MD5SIG with flags: a key for a prefix
	TCP_MD5SIG_FLAG_PREFIX  = 1  // TCPMD5Sig.PrefixLen is used
	TCP_MD5SIG_FLAG_IFINDEX = 2  // a key for one interface: the stack has one link, only 0 is taken
	TCP_MD5SIG_MAXKEYLEN    = wire.TCPMD5KeyMax
)

// TCPMD5Sig is the value of TCP_MD5SIG and TCP_MD5SIG_EXT, Linux's struct
// tcp_md5sig: the peer the key is for, and the key.
type TCPMD5Sig struct {
	// Addr is the peer (tcpm_addr): an IPv4 address for an AF_INET
	// socket; an IPv6 one, or an IPv4-mapped one for IPv4 peers, for an
	// AF_INET6 socket.
	Addr netip.Addr
	// Flags are TCP_MD5SIG_EXT's (tcpm_flags): TCP_MD5SIG_FLAG_PREFIX
	// makes the key cover PrefixLen bits of Addr; TCP_MD5SIG_FLAG_IFINDEX
	// with IfIndex 0 is a key for any interface. TCP_MD5SIG ignores them.
	Flags     uint8
	PrefixLen int
	IfIndex   int
	// Key is the key, at most TCP_MD5SIG_MAXKEYLEN (80) bytes; empty
	// deletes the key for Addr (ENOENT if there is none).
	Key []byte
}

// SetsockoptTCPMD5Sig sets or deletes a TCP MD5 key of fd (opt
// TCP_MD5SIG or TCP_MD5SIG_EXT, level IPPROTO_TCP), as Linux: EINVAL for
// an address of another family than the socket's, a prefix longer than
// the address, a key longer than 80 bytes, unknown flags; ENODEV for an
// interface index other than 0 (the stack has one link); ENOENT to delete
// a key that is not there. A connected socket signs with the key for its
// peer from its next segment on.
func (t *Sockets) SetsockoptTCPMD5Sig(fd, opt int, sig TCPMD5Sig) error {
	sk, _, err := t.get(fd)
	if err != nil {
		return err
	}
	if opt != TCP_MD5SIG && opt != TCP_MD5SIG_EXT {
		return syscall.ENOPROTOOPT
	}
	a := sig.Addr
	switch {
	case !a.IsValid(),
		sk.Family() == AF_INET && !a.Is4(),
		sk.Family() == AF_INET6 && !a.Is6():
		return syscall.EINVAL
	}
	bits := a.Unmap().BitLen()
	if opt == TCP_MD5SIG_EXT {
		switch {
		case sig.Flags&^(TCP_MD5SIG_FLAG_PREFIX|TCP_MD5SIG_FLAG_IFINDEX) != 0:
			return syscall.EINVAL
		case sig.Flags&TCP_MD5SIG_FLAG_IFINDEX != 0 && sig.IfIndex != 0:
			return syscall.ENODEV
		case sig.Flags&TCP_MD5SIG_FLAG_PREFIX == 0:
		case sig.PrefixLen < 0 || sig.PrefixLen > bits:
			// An IPv4-mapped address's prefix counts IPv4's bits.
			return syscall.EINVAL
		default:
			bits = sig.PrefixLen
		}
	}
	if len(sig.Key) > TCP_MD5SIG_MAXKEYLEN {
		return syscall.EINVAL
	}
	return sk.SetMD5Key(netip.PrefixFrom(a.Unmap(), bits), sig.Key)
}

// setMD5Keys gives fd's socket the keys of a ListenConfig or Dialer.
func (t *Sockets) setMD5Keys(fd int, keys map[netip.Prefix][]byte) error {
	sk, _, err := t.get(fd)
	if err != nil {
		return err
	}
	for p, key := range keys {
		if len(key) == 0 {
			return syscall.EINVAL
		}
		if err := sk.SetMD5Key(p, key); err != nil {
			return err
		}
	}
	return nil
}
