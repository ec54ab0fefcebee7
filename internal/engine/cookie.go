package engine

import (
	"net/netip"
	"time"

	"github.com/synstack/synstack/tcp"
	"github.com/synstack/synstack/tcp/seq"
)

// SYN cookies, as Linux makes them (RFC 4987 3.6). The cookie is our ISN:
//
//	cookie = H1(4-tuple) + SEG.SEQ + (t << 24) + (H2(4-tuple, t) + mssIndex) mod 2^24
//
// with t a clock ticking once a minute (8 bits in the cookie) and H1, H2
// keyed hashes (SipHash under the stack's secret). The ACK that returns it
// (SEG.ACK-1) is valid when t is at most two minutes old and the low 24
// bits give back an index into tcp.CookieMSS.
const (
	cookiePeriod = 60 * time.Second // TCP_SYNCOOKIE_PERIOD
	cookieMaxAge = 2                // MAX_SYNCOOKIE_AGE, in periods
	// cookieCheckWindow is how long after the last cookie a listener still
	// checks ACKs for one (Linux's tcp_synq_no_recent_overflow).
	cookieCheckWindow = cookieMaxAge * cookiePeriod
)

func cookieTime(now time.Time) uint32 { return uint32(now.UnixNano() / int64(cookiePeriod)) }

// synCookie computes the cookie for a SYN from remote to local.
func (s *Host) synCookie(local, remote netip.AddrPort, peerISN seq.Value, mssIndex int, now time.Time) seq.Value {
	t := cookieTime(now)
	h1 := uint32(s.key.hashAddrs(domainCookie, local, remote, 0))
	h2 := uint32(s.key.hashAddrs(domainCookieTime, local, remote, uint64(t)))
	return seq.Value(h1 + uint32(peerISN) + t<<24 + (h2+uint32(mssIndex))&0xffffff)
}

// checkSynCookie validates the cookie an ACK returns and gives back the
// MSS index it carries.
func (s *Host) checkSynCookie(local, remote netip.AddrPort, ack *tcp.Segment, now time.Time) (int, bool) {
	cookie := uint32(ack.ACK) - 1
	peerISN := uint32(ack.SEQ) - 1
	v := cookie - uint32(s.key.hashAddrs(domainCookie, local, remote, 0)) - peerISN
	nowT := cookieTime(now)
	age := (nowT - v>>24) & 0xff
	if age > cookieMaxAge {
		return 0, false
	}
	t := nowT - age
	h2 := uint32(s.key.hashAddrs(domainCookieTime, local, remote, uint64(t)))
	idx := (v - h2) & 0xffffff
	if idx >= uint32(len(tcp.CookieMSS)) {
		return 0, false
	}
	return int(idx), true
}

// answerWithCookieLocked answers a SYN statelessly: a SYN,ACK whose ISN is
// the cookie, built by a connection that is then forgotten. It is signed
// with the listener's TCP MD5 key for the peer, if it has one, as Linux's
// tcp_v4_send_synack signs every SYN,ACK of a listener with a key (the
// SYN got here only if that key checked it: md5DemuxLocked); the ACK that
// returns the cookie is checked with the same key, and the connection it
// opens takes it (newChildLocked).
//
// +checklocks:s.ctl
func (s *Host) answerWithCookieLocked(l *listener, local, remote netip.AddrPort, syn *tcp.Segment, now time.Time) {
	idx := tcp.CookieMSSIndex(syn.Options.MSS)
	cfg := s.connConfig(l.sock.opts, local)
	cfg.TSOffset = s.tsOffset(local, remote)
	g := s.g()
	cfg.Scratch, cfg.Counters = &g.scratch, &g.counters
	key := l.sock.opts.MD5.lookup(remote.Addr())
	cfg.MD5Key = key
	cfg.Output = func(seg *tcp.Segment) { s.sendSegmentIPLocked(g, local, remote, seg, 0, true, key) }
	c := tcp.NewConn(cfg, s.synCookie(local, remote, syn.SEQ, idx, now))
	c.AnswerWithCookie(now, syn)
	l.lastCookie = now
	s.g().stats.TcpExtSyncookiesSent++
}

// acceptCookieLocked opens the connection an ACK with a valid cookie asks
// for. It reports whether the ACK carried one (when it did not, the caller
// answers it as any stray ACK at a listener).
//
// +checklocks:s.ctl
func (s *Host) acceptCookieLocked(l *listener, local, remote netip.AddrPort, ack *tcp.Segment, now time.Time) bool {
	if !s.synCookies || l.lastCookie.IsZero() || now.Sub(l.lastCookie) > cookieCheckWindow {
		return false
	}
	idx, ok := s.checkSynCookie(local, remote, ack, now)
	if !ok {
		s.g().stats.TcpExtSyncookiesFailed++
		return false
	}
	if l.acceptFull() {
		// Linux drops it too: the client will retransmit, or time out.
		s.g().stats.TcpExtListenOverflows++
		s.g().stats.TcpExtListenDrops++
		return true
	}
	if s.connLimitLocked(l) {
		s.g().stats.TcpExtListenDrops++
		return true
	}
	s.g().stats.TcpExtSyncookiesRecv++
	ep := s.newChildLocked(l, local, remote, ack.ACK-1)
	ep.conn.OpenFromCookie(now, ack, idx)
	ep.conn.Input(now, ack)
	s.afterLocked(ep)
	return true
}
