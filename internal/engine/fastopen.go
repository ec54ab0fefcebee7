package engine

import (
	"bytes"
	"encoding/binary"
	"net/netip"
	"sync"
	"syscall"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/wire"
)

// TCP Fast Open (RFC 7413), the stack's half: the modes, the server's
// cookies and the listener's queue of Fast Open children, and the
// client's cache of cookies. The state machine's half is tcp/fastopen.go.

// Fast Open modes: the bits of net.ipv4.tcp_fastopen.
const (
	FastOpenClient         = 0x1   // connect may send data in the SYN (MSG_FASTOPEN, TCP_FASTOPEN_CONNECT)
	FastOpenServer         = 0x2   // listeners that enabled it (TCP_FASTOPEN) take data in SYNs with a good cookie
	FastOpenClientNoCookie = 0x4   // the client sends data in the SYN without a cookie
	FastOpenServerNoCookie = 0x200 // the server takes data in the SYN without a cookie
	FastOpenServerAll      = 0x400 // every listener is a Fast Open one, its queue the listen backlog
	// FastOpenDefault is Linux's default: the client only.
	FastOpenDefault = FastOpenClient
)

// fastOpenCookieLen is the length of the cookies the server makes: one
// SipHash-2-4 value, as Linux's.
const fastOpenCookieLen = 8

// maxFastOpenCache bounds the client's cookie cache, in destinations
// (Linux keeps cookies in its TCP metrics, a bounded hash table). A new
// destination beyond it replaces one of the others.
const maxFastOpenCache = 1024

// FastOpenKey is a server key as tcp_fastopen_key and TCP_FASTOPEN_KEY
// give it: 16 bytes, the SipHash key (two little-endian 64-bit words).
type FastOpenKey [16]byte

// fastOpenEntry is what the client remembers of a destination: its
// cookie (cookie[:n], none when n is 0), the option's form, and the MSS
// it announced.
type fastOpenEntry struct {
	cookie [wire.FastOpenCookieMax]byte
	n      uint8
	exp    bool
	mss    uint16
	// tryExp is Linux's try_exp (tcp.Conn.FastOpenTryExp): 1, ask for a
	// cookie in the experimental form; it never goes back down.
	tryExp uint8
}

// fastOpenState is the host's Fast Open state. Its mutex is a leaf lock
// (locks.go): the cache is written when a SYN,ACK arrives, under a
// shard's lock alone.
type fastOpenState struct {
	mu sync.Mutex
	// mode is net.ipv4.tcp_fastopen.
	// +checklocks:mu
	mode int
	// keys are the primary and the backup key (nkeys of them).
	// +checklocks:mu
	keys [2]secret
	// +checklocks:mu
	nkeys int
	// +checklocks:mu
	cache map[netip.Addr]fastOpenEntry
	// deferred holds where each socket whose TCP_FASTOPEN_CONNECT
	// connect waits for its first write goes (Socket.foDefer): one entry
	// per such socket, removed by that write or by close.
	// +checklocks:mu
	deferred map[*Socket]netip.AddrPort
}

// keySecret turns a key's bytes into a SipHash key, as Linux reads them.
func keySecret(k FastOpenKey) secret {
	return secret{k0: binary.LittleEndian.Uint64(k[:8]), k1: binary.LittleEndian.Uint64(k[8:])}
}

// initFastOpen sets the mode and the keys of a new host. Without keys
// the primary one is drawn from the host's secret (so Config.Seed makes
// it deterministic).
func (s *Host) initFastOpen(mode int, keys []FastOpenKey) {
	s.SetFastOpenMode(mode)
	if s.SetFastOpenKeys(keys...) != nil {
		f := &s.tfo
		f.mu.Lock()
		f.keys[0] = secret{k0: splitmix64(s.key.k0 ^ 0x7f0), k1: splitmix64(s.key.k1 ^ 0x7f0)}
		f.nkeys = 1
		f.mu.Unlock()
	}
}

// SetFastOpenKeys sets the server's keys (tcp_fastopen_key): the first is
// the primary one, which makes the cookies sent; a second, the backup, is
// still accepted (a key being rotated out). One or two keys, else EINVAL.
func (s *Host) SetFastOpenKeys(keys ...FastOpenKey) error {
	if len(keys) == 0 || len(keys) > 2 {
		return syscall.EINVAL
	}
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nkeys = 0
	for _, k := range keys {
		f.keys[f.nkeys] = keySecret(k)
		f.nkeys++
	}
	return nil
}

// FastOpenKeys returns the server's keys, the primary first.
func (s *Host) FastOpenKeys() []FastOpenKey {
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]FastOpenKey, f.nkeys)
	for i := range out {
		binary.LittleEndian.PutUint64(out[i][:8], f.keys[i].k0)
		binary.LittleEndian.PutUint64(out[i][8:], f.keys[i].k1)
	}
	return out
}

// FastOpenMode returns net.ipv4.tcp_fastopen.
func (s *Host) FastOpenMode() int {
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.mode
}

// SetFastOpenMode sets net.ipv4.tcp_fastopen.
func (s *Host) SetFastOpenMode(mode int) {
	f := &s.tfo
	f.mu.Lock()
	f.mode = mode
	f.mu.Unlock()
}

// fastOpenCookie is the cookie for a client at remote talking to local
// under key k: SipHash of the two addresses, as Linux computes it (so a
// script's cookies are Linux's).
func fastOpenCookie(k secret, remote, local netip.Addr) [fastOpenCookieLen]byte {
	var msg [32]byte
	var n int
	if remote.Is4() && local.Is4() {
		a, b := remote.As4(), local.As4()
		n = copy(msg[:], a[:])
		n += copy(msg[n:], b[:])
	} else {
		a, b := remote.As16(), local.As16()
		n = copy(msg[:], a[:])
		n += copy(msg[n:], b[:])
	}
	var c [fastOpenCookieLen]byte
	binary.LittleEndian.PutUint64(c[:], k.sipHash(msg[:n]))
	return c
}

// listenerKeys returns the keys that check a cookie at l: the ones
// TCP_FASTOPEN_KEY set on it, else the host's.
func (s *Host) listenerKeys(l *listener) ([2]secret, int) {
	if k := l.sock.opts.FastOpenKey; len(k) >= 16 {
		var ks [2]secret
		n := 0
		for ; n < 2 && len(k) >= 16; n++ {
			ks[n] = keySecret(FastOpenKey([]byte(k[:16])))
			k = k[16:]
		}
		return ks, n
	}
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.keys, f.nkeys
}

// fastOpenQLen is l's Fast Open queue length: TCP_FASTOPEN's, or with
// FastOpenServerAll the listen backlog; 0 when l does not do Fast Open.
func fastOpenQLen(l *listener, mode int) int {
	if q := l.sock.opts.FastOpenQLen; q > 0 {
		return q
	}
	if mode&FastOpenServerAll != 0 {
		return max(l.backlog, 1)
	}
	return 0
}

// fastOpenServerLocked decides what a SYN's Fast Open option (or data)
// earns at l (Linux's tcp_try_fastopen): with a good cookie, or none
// needed, the data is taken and the child usable at once (take); a
// request, or a cookie that does not check out, gets a fresh cookie in
// the SYN,ACK and the data is dropped (the client sends it again after
// the handshake). Beyond l's Fast Open queue, a normal handshake.
//
// +checklocks:s.ctl
func (s *Host) fastOpenServerLocked(l *listener, local, remote netip.AddrPort, syn *tcp.Segment) (r tcp.FastOpenReply, take bool) {
	st := &s.g().stats
	o := &syn.Options
	if o.HasFastOpen && o.FastOpenLen == 0 {
		st.TcpExtTCPFastOpenCookieReqd++
	}
	mode := s.FastOpenMode()
	qlen := fastOpenQLen(l, mode)
	if mode&FastOpenServer == 0 || qlen == 0 || (len(syn.Payload) == 0 && !o.HasFastOpen) {
		return r, false
	}
	if int(l.tfoPending.Load()) >= qlen {
		st.TcpExtTCPFastOpenListenOverflow++
		return r, false
	}
	if mode&FastOpenServerNoCookie != 0 {
		st.TcpExtTCPFastOpenPassive++
		return tcp.FastOpenReply{TakeData: true}, true
	}
	if !o.HasFastOpen {
		return r, false
	}
	keys, n := s.listenerKeys(l)
	valid := fastOpenCookie(keys[0], remote.Addr(), local.Addr())
	if o.FastOpenLen > 0 {
		got := o.FastOpenCookieBytes()
		switch {
		case bytes.Equal(got, valid[:]):
			st.TcpExtTCPFastOpenPassive++
			return tcp.FastOpenReply{TakeData: true}, true
		case n > 1 && bytes.Equal(got, fastOpenCookieFor(keys[1], remote, local)):
			// The backup key's: good, and the client gets the
			// primary key's cookie for next time.
			st.TcpExtTCPFastOpenPassive++
			st.TcpExtTCPFastOpenPassiveAltKey++
			return tcp.FastOpenReply{TakeData: true, Cookie: valid[:], Exp: o.FastOpenExp}, true
		}
		st.TcpExtTCPFastOpenPassiveFail++
	}
	return tcp.FastOpenReply{Cookie: valid[:], Exp: o.FastOpenExp}, false
}

// fastOpenCookieFor is fastOpenCookie as a slice, for comparing.
func fastOpenCookieFor(k secret, remote, local netip.AddrPort) []byte {
	c := fastOpenCookie(k, remote.Addr(), local.Addr())
	return c[:]
}

// fastOpenRequest is what a client's SYN to dst carries under mode: the
// cookie cached for dst, or a request for one.
func (s *Host) fastOpenRequest(dst netip.Addr) tcp.FastOpenRequest {
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	req := tcp.FastOpenRequest{NoCookie: f.mode&FastOpenClientNoCookie != 0}
	if e, ok := f.cache[dst]; ok {
		req.PeerMSS = int(e.mss)
		req.Exp = e.n == 0 && e.tryExp == 1 // a request in the other form, once
		if e.n > 0 && !req.NoCookie {
			// Without cookies (0x4) the SYN carries no option at all,
			// cached cookie or not (Linux's tcp_fastopen_cookie_check).
			req.Cookie = append([]byte(nil), e.cookie[:e.n]...)
			req.Exp = e.exp
		}
	}
	return req
}

// fastOpenUsable reports whether a TCP_FASTOPEN_CONNECT to dst may defer
// its SYN to the first write: a cookie is cached, or none is needed.
func (s *Host) fastOpenUsable(dst netip.Addr) bool {
	req := s.fastOpenRequest(dst)
	return len(req.Cookie) > 0 || req.NoCookie
}

// fastOpenCacheSet remembers what the SYN,ACK of a Fast Open connect
// from dst said: its MSS always, its cookie when it carried one (a
// SYN,ACK without one leaves the cached cookie, as Linux).
func (s *Host) fastOpenCacheSet(dst netip.Addr, cookie []byte, exp bool, mss, tryExp int) {
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.cache[dst]
	if !ok && len(f.cache) >= maxFastOpenCache {
		for k := range f.cache { // one of the others makes room
			delete(f.cache, k)
			break
		}
	}
	if f.cache == nil {
		f.cache = make(map[netip.Addr]fastOpenEntry)
	}
	e.mss = uint16(min(max(mss, 0), 65535))
	e.tryExp = max(e.tryExp, uint8(min(max(tryExp, 0), 2)))
	if len(cookie) > 0 {
		e.n = uint8(copy(e.cookie[:], cookie))
		e.exp = exp
	}
	f.cache[dst] = e
}

// FastOpenCacheLen returns the destinations whose cookie the client
// remembers.
func (s *Host) FastOpenCacheLen() int {
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.cache)
}

// FlushFastOpenCache forgets every cookie (and MSS) the client
// remembers, as `ip tcp_metrics flush` does on Linux.
func (s *Host) FlushFastOpenCache() {
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	clear(f.cache)
}

// fastOpenTransitionLocked keeps Fast Open's books on a connection's
// transition: a client's cache when its SYN,ACK came, a listener's queue
// when a Fast Open child leaves SYN_RCVD.
func (s *Host) fastOpenTransitionLocked(ep *endpoint, from, to tcp.State) {
	switch {
	case from == tcp.SynSent && to != tcp.Closed:
		if cookie, exp, mss, ok := ep.conn.FastOpenCookie(); ok {
			s.fastOpenCacheSet(ep.remote.Addr(), cookie, exp, mss, ep.conn.FastOpenTryExp())
		}
	case from == tcp.SynRcvd && ep.conn.FastOpenPassive():
		if b := ep.bind; b != nil && b.owner != nil {
			b.owner.tfoPending.Add(-1)
		}
	}
}

// SendFastOpen is sendto with MSG_FASTOPEN on a TCP socket (see
// synstack.Sockets.Sendto): on a socket without a connection it connects
// to to, the SYN carrying as much of p as fits when a cookie for to is
// cached (else asking for one). Non-blocking, it returns what the SYN
// carries, or EINPROGRESS when that is nothing; blocking, it waits for
// the handshake and writes the rest. On a connected socket it is Send;
// the zero AddrPort (AF_UNSPEC) is EOPNOTSUPP, as Linux. f is the send's
// other flags: with ZeroCopy (and SO_ZEROCOPY) the call's data, the SYN's
// part included, takes one zerocopy id, completed (as copied) once it is
// all acknowledged; a call that sends nothing takes none.
func (sk *Socket) SendFastOpen(p []byte, to netip.AddrPort, f SendFlags, cancel <-chan struct{}) (int, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return 0, err
	}
	return sk.sendFastOpenLocked(p, to, f, cancel, &l)
}

// sendFastOpenLocked is SendFastOpen under l (ctl and the socket's
// shard).
//
// +checklocks:sk.h.ctl
func (sk *Socket) sendFastOpenLocked(p []byte, to netip.AddrPort, f SendFlags, cancel <-chan struct{}, l *locks) (int, error) {
	s := sk.h
	if sk.ep != nil && sk.ep.conn.State() == tcp.SynSent {
		return 0, syscall.EALREADY // a connect is under way
	}
	if sk.ep != nil || sk.l != nil {
		return sk.sendLocked(p, f, cancel, l) // MSG_FASTOPEN is ignored once connected
	}
	if s.FastOpenMode()&FastOpenClient == 0 {
		return 0, syscall.EOPNOTSUPP
	}
	if !to.IsValid() {
		return 0, syscall.EOPNOTSUPP // AF_UNSPEC, as Linux
	}
	if sk.foDefer {
		s.fastOpenUndefer(sk)
	}
	n := 0
	err := sk.connectWithLocked(to, true, cancel, l, func(ep *endpoint) error {
		var err error
		n, err = ep.conn.ConnectFastOpen(s.clock.Now(), s.fastOpenRequest(ep.remote.Addr()), p)
		return err
	})
	if err != syscall.EINPROGRESS {
		return 0, err
	}
	if n > 0 {
		// The SYN's data takes the call's zerocopy id (Linux's uarg,
		// made before tcp_sendmsg_fastopen).
		sk.noteZeroCopyLocked(sk.ep.conn.WriteEnd(), f, false)
	}
	if f.NonBlock {
		if n > 0 {
			return n, nil
		}
		return 0, syscall.EINPROGRESS
	}
	// Linux's inet_wait_for_connect counts the caller as a waiting
	// writer only when the SYN did not take all of its data.
	ep := sk.ep
	ep.conn.SetWriterWaiting(n < len(p))
	err = sk.waitConnectLocked(cancel, l)
	if sk.ep == ep {
		ep.conn.SetWriterWaiting(false)
	}
	if err != nil {
		return 0, err
	}
	if n == len(p) {
		return n, nil
	}
	rest := f
	rest.ZeroCopy = false
	m, err := sk.sendLocked(p[n:], rest, cancel, l)
	if m > 0 && sk.ep != nil {
		sk.noteZeroCopyLocked(sk.ep.conn.WriteEnd(), f, n > 0) // the same id, if the SYN took one
	}
	if n+m > 0 {
		return n + m, nil
	}
	return 0, err
}

// deferFastOpenLocked is connect with TCP_FASTOPEN_CONNECT when a cookie
// for addr is cached (or none is needed): nothing is sent, connect
// succeeds, and the first write connects with its data in the SYN
// (Linux's defer_connect). It reports whether it deferred.
//
// +checklocks:sk.h.ctl
func (sk *Socket) deferFastOpenLocked(addr netip.AddrPort) bool {
	s := sk.h
	if !sk.opts.FastOpenConnect || sk.ep != nil || sk.l != nil || sk.udp != nil ||
		s.FastOpenMode()&FastOpenClient == 0 || !addr.IsValid() {
		return false
	}
	dst := addr.Addr().Unmap()
	if dst.IsUnspecified() || !s.fastOpenUsable(dst) {
		return false
	}
	f := &s.tfo
	f.mu.Lock()
	if f.deferred == nil {
		f.deferred = make(map[*Socket]netip.AddrPort)
	}
	f.deferred[sk] = netip.AddrPortFrom(dst, addr.Port())
	f.mu.Unlock()
	sk.foDefer = true
	return true
}

// fastOpenDeferred returns where sk's deferred connect goes.
func (s *Host) fastOpenDeferred(sk *Socket) netip.AddrPort {
	f := &s.tfo
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.deferred[sk]
}

// fastOpenUndefer forgets sk's deferred connect.
func (s *Host) fastOpenUndefer(sk *Socket) {
	f := &s.tfo
	f.mu.Lock()
	delete(f.deferred, sk)
	f.mu.Unlock()
	sk.foDefer = false
}

// FastOpenMode returns the host's net.ipv4.tcp_fastopen, for an option's
// setter.
func (c OptCtx) FastOpenMode() int { return c.sk.h.FastOpenMode() }

// fastOpenConnectLocked starts the connect of a TCP_FASTOPEN_CONNECT
// socket that has no cookie to use: its SYN asks for one.
func (sk *Socket) fastOpenConnectLocked(ep *endpoint) error {
	s := sk.h
	if s.FastOpenMode()&FastOpenClient == 0 {
		return ep.conn.Connect(s.clock.Now())
	}
	_, err := ep.conn.ConnectFastOpen(s.clock.Now(), s.fastOpenRequest(ep.remote.Addr()), nil)
	return err
}
