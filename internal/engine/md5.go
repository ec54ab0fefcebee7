package engine

import (
	"net/netip"
	"syscall"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// TCP MD5 signatures (RFC 2385), as Linux keeps them: a socket holds keys
// for peers, each for an address or a prefix (TCP_MD5SIG,
// TCP_MD5SIG_EXT); a connection takes the key for its peer when it is
// made (a listener's child from its listener) and signs every segment it
// sends with it (tcp/md5.go). A segment arriving for a socket is checked
// before the socket sees it, and dropped and counted as Linux counts:
// unsigned where a key is due (TcpExtTCPMD5NotFound), signed where none is
// (TcpExtTCPMD5Unexpected), or signed with another key
// (TcpExtTCPMD5Failure). A signed segment that finds no socket is dropped
// without an answer. Connections without a key pay a nil check per
// segment each way.

// MD5Key is one TCP MD5 key of a socket: the peers it is for, and the key.
type MD5Key struct {
	Peers netip.Prefix // unmapped; a whole address for TCP_MD5SIG
	Key   []byte       // 1 to wire.TCPMD5KeyMax bytes
}

// MD5Keys is a socket's list of TCP MD5 keys; never changed in place.
type MD5Keys struct {
	keys []MD5Key
}

// lookup returns the key for peer, nil if none: the one for the longest
// prefix that holds it, as Linux's tcp_md5_do_lookup picks.
func (k *MD5Keys) lookup(peer netip.Addr) []byte {
	if k == nil {
		return nil
	}
	peer = peer.Unmap()
	var best []byte
	bits := -1
	for _, e := range k.keys {
		if e.Peers.Contains(peer) && e.Peers.Bits() > bits {
			best, bits = e.Key, e.Peers.Bits()
		}
	}
	return best
}

// with returns the list with the key for peers set to key, or removed if
// key is empty; ENOENT if there is none to remove.
func (k *MD5Keys) with(peers netip.Prefix, key []byte) (*MD5Keys, error) {
	n := &MD5Keys{}
	found := false
	if k != nil {
		for _, e := range k.keys {
			if e.Peers == peers {
				found = true
				continue
			}
			n.keys = append(n.keys, e)
		}
	}
	if len(key) == 0 {
		if !found {
			return nil, syscall.ENOENT
		}
	} else {
		n.keys = append(n.keys, MD5Key{Peers: peers, Key: append([]byte(nil), key...)})
	}
	if len(n.keys) == 0 {
		return nil, nil
	}
	return n, nil
}

// maxMD5Keys bounds a socket's keys (Linux bounds them by the socket's
// option memory, about this many).
const maxMD5Keys = 256

// SetMD5Key sets the socket's TCP MD5 key for the peers of prefix (an
// address for TCP_MD5SIG), or deletes it if key is empty (ENOENT if it has
// none). A key longer than wire.TCPMD5KeyMax is EINVAL. The socket's
// connection, if any, takes the key for its peer from now on.
func (sk *Socket) SetMD5Key(peers netip.Prefix, key []byte) error {
	if len(key) > wire.TCPMD5KeyMax || !peers.IsValid() {
		return syscall.EINVAL
	}
	peers = netip.PrefixFrom(peers.Addr().Unmap(), min(peers.Bits(), peers.Addr().Unmap().BitLen())).Masked()
	return sk.SetOption(func(c OptCtx) error {
		keys, err := c.O.MD5.with(peers, key)
		if err != nil {
			return err
		}
		if keys != nil && len(keys.keys) > maxMD5Keys {
			return syscall.ENOMEM
		}
		c.O.MD5 = keys
		sk.h.md5Used.Store(true)
		if ep := sk.ep; ep != nil {
			ep.conn.SetMD5Key(keys.lookup(ep.remote.Addr()))
		}
		return nil
	})
}

// md5Setup gives a new connection the key of its socket's options o
// for its peer, before it sends anything.
func (ep *endpoint) md5Setup(o *Options) {
	if key := o.MD5.lookup(ep.remote.Addr()); key != nil {
		ep.conn.SetMD5Key(key)
	}
}

// md5Inbound reports whether a segment may go on to a socket whose key for
// its sender is key (nil: none); if not it counts why. It needs sh's lock
// (its signer).
//
// +checklocks:sh.mu
func (sh *shard) md5Inbound(p *rxPacket, key []byte) bool {
	signed := p.th.Options.HasMD5
	st := &sh.stats
	switch {
	case key == nil && !signed:
		return true
	case key == nil:
		st.TcpExtTCPMD5Unexpected++
		return false
	case !signed:
		st.TcpExtTCPMD5NotFound++
		return false
	}
	if sh.md5 == nil {
		sh.md5 = new(wire.TCPMD5)
	}
	if !sh.md5.Valid(p.payload, p.src, p.dst, key) {
		st.TcpExtTCPMD5Failure++
		return false
	}
	return true
}

// md5ConnInbound is md5Inbound for a segment to ep, one of sh's
// connections: free unless one of them signs. A connection in TIME_WAIT
// takes what comes, as Linux's timewait sockets do.
//
// +checklocks:sh.mu
func (sh *shard) md5ConnInbound(p *rxPacket, ep *endpoint) bool {
	key := ep.conn.MD5Key()
	if key == nil && !p.th.Options.HasMD5 || ep.conn.State() == tcp.TimeWait {
		return true
	}
	return sh.md5Inbound(p, key)
}

// md5DemuxLocked is md5Inbound for a segment the control plane takes
// (demuxLocked): to the connection it finds, else the listener, else to
// nothing, where a signed segment is dropped unanswered (Linux answers
// one only if a listener's key checks it). It needs ctl and the tuple's
// shard's lock.
//
// +checklocks:s.ctl
func (s *Host) md5DemuxLocked(sh *shard, p *rxPacket, local, remote netip.AddrPort) bool {
	if !p.th.Options.HasMD5 && !s.md5Used.Load() {
		return true
	}
	if ep := s.connGet(local, remote); ep != nil {
		return sh.md5ConnInbound(p, ep) // +checklocksignore: the caller holds sh, the tuple's shard
	}
	if l := s.lookupListenerLocked(local, remote); l != nil {
		return sh.md5Inbound(p, l.sock.opts.MD5.lookup(remote.Addr())) // +checklocksignore: as above
	}
	return !p.th.Options.HasMD5 || s.forwardsToLocked(p.dst, p.proto, p.payload)
}

// md5Sign signs the segment whose TCP header is header (with the
// option Emit wrote) and whose data is payload. It needs sh's lock.
func (sh *shard) md5Sign(header, payload []byte, src, dst netip.Addr, key []byte) {
	if sh.md5 == nil {
		sh.md5 = new(wire.TCPMD5)
	}
	sh.md5.Sign(header, payload, src, dst, key)
}
