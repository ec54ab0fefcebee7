package engine

import (
	"net/netip"

	"github.com/synstack/synstack/tcp"
)

// Entry is a listener or a connection of the host, as Walk shows it.
type Entry struct {
	Local, Remote netip.AddrPort // Remote is zero for a listener
	// Conn is the connection; nil for a listener, whose Congestion (the
	// option its children get), AcceptQ and Backlog are set instead.
	Conn             *tcp.Conn
	Congestion       string
	AcceptQ, Backlog int
}

// Walk calls f for every listener, then every connection, of the host,
// under every lock, until f returns false; hint is the number of entries
// it will see at most. f must not call into the host.
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
}
