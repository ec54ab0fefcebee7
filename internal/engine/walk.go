package engine

import (
	"net/netip"

	"github.com/synstack/synstack/tcp"
)

// Entry is a listener or a connection of the host, as Walk shows it.
type Entry struct {
	Local, Remote netip.AddrPort // Remote is zero for a listener or an unconnected UDP socket
	// Conn is the connection; nil for a listener, whose Congestion (the
	// option its children get), AcceptQ and Backlog are set instead, and
	// for a UDP socket.
	Conn             *tcp.Conn
	Congestion       string
	AcceptQ, Backlog int
	// UDP marks a bound UDP socket, Queued the bytes its receive queue
	// holds.
	UDP    bool
	Queued int
}

// Walk calls f for every listener, every connection, then every bound
// UDP socket of the host, under every lock, until f returns false; hint
// is the number of TCP entries it will see at most. f must not call into
// the host.
func (s *Host) Walk(f func(hint int, e *Entry) bool) {
	s.lock()
	defer s.unlock()
	hint := s.connCount() + len(s.listeners)
	var e Entry
	for _, ls := range s.listeners {
		for _, l := range ls {
			cc := l.sock.opts.Congestion
			if cc == "" {
				cc = tcp.DefaultCongestion
			}
			e = Entry{Local: netip.AddrPortFrom(l.bind.addr, l.bind.port), Congestion: cc,
				AcceptQ: len(l.acceptQ), Backlog: l.backlog}
			if !f(hint, &e) {
				return
			}
		}
	}
	for ep := range s.allConns() {
		e = Entry{Local: ep.local, Remote: ep.remote, Conn: &ep.conn}
		if !f(hint, &e) {
			return
		}
	}
	s.udp.mu.RLock()
	defer s.udp.mu.RUnlock()
	for _, list := range s.udp.ports {
		for _, u := range list {
			u.mu.Lock()
			e = Entry{Local: u.local, Remote: u.remote, UDP: true, Queued: u.qBytes}
			u.mu.Unlock()
			if !f(hint, &e) {
				return
			}
		}
	}
}
