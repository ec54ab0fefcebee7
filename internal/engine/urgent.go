package engine

import (
	"io"
	"syscall"
)

// Urgent data, the socket's side (the state machine's is tcp/urgent.go):
// recv with MSG_OOB and SIOCATMARK.

// RecvUrgent is recv with MSG_OOB: the urgent byte (peek leaves it), as
// Linux: ENOTCONN on a listener, EINVAL when there is none to read (or
// SO_OOBINLINE), EAGAIN when it is announced and not yet here (never
// waiting), ok false at the end of the stream.
func (sk *Socket) RecvUrgent(peek bool) (b byte, ok bool, err error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return 0, false, err
	}
	switch {
	case sk.l != nil:
		return 0, false, syscall.ENOTCONN
	case sk.ep == nil:
		return 0, false, syscall.EINVAL
	}
	ep := sk.ep
	b, err = ep.conn.ReadUrgent(sk.h.clock.Now(), peek)
	sk.h.afterLocked(ep)
	switch {
	case err == io.EOF:
		return 0, false, nil
	case err != nil:
		return 0, false, err
	}
	return b, true, nil
}

// MarkAhead returns the octets a read takes before the urgent mark (0 at
// it, data kept by a peek included) and whether data waits, or ok false
// when no mark is ahead (splice's reading, tcp_read_sock).
func (sk *Socket) MarkAhead() (off int, waiting, ok bool, err error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return 0, false, false, err
	}
	if sk.ep == nil {
		return 0, false, false, nil
	}
	c := &sk.ep.conn
	off, ok = c.UrgentMark()
	return off + sk.peekLen(), c.Readable()+sk.peekLen() > 0, ok, nil
}

// AtMark is SIOCATMARK: whether the next read starts at the urgent mark.
func (sk *Socket) AtMark() (bool, error) {
	var l locks
	defer sk.h.releaseCtl(&l)
	if err := sk.lock(sockLocks, &l); err != nil {
		return false, err
	}
	return sk.ep != nil && sk.peekLen() == 0 && sk.ep.conn.AtMark(), nil
}
